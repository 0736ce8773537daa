"""Live matches and spectating, decided from what the lobby read (pure: no I/O).

`lobby.matchmaking.live` reads, for each match the orchestrator runs, a *sighting*:
the orchestrator's status, the match header the server wrote (`keys.match_meta`:
mode, rules, players, length), its status hash (`keys.match_status`: server phase,
start time, players connected, spectators) and, on a pool server, its assignment
(format, symbol). This module turns sightings into the live list and decides who may
watch what:

- a match is live while its server reports `Live` and its orchestrator phase is not
  terminal; only live matches are listed or watched;
- a private match is never listed, and only its own players may watch it;
- a match's spectators see it `[rules.spectate] delay_ms` late (its mode's, in the
  catalogue, as the match server takes them), at most `cap` of them;
- a spectator token lasts for the match's remaining time, plus the spectators' delay
  (they see the end that much later), plus a margin.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from lobby.http.schemas import Body, _enum, mode_names
from tradearena.contracts.orchestration import MatchStatus
from tradearena.contracts.phases import GamePhase, ServerPhase
from tradearena.contracts.pool import MatchPresence
from tradearena.contracts.spectate import STATUS_SPECTATORS
from tradearena.modes import SPECTATE_WHEN_UNRECORDED, Catalogue, SpectateRules

UNKNOWN_FORMAT = "custom"  # a length no format of the catalogue has
LIST_LIMIT = 100

# Problem codes of `POST /matches/{id}/spectate`.
NOT_FOUND = "match_not_found"
NOT_LIVE = "match_not_live"
PRIVATE = "private_match"


# ---------------------------------------------------------------- API bodies


class LiveQuery(Body):
    mode: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = Field(
        default=None, json_schema_extra=_enum(mode_names(), True)
    )
    limit: int = Field(default=50, ge=1, le=LIST_LIMIT)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in mode_names():
            raise ValueError(f"unknown mode; one of {', '.join(mode_names())}")
        return value


class LivePlayer(BaseModel):
    username: str


class LiveMatch(BaseModel):
    """A live match anyone may watch (private matches are never listed)."""

    match_id: str
    mode: str
    format: str
    symbol: str
    phase: str = Field(description="the match's game phase (`live`)")
    started_at: int = Field(description="epoch ms")
    end_at: int = Field(description="epoch ms")
    players: list[LivePlayer]
    players_connected: int
    spectators: int
    spectator_cap: int
    spectate_delay_ms: int


class LivePage(BaseModel):
    """The live matches, most watched first, then newest."""

    matches: list[LiveMatch]


class SpectateGrant(BaseModel):
    """Where and how to watch a match: its server's address and a spectator token."""

    match_id: str
    url: str = Field(description="the match server, as players get it; Socket.IO `/match`")
    token: str = Field(description="spectator token: `auth: {token}` on connect")
    delay_ms: int = Field(description="everything a spectator sees is this old")
    players: dict[str, str] = Field(description="user id -> username of each player")


# ---------------------------------------------------------------- sightings


@dataclass(frozen=True)
class Sighting:
    """What the lobby read about one match."""

    match_id: str
    status: MatchStatus | None  # the orchestrator's; None: it does not know the match
    header: Mapping[str, Any] | None  # the match header; None: not written (yet)
    server: Mapping[str, str]  # the status hash (empty: none)
    assignment: Mapping[str, Any] | None = None  # a pool server's assignment, if any


@dataclass(frozen=True)
class Live:
    """A live match, players as user ids."""

    match_id: str
    mode: str
    format: str
    symbol: str
    started_at: int
    end_at: int
    players: tuple[str, ...]
    players_connected: int
    spectators: int
    spectating: SpectateRules
    url: str | None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def spectating_of(catalogue: Catalogue, mode: str) -> SpectateRules:
    """A mode's `[rules.spectate]`, from the catalogue as the match server takes them
    (the match header leaves them out)."""
    found = catalogue.modes.get(mode)
    return found.rules.spectate if found is not None else SPECTATE_WHEN_UNRECORDED


