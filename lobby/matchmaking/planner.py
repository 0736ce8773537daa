"""Matchmaking as pure code: tickets in, proposed matches out. No I/O, no clock.

A *ticket* is one player waiting in one mode for one format (or `auto`). The
planner groups the waiting tickets of a mode into *proposals* (matches to form):

* **Format.** Tickets group by format. An `auto` ticket takes the format the
  catalogue picks from the biggest price move of the last 60 minutes
  (`Catalogue.auto_format_for`), resolved once per planning round, so `auto`
  players match each other and players who asked for that format explicitly.
  The format locks when the match is formed, before any player joins it.
* **Skill window.** Every ticket carries a skill rating (OpenSkill `mu`). A
  group is built around an *anchor*, the ticket that has waited longest
  (requeued tickets with the priority flag first); the rating spread of the
  whole group (max - min) never exceeds the anchor's window, which widens
  linearly with the anchor's waiting time up to a cap:
  ``window = min(initial + per_s * waited_s, max)``.
* **Counts and countdown.** A group takes the compatible tickets nearest the
  anchor's rating, up to the mode's `max` players. It becomes a proposal when
  it holds at least `recommended` players, or when the anchor (the forming
  match's first player) has waited the mode's `countdown_ms` and the group
  holds at least `min` players. Otherwise its tickets keep waiting.
* **Queues.** A ticket waits in the `ranked` or the `casual` queue of its mode; the
  two are planned apart (never in one match). Casual groups ignore ratings: their
  window is the configured maximum from the start.
* **Parties.** A casual ticket may stand for a whole party (`members`, its leader
  first): an indivisible group of its size. Sizes are summed against min,
  recommended and max; the party is in one proposal whole or in none, and never
  alone: a proposal holding a party holds at least one other ticket.

Invariants (property-tested in tests/unit/lobby/matchmaking/test_matchmaking_properties.py): a
ticket is in at most one proposal; a proposal holds only input tickets of one
mode with one resolved format; its size is within [min, max]; it is either
full enough (>= recommended) or its anchor's countdown has run out; its rating
spread fits the anchor's window; a party's members are never split, and a party
always has opponents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from sortedcontainers import SortedKeyList

from tradearena.modes import AUTO_FORMAT, Catalogue, Mode

DEFAULT_RATING = 25.0  # OpenSkill's default mu
RANKED = "ranked"
CASUAL = "casual"
QUEUES = (RANKED, CASUAL)


@dataclass(frozen=True)
class Ticket:
    """One player waiting in one mode. `ticket_id` changes on every (re)join."""

    ticket_id: str
    player: str
    mode: str
    format: str  # a catalogue format name or "auto"
    rating: float
    enqueued_at_ms: int
    priority: bool = False  # requeued after a failed formation: served first
    traceparent: str | None = None  # the player's journey trace (W3C), when traced
    queue: str = RANKED  # RANKED or CASUAL
    party: str | None = None  # a party ticket: the party's id (`player` is its leader)
    members: tuple[str, ...] = ()  # a party ticket: every member, leader first

    @property
    def size(self) -> int:
        """Players this ticket stands for (a party counts all its members)."""
        return max(1, len(self.members))

    @property
    def players(self) -> tuple[str, ...]:
        return self.members or (self.player,)

    def waited_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.enqueued_at_ms)


@dataclass(frozen=True)
class SkillWindow:
    """Maximum rating spread a group may have, widening with the anchor's wait."""

    initial: float = 3.0
    per_s: float = 0.25
    max: float = 50.0

    def at(self, waited_ms: int) -> float:
        return min(self.max, self.initial + self.per_s * max(0, waited_ms) / 1000.0)


@dataclass(frozen=True)
class Proposal:
    """A match to form: the claimed tickets, in the order the group was built."""

    mode: str
    format: str  # resolved (never "auto")
    tickets: tuple[Ticket, ...]
    anchor: Ticket
    reason: Literal["recommended", "countdown"]
    window: float

    @property
    def players(self) -> tuple[str, ...]:
        """Every player of the match (each party's members, in order)."""
        return tuple(p for t in self.tickets for p in t.players)

    @property
    def queue(self) -> str:
        return self.anchor.queue


@dataclass(frozen=True)
class Plan:
    proposals: list[Proposal]
    waiting: list[Ticket]
    next_deadline_ms: int | None = None  # earliest countdown expiry among waiting anchors
    auto_format: str | None = field(default=None)


def resolve_format(ticket_format: str, auto_format: str) -> str:
    return auto_format if ticket_format == AUTO_FORMAT else ticket_format


