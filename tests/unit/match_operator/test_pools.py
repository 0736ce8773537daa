"""MatchServerPool, pure: buffer policy, the scale decision, the pool server pod, what a
server's report and the allocator's notes count, the pods' marks. No cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from match_operator.builders import build_pod_spec
from match_operator.crd import build_pool_crd, render_pool
from match_operator.pools import (
    DRAINED,
    FAILED,
    OUTDATED,
    SCALE_DOWN,
    STALE_AFTER_MS,
    Buffer,
    Ledger,
    Member,
    PoolPod,
    PoolSpec,
    ServerReport,
    build_pool_pod_spec,
    decide_pool,
    marks_patch,
    pool_for,
    server_marks,
    server_view,
    template_hash,
)
from match_operator.settings import OperatorSettings
from tradearena.contracts import resource
from tradearena.contracts.serverconfig import env_name
from tradearena.modes import default_catalogue
from tradearena.testing.paths import REPO

SETTINGS = OperatorSettings(image="registry.example/tradearena:1.2.3")
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def pool_body(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "default", "namespace": "games", "uid": "pool-uid", "generation": 3},
        "spec": spec,
    }


def pool(**spec: Any) -> PoolSpec:
    return PoolSpec.of(pool_body(**{"capacity": 1, "buffer": 1, "maxReplicas": 50, **spec}))


HASH = template_hash(pool(), SETTINGS)


def member(
    name: str,
    count: int = 0,
    *,
    ready: bool = True,
    th: str = HASH,
    phase: str = "Running",
    node: str = "n1",
    age_s: int = 100,
    terminating: bool = False,
    draining: bool = False,
    capacity: int = 1,
) -> Member:
    pod = PoolPod(
        name=name,
        namespace="games",
        pool="default",
        uid=f"uid-{name}",
        phase=phase,
        ready=ready,
        node=node,
        host_port=7000,
        terminating=terminating,
        template_hash=th,
        capacity=capacity,
        created=T0 - timedelta(seconds=age_s),
    )
    return Member(pod=pod, count=count, capacity=capacity, draining=draining)


# ------------------------------------------------------------------------------- buffer
@pytest.mark.parametrize(
    ("raw", "allocated", "wanted"),
    [
        (1, 0, 1),
        (1, 3, 4),
        (0, 2, 2),
        ("2", 5, 7),
        ("25%", 0, 0),
        ("25%", 3, 4),  # ceil(3 / 0.75): a quarter of all servers idle
        ("50%", 5, 10),
        ("10%", 1, 2),  # ceil(1.11)
    ],
)
def test_the_buffer_policy_is_agones_fleetautoscaler_buffer(
    raw: int | str, allocated: int, wanted: int
) -> None:
    assert Buffer.parse(raw).wanted(allocated) == wanted


@pytest.mark.parametrize("raw", ["0%", "100%", "-1", -1, "x%"])
def test_a_meaningless_buffer_is_refused(raw: int | str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies
        Buffer.parse(raw)


def test_desired_is_clamped_to_min_and_max() -> None:
    p = pool(buffer=2, minReplicas=3, maxReplicas=5)
    assert [p.desired(a) for a in (0, 1, 2, 3, 4, 10)] == [3, 3, 4, 5, 5, 5]


def test_spec_defaults_and_what_a_pool_serves() -> None:
    bare = PoolSpec.of({"metadata": {"name": "p", "namespace": "g"}, "spec": {}})
    assert (bare.capacity, bare.buffer, bare.min_replicas, bare.image) == (1, Buffer(1), 0, None)
    assert bare.serves("duel", "blitz") and bare.serves_text == "all"
    duel = pool(modes=["duel"])
    assert duel.serves("duel", "marathon") and not duel.serves("race", "blitz")
    assert duel.serves_text == "duel"
    blitz_duel = pool(modes=["duel"], formats=["blitz"])
    assert blitz_duel.serves_text == "duel/blitz" and not blitz_duel.serves("duel", "marathon")
    assert pool(formats=["blitz"]).serves_text == "*/blitz"


def test_a_match_goes_to_the_most_specific_pool_serving_it() -> None:
    catch_all = PoolSpec("all", "g", "u1")
    duels = PoolSpec("duels", "g", "u2", modes=("duel",))
    blitz_duels = PoolSpec("blitz-duels", "g", "u3", modes=("duel",), formats=("blitz",))
    pools = [catch_all, duels, blitz_duels]
    assert pool_for(pools, "duel", "blitz") is blitz_duels
    assert pool_for(pools, "duel", "marathon") is duels
    assert pool_for(pools, "race", "blitz") is catch_all
    assert pool_for([duels], "race", "blitz") is None  # a cold start
    gone = PoolSpec("duels", "g", "u2", modes=("duel",), deleting=True)
    assert pool_for([catch_all, gone], "duel", "blitz") is catch_all


# ------------------------------------------------------------------------------- decision
def test_an_empty_pool_creates_its_buffer() -> None:
    plan = decide_pool(pool(buffer=2), HASH, [])
    assert (plan.desired, plan.create, plan.retire, plan.remove) == (2, 2, [], [])
    assert plan.status["replicas"] == 2 and plan.status["currentReplicas"] == 0


def test_allocated_servers_grow_the_pool_to_keep_the_buffer() -> None:
    members = [member("a", 1), member("b", 1), member("c", 0)]
    plan = decide_pool(pool(buffer=2), HASH, members)
    assert plan.desired == 4 and plan.create == 1 and not plan.retire
    assert plan.status["allocatedReplicas"] == 2
    assert plan.status["inUse"] == "2/3"


def test_growth_stops_at_max_replicas() -> None:
    members = [member(n, 1) for n in "abc"]
    plan = decide_pool(pool(buffer=2, maxReplicas=3), HASH, members)
    assert plan.desired == 3 and plan.create == 0


def test_scale_down_removes_idle_servers_only_not_ready_first_then_newest() -> None:
    members = [
        member("busy", 1),
        member("old", 0, age_s=500),
        member("young", 0, age_s=10),
        member("starting", 0, ready=False, age_s=1),
    ]
    plan = decide_pool(pool(buffer=1), HASH, members)
    assert plan.desired == 2 and plan.create == 0
    assert plan.retire == [("starting", SCALE_DOWN), ("young", SCALE_DOWN)]


def test_an_allocated_server_is_never_removed_even_above_max() -> None:
    members = [member(n, 1) for n in "abcd"]
    plan = decide_pool(pool(buffer=0, maxReplicas=2), HASH, members)
    assert plan.desired == 2 and plan.retire == [] and plan.remove == []


def test_scale_down_empties_the_least_loaded_node_first() -> None:
    members = [
        member("busy", 1, node="n1"),
        member("idle-n1", 0, node="n1", age_s=10),
        member("idle-n2", 0, node="n2", age_s=500),
    ]
    plan = decide_pool(pool(buffer=1), HASH, members)
    assert plan.retire == [("idle-n2", SCALE_DOWN)]


def test_failed_pods_are_deleted_and_replaced() -> None:
    members = [member("a", 0, phase="Failed"), member("b", 0)]
    plan = decide_pool(pool(buffer=2), HASH, members)
    assert plan.remove == [("a", FAILED)]
    assert plan.create == 1  # b plus one new


def test_terminating_pods_count_for_nothing() -> None:
    plan = decide_pool(pool(buffer=1), HASH, [member("a", 0, terminating=True)])
    assert plan.create == 1 and plan.remove == [] and plan.retire == []


def test_a_template_change_surges_then_replaces_idle_servers_only() -> None:
    old = "0ld0ld0ld0"
    members = [member("busy-old", 1, th=old), member("idle-old", 0, th=old)]
    first = decide_pool(pool(buffer=1), HASH, members)
    assert first.create == 1  # a current server first; the old idle one still serves
    assert first.retire == []
    new_starting = [*members, member("new", 0, ready=False)]
    assert decide_pool(pool(buffer=1), HASH, new_starting).retire == []
    new_ready = [*members, member("new", 0)]
    then = decide_pool(pool(buffer=1), HASH, new_ready)
    assert then.retire == [("idle-old", OUTDATED)]  # never busy-old
    assert then.create == 0


def test_a_server_draining_on_its_own_is_removed_once_idle_and_replaced() -> None:
    members = [member("a", 0, draining=True), member("b", 1, draining=True)]
    plan = decide_pool(pool(buffer=1), HASH, members)
    assert plan.retire == [("a", DRAINED)]
    assert plan.create == 1


def test_a_deleted_pool_creates_nothing() -> None:
    body = pool_body(buffer=3)
    body["metadata"]["deletionTimestamp"] = "2026-11-30T09:00:00Z"
    plan = decide_pool(PoolSpec.of(body), HASH, [member("a", 0)])
    assert plan.create == 0 and plan.retire == []


def test_status_sums_matches_and_capacity() -> None:
    members = [member("a", 2, capacity=4), member("b", 0, capacity=4, ready=False)]
    plan = decide_pool(pool(capacity=4, buffer=1), HASH, members)
    assert plan.status == {
        "replicas": 2,
        "currentReplicas": 2,
        "readyReplicas": 1,
        "allocatedReplicas": 1,
        "matches": 2,
        "capacity": 8,
        "inUse": "2/8",
        "serves": "all",
        "templateHash": HASH,
        "observedGeneration": 3,
    }


# ------------------------------------------------------------------------------- pod
def test_the_pool_server_pod_is_a_locked_down_matchserver_with_a_server_id() -> None:
    p = pool(capacity=4)
    pod = build_pool_pod_spec(p, SETTINGS, "default-bcd42", 7004)
    meta = pod["metadata"]
    assert meta["name"] == "default-bcd42" and meta["namespace"] == "games"
    labels = meta["labels"]
    assert labels[resource.SERVER_POOL_LABEL] == "default"
    assert labels[resource.TEMPLATE_HASH_LABEL] == template_hash(p, SETTINGS)
    assert labels[resource.ALLOCATED_LABEL] == "false"
    assert labels[resource.SAFE_TO_EVICT_LABEL] == "true"
    assert labels[resource.MANAGED_BY_LABEL] == resource.MANAGED_BY
    assert resource.MATCH_LABEL not in labels  # no Match of its own
    assert meta["annotations"][resource.CAPACITY_ANNOTATION] == "4"
    assert meta["annotations"][resource.MATCHES_ANNOTATION] == "0/4"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        resource.POOL_KIND,
        "default",
        "pool-uid",
    )
    spec = pod["spec"]
    assert spec["restartPolicy"] == "OnFailure"  # a crash restores its matches in place
    (container,) = spec["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env[env_name("server_id")]["value"] == "default-bcd42"
    assert env[env_name("capacity")]["value"] == "4"
    assert env[env_name("port")]["value"] == "7004"
    assert env_name("match_id") not in env and env_name("players") not in env
    assert container["ports"][0]["hostPort"] == 7004
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["image"] == SETTINGS.image
    # The same hardening as a Match's own pod.
    dedicated = build_pod_spec(
        {
            "metadata": {"name": "m", "namespace": "games", "uid": "u"},
            "spec": {"mode": "duel", "format": "blitz", "players": ["a", "b"]},
        },
        SETTINGS,
        7004,
    )
    for key in ("securityContext", "volumes", "nodeSelector", "tolerations"):
        assert spec[key] == dedicated["spec"][key], key
    assert container["securityContext"] == dedicated["spec"]["containers"][0]["securityContext"]
    assert dedicated["metadata"]["labels"][resource.SAFE_TO_EVICT_LABEL] == "false"


def test_the_template_hash_follows_image_and_capacity_not_name_or_port() -> None:
    p = pool()
    a = build_pool_pod_spec(p, SETTINGS, "default-aaaaa", 7000)
    b = build_pool_pod_spec(p, SETTINGS, "default-bbbbb", 7001)
    th = resource.TEMPLATE_HASH_LABEL
    assert a["metadata"]["labels"][th] == b["metadata"]["labels"][th]
    assert template_hash(pool(image="registry.example/tradearena:2"), SETTINGS) != HASH
    assert template_hash(pool(capacity=2), SETTINGS) != HASH
    assert template_hash(p, OperatorSettings(image="registry.example/tradearena:9")) != HASH
    image = build_pool_pod_spec(pool(image="x/y:1"), SETTINGS, "n", 7000)
    assert image["spec"]["containers"][0]["image"] == "x/y:1"


def test_a_pool_pod_reads_back_as_its_view() -> None:
    body = build_pool_pod_spec(pool(capacity=3), SETTINGS, "default-bcd42", 7004)
    body["metadata"]["uid"] = "u1"
    body["metadata"]["resourceVersion"] = "17"
    body["spec"]["nodeName"] = "n2"
    body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    view = PoolPod.of(body)
    assert (view.pool, view.node, view.host_port, view.capacity, view.ready) == (
        "default",
        "n2",
        7004,
        3,
        True,
    )
    assert view.resource_version == 17 and not view.done
    labels, annotations = server_marks(0, 3, 0)
    assert marks_patch(view, labels, annotations) is None  # born with its idle marks


# ------------------------------------------------------------------------------- reports
def test_a_report_parses_the_state_hash_as_the_server_writes_it() -> None:
    report = ServerReport.parse([b"4", b"7", b"1", b"0", b"1700000000000"], [b"m1", b"m2"])
    assert report == ServerReport(
        hosted=frozenset({"m1", "m2"}),
        capacity=4,
        players=7,
        ready=True,
        draining=False,
        heartbeat_ms=1700000000000,
    )
    assert ServerReport.parse([None] * 5, []) == ServerReport()
    assert ServerReport.parse([b"x", None, None, b"1", None], []).draining


def test_the_ledger_counts_allocations_at_once_until_a_later_read_shows_them() -> None:
    ledger = Ledger()
    ledger.report(frozenset({"m1"}), read_started=10.0)
    ledger.note_allocated("m2", now=11.0)
    assert ledger.count == 2
    ledger.report(frozenset({"m1"}), read_started=10.5)  # a read begun before the note
    assert ledger.count == 2
    ledger.report(frozenset({"m1", "m2"}), read_started=11.5)
    assert ledger.count == 2 and ledger.added == {}
    ledger.note_released("m1", now=12.0)
    assert ledger.matches == frozenset({"m2"})
    ledger.report(frozenset({"m2"}), read_started=12.5)
    assert ledger.count == 1 and ledger.removed == {}


def test_the_server_view_joins_pod_report_and_count() -> None:
    pod = member("a").pod
    view = server_view(pod, ServerReport(capacity=4, ready=True), count=3)
    assert (view.capacity, view.count, view.pod_ready, view.draining) == (4, 3, True, False)
    assert view.candidate().free == 1 and view.candidate().allocatable
    unreported = server_view(pod, None, count=0)
    assert unreported.capacity == pod.capacity
    assert not unreported.pod_ready  # its server has not said it accepts matches
    fresh = ServerReport(ready=True, heartbeat_ms=100_000)
    assert server_view(pod, fresh, 0, now_ms=100_000 + STALE_AFTER_MS).pod_ready
    assert not server_view(pod, fresh, 0, now_ms=100_001 + STALE_AFTER_MS).pod_ready
    assert server_view(pod, None, 0, drain_marked=True).draining
    assert not server_view(pod, None, 0, drain_marked=True).candidate().allocatable


def test_marks_follow_the_count_and_patch_only_what_changed() -> None:
    labels, annotations = server_marks(2, 4, 5)
    assert labels == {resource.ALLOCATED_LABEL: "true", resource.SAFE_TO_EVICT_LABEL: "false"}
    assert annotations[resource.MATCHES_ANNOTATION] == "2/4"
    assert annotations[resource.PLAYERS_ANNOTATION] == "5"
    assert annotations[resource.AUTOSCALER_SAFE_TO_EVICT] == "false"
    idle = PoolPod(
        name="a",
        namespace="g",
        pool="p",
        marks=(
            (resource.ALLOCATED_LABEL, "false"),
            (resource.SAFE_TO_EVICT_LABEL, "true"),
            (resource.MATCHES_ANNOTATION, "0/4"),
            (resource.PLAYERS_ANNOTATION, "0"),
            (resource.AUTOSCALER_SAFE_TO_EVICT, "true"),
        ),
    )
    patch = marks_patch(idle, labels, annotations)
    assert patch == {"metadata": {"labels": labels, "annotations": annotations}}
    players_only = marks_patch(idle, *server_marks(0, 4, 3))
    assert players_only == {"metadata": {"annotations": {resource.PLAYERS_ANNOTATION: "3"}}}


# ------------------------------------------------------------------------------- CRD
def test_the_pool_crd_file_is_generated_from_the_catalogue() -> None:
    on_disk = (REPO / "crds" / "matchserverpool.yaml").read_text()
    assert on_disk == render_pool(), (
        "regenerate: python -m match_operator.crd pool > crds/matchserverpool.yaml"
    )
    crd = yaml.safe_load(on_disk)
    assert crd == build_pool_crd()
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    catalogue = default_catalogue()
    assert spec["modes"]["items"]["enum"] == list(catalogue.modes)
    assert spec["formats"]["items"]["enum"] == list(catalogue.formats)
    assert crd["spec"]["names"]["shortNames"] == ["msp"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Desired", "Current", "Ready", "Allocated", "In Use", "Modes", "Age"]
