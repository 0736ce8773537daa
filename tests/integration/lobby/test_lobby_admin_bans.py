"""Admin: role required, ban/unban with immediate effect, every action audited."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import socketio

from tradearena.testing.lobby import PASSWORD, Client, admin_tokens, bearer, login, register


async def _json(resp: Any, status: int) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def test_players_get_403_on_admin_endpoints(lobby_client: Client) -> None:
    player = await register(lobby_client, "sam")
    victim = await register(lobby_client, "tess")
    auth = bearer(player)
    for method, path, body in (
        ("GET", "/api/v1/admin/audit", None),
        ("POST", f"/api/v1/admin/users/{victim['user']['id']}/ban", {"reason": "x"}),
        ("POST", f"/api/v1/admin/users/{victim['user']['id']}/unban", {}),
    ):
        resp = await lobby_client.request(method, path, json=body, headers=auth)
        problem = await _json(resp, 403)
        assert problem["code"] == "admin_required"
    resp = await lobby_client.get("/api/v1/admin/audit")
    assert (await _json(resp, 401))["code"] == "auth_required"


async def test_ban_takes_effect_everywhere_and_unban_restores(
    lobby_client: Client, lobby_dsn: str
) -> None:
    admin = await admin_tokens(lobby_client, lobby_dsn)
    victim = await register(lobby_client, "uma")
    second_session = await login(lobby_client, "uma")
    victim_id = victim["user"]["id"]
    sio = socketio.AsyncClient(reconnection=False)
    disconnected = sio.eio  # engine.io client: its state tells whether the socket is open
    await sio.connect(
        str(lobby_client.make_url("/")),
        namespaces=["/lobby"],
        auth={"token": victim["access_token"]},
        transports=["websocket"],
    )
    try:
        resp = await lobby_client.post(
            f"/api/v1/admin/users/{victim_id}/ban",
            json={"reason": "cheating"},
            headers=bearer(admin),
        )
        banned = await _json(resp, 200)
        assert banned["banned"] is True and banned["ban_reason"] == "cheating"
        await sio.wait()  # returns once the server closed the connection
        assert disconnected.state != "connected"
    finally:
        await sio.disconnect()

    # The still-valid access token is refused at once; no login; no refresh.
    resp = await lobby_client.get("/api/v1/me", headers=bearer(victim))
    assert (await _json(resp, 403))["code"] == "account_banned"
    resp = await lobby_client.post(
        "/api/v1/auth/login", json={"username": "uma", "password": PASSWORD}
    )
    assert (await _json(resp, 403))["code"] == "account_banned"
    for tokens in (victim, second_session):
        resp = await lobby_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert (await _json(resp, 401))["code"] == "refresh_token_revoked"
    again = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    again.on("connect_error", refusals.append, namespace="/lobby")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await again.connect(
            str(lobby_client.make_url("/")),
            namespaces=["/lobby"],
            auth={"token": victim["access_token"]},
            transports=["websocket"],
        )
    assert refusals == [{"message": "this account is banned", "data": {"code": "account_banned"}}]

    resp = await lobby_client.post(
        f"/api/v1/admin/users/{victim_id}/unban", json={"reason": "appeal"}, headers=bearer(admin)
    )
    assert (await _json(resp, 200))["banned"] is False
    fresh = await login(lobby_client, "uma")
    resp = await lobby_client.get("/api/v1/me", headers=bearer(fresh))
    assert (await _json(resp, 200))["id"] == victim_id

    resp = await lobby_client.get("/api/v1/admin/audit", headers=bearer(admin))
    audit = await _json(resp, 200)
    assert [(e["action"], e["target_id"]) for e in audit["items"]] == [
        ("user.unban", victim_id),
        ("user.ban", victim_id),
    ]
    ban_entry = audit["items"][1]
    assert ban_entry["actor_id"] == admin["user"]["id"]
    assert ban_entry["actor_username"] == "root_admin"
    assert ban_entry["payload"] == {"reason": "cheating", "revoked_refresh_tokens": 2}
    assert ban_entry["created_at"]


async def test_ban_edge_cases_and_audit_paging(lobby_client: Client, lobby_dsn: str) -> None:
    admin = await admin_tokens(lobby_client, lobby_dsn)
    auth = bearer(admin)
    resp = await lobby_client.post(
        f"/api/v1/admin/users/{admin['user']['id']}/ban", json={"reason": "oops"}, headers=auth
    )
    assert (await _json(resp, 409))["code"] == "cannot_ban_self"
    resp = await lobby_client.post(
        f"/api/v1/admin/users/{uuid.uuid4()}/ban", json={"reason": "ghost"}, headers=auth
    )
    assert (await _json(resp, 404))["code"] == "user_not_found"
    resp = await lobby_client.post(
        f"/api/v1/admin/users/{'-' * 36}/ban", json={"reason": "ghost"}, headers=auth
    )
    assert (await _json(resp, 404))["code"] == "user_not_found"
    targets = [await register(lobby_client, f"victim{i}") for i in range(3)]
    for t in targets:
        resp = await lobby_client.post(
            f"/api/v1/admin/users/{t['user']['id']}/ban", json={"reason": "spam"}, headers=auth
        )
        await _json(resp, 200)
    page1 = await _json(await lobby_client.get("/api/v1/admin/audit?limit=2", headers=auth), 200)
    assert len(page1["items"]) == 2 and page1["next_before"] is not None
    page2 = await _json(
        await lobby_client.get(
            f"/api/v1/admin/audit?limit=2&before={page1['next_before']}", headers=auth
        ),
        200,
    )
    assert len(page2["items"]) == 1 and page2["next_before"] is None
    ids = [e["id"] for e in page1["items"] + page2["items"]]
    assert ids == sorted(ids, reverse=True)
    only = await _json(
        await lobby_client.get(
            f"/api/v1/admin/audit?target_id={targets[0]['user']['id']}", headers=auth
        ),
        200,
    )
    assert [e["target_id"] for e in only["items"]] == [targets[0]["user"]["id"]]


async def test_admin_finds_users_by_prefix_and_ban_state(
    lobby_client: Client, lobby_dsn: str
) -> None:
    admin = await admin_tokens(lobby_client, lobby_dsn)
    auth = bearer(admin)
    for name in ("walt_one", "Walt_two", "waltz"):
        await register(lobby_client, name)
    found = await _json(
        await lobby_client.get("/api/v1/admin/users?username=WALT_", headers=auth), 200
    )
    assert [u["username"] for u in found["items"]] == ["walt_one", "Walt_two"]  # "_" is literal
    resp = await lobby_client.get("/api/v1/admin/users?username=%25", headers=auth)
    assert (await _json(resp, 200))["items"] == []  # "%" is literal too
    target = found["items"][0]["id"]
    await _json(
        await lobby_client.post(
            f"/api/v1/admin/users/{target}/ban", json={"reason": "x"}, headers=auth
        ),
        200,
    )
    banned = await _json(
        await lobby_client.get("/api/v1/admin/users?banned=true", headers=auth), 200
    )
    assert [(u["id"], u["banned"]) for u in banned["items"]] == [(target, True)]
    players = await _json(
        await lobby_client.get("/api/v1/admin/users?banned=false&limit=2", headers=auth), 200
    )
    assert len(players["items"]) == 2 and not any(u["banned"] for u in players["items"])
