"""The kubelet's container-log endpoint, so that ``kubectl logs`` works for pods on
the node: HTTPS (a self-signed certificate; the API server does not verify kubelets
here) on the node address, ``GET /containerLogs/{namespace}/{pod}/{container}``
with ``tailLines``, ``limitBytes`` and ``follow``. stdout comes before stderr (the
node keeps them in separate files)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

LogDir = Callable[[str, str, str], Path | None]
STREAMS = ("stdout.log", "stderr.log")


def self_signed(directory: Path, host: str) -> ssl.SSLContext:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    if not cert.is_file():
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                "-subj", "/CN=tradearena-node", "-addext", f"subjectAltName=IP:{host}",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def app(log_dir: LogDir) -> web.Application:
    async def container_logs(request: web.Request) -> web.StreamResponse:
        m = request.match_info
        directory = log_dir(m["namespace"], m["pod"], m["container"])
        if directory is None:
            raise web.HTTPNotFound(text=f"container {m['container']} of {m['pod']} not found")
        query = request.query
        tail = int(query["tailLines"]) if "tailLines" in query else None
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        data = b"".join(
            _tail((directory / s).read_bytes(), tail) for s in STREAMS if (directory / s).is_file()
        )
        if limit is not None:
            data = data[:limit]
        if query.get("follow") not in ("true", "1"):
            return web.Response(body=data, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(data)
        offsets = {
            s: (directory / s).stat().st_size if (directory / s).is_file() else 0 for s in STREAMS
        }
        while directory.is_dir():
            for s in STREAMS:
                path = directory / s
                if path.is_file() and path.stat().st_size > offsets[s]:
                    with path.open("rb") as f:
                        f.seek(offsets[s])
                        chunk = f.read()
                    offsets[s] += len(chunk)
                    await response.write(chunk)
            await asyncio.sleep(0.2)
        return response

    application = web.Application()
    application.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    return application


async def serve(host: str, port: int, log_dir: LogDir, cert_dir: Path) -> tuple[web.AppRunner, int]:
    """Start the endpoint; returns the runner (for cleanup) and the bound port."""
    context = await asyncio.to_thread(self_signed, cert_dir, host)
    runner = web.AppRunner(app(log_dir), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound: int = sock.getsockname()[1]
    await web.SockSite(runner, sock, ssl_context=context).start()
    return runner, bound
