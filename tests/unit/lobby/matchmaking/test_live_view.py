"""The live list and the spectate decisions (lobby.matchmaking.live_view): pure."""

from __future__ import annotations

from typing import Any

from lobby.matchmaking import live_view as view
from tradearena.contracts.orchestration import MatchStatus
from tradearena.contracts.phases import MatchPhase, ServerPhase
from tradearena.modes import default_catalogue

CATALOGUE = default_catalogue()
STARTED = 1_800_000_000_000
ALICE, BOB, EVE = (
    "00000000-0000-4000-8000-00000000000a",
    "00000000-0000-4000-8000-00000000000b",
    "00000000-0000-4000-8000-00000000000e",
)


def sighting(
    match_id: str = "m1",
    *,
    phase: MatchPhase = MatchPhase.LIVE,
    server_phase: ServerPhase | None = ServerPhase.LIVE,
    minutes: int = 3,
    spectators: int = 0,
    mode: str = "duel",
    assignment: dict[str, Any] | None = None,
    started_at: int = STARTED,
    known_status: bool = True,
) -> view.Sighting:
    status = MatchStatus(match_id, phase, address="127.0.0.1", port=9001)
    server = {}
    if server_phase is not None:
        server = {
            "phase": str(server_phase),
            "started_at": str(started_at),
            "connected": "2",
            "players": "2",
            "spectators": str(spectators),
        }
    header = {
        "match_id": match_id,
        "mode": mode,
        "players": [ALICE, BOB],
        "duration_ms": minutes * 60_000,
        "created_at": started_at - 5000,
        "rules": {},
    }
    return view.Sighting(
        match_id, status if known_status else None, header, server, assignment=assignment
    )


def test_a_live_match_reads_its_header_status_and_its_modes_spectate_rules() -> None:
    duel = CATALOGUE.modes["duel"]
    rules = duel.rules.with_overrides(spectate={"delay_ms": 8000, "cap": 5, "frame_ms": 500})
    catalogue = CATALOGUE.model_copy(
        update={"modes": {**CATALOGUE.modes, "duel": duel.model_copy(update={"rules": rules})}}
    )
    m = view.live(sighting(spectators=3), catalogue, "BTCUSDT")
    assert m is not None
    assert (m.mode, m.format, m.symbol) == ("duel", "blitz", "BTCUSDT")
    assert (m.started_at, m.end_at) == (STARTED, STARTED + 180_000)
    assert (m.players, m.players_connected, m.spectators) == ((ALICE, BOB), 2, 3)
    assert (m.spectating.delay_ms, m.spectating.cap, m.spectating.frame_ms) == (8000, 5, 500)
    assert m.url == "http://127.0.0.1:9001"


def test_the_shipped_catalogue_delays_spectators_a_minute() -> None:
    for mode in CATALOGUE.modes:
        spectate = view.spectating_of(CATALOGUE, mode)
        assert spectate.delay_ms == 60_000 and spectate.cap == 200, mode


def test_a_pool_assignment_names_the_format_and_symbol() -> None:
    s = sighting(minutes=3, assignment={"format": "sprint", "symbol": "ETHUSDT"})
    m = view.live(s, CATALOGUE, "BTCUSDT")
    assert m is not None and (m.format, m.symbol) == ("sprint", "ETHUSDT")
    # A length no format has, without an assignment, is not passed off as one.
    odd = view.live(sighting(minutes=7), CATALOGUE, "BTCUSDT")
    assert odd is not None and odd.format == view.UNKNOWN_FORMAT


def test_a_mode_the_catalogue_lacks_gets_the_default_rules() -> None:
    m = view.live(sighting(mode="retired"), CATALOGUE, "X")
    assert m is not None and m.spectating.delay_ms == 60_000


