"""Allocation from a warm pool on the running test node: Match created -> Ready.

Starts the whole Kubernetes path (tradearena.testing.kube_platform: the image, a
control plane, the node that really runs pods, Redis, PostgreSQL, the Helm chart)
with one MatchServerPool of dense servers, waits until every server is Ready, then
creates Matches through the API as the lobby does, at each offered rate in turn,
follows them with a watch and deletes each once Ready (its slot is freed; the
server settles it as cancelled). Reports, per rate, p50/p99 from the create call to
the Ready seen on the watch, how many were warm, and the sustained rate; plus the
operator's own latency histogram. The same run can measure cold starts (no pool).

    .venv/bin/python bench/allocation.py                     # 25, 50, 100 /s; 1,000 in all
    .venv/bin/python bench/allocation.py --cold --rates 10 --matches 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from tradearena.contracts import resource
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import MatchPhase
from tradearena.orchestration.kubernetes import match_resource
from tradearena.testing.kube_platform import KubePlatform, PlatformOptions
from tradearena.testing.match_watch import follow_matches

POOL = "bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def offered_load(
    kubeconfig: Path, namespace: str, rate: float, count: int, prefix: str, limit_s: float
) -> dict[str, Any]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 64
    api_client = client.ApiClient(configuration)
    custom: Any = client.CustomObjectsApi(api_client)
    sent: dict[str, float] = {}
    ready: dict[str, float] = {}
    allocation: dict[str, str] = {}
    done = asyncio.Event()
    deletes: set[asyncio.Task[Any]] = set()

    async def delete(name: str) -> None:
        try:
            await custom.delete_namespaced_custom_object(
                resource.GROUP, resource.VERSION, namespace, resource.PLURAL, name
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def seen(obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        if not name.startswith(prefix) or name in ready:
            return
        if status.get("phase") in (MatchPhase.READY, MatchPhase.LIVE):
            ready[name] = time.monotonic()
            allocation[name] = str(status.get("allocation"))
            task = asyncio.create_task(delete(name))
            deletes.add(task)
            task.add_done_callback(deletes.discard)
            if len(ready) >= count:
                done.set()

    async def follow() -> None:
        await follow_matches(custom, namespace, seen, done)

    async def create(i: int) -> None:
        name = f"{prefix}{i:04d}"
        spec = MatchSpec(name, "duel", "blitz", 0, (f"{name}-a", f"{name}-b"))
        sent[name] = time.monotonic()
        await custom.create_namespaced_custom_object(
            resource.GROUP,
            resource.VERSION,
            namespace,
            resource.PLURAL,
            match_resource(spec, namespace),
        )

    follower = asyncio.create_task(follow())
    await asyncio.sleep(1)  # the watch is open before the first Match exists
    start = time.monotonic()
    creates = []
    for i in range(count):  # one create call every 1/rate seconds, whatever the answers
        creates.append(asyncio.create_task(create(i)))
        await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
    await asyncio.gather(*creates)
    offered_s = time.monotonic() - start
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), limit_s)
    done.set()
    follower.cancel()
    await asyncio.gather(follower, *deletes, return_exceptions=True)
    await api_client.close()
    latencies = [(ready[n] - sent[n]) * 1000 for n in ready]
    last = max(ready.values()) if ready else start
    return {
        "offered_per_s": rate,
        "matches": count,
        "ready": len(ready),
        "warm": sum(1 for a in allocation.values() if a == "warm"),
        "created_in_s": round(offered_s, 2),
        "ready_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "ready_p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "ready_max_ms": round(max(latencies), 1) if latencies else None,
        "sustained_per_s": round(len(ready) / (last - start), 1) if ready else None,
    }


def operator_histogram(kube: KubePlatform) -> dict[str, Any]:
    """The operator's allocation latency buckets, from its /metrics (pod port `http`)."""
    out: dict[str, Any] = {}
    pods = kube.kubectl_json("get", "pods", "-l", "app.kubernetes.io/component=operator")
    for pod in pods["items"]:
        ip = pod["status"].get("podIP")
        port = next(
            p["containerPort"]
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if p.get("name") == "http"
        )
        try:
            text = urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(
                ("tradearena_operator_allocations_total", "tradearena_operator_allocation_latency")
            ) and not line.endswith(" 0.0"):
                out.setdefault(pod["metadata"]["name"], []).append(line)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="25,50,100", help="offered Matches/s, in turn")
    parser.add_argument("--matches", type=int, default=1000, help="in all, split by rate")
    parser.add_argument("--servers", type=int, default=4, help="pool servers kept Ready")
    parser.add_argument("--capacity", type=int, default=50, help="matches per server")
    parser.add_argument("--cold", action="store_true", help="no pool: every Match cold-starts")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    per_rate = [args.matches // len(rates)] * len(rates)
    per_rate[-1] += args.matches - sum(per_rate)

    n = os.getpid() % 250
    workdir = Path(tempfile.mkdtemp(prefix="ta-allocbench-"))
    kube = KubePlatform(
        PlatformOptions(
            workdir=workdir,
            name=f"ta-alloc-{n}",
            bridge=f"taa{n}",
            cidr=f"10.73.{n}.0/24",
            service_cidr=f"10.93.{n}.0/24",
            ingress_listen=(f"127.0.73.{n + 1}", 443),
        )
    )
    try:
        print("starting the Kubernetes path...", file=sys.stderr)
        kube.start()
        pools: list[dict[str, Any]] = []
        if not args.cold:
            pools = [
                {
                    "name": POOL,
                    "capacity": args.capacity,
                    "buffer": 1,
                    "minReplicas": args.servers,
                    "maxReplicas": args.servers,
                }
            ]
        kube.install(command="upgrade", pools=pools)
        assert kube.cluster is not None
        if pools:
            kube.cluster.wait_until(
                "every pool server Ready",
                lambda: (
                    int(
                        (
                            kube.kubectl_json("get", resource.POOL_PLURAL, POOL).get("status") or {}
                        ).get("readyReplicas")
                        or 0
                    )
                    >= args.servers
                ),
                timeout=300,
                interval=1.0,
            )
        results = []
        for i, (rate, count) in enumerate(zip(rates, per_rate, strict=True)):
            print(f"offering {rate:g} Matches/s x {count}...", file=sys.stderr)
            result = asyncio.run(
                offered_load(
                    kube.cluster.kubeconfig,
                    kube.options.namespace,
                    rate,
                    count,
                    f"b{i}-",
                    args.timeout,
                )
            )
            print(json.dumps(result), file=sys.stderr)
            results.append(result)
        report = {
            "machine": f"{platform.machine()} {os.cpu_count()} cpus",
            "path": "cold" if args.cold else f"pool {args.servers} x capacity {args.capacity}",
            "runs": results,
            "operator": operator_histogram(kube),
        }
        print(json.dumps(report, indent=2))
    finally:
        kube.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
