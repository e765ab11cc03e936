"""Where to send the browser next, when the place comes from the request (``next=``).

One function for every ``Location`` and ``HX-Redirect`` built from user input. An open redirect would turn our
login page into a phishing tool, and browsers are generous readers of URLs: they drop tabs and newlines,
strip leading spaces and controls, read a backslash as a slash and fold full-width punctuation, so
``/\\t/evil.example`` is ``//evil.example`` to them. Rather than predict every reading, anything but a plain
local path is refused (the default is used), and what is kept is percent-encoded to ASCII, so it is always a
valid header value (a newline dropped the connection; a non-Latin-1 character was a 500).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, urlsplit

# Longer targets are not ours: our own paths are short, and headers and cookies have limits.
MAX_TARGET_CHARS = 2000
# Characters kept as they are when encoding (RFC 3986 reserved and unreserved, and "%" of existing escapes).
_KEEP = "/?#[]@!$&'()*+,;=-._~:%"


def _plain(target: str) -> bool:
    for char in target:
        category = unicodedata.category(char)
        # Controls, separators of every kind (spaces included), format characters (bidi), surrogates, unassigned.
        if category[0] in "CZ" or char == "\\":
            return False
    return True


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, percent-encoded to ASCII; otherwise ``default``."""
    if not target or len(target) > MAX_TARGET_CHARS or not _plain(target):
        return default
    # Compatibility folding first: U+FF0F (full-width solidus) and friends must be judged as what they become.
    if not _is_local(unicodedata.normalize("NFKC", target)) or not _is_local(target):
        return default
    encoded = header_safe(target)
    return encoded if _is_local(encoded) else default


def header_safe(url: str) -> str:
    """``url`` percent-encoded to printable ASCII (as Starlette encodes ``Location``), for any redirect header."""
    return quote(url, safe=_KEEP)


def _is_local(target: str) -> bool:
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc
