"""The card's path on Kubernetes, for real: a Helm install where players queue, the
lobby writes Match resources, the operator binds each to a warm pool server (or, with
none free, creates a pod of its own), the node runs them from the image built from the
Dockerfile, and players play over TLS.

One release (tradearena.testing.kube_platform) serves the whole module, in order:
`helm test`; Node bots playing duels to the end over `wss://` while the operator's pods
are deleted and the release is upgraded to another image tag (the migrations hook runs
again, the lobby answers every request, the feed relay hands over without a gap a match
would call stale, a match formed afterwards runs on the new image); a browser playing a duel
through the HTTPS ingress; a dense pool server (several matches in one pod) killed and
restoring every match it hosts; then `helm uninstall` with a live match, which must
leave nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import yaml

from tradearena.contracts import keys, resource
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import MatchPhase
from tradearena.modes import parse_catalogue
from tradearena.orchestration.kubernetes import match_resource
from tradearena.testing.browser import run_browser_match
from tradearena.testing.kube_platform import KubePlatform, PlatformOptions
from tradearena.testing.paths import REPO
from tradearena.testing.platform import short_catalogue
from tradearena.testing.rollout_watch import FeedRecorder, LobbyPoller

# The module's own waits are bounded; this is the backstop for one test and its setup.
pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.timeout(1200)]

JS = REPO / "tests" / "js"
BOTS = 10
SYMBOL = "BTCUSDT"  # the chart's feedRelay.symbols
MATCH_SERVER = dict(resource.SERVER_POD_LABELS)


def eventually(platform: KubePlatform, what: str, probe: Callable[[], Any], within: float) -> Any:
    """Cluster state has no event to await from here: the cluster's own poll with a deadline."""
    assert platform.cluster is not None
    return platform.cluster.wait_until(what, probe, timeout=within, interval=1.0)


def scrape(pod: dict[str, Any], port_name: str) -> str:
    """GET /metrics on a pod's named container port, as Prometheus does."""
    port = next(
        p["containerPort"]
        for c in pod["spec"]["containers"]
        for p in c.get("ports", [])
        if p.get("name") == port_name
    )
    url = f"http://{pod['status']['podIP']}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200, pod["metadata"]["name"]
        return str(reply.read().decode())


@pytest.fixture(scope="module")
def platform() -> Iterator[KubePlatform]:
    # Not under pytest's tmp dir: PostgreSQL runs as `postgres`, which must reach it.
    workdir = Path(tempfile.mkdtemp(prefix="ta-k8s-"))
    # A two-minute blitz (the chart's `catalogue` value): long enough for the operator's
    # loss and an upgrade to happen while every match is live.
    catalogue = short_catalogue(workdir / "modes.toml", blitz_minutes=2).read_text()
    n = os.getpid() % 250  # addresses of this session's own (several may share a machine)
    kube = KubePlatform(
        PlatformOptions(
            workdir=workdir,
            name=f"ta-k8s-{n}",
            bridge=f"tae{n}",
            cidr=f"10.74.{n}.0/24",
            service_cidr=f"10.95.{n}.0/24",
            ingress_listen=(f"127.0.74.{n + 1}", 443),
            catalogue=catalogue,
        )
    )
    try:
        kube.start()
        yield kube
    finally:
        kube.stop()
        print(f"kube_platform timings: {json.dumps(kube.timings)}")
        shutil.rmtree(workdir, ignore_errors=True)


def matches(platform: KubePlatform) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = platform.kubectl_json("get", resource.PLURAL)["items"]
    return listed


def match_pods(platform: KubePlatform) -> list[dict[str, Any]]:
    """Every match-server pod: pool servers and Matches' own pods."""
    selector = ",".join(f"{k}={v}" for k, v in MATCH_SERVER.items())
    listed: list[dict[str, Any]] = platform.kubectl_json("get", "pods", "-l", selector)["items"]
    return listed


