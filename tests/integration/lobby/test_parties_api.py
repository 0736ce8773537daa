"""Parties and casual queues in the real lobby app (real Redis and PostgreSQL, match
servers as real processes): invitations, their expiry and limits, party tickets
claimed whole, requeued whole, taken out of the queues when the party changes, and
party members kept out of ranked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
import socketio

from lobby.match_options import MatchKind, kind
from lobby.matchmaking.parties import Parties
from lobby.matchmaking.party_rules import Member, PartyLimits
from lobby.matchmaking.queues import QueueError, Queues
from lobby.settings import LobbySettings
from tradearena.modes import default_catalogue
from tradearena.testing.lobby import Client, bearer, register
from tradearena.testing.proc_orchestrator import ProcessOrchestrator
from tradearena.testing.waiting import eventually

Headers = dict[str, str]


async def _json(resp: Any) -> Any:
    return await resp.json(content_type=None)


async def _code(resp: Any) -> tuple[int, str]:
    return resp.status, (await _json(resp)).get("code")


async def _party_of(client: Client, leader: Headers, *friends: tuple[str, Headers]) -> str:
    """A party led by `leader` that every friend joined."""
    resp = await client.post("/api/v1/parties", headers=leader)
    assert resp.status == 201, await resp.text()
    party_id: str = (await resp.json())["party_id"]
    for name, auth in friends:
        sent = await client.post(
            f"/api/v1/parties/{party_id}/invites", json={"username": name}, headers=leader
        )
        assert sent.status == 201, await sent.text()
        joined = await client.post(f"/api/v1/parties/{party_id}/join", headers=auth)
        assert joined.status == 200, await joined.text()
    return party_id


async def test_invite_join_limits_and_expiry(
    lobby_client_factory: Callable[..., Any],
) -> None:
    async with lobby_client_factory(
        party_max_size=3, party_max_invites=2, party_invite_limit=6, party_invite_ttl_s=1
    ) as client:
        users = {
            n: bearer(await register(client, n)) for n in ("ann", "bob", "cid", "dee", "eve", "fay")
        }
        ann, bob, cid = users["ann"], users["bob"], users["cid"]
        party_id = (await _json(await client.post("/api/v1/parties", headers=ann)))["party_id"]
        assert await _code(await client.post("/api/v1/parties", headers=ann)) == (
            409,
            "already_in_party",
        )
        invite = f"/api/v1/parties/{party_id}/invites"
        assert (await client.post(invite, json={"username": "bob"}, headers=ann)).status == 201
        # the invitation is stored as a notification and listed for the invitee
        notes = await _json(await client.get("/api/v1/notifications", headers=bob))
        [note] = [n for n in notes["items"] if n["kind"] == "party_invite"]
        assert note["payload"]["party_id"] == party_id and note["payload"]["leader"] == "ann"
        mine = await _json(await client.get("/api/v1/parties/me", headers=bob))
        assert mine["party"] is None and [i["party_id"] for i in mine["invitations"]] == [party_id]
        assert await _code(await client.post(invite, json={"username": "bob"}, headers=ann)) == (
            409,
            "already_invited",
        )
        assert await _code(await client.post(invite, json={"username": "zed"}, headers=ann)) == (
            404,
            "user_not_found",
        )
        assert await _code(await client.post(invite, json={"username": "cid"}, headers=bob)) == (
            403,
            "not_party_leader",
        )
        joined = await _json(await client.post(f"/api/v1/parties/{party_id}/join", headers=bob))
        assert [m["username"] for m in joined["members"]] == ["ann", "bob"]
        # cid leads their own party: ann cannot invite them
        await client.post("/api/v1/parties", headers=cid)
        assert await _code(await client.post(invite, json={"username": "cid"}, headers=ann)) == (
            409,
            "already_in_party",
        )
        # pending invitations are capped (2), then they expire (1 s) and stop counting
        for name in ("dee", "eve"):
            assert (await client.post(invite, json={"username": name}, headers=ann)).status == 201
        dee = users["dee"]
        assert await _code(await client.post(invite, json={"username": "fay"}, headers=ann)) == (
            409,
            "too_many_invites",
        )
        # the invitee declines; the leader revokes
        declined = await client.post(f"/api/v1/parties/{party_id}/decline", headers=users["eve"])
        assert (await _json(declined)) == {"removed": True}

        async def expired() -> bool:
            mine = await _json(await client.get("/api/v1/parties/me", headers=dee))
            return mine["invitations"] == []

        await eventually(expired, within=5)
        late = await client.post(f"/api/v1/parties/{party_id}/join", headers=dee)
        assert await _code(late) in ((410, "invite_expired"), (404, "not_invited"))
        metrics = await (await client.get("/metrics")).text()
        assert 'lobby_party_invites_total{outcome="expired"}' in metrics
        # the per-user invitation rate (6 in the window) is enforced with 429
        codes = []
        for _ in range(4):
            await client.delete(f"/api/v1/parties/{party_id}/invites/dee", headers=ann)
            codes.append((await client.post(invite, json={"username": "dee"}, headers=ann)).status)
        assert 429 in codes
        metrics = await (await client.get("/metrics")).text()
        assert 'lobby_party_invites_total{outcome="accepted"} 1.0' in metrics
        assert "lobby_parties_formed_total 1.0" in metrics
        # leaving hands the party over; the leader may kick; the last one ends it
        left = await _json(await client.post(f"/api/v1/parties/{party_id}/leave", headers=ann))
        assert left["party"] is None
        mine = await _json(await client.get("/api/v1/parties/me", headers=bob))
        assert mine["party"]["leader"] == joined["members"][1]["user_id"]
        await client.post(f"/api/v1/parties/{party_id}/leave", headers=bob)
        assert (await _json(await client.get("/api/v1/parties/me", headers=bob)))["party"] is None


async def test_party_queues_casual_only_through_its_leader_and_is_matched_whole(
    lobby_client_factory: Callable[..., Any],
    orchestrator: ProcessOrchestrator,
    lobby_dsn: str,
) -> None:
    async with lobby_client_factory(orchestrator=orchestrator) as client:
        names = ("lead", "pal", "solo1", "solo2", "solo3", "solo4", "ranker")
        users = {n: await register(client, n) for n in names}
        auth = {n: bearer(u) for n, u in users.items()}
        await _party_of(client, auth["lead"], ("pal", auth["pal"]))
        queue = "/api/v1/queue"
        casual = {"mode": "standard", "format": "blitz", "queue": "casual"}
        assert await _code(
            await client.post(queue, json={**casual, "queue": "ranked"}, headers=auth["pal"])
        ) == (409, "party_ranked")
        assert await _code(
            await client.post(queue, json={"mode": "standard"}, headers=auth["lead"])
        ) == (409, "party_ranked")
        assert await _code(await client.post(queue, json=casual, headers=auth["pal"])) == (
            403,
            "party_leader_only",
        )
        assert await _code(
            await client.post(queue, json={**casual, "mode": "duel"}, headers=auth["lead"])
        ) == (409, "party_too_big")
        resp = await client.post(queue, json=casual, headers=auth["lead"])
        ticket = await _json(resp)
        assert resp.status == 201 and ticket["queue"] == "casual"
        assert ticket["members"] == [users["lead"]["user"]["id"], users["pal"]["user"]["id"]]
        # a ranked player in the same mode is never in the casual match
        ranked = await client.post(
            queue, json={"mode": "standard", "format": "blitz"}, headers=auth["ranker"]
        )
        assert ranked.status == 201
        for n in ("solo1", "solo2", "solo3", "solo4"):
            assert (await client.post(queue, json=casual, headers=auth[n])).status == 201

        async def ready(name: str) -> dict[str, Any] | None:
            body = await _json(await client.get(queue, headers=auth[name]))
            a = body["assignment"]
            return a if a and a["state"] == "ready" else None

        lead_match = (await eventually(lambda: ready("lead")))["match_id"]
        pal_match = (await eventually(lambda: ready("pal")))["match_id"]
        assert lead_match == pal_match
        assert (await _json(await client.get(queue, headers=auth["ranker"])))["assignment"] is None
        pool = await asyncpg.create_pool(lobby_dsn, min_size=1, max_size=1)
        try:
            assert await kind(pool, lead_match) is MatchKind.CASUAL
        finally:
            await pool.close()
        [spec] = [s for s in orchestrator.started if s.match_id == lead_match]
        assert set(spec.players) == {users[n]["user"]["id"] for n in names[:6]}
        metrics = await (await client.get("/metrics")).text()
        assert "lobby_party_tickets_matched_total 1.0" in metrics


async def _redis_party(
    rds: aioredis.Redis, parties: Parties, *names: str
) -> tuple[str, tuple[str, ...]]:
    members = [Member(f"u-{n}", n) for n in names]
    party = await parties.create(members[0])
    for m in members[1:]:
        await parties.invite(party.party_id, members[0].user_id, m)
        await parties.join(party.party_id, m)
    return party.party_id, tuple(m.user_id for m in members)


async def test_claims_and_requeues_keep_a_party_together(
    rds: aioredis.Redis, lobby_settings: LobbySettings
) -> None:
    queues = Queues(rds, default_catalogue(), lobby_settings)
    parties = Parties(rds, PartyLimits())
    party_id, members = await _redis_party(rds, parties, "a", "b", "c")
    join = {"queue": "casual", "party": party_id, "members": members}
    await queues.join(members[0], "standard", "blitz", 25.0, **join)  # type: ignore[arg-type]
    for i in range(3):
        await queues.join(f"solo{i}", "standard", "blitz", 25.0, queue="casual")
    # a member assigned elsewhere: the claim fails and changes nothing
    await rds.set("ta:{q}:assigned:u-b", '{"match_id": "m-other"}')
    assert await queues.match_round() == []
    assert len(await queues.waiting("casual:standard")) == 4
    await rds.delete("ta:{q}:assigned:u-b")
    [claim] = await queues.match_round()
    assert set(claim.players) == {*members, "solo0", "solo1", "solo2"}
    for m in members:
        assert (await queues.assignment(m))["match_id"] == claim.match_id  # type: ignore[index]
    # formation failed: the party ticket comes back whole, with priority
    assert await queues.requeue(claim.match_id) == 4
    [back] = [t for t in await queues.waiting("casual:standard") if t.party]
    assert back.members == members and back.priority
    assert [await queues.assignment(m) for m in members] == [None, None, None]
    # the party changes: its ticket leaves the queue; a requeue does not bring it back
    [again] = await queues.match_round()
    await parties.remove(party_id, "u-c", "u-c")
    assert await queues.requeue(again.match_id) == 3
    assert [t for t in await queues.waiting("casual:standard") if t.party] == []
    # a stale party ticket (members changed since) is refused at join
    with pytest.raises(QueueError) as refused:
        await queues.join(members[0], "standard", "blitz", 25.0, **join)  # type: ignore[arg-type]
    assert refused.value.code == "party_changed"


async def test_party_changes_and_disconnects_take_the_party_ticket_out(
    rds: aioredis.Redis, lobby_settings: LobbySettings
) -> None:
    queues = Queues(rds, default_catalogue(), lobby_settings)
    parties = Parties(rds, PartyLimits())
    party_id, members = await _redis_party(rds, parties, "x", "y")
    join: dict[str, Any] = {"queue": "casual", "party": party_id, "members": members}
    await queues.join(members[0], "standard", "blitz", 25.0, **join)
    assert await parties.unqueue("u-y") == 1  # a member's last connection closed
    assert await queues.waiting("casual:standard") == []
    await queues.join(members[0], "standard", "blitz", 25.0, **join)
    outsider = Member("u-z", "z")
    await parties.invite(party_id, "u-x", outsider)
    await parties.join(party_id, outsider)  # the party changed
    assert await queues.waiting("casual:standard") == []


async def test_live_invitation_and_a_member_disconnecting_takes_the_party_out(
    lobby_client_factory: Callable[..., Any],
) -> None:
    async with lobby_client_factory() as client:
        lead, pal = await register(client, "leadx"), await register(client, "palx")
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        sio = socketio.AsyncClient(reconnection=False)
        for name in ("notification", "party_status"):
            sio.on(
                name, lambda data, name=name: events.put_nowait((name, data)), namespace="/lobby"
            )
        await sio.connect(
            str(client.make_url("/")),
            namespaces=["/lobby"],
            auth={"token": pal["access_token"]},
            transports=["websocket"],
        )
        try:
            resp = await client.post("/api/v1/parties", headers=bearer(lead))
            party_id = (await resp.json())["party_id"]
            await client.post(
                f"/api/v1/parties/{party_id}/invites",
                json={"username": "palx"},
                headers=bearer(lead),
            )
            async with asyncio.timeout(10):
                kind, note = await events.get()
            assert kind == "notification" and note["kind"] == "party_invite"
            assert note["payload"]["party_id"] == party_id
            await client.post(f"/api/v1/parties/{party_id}/join", headers=bearer(pal))
            async with asyncio.timeout(10):
                while True:
                    kind, status = await events.get()
                    if kind == "party_status" and status["party"]:
                        break
            assert [m["username"] for m in status["party"]["members"]] == ["leadx", "palx"]
            casual = {"mode": "standard", "format": "blitz", "queue": "casual"}
            joined = await client.post("/api/v1/queue", json=casual, headers=bearer(lead))
            assert joined.status == 201
            # any member may take the party out of the queue; the leader queues again
            gone = await client.delete("/api/v1/queue", headers=bearer(pal))
            assert (await gone.json()) == {"removed": 1}
            joined = await client.post("/api/v1/queue", json=casual, headers=bearer(lead))
            assert joined.status == 201
        finally:
            await sio.disconnect()  # the member's last connection closes

        async def out_of_the_queue() -> bool:
            body = await _json(await client.get("/api/v1/queue", headers=bearer(lead)))
            return body["tickets"] == []

        await eventually(out_of_the_queue, within=10)
