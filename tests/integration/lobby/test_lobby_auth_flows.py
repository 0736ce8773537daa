"""Accounts against the real app, PostgreSQL and Redis: tokens, rotation and reuse
detection, logout, settings, login throttling and rate limits."""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import SecretStr

from lobby.state import METRICS
from tradearena.testing.lobby import PASSWORD, Client, bearer, login, register
from tradearena.tokens import Signer, Verifier, generate_private_key_pem

PROBLEM = "application/problem+json"


async def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == status, body
    assert resp.content_type == PROBLEM
    assert body["code"] == code and body["status"] == status
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


async def test_access_token_verifies_with_the_published_jwks(lobby_client: Client) -> None:
    tokens = await register(lobby_client, "carol")
    for path in ("/api/v1/.well-known/jwks.json", "/.well-known/jwks.json"):
        resp = await lobby_client.get(path)
        verifier = Verifier.from_jwks(await resp.json())
        claims = verifier.verify_access(tokens["access_token"])
        assert claims["sub"] == tokens["user"]["id"] and claims["role"] == "player"
    assert tokens["expires_in"] == 900 and tokens["token_type"] == "Bearer"


async def test_registration_rules(lobby_client: Client, lobby_dsn: str) -> None:
    await register(lobby_client, "dave")
    resp = await lobby_client.post(
        "/api/v1/auth/register", json={"username": "DAVE", "password": PASSWORD}
    )
    await _problem(resp, 409, "username_taken")
    resp = await lobby_client.post(
        "/api/v1/auth/register", json={"username": "erin", "password": "password123"}
    )
    body = await _problem(resp, 422, "weak_password")
    assert {e["msg"] for e in body["errors"]} == {"too common"}
    resp = await lobby_client.post(
        "/api/v1/auth/register", json={"username": "no spaces!", "password": PASSWORD}
    )
    body = await _problem(resp, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["username"]
    with psycopg.connect(lobby_dsn) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE username = 'dave'").fetchone()
    assert row is not None and str(row[0]).startswith("$argon2id$")


async def test_login_failures_and_me_requires_a_token(lobby_client: Client) -> None:
    await register(lobby_client, "frank")
    resp = await lobby_client.post(
        "/api/v1/auth/login", json={"username": "frank", "password": "not the password"}
    )
    await _problem(resp, 401, "invalid_credentials")
    resp = await lobby_client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD}
    )
    await _problem(resp, 401, "invalid_credentials")  # same answer: no enumeration
    resp = await lobby_client.get("/api/v1/me")
    await _problem(resp, 401, "auth_required")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = await lobby_client.get("/api/v1/me", headers={"Authorization": "Bearer nope"})
    await _problem(resp, 401, "token_malformed")


async def test_refresh_rotates_and_reuse_revokes_the_family(lobby_client_factory: Any) -> None:
    # Without the race grace (test_lobby_refresh_grace.py), so the reuse right away counts.
    async with lobby_client_factory(refresh_reuse_grace_s=0) as lobby_client:
        await _rotate_then_reuse(lobby_client)


async def _rotate_then_reuse(lobby_client: Client) -> None:
    first = await register(lobby_client, "grace")
    other_session = await login(lobby_client, "grace")
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    second = await resp.json()
    assert resp.status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"]["id"] == first["user"]["id"]
    # The spent token again: theft assumed, the whole family dies.
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    await _problem(resp, 401, "refresh_token_reused")
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    await _problem(resp, 401, "refresh_token_revoked")
    # Another login (another family) is untouched.
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
    )
    assert resp.status == 200
    resp = await lobby_client.post("/api/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 40})
    await _problem(resp, 401, "refresh_token_invalid")


async def test_logout_this_session_and_everywhere(lobby_client: Client) -> None:
    a = await register(lobby_client, "heidi")
    b = await login(lobby_client, "heidi")
    c = await login(lobby_client, "heidi")
    resp = await lobby_client.post(
        "/api/v1/auth/logout", json={"refresh_token": a["refresh_token"]}
    )
    assert resp.status == 204
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": a["refresh_token"]}
    )
    await _problem(resp, 401, "refresh_token_revoked")
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": b["refresh_token"]}
    )
    assert resp.status == 200
    b2 = await resp.json()
    resp = await lobby_client.post(
        "/api/v1/auth/logout", json={"refresh_token": c["refresh_token"], "everywhere": True}
    )
    assert resp.status == 204
    resp = await lobby_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": b2["refresh_token"]}
    )
    await _problem(resp, 401, "refresh_token_revoked")