def serving_pods(platform: KubePlatform, ms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Match id -> the pod its status names as its server (a pool server or its own)."""
    pods = {p["metadata"]["name"]: p for p in match_pods(platform)}
    return {m["metadata"]["name"]: pods[m["status"]["server"]] for m in ms}


def bots(platform: KubePlatform, count: int, prefix: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "node",
            str(JS / "platform_bots.mjs"),
            *("--url", platform.lobby_url),
            *("--count", str(count)),
            *("--mode", "duel", "--format", "blitz", "--prefix", prefix),
            *platform.dial_args(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], within: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=within)
    lines = out.strip().splitlines()
    assert lines, f"the bots printed nothing:\n{err[-4000:]}"
    summary: dict[str, Any] = json.loads(out[out.index("{") :])
    assert proc.returncode == 0, (summary, err[-4000:])
    return summary


@dataclass(frozen=True)
class RolloutState:
    """Pod names before an upgrade, and how many times the migrations hook had run."""

    lobbies: frozenset[str]
    relays: frozenset[str]
    operators: frozenset[str]
    migrate_runs: frozenset[str]


def pod_names(platform: KubePlatform, component: str) -> list[str]:
    selector = f"app.kubernetes.io/component={component}"
    return [
        p["metadata"]["name"] for p in platform.kubectl_json("get", "pods", "-l", selector)["items"]
    ]


def migrate_runs(platform: KubePlatform) -> frozenset[str]:
    """The migrations hook Jobs that completed (each run is a new Job, so a new uid);
    Helm deletes a succeeded hook Job, its Events stay."""
    events = platform.kubectl_json(
        "get",
        "events",
        "--field-selector",
        f"involvedObject.kind=Job,involvedObject.name={platform.options.release}-migrate",
    )["items"]
    return frozenset(e["involvedObject"]["uid"] for e in events if e["reason"] == "Completed")


def rollout_state(platform: KubePlatform) -> RolloutState:
    return RolloutState(
        lobbies=frozenset(pod_names(platform, "lobby")),
        relays=frozenset(pod_names(platform, "feed-relay")),
        operators=frozenset(pod_names(platform, "operator")),
        migrate_runs=migrate_runs(platform),
    )


def match_status(match: dict[str, Any]) -> dict[str, Any]:
    """What a live Match's status says about where and how it runs."""
    status = match.get("status", {})
    return {k: status.get(k) for k in ("phase", "server", "address", "port", "allocation")}


def stale_after_ms(platform: KubePlatform, mode: str) -> int:
    """The rules' threshold: no official price for this long and trading freezes."""
    rules = parse_catalogue(tomllib.loads(platform.options.catalogue)).modes[mode].rules
    return int(rules.stale_after_ms)


def check_upgrade_kept_serving(
    platform: KubePlatform,
    before: RolloutState,
    lobby_poll: LobbyPoller,
    feed: FeedRecorder,
    upgraded_in: float,
) -> None:
    # The migrations hook Job ran (and succeeded: Helm waited for it) once more.
    after = migrate_runs(platform)
    assert len(before.migrate_runs) == 1, before.migrate_runs  # the install's
    assert before.migrate_runs < after and len(after) == 2, (before.migrate_runs, after)
    # The lobby answered every request, the old pods' and the new ones', throughout.
    assert len(lobby_poll.answers) >= upgraded_in * 2, len(lobby_poll.answers)
    assert lobby_poll.failures == [], lobby_poll.failures[:10]
    # Every relay pod was replaced and the lease moved to a new one...
    assert platform.redis is not None
    client = redis.Redis.from_url(platform.redis.url, decode_responses=True)
    try:
        leader = str(client.get(keys.feed_leader(SYMBOL)) or "")
    finally:
        client.close()
    assert leader.rsplit(":", 1)[0] in set(pod_names(platform, "feed-relay")), leader
    # ...with no pause in the ticks a match server would call stale.
    threshold = stale_after_ms(platform, "duel")
    event_gap, arrival_gap = feed.largest_gaps_ms()
    assert len(feed.ticks) > upgraded_in, len(feed.ticks)
    assert event_gap < threshold, (event_gap, threshold, feed.gap_report())
    assert arrival_gap < threshold, (arrival_gap, threshold, feed.gap_report())


def check_a_new_match_runs_on_the_new_image(
    platform: KubePlatform, earlier: set[str], new_image: str
) -> None:
    proc = bots(platform, 2, "post")
    try:

        def bound() -> dict[str, Any] | None:
            fresh = [
                m
                for m in matches(platform)
                if m["metadata"]["name"] not in earlier and m.get("status", {}).get("server")
            ]
            return fresh[0] if fresh else None

        match = eventually(platform, "a match formed after the upgrade", bound, within=120)
        pod = platform.kubectl_json("get", "pod", match["status"]["server"])
        assert pod["spec"]["containers"][0]["image"] == new_image, match["status"]
        assert platform.cluster is not None
        platform.cluster.kubectl(
            "-n",
            platform.options.namespace,
            "patch",
            resource.PLURAL,
            match["metadata"]["name"],
            "--type=merge",
            "-p",
            json.dumps({"spec": {"cancel": True, "cancelReason": "test"}}),
        )
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_the_release_passes_helm_test(platform: KubePlatform) -> None:
    out = platform.helm_test()
    assert "Phase:          Succeeded" in out, out


def test_bots_play_duels_through_the_operator_over_wss(platform: KubePlatform) -> None:
    proc = bots(platform, BOTS, "k8s")
    try:
        live = eventually(
            platform,
            f"{BOTS // 2} live matches",
            lambda: (
                (ms := matches(platform))
                and len(ms) == BOTS // 2
                and all(m.get("status", {}).get("phase") == MatchPhase.LIVE.value for m in ms)
                and ms
            ),
            within=240,
        )
        # Every player was sent to the node's name under the wildcard domain, over TLS.
        for match in live:
            assert match["status"]["address"] == platform.match_host
            assert match["status"]["scheme"] == "https"

        # Each match runs on a server named in its status (the chart's default pool: one
        # match per server, kept warm), which serves /metrics on its admin port.
        first = serving_pods(platform, live)
        assert len({p["metadata"]["uid"] for p in first.values()}) == BOTS // 2
        for pod in first.values():
            text = scrape(pod, "admin")
            assert "tradearena_match_players_connected" in text, text[:500]
        allocations = {m["metadata"]["name"]: m["status"]["allocation"] for m in live}
        assert set(allocations.values()) <= {"warm", "cold"}, allocations
        assert "warm" in allocations.values(), allocations  # the pool's buffer was used

        # So does every pod of the release (lobby, operator, relay, worker), on its port `http`.
        workloads = [
            p
            for p in platform.kubectl_json("get", "pods")["items"]
            if p["status"].get("phase") == "Running"
            and p["metadata"]["labels"].get("app.kubernetes.io/instance")
            == platform.options.release
        ]
        assert len(workloads) == 8, [p["metadata"]["name"] for p in workloads]
        for pod in workloads:
            assert "# TYPE " in scrape(pod, "http"), pod["metadata"]["name"]

        # The operator's pods go away mid-match: the matches carry on, no pod is replaced.
        assert platform.cluster is not None
        selector = "app.kubernetes.io/component=operator"
        gone = {
            p["metadata"]["name"]
            for p in platform.kubectl_json("get", "pods", "-l", selector)["items"]
        }
        assert len(gone) == 2
        platform.cluster.kubectl(
            "-n", platform.options.namespace, "delete", "pod", "-l", selector, "--wait=true"
        )
        platform.cluster.kubectl(
            "-n",
            platform.options.namespace,
            "rollout",
            "status",
            f"deployment/{platform.options.release}-operator",
            "--timeout=120s",
            timeout=150,
        )
        # An upgrade to another image tag rolls the release; live matches are untouched.
        # Meanwhile the lobby answers every request, the feed never pauses long enough
        # for a match to freeze, and the migrations hook runs once more.
        assert platform.alt_image_tag is not None
        before = rollout_state(platform)
        statuses = {m["metadata"]["name"]: match_status(m) for m in matches(platform)}
        with (
            LobbyPoller(
                platform.lobby_host,
                platform.options.ingress_listen,
                platform.ca_file,
                paths=("/readyz", "/api/v1/leaderboards/daily"),
            ) as lobby_poll,
            FeedRecorder(platform.redis.url, SYMBOL) as feed,  # type: ignore[union-attr]
        ):
            upgrade_started = time.monotonic()
            platform.install(command="upgrade", **{"image.tag": platform.alt_image_tag})
            upgraded_in = time.monotonic() - upgrade_started
            # `--wait` returns once the new pods are ready; old ones may still be stopping.
            eventually(
                platform,
                "the old relay and lobby pods gone",
                lambda: (
                    not (set(pod_names(platform, "feed-relay")) & before.relays)
                    and not (set(pod_names(platform, "lobby")) & before.lobbies)
                ),
                within=90,
            )
        print(
            f"upgrade: helm {upgraded_in:.1f} s, lobby {len(lobby_poll.answers)} answers,"
            f" feed {len(feed.ticks)} ticks, largest gaps {feed.largest_gaps_ms()} ms;"
            f" {feed.gap_report()}"
        )
        check_upgrade_kept_serving(platform, before, lobby_poll, feed, upgraded_in)
        # The operator rolled to the new image; every live Match kept its status.
        operator = platform.kubectl_json(
            "get", "pods", "-l", "app.kubernetes.io/component=operator"
        )["items"]
        assert {p["spec"]["containers"][0]["image"] for p in operator} == {
            f"{platform.image.repository}:{platform.alt_image_tag}"  # type: ignore[union-attr]
        }
        assert not {p["metadata"]["name"] for p in operator} & before.operators
        assert {m["metadata"]["name"]: match_status(m) for m in matches(platform)} == statuses
        lobby = platform.kubectl_json("get", "pods", "-l", "app.kubernetes.io/component=lobby")
        serving = [p for p in lobby["items"] if not p["metadata"].get("deletionTimestamp")]
        assert serving
        assert {p["spec"]["containers"][0]["image"] for p in serving} == {
            f"{platform.image.repository}:{platform.alt_image_tag}"  # type: ignore[union-attr]
        }
        # Through both, every match stayed live on the server it started on, which kept
        # its image; idle pool servers were replaced by servers of the new image.
        now = matches(platform)
        still = {m["metadata"]["name"]: m["status"]["phase"] for m in now}
        assert set(still.values()) == {MatchPhase.LIVE.value}, still
        assert {k: p["metadata"]["uid"] for k, p in serving_pods(platform, now).items()} == {
            k: p["metadata"]["uid"] for k, p in first.items()
        }
        new_image = f"{platform.image.repository}:{platform.alt_image_tag}"  # type: ignore[union-attr]
        serving = {p["metadata"]["uid"] for p in first.values()}

        def idle_servers_renewed() -> bool:
            idle = [
                p
                for p in match_pods(platform)
                if p["metadata"]["uid"] not in serving
                and not p["metadata"].get("deletionTimestamp")
                and p["metadata"]["labels"].get(resource.SERVER_POOL_LABEL)
            ]
            return bool(idle) and all(
                p["spec"]["containers"][0]["image"] == new_image for p in idle
            )

        eventually(platform, "idle pool servers on the new image", idle_servers_renewed, 120)
        for pod in first.values():
            assert pod["spec"]["containers"][0]["image"] != new_image
        # A match formed now runs on a server of the new image (then it is cancelled).
        check_a_new_match_runs_on_the_new_image(platform, set(first), new_image)
        summary = finish(proc, within=420)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)

    assert summary["registered"] == BOTS
    assert summary["matches_ended"] == BOTS
    assert summary["error_count"] == 0, summary["errors"]
    match_ids: list[str] = summary["match_ids"]
    assert len(match_ids) == BOTS // 2
    # One server per match, ever: each Match still names the server it started on.
    assert set(first) == set(match_ids)
    for match in matches(platform):
        if match["metadata"]["name"] in first:
            assert match["status"]["server"] == first[match["metadata"]["name"]]["metadata"]["name"]
    # The operator sees each server report the end shortly after.
    try:
        done = eventually(
            platform,
            "every Match Finished",
            lambda: (
                (ms := [m for m in matches(platform) if m["metadata"]["name"] in first])
                and all(m["status"]["phase"] == MatchPhase.FINISHED.value for m in ms)
                and ms
            ),
            within=90,
        )
    except TimeoutError as exc:
        seen = {
            m["metadata"]["name"]: (m["status"].get("phase"), m["status"].get("reason"))
            for m in matches(platform)
        }
        raise AssertionError(f"{exc}: {seen}\n{platform.diagnose()}") from exc
    assert {m["metadata"]["name"] for m in done} == set(match_ids)
    assert all(m["status"].get("restarts", 0) == 0 for m in done)

    # Results land in PostgreSQL once per match.
    with psycopg.connect(platform.dsn) as conn:

        def stored() -> int:
            row = conn.execute(
                "SELECT count(*) FROM matches WHERE id = ANY(%s)", (match_ids,)
            ).fetchone()
            return int(row[0]) if row else 0

        eventually(platform, "every result stored", lambda: stored() == len(match_ids), within=120)
        rows = conn.execute(
            "SELECT match_id, count(*), count(DISTINCT rank) FROM match_players"
            " WHERE match_id = ANY(%s) GROUP BY match_id",
            (match_ids,),
        ).fetchall()
        assert {r[0]: (r[1], r[2]) for r in rows} == {m: (2, 2) for m in match_ids}

    # kubectl shows each phase as an Event of its Match.
    events = platform.kubectl_json(
        "get", "events", "--field-selector", f"involvedObject.kind={resource.KIND}"
    )["items"]
    for match_id in match_ids:
        reasons = {e["reason"] for e in events if e["involvedObject"]["name"] == match_id}
        assert {
            MatchPhase.READY.value,
            MatchPhase.LIVE.value,
            MatchPhase.FINISHED.value,
        } <= reasons, (
            match_id,
            reasons,
        )
        # ...and how it got its server: from the pool, or a cold start.
        expected = "Allocated" if allocations[match_id] == "warm" else "ColdStart"
        assert expected in reasons, (match_id, reasons)


