"""Invariants of the pure matchmaking core, checked with generated ticket pools."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from lobby.matchmaking.planner import CASUAL, RANKED, SkillWindow, Ticket, plan, resolve_format
from tradearena.modes import default_catalogue

CAT = default_catalogue()
MODES = ["standard", "duel"]
FORMATS = ["auto", "blitz", "sprint", "marathon"]
NOW = 10_000_000


@st.composite
def tickets(draw: st.DrawFn) -> list[Ticket]:
    n = draw(st.integers(0, 60))
    out = []
    for i in range(n):
        out.append(
            Ticket(
                ticket_id=f"t{i}",
                player=f"p{i}",
                mode=draw(st.sampled_from(MODES)),
                format=draw(st.sampled_from(FORMATS)),
                rating=draw(st.floats(0, 60, allow_nan=False)),
                enqueued_at_ms=NOW - draw(st.integers(0, 900_000)),
                priority=draw(st.booleans()),
            )
        )
    return out


windows = st.builds(
    SkillWindow,
    initial=st.floats(0, 10),
    per_s=st.floats(0, 1),
    max=st.floats(0, 100),
)
moves = st.decimals(min_value=0, max_value=10, places=2)


@settings(max_examples=150, deadline=None)
@given(tickets(), windows, moves)
def test_every_proposal_respects_the_rules(
    pool: list[Ticket], window: SkillWindow, move: Decimal
) -> None:
    result = plan(CAT, pool, NOW, move, window)
    seen: set[str] = set()
    ids = {t.ticket_id for t in pool}
    auto = CAT.auto_format_for(move)
    assert result.auto_format == auto
    for p in result.proposals:
        mode = CAT.mode(p.mode)
        assert mode.players.min <= len(p.tickets) <= mode.players.max
        assert p.format in CAT.formats
        for t in p.tickets:
            assert t.ticket_id in ids
            assert t.ticket_id not in seen, "a ticket is in two proposals"
            seen.add(t.ticket_id)
            assert t.mode == p.mode
            assert resolve_format(t.format, auto) == p.format
        ratings = [t.rating for t in p.tickets]
        assert max(ratings) - min(ratings) <= window.at(p.anchor.waited_ms(NOW)) + 1e-9
        assert p.anchor in p.tickets
        if len(p.tickets) < mode.players.recommended:
            assert p.reason == "countdown"
            assert p.anchor.waited_ms(NOW) >= mode.countdown_ms
    # nothing lost, nothing invented
    waiting = {t.ticket_id for t in result.waiting}
    assert not waiting & seen
    assert waiting | seen == ids


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 40),
    st.sampled_from(MODES),
    st.floats(0, 50),
    st.booleans(),
)
def test_identical_players_are_always_matched_in_full_groups(
    n: int, mode_name: str, rating: float, old: bool
) -> None:
    mode = CAT.mode(mode_name)
    age = mode.countdown_ms if old else 0
    pool = [Ticket(f"t{i}", f"p{i}", mode_name, "blitz", rating, NOW - age - i) for i in range(n)]
    result = plan(CAT, pool, NOW, Decimal(0))
    matched = sum(len(p.tickets) for p in result.proposals)
    threshold = mode.players.min if old else mode.players.recommended
    # progress: fewer than `threshold` players are left waiting
    assert len(result.waiting) == n - matched
    assert len(result.waiting) < threshold or len(result.waiting) < mode.players.min
    for p in result.proposals[:-1]:
        assert len(p.tickets) == mode.players.max  # groups fill up before a new one starts


def test_window_widens_with_waiting_time_until_its_cap() -> None:
    w = SkillWindow(initial=2, per_s=0.5, max=10)
    assert w.at(0) == 2
    assert w.at(4_000) == 4
    assert w.at(1_000_000) == 10
    young = [
        Ticket("a", "a", "duel", "blitz", 10.0, NOW),
        Ticket("b", "b", "duel", "blitz", 15.0, NOW),
    ]
    assert plan(CAT, young, NOW, Decimal(0), w).proposals == []
    old = [young[0], Ticket("b", "b", "duel", "blitz", 15.0, NOW - 6_000)]
    [proposal] = plan(CAT, old, NOW, Decimal(0), w).proposals
    assert proposal.anchor.player == "b" and proposal.window == 5.0


def test_countdown_starts_a_small_match_only_after_it_runs_out() -> None:
    mode = CAT.mode("standard")
    three = [Ticket(f"t{i}", f"p{i}", "standard", "quick", 25.0, NOW - i) for i in range(3)]
    before = plan(CAT, three, NOW, Decimal(0))
    assert before.proposals == []
    assert before.next_deadline_ms == NOW - 2 + mode.countdown_ms
    later = plan(CAT, three, NOW + mode.countdown_ms, Decimal(0))
    [p] = later.proposals
    assert p.reason == "countdown" and len(p.tickets) == 3


def test_auto_takes_the_format_of_the_recent_move_and_matches_explicit_players() -> None:
    pool = [
        Ticket("a", "a", "duel", "auto", 25.0, NOW),
        Ticket("b", "b", "duel", "sprint", 25.0, NOW),
    ]
    [p] = plan(CAT, pool, NOW, Decimal("2.5")).proposals
    assert p.format == "sprint"
    calm = plan(CAT, pool, NOW, Decimal("0.1"))
    assert calm.proposals == [] and calm.auto_format == "marathon"


def test_priority_tickets_anchor_first() -> None:
    pool = [
        Ticket("old", "old", "duel", "blitz", 25.0, NOW - 50_000),
        Ticket("req", "req", "duel", "blitz", 25.0, NOW, priority=True),
        Ticket("new", "new", "duel", "blitz", 25.0, NOW - 1),
    ]
    first = plan(CAT, pool, NOW, Decimal(0)).proposals[0]
    assert first.anchor.player == "req"


# ---- casual queues and parties ------------------------------------------------


@st.composite
def casual_tickets(draw: st.DrawFn) -> list[Ticket]:
    """Ranked and casual tickets, some casual ones standing for parties of 2 or 3."""
    n = draw(st.integers(0, 40))
    out = []
    for i in range(n):
        queue = draw(st.sampled_from([RANKED, CASUAL]))
        size = draw(st.sampled_from([1, 1, 2, 3])) if queue == CASUAL else 1
        members = tuple(f"p{i}m{k}" for k in range(size)) if size > 1 else ()
        out.append(
            Ticket(
                ticket_id=f"t{i}",
                player=members[0] if members else f"p{i}",
                mode=draw(st.sampled_from(["standard", "duel"])),
                format=draw(st.sampled_from(["blitz", "auto"])),
                rating=draw(st.floats(0, 60, allow_nan=False)),
                enqueued_at_ms=NOW - draw(st.integers(0, 900_000)),
                priority=draw(st.booleans()),
                queue=queue,
                party=f"party{i}" if members else None,
                members=members,
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(casual_tickets(), windows)
def test_parties_stay_whole_within_max_and_never_alone(
    pool: list[Ticket], window: SkillWindow
) -> None:
    result = plan(CAT, pool, NOW, Decimal(0), window)
    by_id = {t.ticket_id: t for t in pool}
    placed: dict[str, int] = {}
    for i, p in enumerate(result.proposals):
        mode = CAT.mode(p.mode)
        players = p.players
        assert len(players) == len(set(players))
        assert mode.players.min <= len(players) <= mode.players.max, "no proposal over max"
        assert len({t.queue for t in p.tickets}) == 1, "ranked and casual never mix"
        if len(players) < mode.players.recommended:
            assert p.anchor.waited_ms(NOW) >= mode.countdown_ms
        for t in p.tickets:
            assert by_id[t.ticket_id] == t
            placed[t.ticket_id] = i
            if t.party:
                # the whole party is here, and someone else too
                assert set(t.members) <= set(players)
                assert len(p.tickets) >= 2, "a party is never alone"
        if p.queue == RANKED:
            ratings = [t.rating for t in p.tickets]
            assert max(ratings) - min(ratings) <= window.at(p.anchor.waited_ms(NOW)) + 1e-9
    # members never split: every member of a party appears in exactly one place
    for t in pool:
        for m in t.members:
            homes = [i for i, p in enumerate(result.proposals) if m in p.players]
            assert homes == ([placed[t.ticket_id]] if t.ticket_id in placed else [])
    waiting = {t.ticket_id for t in result.waiting}
    assert waiting | set(placed) == set(by_id) and not waiting & set(placed)


def test_a_party_fills_a_match_with_solo_casual_players_but_not_ranked_ones() -> None:
    party = Ticket(
        "party",
        "lead",
        "standard",
        "blitz",
        25.0,
        NOW,
        queue=CASUAL,
        party="p-1",
        members=("lead", "friend"),
    )
    solos = [
        Ticket(f"s{i}", f"s{i}", "standard", "blitz", 25.0 + 10 * i, NOW, queue=CASUAL)
        for i in range(4)
    ]
    ranked = [Ticket(f"r{i}", f"r{i}", "standard", "blitz", 25.0, NOW) for i in range(4)]
    result = plan(CAT, [party, *solos, *ranked], NOW, Decimal(0))
    [p] = result.proposals  # casual takes the widest window at once; the ranked four wait for more
    assert p.queue == CASUAL and p.reason == "recommended"
    assert set(p.players) == {"lead", "friend", "s0", "s1", "s2", "s3"}
    assert {t.ticket_id for t in result.waiting} == {f"r{i}" for i in range(4)}


def test_a_party_alone_or_as_big_as_max_is_never_proposed() -> None:
    duo = Ticket(
        "d", "a", "duel", "blitz", 25.0, NOW - 10**9, queue=CASUAL, party="p-1", members=("a", "b")
    )
    assert plan(CAT, [duo], NOW, Decimal(0)).proposals == []
    solo = Ticket("s", "s", "duel", "blitz", 25.0, NOW - 10**9, queue=CASUAL)
    assert plan(CAT, [duo, solo], NOW, Decimal(0)).proposals == []  # duel max is 2
    trio = Ticket(
        "t",
        "t",
        "standard",
        "blitz",
        25.0,
        NOW - 10**9,
        queue=CASUAL,
        party="p-2",
        members=("t", "u", "v"),
    )
    other = Ticket("o", "o", "standard", "blitz", 25.0, NOW, queue=CASUAL)
    assert plan(CAT, [trio], NOW, Decimal(0)).proposals == []
    [p] = plan(CAT, [trio, other], NOW, Decimal(0)).proposals
    assert set(p.players) == {"t", "u", "v", "o"} and p.reason == "countdown"
