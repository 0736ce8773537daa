"""Every Redis key, stream and channel that more than one process touches (prefix `ta:`).

A component's private keys live in one module of its own (`lobby/keys.py`); no other
module spells a `ta:` key. Keys that one script or transaction touches together share
a hash tag (`{...}`), so a Redis Cluster keeps them in one slot.
"""

from __future__ import annotations

# Results: match servers -> results worker (consumer group). The stream, its dead letter
# and every match's published-marker share the tag `{results}`: the match server's
# publish-once script writes a marker and the stream together, and the worker's
# dead-lettering transaction writes the dead letter and acks the stream together.
RESULTS_STREAM = "ta:{results}"
RESULTS_GROUP = "results-workers"
RESULTS_DEAD_LETTER = "ta:{results}:dead"


def result_published(match_id: str) -> str:
    """Marker set, atomically with the XADD, once a match's result is on the stream."""
    return f"ta:{{results}}:published:{match_id}"


# python-socketio's pub/sub channel between the lobby replicas and the results worker.
SOCKETIO_CHANNEL = "ta:lobby:socketio"


# A symbol's stream and lease share the hash tag `{SYMBOL}`: the relay's fenced publish
# is one script over both, which a Redis cluster only runs when they share a slot.


def feed_stream(symbol: str) -> str:
    """Ticks of one symbol, published by the feed relay leader."""
    return f"ta:feed:{{{symbol.upper()}}}"


def feed_leader(symbol: str) -> str:
    """Leader-election lease of the feed relay for one symbol."""
    return f"ta:feed:{{{symbol.upper()}}}:leader"


def feed_handover(symbol: str) -> str:
    """The lease offered by its stopping holder (the holder's token): the next standby to
    try takes it over while the holder still publishes."""
    return f"ta:feed:{{{symbol.upper()}}}:handover"


def feed_standby(symbol: str) -> str:
    """Refreshed by every standby's acquire attempt: someone is there to take a handover."""
    return f"ta:feed:{{{symbol.upper()}}}:standby"


def candles(symbol: str, interval: str) -> str:
    """Closed candles of one symbol at one interval (`contracts.candles`), written by the
    feed relay leader in the same fenced script as the tick that closes them."""
    return f"ta:feed:{{{symbol.upper()}}}:candles:{interval}"


# A match's keys share the hash tag `{<match_id>}`: the status hash and the phase stream
# are written in one transaction.


def match_log(match_id: str) -> str:
    """The match's append-only input log (engine log entries, JSON)."""
    return f"ta:match:{{{match_id}}}:log"


def match_meta(match_id: str) -> str:
    """Header of the match (rules, players...), written once when it starts."""
    return f"ta:match:{{{match_id}}}:meta"


def match_snapshot(match_id: str) -> str:
    """The engine state at some log position, so a restart replays only the rest."""
    return f"ta:match:{{{match_id}}}:snapshot"


def match_status(match_id: str) -> str:
    """Hash: the match server's current `phases.ServerPhase` (field `phase`) and times."""
    return f"ta:match:{{{match_id}}}:status"


def match_phases(match_id: str) -> str:
    """Stream of the match server's phase changes, for runtimes to watch."""
    return f"ta:match:{{{match_id}}}:phases"


def match_cancel(match_id: str) -> str:
    """Set (with the reason) before SIGTERM to make the match server cancel, not settle."""
    return f"ta:match:{{{match_id}}}:cancel"


def match_result(match_id: str) -> str:
    """The engine's own result, which `tradearena replay --match-id` verifies against."""
    return f"ta:match:{{{match_id}}}:result"


def match_keys(match_id: str) -> tuple[str, ...]:
    """Every key a match leaves behind, for its retention once it is archived: the
    `{<match_id>}` keys above, its pool binding and its result-published marker (the
    results stream entry itself stays: the stream is the worker's, not the match's)."""
    return (
        match_log(match_id),
        match_meta(match_id),
        match_snapshot(match_id),
        match_status(match_id),
        match_phases(match_id),
        match_cancel(match_id),
        match_result(match_id),
        match_server(match_id),
        result_published(match_id),
    )


# Matchmaking queues. Every key shares the hash tag `{q}` so the atomic scripts that
# touch several of them stay on one shard.
QUEUE_PREFIX = "ta:{q}:"


def queue_tickets(mode: str) -> str:
    """Hash: player -> ticket (JSON) of everyone waiting in one mode."""
    return f"{QUEUE_PREFIX}tickets:{mode}"


QUEUE_EXPIRY = f"{QUEUE_PREFIX}expiry"  # zset "mode|player" -> ticket expiry (ms)
QUEUE_FORMING = f"{QUEUE_PREFIX}forming"  # hash match_id -> claimed tickets being formed


def queue_player(player: str) -> str:
    """Set of the modes a player is queued in."""
    return f"{QUEUE_PREFIX}player:{player}"


def queue_assignment(player: str) -> str:
    """The match a player was last matched into (JSON, with a TTL)."""
    return f"{QUEUE_PREFIX}assigned:{player}"


# A pool server: one match-server process that hosts up to `capacity` matches, given
# to it through Redis (match pods have no Kubernetes API access). Its keys share the
# hash tag `{srv:<server_id>}`: the allocation script checks the server's capacity,
# records the match and wakes the server in one step on one slot.


def server_matches(server_id: str) -> str:
    """Hash: match id -> assignment (`contracts.pool.Assignment`, JSON) of every match
    the server hosts, the source of truth for its count and for a restart's restore.
    The server removes a match once its result is published."""
    return f"ta:server:{{srv:{server_id}}}:matches"


def server_inbox(server_id: str) -> str:
    """Stream: one entry (field `match_id`) per new assignment, which the server reads
    (XREAD BLOCK) to start the match at once."""
    return f"ta:server:{{srv:{server_id}}}:inbox"


def server_state(server_id: str) -> str:
    """Hash: the server's own report (`contracts.pool.ServerState` fields): capacity,
    players connected, ready, draining, heartbeat."""
    return f"ta:server:{{srv:{server_id}}}:state"


def match_server(match_id: str) -> str:
    """The pool server a match is bound to (SET NX): one Match never binds two servers,
    whichever operator replica or runtime tries."""
    return f"ta:match:{{{match_id}}}:server"


# A local runtime (`tradearena up`, tests: one Redis, no cluster) follows the phase
# streams of all its matches with one blocking XREAD over every stream; an entry on
# its wake stream ends that read at once when a match is added.


def runtime_wake(runtime: str) -> str:
    """Stream: wakes one local runtime's phase reader (its entries carry nothing)."""
    return f"ta:runtime:{{{runtime}}}:wake"
