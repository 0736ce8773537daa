"""Middlewares, outermost first: tracing, metrics, errors (everything becomes a problem),
rate limit."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from lobby.http.api import Handler
from lobby.http.principal import bearer_token, verified_claims
from lobby.http.problems import (
    MEDIA_TYPE,
    Problem,
    ProblemError,
    ServerBusyError,
    from_http_status,
    too_many,
)
from lobby.state import BAD_INPUT, LIMITER, METRICS, SETTINGS
from tradearena import tracing
from tradearena.contracts.tracing import TRACEPARENT_HEADER

log = logging.getLogger("lobby.http")

# Documents and probes are never rate-limited.
EXEMPT = frozenset(
    {"/api/v1/openapi.json", "/api/v1/.well-known/jwks.json", "/.well-known/jwks.json"}
)
_KEEP_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
SOCKETIO_PATH = "/socket.io/"


def client_ip(request: web.Request) -> str:
    if request.app[SETTINGS].trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.remote or "unknown"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=problem.body(), status=problem.status, content_type=MEDIA_TYPE, headers=headers
    )


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# Not traced: probes, metrics and Socket.IO's transport requests.
_UNTRACED_PREFIXES = ("/healthz", "/readyz", "/metrics", SOCKETIO_PATH)
_tracer = tracing.tracer("lobby.http")


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A server span per request, continuing the caller's `traceparent` if it sent one."""
    if not tracing.enabled() or request.path.startswith(_UNTRACED_PREFIXES):
        return await handler(request)
    route = _route(request)
    with _tracer.start_as_current_span(
        f"{request.method} {route}",
        context=tracing.context_of(request.headers.get(TRACEPARENT_HEADER)),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as span:
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        route = _route(request)
        metrics = request.app[METRICS]
        metrics.requests.labels(route, request.method, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - start)


# The longest request target the lobby answers. The HTTP parser reads lines up to
# `PARSER_LINE_LIMIT` (lobby.app), so a longer target still gets a problem document here
# (400 `uri_too_long`) instead of the parser's plain-text 400 that echoes the input.
MAX_TARGET_BYTES = 8190
PARSER_LINE_LIMIT = 65536


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if len(request.raw_path) > MAX_TARGET_BYTES:
        too_long = Problem(
            400, "uri_too_long", f"the request target exceeds {MAX_TARGET_BYTES} bytes"
        )
        return problem_response(too_long, {})
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(exc.problem, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: exc.headers[k] for k in _KEEP_HEADERS if k in exc.headers}
        return problem_response(from_http_status(exc.status, exc.reason), headers)
    except ServerBusyError:
        busy = Problem(503, "server_busy", "too many logins in progress; retry shortly")
        return problem_response(busy, {"Retry-After": "1"})
    except (
        RedisConnectionError,
        RedisTimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        ConnectionError,
        TimeoutError,
    ) as exc:
        log.warning(
            "dependency unavailable",
            extra={"route": _route(request), "error": type(exc).__name__},
        )
        down = Problem(503, "dependency_unavailable", "a backing service is unavailable")
        return problem_response(down, {"Retry-After": "1"})
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if request.path.startswith(SOCKETIO_PATH):
            # Engine.IO raises out of its transport on a packet it cannot decode: bad
            # input, counted and logged bounded (no traceback, no packet bytes).
            request.app[BAD_INPUT].report("socketio", exc, "engine.io transport")
            return problem_response(Problem(400, "malformed_packet", "undecodable packet"))
        log.exception("unhandled error", extra={"route": _route(request), "method": request.method})
        return problem_response(Problem(500, "internal_error", "internal error"))


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not path.startswith("/api/v1/") or path in EXEMPT:
        return await handler(request)
    settings = request.app[SETTINGS]
    subject, limit, bucket = f"ip:{client_ip(request)}", settings.rate_limit_ip, "ip"
    if bearer_token(request) is not None:
        try:
            claims = verified_claims(request)
        except ProblemError:
            pass  # the handler answers 401; counted per IP meanwhile
        else:
            subject, limit, bucket = f"user:{claims['sub']}", settings.rate_limit_user, "user"
    try:
        decision = await request.app[LIMITER].check(bucket, subject, limit, settings.rate_window_s)
    except RedisError as exc:  # fail open: Redis trouble must not take the API down
        log.warning("rate limiter unavailable", extra={"error": type(exc).__name__})
        return await handler(request)
    if not decision.allowed:
        request.app[METRICS].rate_limited.labels(bucket).inc()
        raise too_many("rate_limited", "too many requests; slow down", decision.retry_after_s)
    return await handler(request)
