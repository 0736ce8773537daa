"""Container probes (httpGet, tcpSocket, exec) and the loop that applies a probe's
timing and thresholds, as the kubelet's prober does."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping

from tradearena.testing.node.podspec import ProbePlan

log = logging.getLogger(__name__)


async def http_get(
    host: str,
    port: int,
    path: str,
    *,
    scheme: str,
    headers: tuple[tuple[str, str], ...],
    timeout_s: float,
) -> tuple[bool, str]:
    context = None
    if scheme.upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            try:
                names = {k.lower() for k, _ in headers}
                lines = [f"GET {path or '/'} HTTP/1.1"]
                if "host" not in names:
                    lines.append(f"Host: {host}:{port}")
                if "user-agent" not in names:
                    lines.append("User-Agent: kube-probe/1.37")
                lines += [f"{k}: {v}" for k, v in headers]
                lines.append("Connection: close")
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                status = await reader.readline()
            finally:
                writer.close()
    except (TimeoutError, OSError, ssl.SSLError) as exc:
        return False, f"Get {scheme.lower()}://{host}:{port}{path}: {exc or type(exc).__name__}"
    parts = status.decode("latin-1").split()
    code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def tcp(host: str, port: int, timeout_s: float) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
    except (TimeoutError, OSError) as exc:
        return False, f"dial tcp {host}:{port}: {exc or 'timeout'}"
    return True, ""


async def exec_in(
    pid: int, command: tuple[str, ...], uid: int, gid: int, env: Mapping[str, str], timeout_s: float
) -> tuple[bool, str]:
    """Run `command` inside the container of `pid` (its mount, network and UTS
    namespaces, root and working directory) as the container's user."""
    argv = [
        "nsenter",
        f"--target={pid}",
        "--mount",
        "--net",
        "--uts",
        "--root",
        "--wd",
        f"--setuid={uid}",
        f"--setgid={gid}",
        "--",
        *command,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return False, f"command timed out after {timeout_s}s"
    if proc.returncode == 0:
        return True, ""
    return False, f"command exited {proc.returncode}: {out.decode(errors='replace')[-300:]}"


Check = Callable[[], Awaitable[tuple[bool, str]]]


def checker(
    plan: ProbePlan, pod_ip: str, exec_check: Callable[[ProbePlan], Awaitable[tuple[bool, str]]]
) -> Check:
    host = plan.host or pod_ip

    async def check() -> tuple[bool, str]:
        if plan.kind == "http":
            return await http_get(
                host,
                plan.port,
                plan.path,
                scheme=plan.scheme,
                headers=plan.headers,
                timeout_s=plan.timeout,
            )
        if plan.kind == "tcp":
            return await tcp(host, plan.port, plan.timeout)
        return await exec_check(plan)

    return check


async def run_probe(
    name: str,
    plan: ProbePlan,
    check: Check,
    on_result: Callable[[bool], None],
    *,
    until_success: bool = False,
) -> None:
    """Probe forever (or until the first success), calling `on_result` each time the
    result flips after its threshold; the first result is reported once reached."""
    await asyncio.sleep(plan.initial_delay)
    successes = failures = 0
    current: bool | None = None
    while True:
        ok, message = await check()
        if ok:
            successes, failures = successes + 1, 0
            if successes >= plan.success_threshold and current is not True:
                current = True
                on_result(True)
                if until_success:
                    return
        else:
            successes, failures = 0, failures + 1
            log.debug("%s probe failed: %s", name, message)
            if failures >= plan.failure_threshold and current is not False:
                current = False
                log.info("%s probe failed %d times: %s", name, failures, message)
                on_result(False)
        await asyncio.sleep(plan.period)
