"""What a secret's name and value may be, and the masked preview that is all anyone sees of a value again."""

from __future__ import annotations

import re

from app.errors import Invalid

NAME_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
NAME_RULE = "A secret's name is like an environment variable: capital letters, digits and _, starting with a letter."
# Names a sandbox needs for itself, or that change how programs start: a secret must not replace them.
RESERVED_NAMES = frozenset(
    {"PATH", "HOME", "USER", "SHELL", "PWD", "LANG", "TERM", "TMPDIR", "HOSTNAME", "LD_PRELOAD", "LD_LIBRARY_PATH",
     "PYTHONPATH", "NODE_OPTIONS"}
)  # fmt: skip
RESERVED_PREFIX = "MARID_"
VALUE_MAX = 16_384
DESCRIPTION_MAX = 200
# A value shorter than this shows nothing at all; from here its last 4 characters (25 % at 16); from
# ``_ENDS_FROM`` its first 3 and last 4 (25 % at 28).
_TAIL_FROM = 16
_ENDS_FROM = 28
HIDDEN = "••••••••"


def clean_name(name: str) -> str:
    clean = name.strip()
    if not NAME_PATTERN.fullmatch(clean):
        raise Invalid(f"{NAME_RULE} At most 64 characters, e.g. GITHUB_TOKEN.", field="name")
    if clean in RESERVED_NAMES or clean.startswith(RESERVED_PREFIX):
        raise Invalid(f"{clean} is reserved for the sandbox itself; choose another name.", field="name")
    return clean


def clean_value(value: str) -> str:
    """The value as it will be sealed: surrounding blank space trimmed, line endings as LF; a value of several
    lines (a private key) ends with a line break, as the programs that read keys expect."""
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise Invalid("Enter the secret's value.", field="value")
    if "\x00" in text:
        raise Invalid("A secret's value cannot contain NUL characters.", field="value")
    if len(text) > VALUE_MAX:
        raise Invalid(f"A secret's value is at most {VALUE_MAX:,} characters.", field="value")
    return text + "\n" if "\n" in text else text


def clean_description(description: str) -> str:
    if any(ord(char) < 32 or char in "\u2028\u2029" for char in description):
        raise Invalid("The description is one line of plain text.", field="description")
    clean = " ".join(description.split())
    if len(clean) > DESCRIPTION_MAX:
        raise Invalid(f"The description is at most {DESCRIPTION_MAX} characters.", field="description")
    return clean


def masked_preview(value: str) -> str:
    """What may be shown of ``value``: never more than a quarter of its characters (blank space not counted)."""
    compact = "".join(value.split())
    if len(compact) >= _ENDS_FROM:
        return f"{compact[:3]}…{compact[-4:]}"
    if len(compact) >= _TAIL_FROM:
        return f"…{compact[-4:]}"
    return HIDDEN
