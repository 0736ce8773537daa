"""Which browser pages may talk to the match server: the lobby's origins only.

A browser sends `Origin` with every WebSocket handshake and every cross-origin
request, so a page from anywhere else could open a socket with a token it got hold
of and play in the player's name. Requests whose `Origin` is not one of the lobby's
are refused with 403 `origin_not_allowed` before Engine.IO sees them (counted through
`on_refused`). Requests without `Origin` come from bots, native clients and
socket.io-client under Node, not from a browser page: they pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

REFUSED = "origin_not_allowed"
MESSAGE = "this page's origin may not connect to the match server"


def origin_guard(allowed: Iterable[str], on_refused: Callable[[str], None]) -> Middleware:
    """Refuse requests whose `Origin` is present and not exactly one of `allowed`."""
    origins = frozenset(allowed)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in origins:
            on_refused(REFUSED)
            return web.json_response({"code": REFUSED, "message": MESSAGE}, status=403)
        return await handler(request)

    return guard
