"""Redis keys of the lobby's accounts side (prefix `ta:lobby:`); the shared ones are in
`tradearena.contracts.keys`."""

from __future__ import annotations

from tradearena.contracts.keys import QUEUE_PREFIX


def lobby_rate(bucket: str, subject: str) -> str:
    """Fixed-window request counter of the lobby (subject: user id or IP)."""
    return f"ta:lobby:rate:{bucket}:{subject}"


def lobby_login_failures(kind: str, subject: str) -> str:
    """Failed logins in the throttling window, per account (lowercased name) or per IP."""
    return f"ta:lobby:loginfail:{kind}:{subject}"


def lobby_banned(user_id: str) -> str:
    """Set on ban for as long as an access token lives: access tokens stop working at once."""
    return f"ta:lobby:banned:{user_id}"


# Private matches share the queues' hash tag `{q}`: their scripts check and write the
# players' queue assignments (`tradearena.contracts.keys.queue_assignment`) atomically.
PRIVATE_PREFIX = f"{QUEUE_PREFIX}private:"
PRIVATE_DUE = f"{QUEUE_PREFIX}private-due"  # zset code -> when to look at the room (ms)


def private_match(code: str) -> str:
    """A private match's room (JSON: host, mode, format, size, who joined, state)."""
    return f"{PRIVATE_PREFIX}{code}"
