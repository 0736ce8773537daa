"""A TLS-terminating stand-in for the ingress controller, on the running test node.

Production puts an ingress controller (ingress-nginx) in front of the lobby: it reads
the chart's `Ingress` (host, TLS Secret, backend Service) and terminates HTTPS. This
reads the same `Ingress` object and does the same for one host: TLS with the Secret's
certificate, then a byte pipe to the backend Service's cluster IP (which the node
forwards to a ready lobby pod). WebSockets pass through unchanged. Unlike
ingress-nginx it adds no `X-Forwarded-For` (it never parses HTTP), so the lobby sees
the node as every client's address.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradearena.testing.kube import KubeCluster

log = logging.getLogger(__name__)
CHUNK = 64 * 1024


@dataclass(frozen=True)
class IngressRoute:
    host: str
    secret: str
    backend_host: str  # the Service's cluster IP
    backend_port: int


def route_of(cluster: KubeCluster, namespace: str, name: str) -> IngressRoute:
    """What an ingress controller reads from one `Ingress`: its first rule and TLS entry."""
    ingress = cluster.kubectl_json("-n", namespace, "get", "ingress", name)
    rule = ingress["spec"]["rules"][0]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    (tls,) = [t for t in ingress["spec"].get("tls", []) if rule["host"] in t.get("hosts", [])]
    service = cluster.kubectl_json("-n", namespace, "get", "service", backend["name"])
    port = backend["port"]
    ports = service["spec"]["ports"]
    if "name" in port:
        (number,) = [p["port"] for p in ports if p.get("name") == port["name"]]
    else:
        number = port["number"]
    return IngressRoute(
        host=rule["host"],
        secret=tls["secretName"],
        backend_host=service["spec"]["clusterIP"],
        backend_port=int(number),
    )


def _context(cluster: KubeCluster, namespace: str, secret: str) -> ssl.SSLContext:
    data: dict[str, Any] = cluster.kubectl_json("-n", namespace, "get", "secret", secret)["data"]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(base64.b64decode(data["tls.crt"]))
        key.write_bytes(base64.b64decode(data["tls.key"]))
        context.load_cert_chain(cert, key)
    return context


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class IngressStandIn:
    """Serves `https://<host>` at `listen` for the lifetime of a thread of its own."""

    def __init__(
        self, cluster: KubeCluster, namespace: str, ingress: str, listen: tuple[str, int]
    ) -> None:
        self.route = route_of(cluster, namespace, ingress)
        self.context = _context(cluster, namespace, self.route.secret)
        self.listen = listen
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.connections = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.route.backend_host, self.route.backend_port
            )
        except OSError as exc:
            log.warning("ingress stand-in: backend unreachable: %s", exc)
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _start(self) -> None:
        host, port = self.listen
        self._server = await asyncio.start_server(
            self._handle, host, port, ssl=self.context, reuse_address=True
        )

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Open connections (their pipes) end with the stand-in, as with a controller.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()
