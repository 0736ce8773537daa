"""The web client: a small single-page app served by the lobby.

    GET /                       index.html
    GET /static/{name}          the client's own files (app.js, its modules, styles.css)
    GET /static/screens/{name}  the modules of its screens (leaderboards, history, ...)
    GET /static/vendor/{name}   the stock socket.io-client browser bundle (and its licence)

Files come from the package (`lobby/web/`), are read once and served from
memory with a strong ETag (a matching `If-None-Match` gets 304). The index
and the client's own files are `no-cache` (always revalidated, so a new
release is picked up at once); the vendored bundle is pinned and may be
cached for a day.

Every answer carries a strict Content-Security-Policy: scripts, styles,
images and fonts only from the lobby itself, no inline code, no frames.
`connect-src` also allows `ws: wss: http: https:` because the client talks to
match servers, which listen on their own ports (locally: other ports of the
same host; on Kubernetes: game nodes' addresses that the lobby only learns
when a match starts), and CSP has no way to name "any port of this host" that
also survives a proxy or a node address. Those connections are authenticated
by the per-match token, not by origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from aiohttp import web
from pydantic import StringConstraints

from lobby.http.api import Operation, path_of
from lobby.http.assets import Asset, load_folder
from lobby.http.problems import problem
from lobby.http.schemas import Body
from lobby.state import API, ASSETS, VENDOR_ASSETS

ROOT = Path(__file__).parents[1] / "web"
VENDOR = ROOT / "vendor"
SCREENS = ROOT / "screens"
SCREENS_PREFIX = "screens/"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' ws: wss: http: https:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
NO_CACHE = "no-cache"
VENDOR_CACHE = "public, max-age=86400"

FileName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")]


class StaticPath(Body):
    name: FileName


def _matches(header: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return etag in tags or "*" in tags


def _serve(request: web.Request, asset: Asset) -> web.Response:
    headers = {
        **SECURITY_HEADERS,
        "ETag": asset.etag,
        "Cache-Control": asset.cache_control,
    }
    if _matches(request.headers.get("If-None-Match", ""), asset.etag):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=asset.body, headers=headers)
    response.headers["Content-Type"] = asset.content_type
    return response


def _lookup(assets: dict[str, Asset], name: str) -> Asset:
    asset = assets.get(name)
    if asset is None:
        raise problem(404, "not_found", f"no such file: {name}")
    return asset


async def index(request: web.Request) -> web.Response:
    return _serve(request, _lookup(request.app[ASSETS], "index.html"))


async def static(request: web.Request) -> web.Response:
    name = path_of(request, StaticPath).name
    return _serve(request, _lookup(request.app[ASSETS], name))


async def screen(request: web.Request) -> web.Response:
    name = path_of(request, StaticPath).name
    return _serve(request, _lookup(request.app[ASSETS], SCREENS_PREFIX + name))


async def vendor(request: web.Request) -> web.Response:
    name = path_of(request, StaticPath).name
    return _serve(request, _lookup(request.app[VENDOR_ASSETS], name))


_ANY = ("*/*", {"type": "string"})
_HTML = ("text/html", {"type": "string"})
_DESCRIPTION = (
    "The web client's own files: no-cache, with an ETag (a matching If-None-Match gets 304)."
)


def add_routes(app: web.Application) -> None:
    screens = load_folder(SCREENS, NO_CACHE)
    app[ASSETS] = {
        **load_folder(ROOT, NO_CACHE),
        **{SCREENS_PREFIX + name: asset for name, asset in screens.items()},
    }
    app[VENDOR_ASSETS] = load_folder(VENDOR, VENDOR_CACHE)
    api = app[API]
    api.add(
        app,
        Operation(
            "GET",
            "/",
            index,
            "webIndex",
            "The web client",
            "web",
            responses={},
            rate_limited=False,
            errors=(404,),
            raw_responses={200: _HTML},
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/static/{name}",
            static,
            "webStatic",
            "A file of the web client",
            "web",
            responses={},
            path_params=StaticPath,
            rate_limited=False,
            errors=(404,),
            raw_responses={200: _ANY},
            description=_DESCRIPTION,
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/static/screens/{name}",
            screen,
            "webScreen",
            "A screen module of the web client",
            "web",
            responses={},
            path_params=StaticPath,
            rate_limited=False,
            errors=(404,),
            raw_responses={200: _ANY},
            description=_DESCRIPTION,
        ),
    )
    api.add(
        app,
        Operation(
            "GET",
            "/static/vendor/{name}",
            vendor,
            "webVendor",
            "A vendored browser library of the web client (socket.io-client)",
            "web",
            responses={},
            path_params=StaticPath,
            rate_limited=False,
            errors=(404,),
            raw_responses={200: _ANY},
        ),
    )
