"""Pure lobby rules, in milliseconds: password policy, refresh-token families,
rate-limit decisions, problem details, history cursors, the OpenAPI builder."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from lobby.accounts.passwords import Argon2Params, Hasher, password_problems
from lobby.accounts.refresh_rules import (
    StoredToken,
    Verdict,
    judge,
    new_refresh_token,
    successor_expiry,
    token_digest,
    well_formed,
)
from lobby.http.api import Api
from lobby.http.problems import ProblemError, from_http_status, too_many, validation_errors
from lobby.http.ratelimit import FailureCount, decide, login_decision
from lobby.results.history import decode_cursor, encode_cursor

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_password_policy() -> None:
    assert password_problems("a long enough passphrase", "bob") == []
    assert "at least 10 characters" in password_problems("short", "bob")
    assert "too common" in password_problems("Password123", "bob")
    assert "must not contain the username" in password_problems("xx-alice-rules-xx", "Alice")
    assert "too few distinct characters" in password_problems("aaaaaaaaaaaaab", "bob")
    assert "at most 128 characters" in password_problems("ab1" * 50, "bob")


def _token(**kw: object) -> StoredToken:
    base: dict[str, object] = {
        "family_id": "f",
        "user_id": "u",
        "family_started": NOW - DAY,
        "expires_at": NOW + DAY,
        "used_at": None,
        "revoked_at": None,
    }
    base.update(kw)
    return StoredToken(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("token", "verdict"),
    [
        (None, Verdict.UNKNOWN),
        (_token(), Verdict.ROTATE),
        (_token(used_at=NOW - timedelta(minutes=1)), Verdict.REUSED),
        (_token(revoked_at=NOW - timedelta(minutes=1)), Verdict.REVOKED),
        # revoked wins over used: a family already revoked is not "reused" again
        (_token(used_at=NOW, revoked_at=NOW), Verdict.REVOKED),
        (_token(expires_at=NOW), Verdict.EXPIRED),
        (_token(family_started=NOW - 61 * DAY), Verdict.FAMILY_EXPIRED),
    ],
)
def test_refresh_verdicts(token: StoredToken | None, verdict: Verdict) -> None:
    assert judge(token, NOW, 60 * DAY) is verdict


def test_successor_never_outlives_its_family() -> None:
    started = NOW - 59 * DAY
    assert successor_expiry(NOW, 14 * DAY, started, 60 * DAY) == started + 60 * DAY
    assert successor_expiry(NOW, 14 * DAY, NOW, 60 * DAY) == NOW + 14 * DAY


def test_refresh_tokens_are_random_and_digested() -> None:
    a, b = new_refresh_token(), new_refresh_token()
    assert a != b and well_formed(a) and not well_formed("rt_x") and not well_formed("abc" * 10)
    assert len(token_digest(a)) == 32 and token_digest(a) != token_digest(b)


def test_rate_decisions() -> None:
    assert decide(1, 3, 60_000).allowed and decide(3, 3, 60_000).remaining == 0
    refused = decide(4, 3, 12_300)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(12.3)
    ok = login_decision(FailureCount(4, 1000, 5), FailureCount(10, 1000, 50))
    assert ok.allowed and ok.remaining == 1
    by_account = login_decision(FailureCount(5, 30_000, 5), FailureCount(0, 0, 50))
    assert not by_account.allowed and by_account.retry_after_s == 30
    both = login_decision(FailureCount(5, 30_000, 5), FailureCount(50, 90_000, 50))
    assert both.retry_after_s == 90  # the later window


def test_problem_details_shape() -> None:
    exc = too_many("rate_limited", "slow down", 0.2)
    body = exc.problem.to_dict()
    assert exc.headers == {"Retry-After": "1"}
    assert body == {
        "type": "urn:tradearena:problem:rate_limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "slow down",
        "code": "rate_limited",
        "retry_after": 1,
    }
    assert from_http_status(405).code == "method_not_allowed"
    assert from_http_status(413).code == "payload_too_large"
    server = from_http_status(502)
    assert server.status == 502 and server.detail == "internal error"


def test_validation_problem_never_echoes_input() -> None:
    exc = validation_errors(
        [{"loc": ("password",), "msg": "too long", "type": "string_too_long", "input": "s3cret"}]
    )
    assert isinstance(exc, ProblemError)
    text = exc.problem.body().decode()
    assert "s3cret" not in text
    assert json.loads(text)["errors"] == [
        {"loc": ["password"], "msg": "too long", "type": "string_too_long"}
    ]
    assert exc.problem.detail == "password: too long"


def test_history_cursor_round_trip_and_garbage() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when, "m-1")) == (when, "m-1")
    with pytest.raises(ProblemError) as info:
        decode_cursor("%%%not-a-cursor")
    assert info.value.problem.code == "invalid_cursor"


def test_openapi_document_of_an_empty_registry() -> None:
    doc = Api("t", "1").document()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "code",
    ]


async def test_owasp_argon2id_hashing_runs_off_the_event_loop() -> None:
    hasher = Hasher(Argon2Params(), workers=2)
    try:
        task = asyncio.ensure_future(hasher.hash("a long enough passphrase"))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0)  # a yield, not a wait: counts loop turns during the hash
            ticks += 1
        encoded = task.result()
        assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        # ~40 ms of hashing: the loop kept turning meanwhile (on the loop it would be 0-1)
        assert ticks > 50
        assert await hasher.verify(encoded, "a long enough passphrase") == (True, False)
        assert await hasher.verify(encoded, "wrong") == (False, False)
        assert await hasher.verify(None, "anything") == (False, False)
    finally:
        hasher.close()


async def test_hasher_flags_weaker_hashes_for_rehash() -> None:
    weak = Hasher(Argon2Params(time_cost=1, memory_kib=1024), workers=1)
    strong = Hasher(Argon2Params(), workers=1)
    try:
        old = await weak.hash("a long enough passphrase")
        assert await strong.verify(old, "a long enough passphrase") == (True, True)
    finally:
        weak.close()
        strong.close()
