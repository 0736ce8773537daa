"""Register, login, me: the accounts happy path end to end on a real port."""

from __future__ import annotations

from tradearena.testing.lobby import Client, bearer, login, register


async def test_register_login_me(lobby_client: Client) -> None:
    created = await register(lobby_client, "alice")
    assert created["user"]["username"] == "alice" and created["user"]["role"] == "player"
    tokens = await login(lobby_client, "ALICE")
    resp = await lobby_client.get("/api/v1/me", headers=bearer(tokens))
    me = await resp.json()
    assert resp.status == 200
    assert me["id"] == created["user"]["id"]
    assert me["settings"]["display_name"] == "alice"