def test_only_matches_whose_server_reports_live_are_live() -> None:
    assert view.live(sighting(server_phase=ServerPhase.READY), CATALOGUE, "X") is None
    assert view.live(sighting(server_phase=ServerPhase.FINISHED), CATALOGUE, "X") is None
    assert view.live(sighting(server_phase=None), CATALOGUE, "X") is None
    # The orchestrator already saw it end: not live, whatever the hash still says.
    assert view.live(sighting(phase=MatchPhase.FINISHED), CATALOGUE, "X") is None
    no_header = view.Sighting("m1", sighting().status, None, sighting().server)
    assert view.live(no_header, CATALOGUE, "X") is None


def test_the_list_leaves_private_matches_out_filters_sorts_and_limits() -> None:
    matches = [
        view.live(sighting("quiet-old", spectators=0, started_at=STARTED), CATALOGUE, "X"),
        view.live(sighting("quiet-new", spectators=0, started_at=STARTED + 1), CATALOGUE, "X"),
        view.live(sighting("watched", spectators=7), CATALOGUE, "X"),
        view.live(sighting("secret", spectators=99), CATALOGUE, "X"),
    ]
    lives = [m for m in matches if m is not None]
    names = {ALICE: "alice", BOB: "bob"}
    page = view.listing(lives, {"secret"}, names)
    assert [m.match_id for m in page.matches] == ["watched", "quiet-new", "quiet-old"]
    first = page.matches[0]
    assert [p.username for p in first.players] == ["alice", "bob"]
    assert (first.spectators, first.spectator_cap, first.spectate_delay_ms) == (7, 200, 60_000)
    assert first.phase == "live" and first.players_connected == 2
    assert [m.match_id for m in view.listing(lives, set(), names, limit=1).matches] == ["secret"]
    assert view.listing(lives, set(), names, mode="standard").matches == []
    assert len(view.listing(lives, set(), names, mode="duel").matches) == 4


def test_who_may_watch() -> None:
    anyone: frozenset[str] | None = None  # a ranked or casual match
    no_guests: frozenset[str] = frozenset()  # a private match nobody else may watch
    live = sighting()
    assert view.refusal(live, anyone, EVE) is None
    assert view.refusal(live, no_guests, EVE) == view.PRIVATE
    assert view.refusal(live, no_guests, ALICE) is None  # a player of a private match may
    guests = frozenset({EVE})  # its host and those it invited by name may too
    assert view.refusal(live, guests, EVE) is None
    assert view.refusal(live, guests, "mallory") == view.PRIVATE
    assert view.refusal(sighting(server_phase=ServerPhase.READY), guests, EVE) == view.NOT_LIVE
    waiting = sighting(server_phase=ServerPhase.READY)
    assert view.refusal(waiting, anyone, EVE) == view.NOT_LIVE
    assert view.refusal(waiting, no_guests, EVE) == view.PRIVATE  # says nothing more to outsiders
    nothing = view.Sighting("nope", None, None, {})
    assert view.refusal(nothing, anyone, EVE) == view.NOT_FOUND
    assert view.refusal(nothing, anyone, EVE, recorded=True) == view.NOT_LIVE
    # Live in Redis but the orchestrator gives no address: nowhere to watch.
    assert view.refusal(sighting(known_status=False), anyone, EVE) == view.NOT_LIVE


def test_a_token_lives_for_the_rest_of_the_match_seen_late_plus_a_margin() -> None:
    end = STARTED + 180_000
    assert view.token_ttl_s(end, STARTED, 60_000, 300) == 180 + 60 + 300
    assert view.token_ttl_s(end, end + 5_000, 60_000, 300) == 60 + 300  # ended: the delay
    assert view.token_ttl_s(end, end - 1, 0, 0) == 1  # rounds up, never 0 while live


def test_player_names_fall_back_to_a_short_id() -> None:
    assert view.player_names([ALICE, "bot-1234567890"], {ALICE: "alice"}) == {
        ALICE: "alice",
        "bot-1234567890": "bot-1234",
    }
