"""Usernames: which names exist and how two of them compare, decided here only.

A username matches the registration pattern (`USERNAME_PATTERN`: 3 to 32 ASCII
letters, digits, `_`, `.`, `-`); its canonical form lowers the ASCII letters and
nothing else. Login, its throttle keys, `promote-admin` and the stored
`users.username_canonical` column all use `canonical_username`, so no locale (Python's
Unicode `str.lower()`, PostgreSQL's `lower()` under the server's locale) ever decides
whether two names are the same account. A name outside the pattern has no canonical
form: it is refused before any lookup.
"""

from __future__ import annotations

import re

from lobby.http.schemas import USERNAME_PATTERN

_PATTERN = re.compile(USERNAME_PATTERN.removeprefix("^").removesuffix("$"))
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def canonical_username(name: str) -> str | None:
    """The canonical form of a registrable name, or None when registration would
    refuse it (`fullmatch`: no trailing newline slips through as with `$`)."""
    if _PATTERN.fullmatch(name) is None:
        return None
    return name.translate(_ASCII_LOWER)


_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,32}")


def canonical_prefix(prefix: str) -> str | None:
    """A search prefix in canonical form, or None when no username can start with it."""
    if _PREFIX.fullmatch(prefix) is None:
        return None
    return prefix.translate(_ASCII_LOWER)
