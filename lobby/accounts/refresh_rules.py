"""Rotating refresh tokens: the rules, as pure functions.

A login starts a *family*. Each refresh spends the presented token (marks it
used) and issues its successor in the same family. Presenting a spent token
again means it was copied: the whole family is revoked, so both the thief and
the victim must log in again. Only SHA-256 digests are stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

TOKEN_PREFIX = "rt_"  # noqa: S105 (a prefix, not a secret)


def new_refresh_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def well_formed(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 100


@dataclass(frozen=True)
class StoredToken:
    family_id: str
    user_id: str
    family_started: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class Verdict(StrEnum):
    ROTATE = "rotate"  # valid: spend it, issue the successor
    UNKNOWN = "refresh_token_invalid"
    REVOKED = "refresh_token_revoked"
    REUSED = "refresh_token_reused"  # revoke the whole family
    EXPIRED = "refresh_token_expired"
    FAMILY_EXPIRED = "session_expired"  # the login is too old: log in again


def judge(token: StoredToken | None, now: datetime, family_max_age: timedelta) -> Verdict:
    if token is None:
        return Verdict.UNKNOWN
    if token.revoked_at is not None:
        return Verdict.REVOKED
    if token.used_at is not None:
        return Verdict.REUSED
    if now >= token.expires_at:
        return Verdict.EXPIRED
    if now >= token.family_started + family_max_age:
        return Verdict.FAMILY_EXPIRED
    return Verdict.ROTATE


def successor_expiry(
    now: datetime, ttl: timedelta, family_started: datetime, family_max_age: timedelta
) -> datetime:
    """A successor never outlives its family."""
    return min(now + ttl, family_started + family_max_age)
