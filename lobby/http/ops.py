"""Probes, metrics and public documents: /healthz, /readyz, /metrics, JWKS, OpenAPI."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from lobby.http.api import Operation, reply
from lobby.http.problems import problem
from lobby.http.schemas import Health, Ready
from lobby.state import API, DB, METRICS, REDIS, VERIFIER

log = logging.getLogger("lobby.http.ops")
PROBE_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    """The process is alive (no dependency checked)."""
    return reply(Health(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: PostgreSQL and Redis answer."""
    app = request.app
    checks: dict[str, str] = {}

    async def postgres() -> None:
        await app[DB].fetchval("SELECT 1")

    async def redis() -> None:
        await app[REDIS].ping()

    for name, probe in (("postgres", postgres), ("redis", redis)):
        try:
            await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready
            checks[name] = f"unavailable: {type(exc).__name__}"
    if any(v != "ok" for v in checks.values()):
        log.warning("not ready", extra={"checks": checks})
        raise problem(503, "not_ready", "a dependency is unavailable", checks=checks)
    return reply(Ready(status="ready", checks=checks))


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def jwks(request: web.Request) -> web.Response:
    return web.json_response(
        request.app[VERIFIER].jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[API].document())


_JWKS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kty", "crv", "x", "kid"],
                "properties": {
                    "kty": {"const": "OKP"},
                    "crv": {"const": "Ed25519"},
                    "x": {"type": "string"},
                    "kid": {"type": "string"},
                    "use": {"const": "sig"},
                    "alg": {"const": "EdDSA"},
                },
            },
        }
    },
}


def add_routes(app: web.Application) -> None:
    api = app[API]
    api.add(
        app,
        Operation(
            "GET",
            "/healthz",
            healthz,
            "healthz",
            "Liveness",
            "ops",
            responses={200: Health},
            rate_limited=False,
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/readyz",
            readyz,
            "readyz",
            "Readiness: PostgreSQL and Redis reachable",
            "ops",
            responses={200: Ready},
            errors=(503,),
            rate_limited=False,
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/metrics",
            metrics,
            "metrics",
            "Prometheus metrics",
            "ops",
            responses={},
            rate_limited=False,
            raw_responses={200: ("text/plain", {"type": "string"})},
        ),
    )
    for path, op_id in (
        ("/api/v1/.well-known/jwks.json", "jwks"),
        ("/.well-known/jwks.json", "jwksRoot"),
    ):
        api.add(
            app,
            Operation(
                "GET",
                path,
                jwks,
                op_id,
                "Public keys that verify access and match tokens",
                "auth",
                responses={},
                rate_limited=False,
                raw_responses={200: ("application/json", _JWKS_SCHEMA)},
            ),
        )
    api.add(
        app,
        Operation(
            "GET",
            "/api/v1/openapi.json",
            openapi,
            "openapi",
            "This document",
            "ops",
            responses={},
            rate_limited=False,
            raw_responses={200: ("application/json", {"type": "object"})},
        ),
    )