def serving_order(ticket: Ticket) -> tuple[bool, int, str]:
    """Anchors are tried in this order: priority first, then longest waiting."""
    return (not ticket.priority, ticket.enqueued_at_ms, ticket.ticket_id)


def _grow(
    pool: SortedKeyList,
    anchor: Ticket,
    window: float,
    limit: int,
) -> list[Ticket]:
    """Take tickets around the anchor (included) in rating order, nearest first, up to
    `limit` players in all (a party counts its size, whole or not at all), keeping the
    group's spread within `window`."""
    index = pool.index(anchor)
    group = [anchor]
    total = anchor.size
    lo = hi = anchor.rating
    left, right = index - 1, index + 1
    size = len(pool)
    while total < limit:
        room = limit - total
        while left >= 0 and pool[left].size > room:
            left -= 1
        while right < size and pool[right].size > room:
            right += 1
        cand_l = pool[left] if left >= 0 else None
        cand_r = pool[right] if right < size else None
        ok_l = cand_l is not None and hi - cand_l.rating <= window
        ok_r = cand_r is not None and cand_r.rating - lo <= window
        if not ok_l and not ok_r:
            break
        if ok_l and ok_r:
            assert cand_l is not None and cand_r is not None
            take_left = anchor.rating - cand_l.rating <= cand_r.rating - anchor.rating
        else:
            take_left = ok_l
        if take_left:
            assert cand_l is not None
            group.append(cand_l)
            total += cand_l.size
            lo = cand_l.rating
            left -= 1
        else:
            assert cand_r is not None
            group.append(cand_r)
            total += cand_r.size
            hi = cand_r.rating
            right += 1
    return group


def group_size(group: Sequence[Ticket]) -> int:
    return sum(t.size for t in group)


def alone(group: Sequence[Ticket]) -> bool:
    """A party with nobody else: never a match (a party always has opponents)."""
    return len(group) == 1 and group[0].size > 1


def plan_pool(
    mode: Mode,
    fmt: str,
    tickets: Sequence[Ticket],
    now_ms: int,
    window: SkillWindow,
) -> tuple[list[Proposal], list[Ticket], int | None]:
    """Group the tickets of one (mode, resolved format) pool."""
    counts = mode.players
    pool = SortedKeyList(tickets, key=lambda t: (t.rating, t.ticket_id))
    proposals: list[Proposal] = []
    next_deadline: int | None = None
    for anchor in sorted(tickets, key=serving_order):
        if anchor not in pool:
            continue
        waited = anchor.waited_ms(now_ms)
        width = window.max if anchor.queue == CASUAL else window.at(waited)
        if anchor.size >= counts.max:  # a party this big could have no opponent
            continue
        group = _grow(pool, anchor, width, counts.max)
        countdown_over = waited >= mode.countdown_ms
        players = group_size(group)
        if alone(group):
            reason: Literal["recommended", "countdown"] | None = None
        elif players >= counts.recommended:
            reason = "recommended"
        elif countdown_over and players >= counts.min:
            reason = "countdown"
        else:
            reason = None
        if reason is None:
            if not countdown_over:
                deadline = anchor.enqueued_at_ms + mode.countdown_ms
                next_deadline = deadline if next_deadline is None else min(next_deadline, deadline)
            continue
        for t in group:
            pool.remove(t)
        proposals.append(Proposal(mode.name, fmt, tuple(group), anchor, reason, width))
    return proposals, list(pool), next_deadline


def plan(
    catalogue: Catalogue,
    tickets: Iterable[Ticket],
    now_ms: int,
    move_pct: Decimal,
    window: SkillWindow | None = None,
) -> Plan:
    """Propose matches for every queue, mode and format among the waiting tickets.

    Tickets for unknown modes or formats are left waiting (never proposed)."""
    window = window or SkillWindow()
    auto_format = catalogue.auto_format_for(move_pct)
    pools: dict[tuple[str, str, str], list[Ticket]] = {}
    waiting: list[Ticket] = []
    for t in tickets:
        fmt = resolve_format(t.format, auto_format)
        if t.mode not in catalogue.modes or fmt not in catalogue.formats:
            waiting.append(t)
            continue
        pools.setdefault((t.queue, t.mode, fmt), []).append(t)
    proposals: list[Proposal] = []
    next_deadline: int | None = None
    for (_queue, mode_name, fmt), pool in sorted(pools.items()):
        made, left, deadline = plan_pool(catalogue.modes[mode_name], fmt, pool, now_ms, window)
        proposals.extend(made)
        waiting.extend(left)
        if deadline is not None:
            next_deadline = deadline if next_deadline is None else min(next_deadline, deadline)
    return Plan(proposals, waiting, next_deadline, auto_format)
