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


# ---- parties: under the queues' hash tag `{q}`, since the queue scripts read them
# (a party ticket's claim checks every member still belongs to the party) and the
# party scripts take the party's tickets out of the queues in the same call.
# The scripts build these names from the queue prefix (ARGV[1]) and the same suffixes.
PARTY_PREFIX = f"{QUEUE_PREFIX}party:"  # + party id: hash leader, members (JSON), created, version
PARTY_OF_PREFIX = f"{QUEUE_PREFIX}partyof:"  # + user id: the user's party id
PARTY_INVITES_PREFIX = f"{QUEUE_PREFIX}partyinv:"  # + party id: hash invitee id -> invite JSON
PARTY_INVITED_PREFIX = f"{QUEUE_PREFIX}invited:"  # + user id: hash party id -> expiry (ms)


def party(party_id: str) -> str:
    return f"{PARTY_PREFIX}{party_id}"


def party_of(user_id: str) -> str:
    return f"{PARTY_OF_PREFIX}{user_id}"


def party_invites(party_id: str) -> str:
    return f"{PARTY_INVITES_PREFIX}{party_id}"


def party_invited(user_id: str) -> str:
    return f"{PARTY_INVITED_PREFIX}{user_id}"


# Private matches share the queues' hash tag `{q}`: their scripts check and write the
# players' queue assignments (`tradearena.contracts.keys.queue_assignment`) atomically.
PRIVATE_PREFIX = f"{QUEUE_PREFIX}private:"
PRIVATE_DUE = f"{QUEUE_PREFIX}private-due"  # zset code -> when to look at the room (ms)


def private_match(code: str) -> str:
    """A private match's room (JSON: host, mode, format, size, who joined, state)."""
    return f"{PRIVATE_PREFIX}{code}"
