"""Operator scale: 1,000 Match resources created at once on a kwok cluster.

Starts its own control plane (kube-apiserver, etcd, scheduler, controller-manager,
kwok) with enough kwok nodes for 1,000 pods, installs the CRDs and RBAC, runs one
`tradearena operator` process, creates the Matches concurrently through the API,
follows them with a watch, and reports the time until every one is Ready plus the
operator's resident memory and CPU time.

    .venv/bin/python bench/operator_scale.py            # --matches 1000 --nodes 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config

from tradearena.contracts import resource
from tradearena.contracts.phases import MatchPhase
from tradearena.launcher.localservices import free_port
from tradearena.testing.kube import create_cluster
from tradearena.testing.match_watch import follow_matches

ROOT = Path(__file__).resolve().parents[1]

TICK = os.sysconf("SC_CLK_TCK")


def proc_usage(pid: int) -> tuple[float, float, float]:
    """(RSS MB, peak RSS MB, CPU seconds) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {
        k: v.split()[0]
        for k, _, v in (ln.partition(":") for ln in status.splitlines())
        if v.strip()
    }
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / TICK
    return int(fields["VmRSS"]) / 1024, int(fields["VmHWM"]) / 1024, cpu


def match_body(i: int, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": resource.API_VERSION,
        "kind": resource.KIND,
        "metadata": {"name": f"bench-{i:04d}", "namespace": namespace},
        "spec": {"mode": "duel", "format": "blitz", "players": [f"p{i}a", f"p{i}b"]},
    }


async def run_matches(
    kubeconfig: Path, namespace: str, count: int, concurrency: int, limit_s: float, pid: int
) -> dict[str, Any]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = concurrency
    api_client = client.ApiClient(configuration)
    custom: Any = client.CustomObjectsApi(api_client)
    ready_at: dict[str, float] = {}
    samples: list[tuple[float, float, float, float]] = []
    start = time.monotonic()
    done = asyncio.Event()

    async def follow() -> None:
        await follow_matches(custom, namespace, seen, done)

    def seen(obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") == MatchPhase.READY:
            ready_at.setdefault(obj["metadata"]["name"], time.monotonic() - start)
            if len(ready_at) >= count:
                done.set()

    async def sample() -> None:
        while not done.is_set():
            rss, peak, cpu = proc_usage(pid)
            samples.append((time.monotonic() - start, rss, peak, cpu))
            await asyncio.sleep(1)

    follower = asyncio.create_task(follow())
    sampler = asyncio.create_task(sample())
    await asyncio.sleep(2)  # the watch is open before the first Match exists
    cpu_before = proc_usage(pid)[2]
    start = time.monotonic()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def creator() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await custom.create_namespaced_custom_object(
                resource.GROUP,
                resource.VERSION,
                namespace,
                resource.PLURAL,
                match_body(i, namespace),
            )

    await asyncio.gather(*(creator() for _ in range(concurrency)))
    created = time.monotonic() - start
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), limit_s)
    elapsed = time.monotonic() - start
    done.set()
    follower.cancel()
    await asyncio.gather(follower, sampler, return_exceptions=True)
    rss, peak, cpu_after = proc_usage(pid)
    await api_client.close()
    times = sorted(ready_at.values())
    return {
        "matches": count,
        "ready": len(times),
        "create_all_s": round(created, 2),
        "all_ready_s": round(times[-1], 2) if len(times) == count else None,
        "elapsed_s": round(elapsed, 2),
        "ready_p50_s": round(statistics.median(times), 2) if times else None,
        "ready_p95_s": round(times[int(len(times) * 0.95) - 1], 2) if times else None,
        "throughput_per_s": round(len(times) / times[-1], 1) if times else None,
        "operator_rss_mb_end": round(rss, 1),
        "operator_rss_mb_peak": round(max(peak, *(s[2] for s in samples)) if samples else peak, 1),
        "operator_cpu_s": round(cpu_after - cpu_before, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--matches", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10, help="kwok nodes (110 pods each)")
    parser.add_argument("--concurrency", type=int, default=32, help="parallel create calls")
    parser.add_argument(
        "--cpu-request",
        default="100m",
        help="per match pod; 16-CPU kwok nodes hold 160 at 100m (110 pods max)",
    )
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ta-opbench-"))
    print(f"starting a control plane with {args.nodes} kwok nodes...", file=sys.stderr)
    cluster = create_cluster(f"ta-opbench-{os.getpid()}", workdir=workdir, nodes=args.nodes)
    operator: subprocess.Popen[bytes] | None = None
    try:
        namespace = "tradearena"
        cluster.kubectl("create", "namespace", namespace)
        cluster.kubectl("apply", "-f", str(ROOT / "crds"))
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            f"crd/{resource.CRD_NAME}",
            f"crd/{resource.POOL_CRD_NAME}",
            "crd/kopfpeerings.kopf.dev",
            "--timeout=60s",
        )
        cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "operator" / "rbac.yaml"))
        cluster.kubectl("label", "node", *cluster.node_names, f"{resource.POOL_LABEL}=game")
        metrics_port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "TRADEARENA_OPERATOR_NAMESPACES": namespace,
            "TRADEARENA_OPERATOR_METRICS_HOST": "127.0.0.1",
            "TRADEARENA_OPERATOR_METRICS_PORT": str(metrics_port),
            "TRADEARENA_OPERATOR_LOG_LEVEL": "WARNING",
            "TRADEARENA_OPERATOR_CPU_REQUEST": args.cpu_request,
        }
        log = (workdir / "operator.log").open("wb")
        operator = subprocess.Popen(
            [str(Path(sys.executable).parent / "tradearena"), "operator"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz") as r:
                    if json.loads(r.read())["rebuilt"]:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or operator.poll() is not None:
                raise SystemExit(f"operator did not start; see {workdir / 'operator.log'}")
            time.sleep(0.2)
        time.sleep(1)  # peering settles
        load_before = os.getloadavg()
        result = asyncio.run(
            run_matches(
                cluster.kubeconfig,
                namespace,
                args.matches,
                args.concurrency,
                args.timeout,
                operator.pid,
            )
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
            metrics = r.read().decode()
        pods = cluster.kubectl_json("get", "pods", "-n", namespace, timeout=300)["items"]
        ports_per_node: dict[str, set[int]] = {}
        for pod in pods:
            node = pod["spec"].get("nodeName", "")
            port = pod["spec"]["containers"][0]["ports"][0]["hostPort"]
            ports_per_node.setdefault(node, set()).add(port)
        result.update(
            {
                "pods": len(pods),
                "host_port_clash_on_a_node": sum(len(v) for v in ports_per_node.values())
                != len(pods),
                "reconcile_errors": next(
                    (
                        line.split()[-1]
                        for line in metrics.splitlines()
                        if line.startswith("tradearena_operator_reconcile_errors_total")
                    ),
                    None,
                ),
                "nodes": args.nodes,
                "cpu_request": args.cpu_request,
                "load_avg_before": [round(x, 2) for x in load_before],
                "load_avg_after": [round(x, 2) for x in os.getloadavg()],
                "machine": f"{platform.machine()}, {os.cpu_count()} cpu, Python {platform.python_version()}",
            }
        )
        print(json.dumps(result, indent=2))
        ok = result["all_ready_s"] is not None and result["all_ready_s"] <= 60
        print(
            f"target 1,000 Ready within 60 s: {'met' if ok else 'MISSED'}; "
            f"operator peak RSS {result['operator_rss_mb_peak']} MB (target < 250)",
            file=sys.stderr,
        )
        return 0
    finally:
        if operator is not None and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()
        cluster.delete()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