def format_of(duration_ms: int, catalogue: Catalogue) -> str:
    """The catalogue's format of that length (its first, by name order of the file)."""
    for name, minutes in catalogue.formats.items():
        if minutes * 60_000 == duration_ms:
            return name
    return UNKNOWN_FORMAT


def is_live(s: Sighting) -> bool:
    return (
        s.header is not None
        and s.server.get("phase") == str(ServerPhase.LIVE)
        and (s.status is None or not s.status.phase.terminal)
    )


def live(s: Sighting, catalogue: Catalogue, default_symbol: str) -> Live | None:
    """The sighting as a live match, or None when it is not live."""
    if not is_live(s) or s.header is None:
        return None
    header = s.header
    duration_ms = _int(header.get("duration_ms"))
    started_at = _int(s.server.get("started_at")) or _int(header.get("created_at"))
    assignment = s.assignment or {}
    fmt = assignment.get("format")
    mode = str(header.get("mode") or assignment.get("mode") or "")
    return Live(
        match_id=s.match_id,
        mode=mode,
        format=str(fmt) if fmt else format_of(duration_ms, catalogue),
        symbol=str(assignment.get("symbol") or default_symbol),
        started_at=started_at,
        end_at=started_at + duration_ms,
        players=tuple(str(p) for p in header.get("players") or ()),
        players_connected=_int(s.server.get(MatchPresence.CONNECTED)),
        spectators=_int(s.server.get(STATUS_SPECTATORS)),
        spectating=spectating_of(catalogue, mode),
        url=s.status.url if s.status is not None else None,
    )


def listing(
    matches: Iterable[Live],
    private: Collection[str],
    usernames: Mapping[str, str],
    mode: str | None = None,
    limit: int = LIST_LIMIT,
) -> LivePage:
    """The public live list: no private match; most watched first, then newest."""
    shown = [m for m in matches if m.match_id not in private and (mode is None or m.mode == mode)]
    shown.sort(key=lambda m: (-m.spectators, -m.started_at, m.match_id))
    return LivePage(
        matches=[
            LiveMatch(
                match_id=m.match_id,
                mode=m.mode,
                format=m.format,
                symbol=m.symbol,
                phase=str(GamePhase.LIVE),
                started_at=m.started_at,
                end_at=m.end_at,
                players=[LivePlayer(username=usernames.get(p, p[:8])) for p in m.players],
                players_connected=m.players_connected,
                spectators=m.spectators,
                spectator_cap=m.spectating.cap,
                spectate_delay_ms=m.spectating.delay_ms,
            )
            for m in shown[:limit]
        ]
    )


def known(s: Sighting) -> bool:
    """Anything says the match exists (or existed)."""
    return s.status is not None or s.header is not None or bool(s.server)


def refusal(
    s: Sighting, guests: frozenset[str] | None, caller: str, recorded: bool = False
) -> str | None:
    """Why `caller` may not watch the match now (a problem code), or None.

    `guests` (`match_options.guests`): None when anyone may watch; for a private match
    the only others besides its players who may (its host, those it invited by name).
    `recorded`: the match is in the stored results (it existed, and is over)."""
    if not known(s) and not recorded:
        return NOT_FOUND
    players = tuple(str(p) for p in (s.header or {}).get("players") or ())
    if guests is not None and caller not in players and caller not in guests:
        return PRIVATE
    if not is_live(s) or s.status is None or s.status.url is None:
        return NOT_LIVE
    return None


def token_ttl_s(end_at_ms: int, now_ms: int, delay_ms: int, margin_s: int) -> int:
    """A spectator token lives while the match does, as seen `delay_ms` late, plus
    `margin_s` (reconnects near the end)."""
    left_ms = max(0, end_at_ms - now_ms) + delay_ms
    return math.ceil(left_ms / 1000) + margin_s


def player_names(players: Sequence[str], usernames: Mapping[str, str]) -> dict[str, str]:
    return {p: usernames.get(p, p[:8]) for p in players}
