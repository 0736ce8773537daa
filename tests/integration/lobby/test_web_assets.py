"""How the lobby serves the web client: files, types, cache headers, CSP, 304, refusals."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import lobby.http.webclient
from lobby.http.api import Api
from lobby.http.middleware import error_middleware
from lobby.state import API

ROOT = lobby.http.webclient.ROOT
CHARTS = "lightweight-charts-5.2.1.standalone.production.mjs"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[error_middleware])
    app[API] = Api("test", "0")
    lobby.http.webclient.add_routes(app)
    async with TestClient(TestServer(app)) as c:
        yield c


def test_the_package_holds_the_client_and_the_pinned_socketio_bundle() -> None:
    for name in ("index.html", "app.js", "api.js", "chart.js", "styles.css", "favicon.svg"):
        assert (ROOT / name).is_file(), name
    bundle = (ROOT / "vendor" / "socket.io.min.js").read_text()
    assert bundle.startswith("/*!\n * Socket.IO v4.8.1\n")
    assert "MIT" in (ROOT / "vendor" / "socket.io-client.LICENSE").read_text()


def test_the_package_holds_lightweight_charts_with_its_licence_and_notice() -> None:
    bundle = (ROOT / "vendor" / CHARTS).read_text()
    assert bundle.startswith("/*!\n * @license\n * TradingView Lightweight Charts™ v5.2.1\n")
    assert "Apache License" in (ROOT / "vendor" / "lightweight-charts.LICENSE").read_text()
    notice = (ROOT / "vendor" / "lightweight-charts.NOTICE").read_text()
    assert "TradingView, Inc." in notice and "https://www.tradingview.com/" in notice
    # The chart imports the bundle under its versioned name; the page shows the notice
    # and the link the licence asks for (the library's own logo needs inline style).
    chart = (ROOT / "chart.js").read_text()
    assert f'from "./vendor/{CHARTS}";' in chart
    assert "attributionLogo: false" in chart
    html = (ROOT / "index.html").read_text()
    assert 'data-testid="chart-attribution"' in html
    assert "Copyright (c) 2023 TradingView, Inc." in html
    assert 'href="https://www.tradingview.com/"' in html


def test_the_page_loads_only_its_own_files() -> None:
    html = (ROOT / "index.html").read_text()
    refs = re.findall(r'\ssrc="([^"]+)"', html) + re.findall(r'<link [^>]*href="([^"]+)"', html)
    assert len(refs) >= 4, html
    assert all(ref.startswith("/static/") for ref in refs), refs
    # The one link away is the attribution the chart library's licence asks for.
    assert re.findall(r'<a [^>]*href="([^"]+)"', html) == ["https://www.tradingview.com/"]
    assert "<script>" not in html and "style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "no inline event handlers"
    # Every module import in the scripts is relative (same origin) and names a served file
    # (a screen's module may import the client's own, one folder up).
    for script in [*ROOT.glob("*.js"), *(ROOT / "screens").glob("*.js")]:
        text = script.read_text()
        for target in re.findall(r'^import [^;]*? from "([^"]+)";', text, re.M | re.S):
            assert target.startswith(("./", "../")), (script, target)
            file = (script.parent / target).resolve()
            assert file.is_file() and file.is_relative_to(ROOT.resolve()), (script, target)


async def test_index_and_static_files_with_types_csp_and_cache_headers(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert 'data-testid="screen-auth"' in await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self' ws: wss: http: https:" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-cache"

    for path, kind, cache in (
        ("/static/app.js", "text/javascript; charset=utf-8", "no-cache"),
        ("/static/styles.css", "text/css; charset=utf-8", "no-cache"),
        ("/static/favicon.svg", "image/svg+xml; charset=utf-8", "no-cache"),
        ("/static/screens/leaderboard.js", "text/javascript; charset=utf-8", "no-cache"),
        (
            "/static/vendor/socket.io.min.js",
            "text/javascript; charset=utf-8",
            "public, max-age=86400",
        ),
        (f"/static/vendor/{CHARTS}", "text/javascript; charset=utf-8", "public, max-age=86400"),
        (
            "/static/vendor/lightweight-charts.NOTICE",
            "text/plain; charset=utf-8",
            "public, max-age=86400",
        ),
    ):
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"] == kind, path
        assert resp.headers["Cache-Control"] == cache, path
        assert resp.headers["Content-Security-Policy"] == csp
        etag = resp.headers["ETag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304, path
        assert await again.read() == b""
        other = await client.get(path, headers={"If-None-Match": '"nope"'})
        assert other.status == 200, path


async def test_unknown_and_malformed_names_are_problems(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.get("/static/missing.js")
    assert resp.status == 404
    assert (await resp.json())["code"] == "not_found"
    for path in ("/static/..%2Fweb.py", "/static/.hidden", "/static/vendor/..%2F..%2Fapp.py"):
        resp = await client.get(path)
        assert resp.status in (404, 422), path
        assert resp.headers["Content-Type"] == "application/problem+json", path
    # The vendor folder is not a file, and the client's files are not in the vendor folder.
    assert (await client.get("/static/vendor")).status == 404
    assert (await client.get("/static/vendor/app.js")).status == 404
    # The screens' modules are only under screens/, and the client's files not there.
    assert (await client.get("/static/leaderboard.js")).status == 404
    assert (await client.get("/static/screens/app.js")).status == 404