async def test_settings_read_patch_validate(lobby_client: Client) -> None:
    tokens = await register(lobby_client, "ivan")
    auth = bearer(tokens)
    resp = await lobby_client.get("/api/v1/me/settings", headers=auth)
    settings = await resp.json()
    assert settings["preferred_mode"] == "standard" and settings["sound"] is True
    resp = await lobby_client.patch(
        "/api/v1/me/settings",
        json={"display_name": "  Ivan T  ", "preferred_mode": "duel", "sound": False},
        headers=auth,
    )
    changed = await resp.json()
    assert resp.status == 200
    assert (changed["display_name"], changed["preferred_mode"], changed["sound"]) == (
        "Ivan T",
        "duel",
        False,
    )
    assert changed["preferred_format"] == "auto" and changed["notifications"] is True
    resp = await lobby_client.patch(
        "/api/v1/me/settings", json={"preferred_mode": "chess"}, headers=auth
    )
    body = await _problem(resp, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["preferred_mode"]
    resp = await lobby_client.patch("/api/v1/me/settings", json={"volume": 3}, headers=auth)
    await _problem(resp, 422, "validation_failed")
    resp = await lobby_client.get("/api/v1/me", headers=auth)
    assert (await resp.json())["settings"]["preferred_mode"] == "duel"


async def test_login_throttled_per_account_with_retry_after(lobby_client_factory: Any) -> None:
    async with lobby_client_factory(login_max_failures_account=3, login_window_s=600) as client:
        await register(client, "judy")
        for _ in range(3):
            resp = await client.post(
                "/api/v1/auth/login", json={"username": "judy", "password": "wrong password"}
            )
            await _problem(resp, 401, "invalid_credentials")
        # Even the right password is refused while the account is throttled.
        resp = await client.post(
            "/api/v1/auth/login", json={"username": "JUDY", "password": PASSWORD}
        )
        body = await _problem(resp, 429, "login_throttled")
        assert 590 <= int(resp.headers["Retry-After"]) <= 600
        assert body["retry_after"] == int(resp.headers["Retry-After"])
        # Another account from the same IP is not affected.
        await register(client, "ken")
        await login(client, "ken")


async def test_one_attacker_cannot_lock_a_player_out(lobby_client_factory: Any) -> None:
    """5 failures from one IP close that (account, IP) pair only; the player logs in
    from elsewhere. The account-wide limit needs many sources."""
    async with lobby_client_factory(trust_forwarded_for=True) as client:
        await register(client, "lena")
        attacker = {"X-Forwarded-For": "203.0.113.50"}
        for _ in range(5):
            resp = await client.post(
                "/api/v1/auth/login",
                json={"username": "lena", "password": "guess guess"},
                headers=attacker,
            )
            await _problem(resp, 401, "invalid_credentials")
        resp = await client.post(
            "/api/v1/auth/login", json={"username": "lena", "password": PASSWORD}, headers=attacker
        )
        await _problem(resp, 429, "login_throttled")
        resp = await client.post(
            "/api/v1/auth/login",
            json={"username": "lena", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.20"},
        )
        assert resp.status == 200


async def test_login_throttled_per_ip(lobby_client_factory: Any) -> None:
    async with lobby_client_factory(
        login_max_failures_ip=4, login_max_failures_account=100, trust_forwarded_for=True
    ) as client:
        for name in ("leo", "mia"):
            await register(client, name)
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        for i in range(4):
            resp = await client.post(
                "/api/v1/auth/login",
                json={"username": ("leo", "mia")[i % 2], "password": "guess guess"},
                headers=attacker,
            )
            await _problem(resp, 401, "invalid_credentials")
        resp = await client.post(
            "/api/v1/auth/login", json={"username": "leo", "password": PASSWORD}, headers=attacker
        )
        await _problem(resp, 429, "login_throttled")
        resp = await client.post(
            "/api/v1/auth/login",
            json={"username": "leo", "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert resp.status == 200


async def test_request_rate_limits_per_user_and_ip(lobby_client_factory: Any) -> None:
    async with lobby_client_factory(
        rate_limit_ip=6, rate_limit_user=3, trust_forwarded_for=True
    ) as client:
        tokens = await register(client, "nina")  # 1 request for this IP
        auth = bearer(tokens)
        statuses = [(await client.get("/api/v1/me", headers=auth)).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        resp = await client.get("/api/v1/me", headers=auth)
        body = await _problem(resp, 429, "rate_limited")
        assert int(resp.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
        # Anonymous requests count per IP, apart from the user's budget.
        ip = {"X-Forwarded-For": "192.0.2.1"}
        codes = [(await client.get("/api/v1/notifications", headers=ip)).status for _ in range(7)]
        assert codes == [401] * 6 + [429]
        # Probes and documents are never limited.
        assert (await client.get("/api/v1/openapi.json", headers=ip)).status == 200
        assert (await client.get("/healthz", headers=ip)).status == 200


async def test_registration_throttled_per_ip(lobby_client_factory: Any) -> None:
    async with lobby_client_factory(register_limit_ip=2) as client:
        await register(client, "olga")
        await register(client, "pete")
        resp = await client.post(
            "/api/v1/auth/register", json={"username": "quin", "password": PASSWORD}
        )
        await _problem(resp, 429, "register_throttled")
        assert int(resp.headers["Retry-After"]) > 3000


async def test_key_rotation_keeps_tokens_of_the_previous_key_valid(
    lobby_client_factory: Any, signing_key_pem: str
) -> None:
    old = Signer.from_pem(signing_key_pem.encode())
    async with lobby_client_factory() as client:
        tokens = await register(client, "rotor")
    new_pem = generate_private_key_pem().decode()
    async with lobby_client_factory(
        signing_key_pem=SecretStr(new_pem), previous_public_keys_pem=[old.public_pem().decode()]
    ) as client:
        jwks = await (await client.get("/.well-known/jwks.json")).json()
        assert {k["kid"] for k in jwks["keys"]} == {old.kid, Signer.from_pem(new_pem.encode()).kid}
        resp = await client.get("/api/v1/me", headers=bearer(tokens))
        assert resp.status == 200  # signed by the old key, still accepted
        fresh = await login(client, "rotor")
        assert (
            Verifier.from_jwks(jwks).verify_access(fresh["access_token"])["sub"]
            == (tokens["user"]["id"])
        )
    async with lobby_client_factory(signing_key_pem=SecretStr(new_pem)) as client:
        resp = await client.get("/api/v1/me", headers=bearer(tokens))
        assert resp.status == 401 and (await resp.json())["code"] == "token_invalid"


async def test_login_refuses_names_outside_the_pattern_before_lookup_or_throttle(
    lobby_client_factory: Any,
) -> None:
    """A name registration would refuse never reaches the throttle or the database; one
    account has one throttle budget whatever the case of the name typed."""
    async with lobby_client_factory(
        login_max_failures_account=2, login_max_failures_ip=3, login_window_s=600
    ) as client:
        await register(client, "kirk")
        for name in (
            "KİRK",  # dotted capital I: some lower() make it "i"
            "kırk",  # dotless i
            "\u212airk",  # Kelvin sign: Python's lower() makes it "k"
            "ki\u0307rk",
            "ｋｉｒｋ",
            " kirk",
            "kirk ",
            "kirk\n",
            "ki",
            "k" * 33,
        ):
            resp = await client.post(
                "/api/v1/auth/login", json={"username": name, "password": PASSWORD}
            )
            await _problem(resp, 422, "invalid_username")
        metrics = client.app[METRICS]
        assert metrics.logins.labels("invalid_username")._value.get() == 10
        # Ten refusals spent nothing of the IP's budget of 3: the right login works.
        await login(client, "KIRK")
        for name in ("KIRK", "Kirk"):
            resp = await client.post(
                "/api/v1/auth/login", json={"username": name, "password": "wrong password"}
            )
            await _problem(resp, 401, "invalid_credentials")
        resp = await client.post(
            "/api/v1/auth/login", json={"username": "kirk", "password": PASSWORD}
        )
        await _problem(resp, 429, "login_throttled")
