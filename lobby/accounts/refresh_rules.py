"""Rotating refresh tokens: the rules, as pure functions.

A login starts a *family*. Each refresh spends the presented token (marks it
used) and issues its successor in the same family. Presenting a spent token
again means it was copied: the whole family is revoked, so both the thief and
the victim must log in again. Only SHA-256 digests are stored.

Races: two tabs may refresh with the same token at once. Within a short grace
after a token was spent (`refresh_reuse_grace_s`, seconds), presenting it again
returns the *same* successor instead of tripping reuse detection: a successor is
not random but `HMAC-SHA256(key, spent token)`, with a key derived from the
lobby's signing key, so it can be derived again from the spent token without
storing it (the table keeps only digests). The replay is allowed only while that
successor is still unspent and unrevoked and its digest is the stored one; after
the grace, or once the successor was used, it is reuse as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

TOKEN_PREFIX = "rt_"  # noqa: S105 (a prefix, not a secret)


def new_refresh_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def successor_key(signing_key_raw: bytes) -> bytes:
    """The HMAC key of successors, derived from the signing key's private bytes."""
    return hashlib.sha256(b"tradearena refresh successor v1\0" + signing_key_raw).digest()


def successor_token(key: bytes, spent: str) -> str:
    """The successor of a spent token: the same every time, unguessable without `key`."""
    mac = hmac.new(key, spent.encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


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
    GRACE_REPLAY = "grace_replay"  # spent moments ago: answer with the same successor
    EXPIRED = "refresh_token_expired"
    FAMILY_EXPIRED = "session_expired"  # the login is too old: log in again


def judge(
    token: StoredToken | None,
    now: datetime,
    family_max_age: timedelta,
    grace: timedelta = timedelta(0),
) -> Verdict:
    """GRACE_REPLAY only says the token was spent within the grace; the caller still
    checks that its successor is unspent (else it is reuse)."""
    if token is None:
        return Verdict.UNKNOWN
    if token.revoked_at is not None:
        return Verdict.REVOKED
    if token.used_at is not None:
        if now - token.used_at <= grace and grace > timedelta(0):
            return Verdict.GRACE_REPLAY
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
