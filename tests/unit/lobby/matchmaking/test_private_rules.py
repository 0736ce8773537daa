"""The pure rules of private matches: codes, validation, who may join, start and cancel,
and what the countdown does."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lobby.matchmaking import private_rules as rules
from tradearena.modes import default_catalogue

CAT = default_catalogue()
HOST = rules.Member("u-host", "Hosty")
GUEST = rules.Member("u-guest", "guest")


def spec(mode: str = "duel", size: int | None = None) -> rules.PrivateSpec:
    return rules.validate(CAT, mode, "blitz", size, [], HOST.username)


def room(mode: str = "duel", size: int | None = None, ttl_s: int = 900) -> rules.Room:
    return rules.open_room(spec(mode, size), "BCDFGHJK", "m-1", HOST, [], 1_000_000, ttl_s)


def test_codes_are_eight_unambiguous_consonants_or_digits() -> None:
    assert len(rules.CODE_ALPHABET) == len(set(rules.CODE_ALPHABET))
    assert not set(rules.CODE_ALPHABET) & set("AEIOUY01ILO")
    draws = {rules.new_code(random.Random(seed).choice) for seed in range(200)}
    assert len(draws) == 200
    for code in draws:
        assert len(code) == rules.CODE_LENGTH and rules.normalise_code(code) == code


@given(st.text(alphabet=rules.CODE_ALPHABET, min_size=8, max_size=8))
def test_typed_codes_are_read_leniently(code: str) -> None:
    typed = f" {code[:4].lower()}-{code[4:]} "
    assert rules.normalise_code(typed) == code


@pytest.mark.parametrize("text", ["", "BCDFGHJ", "BCDFGHJKL", "BCDFGHJA", "BCDFGHJ0", "BCDF GHJ!"])
def test_malformed_codes_are_refused(text: str) -> None:
    assert rules.normalise_code(text) is None


def test_the_size_defaults_to_recommended_and_stays_within_min_max() -> None:
    assert spec("standard").size == CAT.modes["standard"].players.recommended
    players = CAT.modes["arena"].players
    assert spec("arena", players.min).size == players.min
    assert spec("arena", players.max).size == players.max
    for bad in (players.min - 1, players.max + 1):
        with pytest.raises(rules.PrivateRuleError) as err:
            spec("arena", bad)
        assert (err.value.status, err.value.code) == (422, "invalid_size")


@pytest.mark.parametrize(
    ("mode", "fmt", "size", "invite", "code"),
    [
        ("nope", "blitz", None, [], "unknown_mode"),
        ("duel", "auto", None, [], "unknown_format"),
        ("duel", "blitz", None, ["HOSTY"], "invite_self"),
        ("duel", "blitz", None, [f"p{i}x" for i in range(10)], "too_many_invites"),
    ],
)
def test_bad_requests(mode: str, fmt: str, size: int | None, invite: list[str], code: str) -> None:
    with pytest.raises(rules.PrivateRuleError) as err:
        rules.validate(CAT, mode, fmt, size, invite, HOST.username)
    assert err.value.code == code


def test_a_room_may_invite_its_free_seats_and_a_few_watchers_more() -> None:
    names = [f"p{i}x" for i in range(1 + rules.EXTRA_INVITES)]
    assert rules.validate(CAT, "duel", "blitz", None, names, HOST.username).invite == tuple(names)


def test_invitees_are_deduplicated_case_insensitively() -> None:
    got = rules.validate(CAT, "standard", "blitz", 3, ["Bob", "bob", "Eve"], HOST.username)
    assert got.invite == ("bob", "eve")


def test_a_new_room_has_its_host_a_countdown_and_an_expiry_after_it() -> None:
    r = room()
    assert r.joined == (HOST,) and r.state == "open"
    assert r.start_at_ms == 1_000_000 + CAT.modes["duel"].countdown_ms
    assert r.expires_at_ms == 1_000_000 + 900_000
    short = room(ttl_s=1)  # never expires before the countdown could start it
    assert short.expires_at_ms > short.start_at_ms
    assert rules.Room.from_json(r.to_json()) == r


def test_joining() -> None:
    r = room()
    assert rules.check_join(r, GUEST.user_id, 1_000_001) is True
    assert rules.check_join(r, HOST.user_id, 1_000_001) is False  # already in
    full = rules.Room.from_json({**r.to_json(), "joined": [m.__dict__ for m in (HOST, GUEST)]})
    with pytest.raises(rules.PrivateRuleError, match="seats"):
        rules.check_join(full, "u-third", 1_000_001)
    with pytest.raises(rules.PrivateRuleError) as err:
        rules.check_join(r, GUEST.user_id, r.expires_at_ms)
    assert (err.value.status, err.value.code) == (410, "private_closed")


def test_only_the_host_starts_with_enough_players_or_cancels() -> None:
    r = room()
    with pytest.raises(rules.PrivateRuleError) as err:
        rules.check_start(r, HOST.user_id, 1_000_001)
    assert err.value.code == "not_enough_players"
    two = rules.Room.from_json({**r.to_json(), "joined": [m.__dict__ for m in (HOST, GUEST)]})
    rules.check_start(two, HOST.user_id, 1_000_001)
    for check in (rules.check_start, rules.check_cancel):
        with pytest.raises(rules.PrivateRuleError) as err:
            check(two, GUEST.user_id, 1_000_001)
        assert (err.value.status, err.value.code) == (403, "not_host")
    started = rules.Room.from_json({**two.to_json(), "state": "starting"})
    with pytest.raises(rules.PrivateRuleError) as err:
        rules.check_start(started, HOST.user_id, 1_000_001)
    assert err.value.code == "private_started"


def test_the_countdown() -> None:
    r = room()
    two = rules.Room.from_json({**r.to_json(), "joined": [m.__dict__ for m in (HOST, GUEST)]})
    assert rules.due_action(r, r.start_at_ms - 1) == ("wait", r.start_at_ms)
    assert rules.due_action(r, r.start_at_ms) == ("wait", r.expires_at_ms)  # alone: wait on
    assert rules.due_action(two, r.start_at_ms) == ("start", 0)
    assert rules.due_action(two, r.expires_at_ms) == ("expire", 0)
    assert (
        rules.due_action(rules.Room.from_json({**two.to_json(), "state": "started"}), 0)[0]
        == "wait"
    )
