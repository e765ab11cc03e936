"""Where values sealed directly under the master key live, so that `marid keys rotate` can re-seal them.

Most secrets are sealed under a workspace's data key (:mod:`app.security.secrets`), and rotation only
re-wraps those keys. A few cannot be: a workspace role's password is needed before any workspace data, and a
person's TOTP secret belongs to no workspace. Each domain that keeps such a column declares it with this class,
next to its code, and the ``marid keys`` command collects the declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MasterSealedColumn:
    """A text column of ciphertexts made by ``Keyring.encrypt``; each row's AAD derives from its key."""

    label: str  # what the progress bar and the census call these values
    table: str  # schema-qualified, e.g. "public.users"
    key_column: str
    column: str
    aad: Callable[[Any], bytes]  # the AAD of the row with this key value
