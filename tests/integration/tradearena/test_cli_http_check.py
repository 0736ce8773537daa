"""`tradearena http-check`: what the chart's `helm test` pod runs (the image has no curl)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tradearena.launcher.cli import main


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_ready_endpoint_passes(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["http-check", f"{server}/readyz"]) == 0
    assert "answered 200" in capsys.readouterr().out


def test_a_failing_endpoint_fails_after_its_retries(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["http-check", "--retries", "1", f"{server}/other"]) == 1
    assert "failed after 2 attempt(s): HTTP 503" in capsys.readouterr().err


def test_only_http_urls_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["http-check", "file:///etc/passwd"])
    assert exc.value.code == 2
    assert "an http:// or https:// URL" in capsys.readouterr().err
