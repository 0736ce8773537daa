"""Register and login throughput of the lobby against real PostgreSQL and Redis.

    .venv/bin/python bench/lobby_auth.py            # defaults: 400 users, 10 s of logins

Starts its own PostgreSQL and Redis, migrates, runs `tradearena lobby` as a
separate process with production argon2id parameters (t=2, m=19 MiB, p=1),
then drives it with concurrent HTTP clients: first registrations, then logins
for a fixed time, once per argon2 thread-pool size (`--hash-workers`), then
refresh-token rotations (the path a returning session takes: no argon2).
Prints one line per phase: requests/s, latency p50/p99, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from argon2 import PasswordHasher, Type

from lobby.migrate import apply_migrations
from tradearena.launcher.localservices import LocalPostgres, LocalRedis, free_port
from tradearena.tokens import generate_private_key_pem

PASSWORD = "bench passphrase 123"


async def _drive(
    base: str, jobs: list[tuple[str, dict[str, str]]], concurrency: int, seconds: float | None
) -> tuple[int, int, list[float], float]:
    """POST the jobs with `concurrency` clients (cycling when `seconds` is set)."""
    latencies: list[float] = []
    errors = 0
    done = 0
    index = 0
    deadline = time.monotonic() + seconds if seconds else None
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:

        async def worker() -> None:
            nonlocal index, errors, done
            while True:
                if deadline is None:
                    if index >= len(jobs):
                        return
                elif time.monotonic() >= deadline:
                    return
                path, body = jobs[index % len(jobs)]
                index += 1
                start = time.perf_counter()
                async with session.post(path, json=body) as resp:
                    await resp.read()
                    ok = resp.status in (200, 201)
                latencies.append(time.perf_counter() - start)
                done += 1
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done, errors, latencies, elapsed


async def _drive_refresh(
    base: str, tokens: list[str], concurrency: int, seconds: float
) -> tuple[int, int, list[float], float]:
    """Rotate refresh tokens: client w owns users w, w+C, ... so no token is ever reused."""
    latencies: list[float] = []
    errors = 0
    done = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as session:

        async def worker(w: int) -> None:
            nonlocal errors, done
            mine = list(range(w, len(tokens), concurrency))
            turn = 0
            while mine and time.monotonic() < deadline:
                user = mine[turn % len(mine)]
                turn += 1
                start = time.perf_counter()
                async with session.post(
                    "/api/v1/auth/refresh", json={"refresh_token": tokens[user]}
                ) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 200:
                        tokens[user] = body["refresh_token"]
                    else:
                        errors += 1
                latencies.append(time.perf_counter() - start)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done, errors, latencies, elapsed


async def _probe(base: str, seconds: float) -> list[float]:
    """/healthz latency while the login load runs: shows whether the event loop stalls."""
    out: list[float] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(base_url=base) as session:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            async with session.get("/healthz") as resp:
                await resp.read()
            out.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)  # pacing of the probe, not synchronisation
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


async def _login_all(base: str, users: int) -> list[str]:
    async with aiohttp.ClientSession(base_url=base) as session:
        out = []
        for i in range(users):
            async with session.post(
                "/api/v1/auth/login", json={"username": f"bench{i}", "password": PASSWORD}
            ) as resp:
                out.append((await resp.json())["refresh_token"])
        return out


def _report(name: str, done: int, errors: int, lat: list[float], elapsed: float) -> str:
    lat = sorted(lat)
    p50 = statistics.median(lat) * 1000 if lat else 0
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0
    line = (
        f"{name:<28} {done / elapsed:8.1f} req/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
        f"({done} requests, {errors} errors, {elapsed:.1f} s)"
    )
    print(line, flush=True)
    return line


async def _start_lobby(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tradearena.launcher.cli",
        "lobby",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return proc
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the lobby did not start")


def _calibrate(rounds: int = 10) -> float:
    """Seconds per argon2id verify on one core, measured in this process."""
    hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1, type=Type.ID)
    encoded = hasher.hash(PASSWORD)
    start = time.perf_counter()
    for _ in range(rounds):
        hasher.verify(encoded, PASSWORD)
    return (time.perf_counter() - start) / rounds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--hash-workers", default=f"1,{os.cpu_count() or 1}", help="pool sizes to compare"
    )
    args = parser.parse_args()
    base_dir = Path(tempfile.mkdtemp(prefix="tradearena-bench-"))
    os.chmod(base_dir, 0o755)
    pg = LocalPostgres(base_dir / "pg")
    rd = LocalRedis(base_dir / "redis", appendonly=False)
    pg.start()
    rd.start()
    try:
        apply_migrations(pg.dsn)
        key = base_dir / "signing.pem"
        key.write_bytes(generate_private_key_pem())
        port = free_port()
        print(
            f"# {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}; argon2id t=2 m=19456 KiB p=1; "
            f"{args.concurrency} concurrent clients in one process on the same machine",
            flush=True,
        )
        per_verify = _calibrate()
        print(
            f"# argon2id verify: {per_verify * 1000:.1f} ms on one core -> ceiling "
            f"{1 / per_verify:.0f} logins/s per core, {(os.cpu_count() or 1) / per_verify:.0f} "
            f"on {os.cpu_count()} cores (load average now {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        registered = False
        hash_workers = [int(w) for w in args.hash_workers.split(",")]
        for workers in hash_workers:
            env = {
                **os.environ,
                "TRADEARENA_DATABASE_URL": pg.dsn,
                "TRADEARENA_REDIS_URL": rd.url,
                "TRADEARENA_SIGNING_KEY_FILE": str(key),
                "TRADEARENA_PORT": str(port),
                "TRADEARENA_HASH_WORKERS": str(workers),
                "TRADEARENA_LOG_LEVEL": "WARNING",
                # Load from one IP: lift the per-IP budgets that would stop an attacker.
                "TRADEARENA_RATE_LIMIT_IP": "100000000",
                "TRADEARENA_REGISTER_LIMIT_IP": "100000000",
                "TRADEARENA_LOGIN_MAX_FAILURES_IP": "100000000",
            }
            proc = await _start_lobby(env, port)
            base = f"http://127.0.0.1:{port}"
            try:
                if not registered:
                    jobs = [
                        ("/api/v1/auth/register", {"username": f"bench{i}", "password": PASSWORD})
                        for i in range(args.users)
                    ]
                    _report(
                        f"register (workers={workers})",
                        *await _drive(base, jobs, args.concurrency, None),
                    )
                    registered = True
                jobs = [
                    ("/api/v1/auth/login", {"username": f"bench{i}", "password": PASSWORD})
                    for i in range(args.users)
                ]
                result, probes = await asyncio.gather(
                    _drive(base, jobs, args.concurrency, args.seconds),
                    _probe(base, args.seconds),
                )
                _report(f"login (workers={workers})", *result)
                print(
                    f"{'':<28} /healthz meanwhile: p50 {_pct(probes, 0.5):.1f} ms, "
                    f"p99 {_pct(probes, 0.99):.1f} ms ({len(probes)} probes)",
                    flush=True,
                )
                if workers == hash_workers[-1]:
                    refresh_tokens = await _login_all(base, min(args.users, 64))
                    _report(
                        "refresh (no argon2)",
                        *await _drive_refresh(base, refresh_tokens, args.concurrency, args.seconds),
                    )
            finally:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
    finally:
        rd.stop()
        pg.stop("fast")
        shutil.rmtree(base_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
