"""Allocation in the pure decision: a new Match bound to a warm pool server (Ready on the
server's acknowledgement), the cold start with its reason, cancel through the server,
a lost server, and the players counts written coalesced. Milliseconds, no cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from prometheus_client import generate_latest

from match_operator.builders import COLD, WARM, Allocated, Observed, PlayerCount, decide, iso
from match_operator.crd import build_crd
from match_operator.kube import KubeApi
from match_operator.metrics import OperatorMetrics
from match_operator.runtime import Runtime
from match_operator.servers import ServerView
from match_operator.settings import OperatorSettings
from tradearena.contracts import resource
from tradearena.orchestration.kubernetes import match_status

NOW = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(max_retries=1, startup_timeout_s=30, players_interval_s=3)


def match(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "m-1",
            "namespace": "games",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "10",
            "finalizers": [resource.FINALIZER],
            "creationTimestamp": iso(NOW),
        },
        "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"], **spec},
        "status": status or {},
    }


def server(name: str = "pool-a-1", **changes: Any) -> ServerView:
    fields: dict[str, Any] = {
        "name": name,
        "namespace": "games",
        "pool": "duel-blitz",
        "uid": "srv-uid",
        "node": "n2",
        "host_port": 7400,
        "scheme": "https",
        "pod_ready": True,
        "capacity": 8,
        "count": 3,
        **changes,
    }
    return ServerView(**fields)


def warm(phase: str, **extra: Any) -> dict[str, Any]:
    return {
        "phase": phase,
        "allocation": WARM,
        "server": "pool-a-1",
        "pool": "duel-blitz",
        "node": "n2",
        "address": "203.0.113.9",
        "port": 7400,
        "scheme": "https",
        "createdAt": iso(NOW),
        "playersConnected": 0,
        "playersExpected": 2,
        "playersSummary": "0/2",
        **extra,
    }


def test_a_new_match_bound_to_a_pool_server_records_it_and_waits_for_the_ack() -> None:
    plan = decide(
        Observed(
            match(),
            None,
            NOW,
            node_address="203.0.113.9",
            allocated=Allocated("pool-a-1", server(), latency_ms=4.2),
        ),
        SETTINGS,
    )
    assert plan.create_pod is None  # no pod of its own
    status = plan.status
    assert status["phase"] == "Creating"
    assert status["allocation"] == WARM
    assert status["server"] == "pool-a-1" and status["pool"] == "duel-blitz"
    assert (status["node"], status["address"], status["port"], status["scheme"]) == (
        "n2",
        "203.0.113.9",
        7400,
        "https",
    )
    assert status["playersSummary"] == "0/2"
    (allocated,) = [e for e in plan.events if e[1] == "Allocated"]
    assert "pool-a-1" in allocated[2] and "4 ms" in allocated[2]
    assert plan.requeue_after == 30  # bounded: the startup timeout


def test_the_servers_ready_report_makes_the_match_ready_then_live_then_finished() -> None:
    created = match(warm("Creating"))
    ready = decide(Observed(created, None, NOW, server=server(), server_phase="Ready"), SETTINGS)
    assert ready.status["phase"] == "Ready" and ready.status["readyAt"] == iso(NOW)
    assert "acknowledged" in ready.status["reason"]
    assert "phase" not in decide(Observed(created, None, NOW, server=server()), SETTINGS).status

    live = decide(
        Observed(match(warm("Ready")), None, NOW, server=server(), server_phase="Live"), SETTINGS
    )
    assert live.status["phase"] == "Live"
    done = decide(
        Observed(match(warm("Live")), None, NOW, server=server(), server_phase="Finished"),
        SETTINGS,
    )
    assert done.status["phase"] == "Finished" and done.remove_finalizer
    assert not done.delete_pod and done.create_pod is None


def test_no_acknowledgement_in_time_gives_the_server_up_and_allocates_again() -> None:
    late = NOW + timedelta(seconds=31)
    plan = decide(Observed(match(warm("Creating")), None, late, server=server()), SETTINGS)
    assert plan.status["phase"] == "Pending" and plan.status["retries"] == 1
    assert plan.release_server == "pool-a-1"
    assert plan.status["allocation"] is None and plan.status["server"] is None
    assert "Retrying" in [e[1] for e in plan.events]


def test_a_server_gone_before_live_retries_and_once_live_fails_the_match() -> None:
    plan = decide(Observed(match(warm("Ready")), None, NOW, server_gone=True), SETTINGS)
    assert plan.status["phase"] == "Pending" and plan.release_server == "pool-a-1"
    spent = match(warm("Ready", retries=1))
    assert decide(Observed(spent, None, NOW, server_gone=True), SETTINGS).status["phase"] == (
        "Failed"
    )
    live = match(warm("Live", liveAt=iso(NOW)))
    plan = decide(Observed(live, None, NOW, server_gone=True), SETTINGS)
    assert plan.status["phase"] == "Failed"
    assert plan.status["reason"] == "pool server pool-a-1 gone"
    # Not in the directory but not confirmed gone (a restart in place): kept.
    kept = decide(Observed(live, None, NOW), SETTINGS)
    assert "phase" not in kept.status and kept.release_server is None


def test_a_server_gone_after_reporting_the_end_finishes_the_match() -> None:
    """An idle server is scaled down or replaced as soon as its last match leaves; the
    operator may see the pod gone before it reads the end: the match is over, not lost."""
    live = match(warm("Live", liveAt=iso(NOW)))
    plan = decide(Observed(live, None, NOW, server_gone=True, server_phase="Finished"), SETTINGS)
    assert plan.status["phase"] == "Finished"
    assert plan.release_server is None


def test_cancel_goes_through_the_servers_inbox_and_ends_on_its_report() -> None:
    m = match(warm("Live", liveAt=iso(NOW)), cancel=True, cancelReason="ops")
    plan = decide(Observed(m, None, NOW, server=server(), server_phase="Live"), SETTINGS)
    assert plan.status["phase"] == "Cancelling"
    assert plan.cancel_on_server == ("pool-a-1", "ops")
    assert not plan.remove_finalizer and plan.write_cancel is None
    cancelling = match(warm("Cancelling", liveAt=iso(NOW)), cancel=True, cancelReason="ops")
    waiting = decide(
        Observed(cancelling, None, NOW, server=server(), server_phase="Live"), SETTINGS
    )
    assert waiting.cancel_on_server is None and not waiting.remove_finalizer
    done = decide(
        Observed(cancelling, None, NOW, server=server(), server_phase="Cancelled"), SETTINGS
    )
    assert done.status["phase"] == "Cancelled" and done.status["reason"] == "ops"
    assert done.remove_finalizer
    gone = decide(Observed(cancelling, None, NOW, server_gone=True), SETTINGS)
    assert gone.status["phase"] == "Cancelled" and gone.remove_finalizer


def test_a_cold_start_says_why_and_creates_the_pod_as_before() -> None:
    plan = decide(
        Observed(match(), None, NOW, port=7005, cold_reason="no pool serves duel/blitz"), SETTINGS
    )
    assert plan.create_pod == 7005
    assert plan.status["allocation"] == COLD
    assert plan.status["server"] == "m-1" and plan.status["pod"] == "m-1"
    (cold,) = [e for e in plan.events if e[1] == "ColdStart"]
    assert "no pool serves duel/blitz" in cold[2]


def test_players_are_written_coalesced() -> None:
    ready = match(warm("Ready", readyAt=iso(NOW)))
    report = PlayerCount(connected=1, expected=2)
    first = decide(Observed(ready, None, NOW, server=server(), players=report), SETTINGS)
    assert first.status["playersSummary"] == "1/2" and first.status["playersConnected"] == 1
    ready = match({**ready["status"], **first.status})  # as written
    soon = NOW + timedelta(seconds=1)
    again = Observed(
        ready, None, soon, server=server(), players=PlayerCount(2, 2), players_patched_at=NOW
    )
    held = decide(again, SETTINGS)
    assert "playersSummary" not in held.status
    assert held.requeue_after is not None and 1.9 <= held.requeue_after <= 2.0
    later = NOW + timedelta(seconds=3)
    due = Observed(
        ready, None, later, server=server(), players=PlayerCount(2, 2), players_patched_at=NOW
    )
    assert decide(due, SETTINGS).status["playersSummary"] == "2/2"
    # Nothing reported: the spec's players are expected.
    assert decide(Observed(match(), None, NOW, port=7005), SETTINGS).status["playersSummary"] == (
        "0/2"
    )


def test_the_lobby_contract_reads_a_pool_bound_match() -> None:
    got = match_status(match(warm("Ready")) | {"metadata": {"name": "m-1"}})
    assert got.url == "https://203.0.113.9:7400"
    assert got.detail["server"] == "pool-a-1"


def test_the_crd_shows_players_and_server() -> None:
    version = build_crd()["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Players"] == ".status.playersSummary"
    assert columns["Server"] == ".status.server"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["allocation"]["enum"] == [WARM, COLD]


def test_allocation_metrics_are_there_from_the_start() -> None:
    metrics = OperatorMetrics()
    metrics.set_phases({"Ready": 2})
    text = generate_latest(metrics.registry).decode()
    for outcome in (WARM, COLD):
        assert f'tradearena_operator_allocations_total{{outcome="{outcome}"}} 0.0' in text
        assert (
            f'tradearena_operator_allocation_latency_seconds_count{{outcome="{outcome}"}} 0.0'
            in text
        )


def test_a_changed_pool_server_brings_its_matches_forward() -> None:
    runtime = Runtime(SETTINGS, cast(KubeApi, None))  # no I/O in this path
    bound = match(warm("Live"))
    other = match(warm("Live", server="pool-a-2")) | {
        "metadata": {**bound["metadata"], "name": "m-2"}
    }
    cold = match({"phase": "Ready", "allocation": COLD, "server": "pool-a-1"}) | {
        "metadata": {**bound["metadata"], "name": "m-3"}
    }
    for body in (bound, other, cold):
        runtime.on_match(body)
    assert runtime.server_changed("games", "pool-a-1") == [("games", "m-1")]
    assert runtime.server_changed("elsewhere", "pool-a-1") == []
