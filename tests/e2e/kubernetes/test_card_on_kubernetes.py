"""The card's path on Kubernetes, for real: a Helm install where players queue, the
lobby writes Match resources, the operator creates match pods, the node runs them from
the image built from the Dockerfile, and players play over TLS.

One release (tradearena.testing.kube_platform) serves the whole module, in order:
`helm test`; Node bots playing duels to the end over `wss://` while the operator's pods
are deleted and the release is upgraded to another image tag; a browser playing a duel
through the HTTPS ingress; then `helm uninstall` with a live match, which must leave
nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tradearena.contracts import resource
from tradearena.contracts.phases import MatchPhase
from tradearena.testing.browser import run_browser_match
from tradearena.testing.kube_platform import KubePlatform, PlatformOptions
from tradearena.testing.paths import REPO
from tradearena.testing.platform import short_catalogue

# The module's own waits are bounded; this is the backstop for one test and its setup.
pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.timeout(1200)]

JS = REPO / "tests" / "js"
BOTS = 10
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
    selector = ",".join(f"{k}={v}" for k, v in MATCH_SERVER.items())
    listed: list[dict[str, Any]] = platform.kubectl_json("get", "pods", "-l", selector)["items"]
    return listed


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

        # Each match pod serves /metrics on its admin port (as Prometheus scrapes it).
        pods = match_pods(platform)
        assert len(pods) == BOTS // 2
        for pod in pods:
            text = scrape(pod, "admin")
            assert "tradearena_match_players_connected" in text, text[:500]

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
        assert platform.alt_image_tag is not None
        platform.install(command="upgrade", **{"image.tag": platform.alt_image_tag})
        lobby = platform.kubectl_json("get", "pods", "-l", "app.kubernetes.io/component=lobby")
        serving = [p for p in lobby["items"] if not p["metadata"].get("deletionTimestamp")]
        assert serving
        assert {p["spec"]["containers"][0]["image"] for p in serving} == {
            f"{platform.image.repository}:{platform.alt_image_tag}"  # type: ignore[union-attr]
        }
        # Through both, every match stayed live on the pod it started with.
        still = {m["metadata"]["name"]: m["status"]["phase"] for m in matches(platform)}
        assert set(still.values()) == {MatchPhase.LIVE.value}, still
        assert {p["metadata"]["uid"] for p in match_pods(platform)} == {
            p["metadata"]["uid"] for p in pods
        }
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
    # One pod per match, ever: each Match still names the pod it started with.
    first = {p["metadata"]["labels"][resource.MATCH_LABEL]: p["metadata"]["uid"] for p in pods}
    assert set(first) == set(match_ids)
    for pod in match_pods(platform):  # finished pods linger until the Match's TTL
        assert first[pod["metadata"]["labels"][resource.MATCH_LABEL]] == pod["metadata"]["uid"]
    # The operator sees each server finish (its /status, then the pod) shortly after.
    done = eventually(
        platform,
        "every Match Finished",
        lambda: (
            (ms := matches(platform))
            and all(m["status"]["phase"] == MatchPhase.FINISHED.value for m in ms)
            and ms
        ),
        within=90,
    )
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
