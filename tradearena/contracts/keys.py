"""Every Redis key and stream name in one place (prefix `ta:`)."""

from __future__ import annotations

RESULTS_STREAM = "ta:results"  # match servers -> results worker (consumer group)
RESULTS_GROUP = "results-workers"
RESULTS_DEAD_LETTER = "ta:results:dead"


# A symbol's stream and lease share the hash tag `{SYMBOL}`: the relay's fenced publish
# is one script over both, which a Redis cluster only runs when they share a slot.


def feed_stream(symbol: str) -> str:
    """Ticks of one symbol, published by the feed relay leader."""
    return f"ta:feed:{{{symbol.upper()}}}"


def feed_leader(symbol: str) -> str:
    """Leader-election lease of the feed relay for one symbol."""
    return f"ta:feed:{{{symbol.upper()}}}:leader"


def match_log(match_id: str) -> str:
    """The match's append-only input log (engine log entries, JSON)."""
    return f"ta:match:{match_id}:log"


def match_meta(match_id: str) -> str:
    """Header of the match (rules, players...), written once when it starts."""
    return f"ta:match:{match_id}:meta"


def match_snapshot(match_id: str) -> str:
    return f"ta:match:{match_id}:snapshot"


def match_status(match_id: str) -> str:
    """Hash: the match server's current phase (Ready, Live, Finished, Cancelled)..."""
    return f"ta:match:{match_id}:status"


def match_phases(match_id: str) -> str:
    """Stream of the match server's phase changes, for runtimes to watch."""
    return f"ta:match:{match_id}:phases"


def match_cancel(match_id: str) -> str:
    """Set (with the reason) before SIGTERM to make the match server cancel, not settle."""
    return f"ta:match:{match_id}:cancel"


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