def test_two_players_play_a_duel_in_the_browser_over_https(platform: KubePlatform) -> None:
    """The embedded browser test's duel, through the ingress's HTTPS and wss:// pods."""
    summary, _ = run_browser_match(
        platform.lobby_url + "/", REPO / "artifacts" / "web-kubernetes", platform.browser_args()
    )
    match_id = summary["match_id"]
    a, b = summary["a"], summary["b"]
    assert {a["rank"], b["rank"]} == {1, 2}
    (match,) = [m for m in matches(platform) if m["metadata"]["name"] == match_id]
    assert match["status"]["scheme"] == "https"
    with psycopg.connect(platform.dsn) as conn:

        def ranks() -> dict[str, int]:
            rows = conn.execute(
                "SELECT u.username, mp.rank FROM match_players mp"
                " JOIN users u ON u.id = mp.user_id WHERE mp.match_id = %s",
                (match_id,),
            ).fetchall()
            return {r[0]: r[1] for r in rows}

        user_a, user_b = summary["players"]
        stored = eventually(platform, "the duel's result", ranks, within=60)
        assert stored == {user_a: a["rank"], user_b: b["rank"]}


def container_pid(pod: dict[str, Any]) -> int | None:
    """The running container's process on the test node (its containerID is `<scheme>://<pid>`)."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    if not statuses or "running" not in (statuses[0].get("state") or {}):
        return None
    return int(statuses[0]["containerID"].rsplit("/", 1)[1])


def test_a_dense_pool_server_restores_every_match_it_hosts_after_kill_9(
    platform: KubePlatform,
) -> None:
    """A pool a value away (capacity 4 for `standard` matches): Matches as the lobby writes
    them are packed onto one server; its process is killed; the pod restarts in place and
    the server restores every match, which then settles (cancelled) with its result stored."""
    assert platform.cluster is not None
    (default_pool,) = yaml.safe_load((REPO / "charts/tradearena/values.yaml").read_text())["pools"]
    dense_pool = {
        **default_pool,
        "name": "dense",
        "capacity": 4,
        "buffer": 1,
        "minReplicas": 1,
        "maxReplicas": 3,
        "modes": ["standard"],
    }
    platform.install(
        command="upgrade",
        **{"image.tag": platform.alt_image_tag, "pools": [default_pool, dense_pool]},
    )

    def dense_ready() -> bool:
        pool = platform.kubectl_json("get", resource.POOL_PLURAL, "dense")
        return int(pool.get("status", {}).get("readyReplicas") or 0) >= 1

    eventually(platform, "the dense pool's first server", dense_ready, within=180)
    ids = [f"dense-{i}" for i in range(3)]
    for match_id in ids:
        spec = MatchSpec(match_id, "standard", "blitz", 0, (f"{match_id}-a", f"{match_id}-b"))
        platform.cluster.apply(match_resource(spec, platform.options.namespace))

    def bound() -> list[dict[str, Any]] | None:
        ms = [m for m in matches(platform) if m["metadata"]["name"] in ids]
        ready = [m for m in ms if m.get("status", {}).get("phase") == MatchPhase.READY.value]
        return ready if len(ready) == len(ids) else None

    ready = eventually(platform, "three Matches Ready", bound, within=120)
    assert {m["status"]["allocation"] for m in ready} == {"warm"}
    (server,) = {m["status"]["server"] for m in ready}  # packed onto one server
    pod = platform.kubectl_json("get", "pod", server)
    assert pod["metadata"]["labels"][resource.SERVER_POOL_LABEL] == "dense"
    ns = platform.options.namespace
    table = platform.cluster.kubectl("-n", ns, "get", resource.PLURAL, *ids).stdout
    assert table.count(server) == len(ids) and "0/2" in table, table

    pid = container_pid(pod)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        now = platform.kubectl_json("get", "pod", server)
        statuses = now.get("status", {}).get("containerStatuses") or [{}]
        ok = statuses[0].get("restartCount", 0) >= 1 and statuses[0].get("ready")
        return now if ok and container_pid(now) not in (None, pid) else None

    again = eventually(platform, "the server restarted in place", restarted, within=120)
    assert again["metadata"]["uid"] == pod["metadata"]["uid"]
    status = json.loads(
        urllib.request.urlopen(
            f"http://{again['status']['podIP']}:{admin_port(again)}/status", timeout=10
        ).read()
    )
    assert sorted(h["match_id"] for h in status["matches"]) == ids, status
    phases = {m["metadata"]["name"]: m["status"]["phase"] for m in matches(platform)}
    # Restored, not failed (with no player they start on their join timeout, 60 s).
    assert all(phases[i] in (MatchPhase.READY.value, MatchPhase.LIVE.value) for i in ids), phases

    for match_id in ids:
        platform.cluster.kubectl(
            "-n",
            ns,
            "patch",
            resource.PLURAL,
            match_id,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"cancel": True, "cancelReason": "test"}}),
        )

    def cancelled() -> bool:
        ms = [m for m in matches(platform) if m["metadata"]["name"] in ids]
        return len(ms) == len(ids) and all(
            m["status"]["phase"] == MatchPhase.CANCELLED.value for m in ms
        )

    eventually(platform, "the restored matches cancelled", cancelled, within=120)
    # Each settled and published its result once (its marker, beside the results stream).
    assert platform.redis is not None
    client = redis.Redis.from_url(platform.redis.url)
    try:
        assert all(client.exists(keys.result_published(i)) for i in ids)
        slots = keys.server_matches(server)
        eventually(platform, "every slot freed", lambda: client.hlen(slots) == 0, within=30)
    finally:
        client.close()


def admin_port(pod: dict[str, Any]) -> int:
    return int(
        next(
            p["containerPort"]
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if p.get("name") == "admin"
        )
    )


def test_uninstall_settles_a_live_match_and_leaves_nothing(platform: KubePlatform) -> None:
    before = {m["metadata"]["name"] for m in matches(platform)}
    proc = bots(platform, 2, "bye")
    try:

        def live_now() -> list[str]:
            return [
                m["metadata"]["name"]
                for m in matches(platform)
                if m["metadata"]["name"] not in before
                and m.get("status", {}).get("phase") == MatchPhase.LIVE.value
            ]

        live = eventually(platform, "a live match", live_now, within=180)
        platform.uninstall()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    # The workloads' pods stop gracefully after the release has gone (preStop, SIGTERM).
    assert platform.cluster is not None
    platform.cluster.kubectl(
        "-n",
        platform.options.namespace,
        "wait",
        "--for=delete",
        "pods",
        "--all",
        "--timeout=120s",
        timeout=150,
    )
    for kind in ("pods", resource.PLURAL, "kopfpeerings", "leases", "jobs"):
        left = platform.kubectl_json("get", kind)["items"]
        assert left == [], (kind, [o["metadata"]["name"] for o in left])
    # The settled match published its result before its pod went, and the results
    # worker (stopped only after the hook) stored it.
    assert len(live) == 1
    with psycopg.connect(platform.dsn) as conn:

        def phase() -> str | None:
            row = conn.execute("SELECT phase FROM matches WHERE id = %s", (live[0],)).fetchone()
            return str(row[0]) if row else None

        assert eventually(platform, "the settled match stored", phase, within=30) == "cancelled"
