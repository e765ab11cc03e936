"""The API key format: ``marid_{kind}_{body}{checksum}``, GitHub style.

* ``kind`` says what the key is at a glance: ``pk`` personal (acts as a person), ``sk`` service.
* ``body`` is 32 base62 characters from the OS CSPRNG (32 · log2(62) ≈ 190 bits).
* ``checksum`` is the CRC32 of everything before it, as 6 base62 characters, so a secret scanner or a client
  can tell a real key from a typo or a random string offline, without asking the server.

The first 8 characters of the body are the key's public *lookup id*: stored in clear (indexed), shown in the
UI as ``marid_pk_AbCd1234…``, and used to find the row, whose ``token_hash`` (SHA-256 of the whole key) is then
compared in constant time. The key itself is shown once and never stored.
"""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "marid_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BODY_CHARS = 32
CHECKSUM_CHARS = 6  # 62**6 > 2**32: every CRC32 fits
LOOKUP_CHARS = 8
_ALLOWED = frozenset(ALPHABET)


class KeyKind(StrEnum):
    PERSONAL = "personal"
    SERVICE = "service"

    @property
    def tag(self) -> str:
        return KIND_TAGS[self]


KIND_TAGS = {KeyKind.PERSONAL: "pk", KeyKind.SERVICE: "sk"}
_TAG_KINDS = {tag: kind for kind, tag in KIND_TAGS.items()}
TOKEN_CHARS = len(PREFIX) + 3 + BODY_CHARS + CHECKSUM_CHARS  # "marid_" + "pk_" + body + checksum = 47


class MalformedKey(ValueError):
    """Not an API key at all (wrong shape or checksum); the message says what is wrong, without the key."""


@dataclass(frozen=True)
class ParsedKey:
    kind: KeyKind
    lookup_id: str
    token: str


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    if number:
        raise ValueError("number too large for width")
    return "".join(reversed(digits))


def checksum(text: str) -> str:
    """The 6-character checksum of ``marid_{tag}_{body}``."""
    return _base62(zlib.crc32(text.encode()), CHECKSUM_CHARS)


def generate(kind: KeyKind) -> str:
    """A new key of ``kind``. Show it to its creator once; store only ``token_hash`` of it."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_CHARS))
    head = f"{PREFIX}{kind.tag}_{body}"
    return head + checksum(head)


def lookup_id_of(token: str) -> str:
    return token[len(PREFIX) + 3 : len(PREFIX) + 3 + LOOKUP_CHARS]


def display_prefix(kind: KeyKind | str, lookup_id: str) -> str:
    """How the UI names a key without revealing it: ``marid_pk_AbCd1234…``."""
    return f"{PREFIX}{KeyKind(kind).tag}_{lookup_id}…"


def parse(token: str) -> ParsedKey:
    """Check a key's shape and checksum offline; :class:`MalformedKey` says what is wrong."""
    if not token.startswith(PREFIX):
        raise MalformedKey("An API key starts with “marid_”.")
    tag = token[len(PREFIX) : len(PREFIX) + 3]
    if tag[:2] not in _TAG_KINDS or tag[2:] != "_":
        raise MalformedKey("Unknown key type: an API key starts with “marid_pk_” or “marid_sk_”.")
    if len(token) != TOKEN_CHARS:
        raise MalformedKey(f"An API key is {TOKEN_CHARS} characters long; this one has {len(token)}.")
    rest = token[len(PREFIX) + 3 :]
    if not set(rest) <= _ALLOWED:
        raise MalformedKey("An API key contains only letters and digits after its type prefix.")
    head, check = token[:-CHECKSUM_CHARS], token[-CHECKSUM_CHARS:]
    if not secrets.compare_digest(checksum(head), check):
        raise MalformedKey("The key's checksum does not match: it was mistyped or truncated.")
    return ParsedKey(kind=_TAG_KINDS[tag[:2]], lookup_id=lookup_id_of(token), token=token)
