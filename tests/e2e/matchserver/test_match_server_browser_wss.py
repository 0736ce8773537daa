"""Headless Chromium reaches a match server over wss:// by name with nothing but its own
options: `--host-resolver-rules` for the name and `--ignore-certificate-errors-spki-list`
for the throwaway CA (tests/js/chromium.mjs, shared with browser_match.mjs). No system
file or trust store changes. Real match server, real Redis."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradearena.launcher.localservices import free_port
from tradearena.testing.browser import CHROMIUM, JS
from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.tls import ServerCertificate, ThrowawayCA

HOST = "127-0-0-1.play.test"
RULES = "MAP *.play.test 127.0.0.1"


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA.create(tmp_path / "ca")


@pytest.fixture
def leaf(ca: ThrowawayCA) -> ServerCertificate:
    return ca.issue(["*.play.test"])


@pytest.fixture
def server(tmp_path: Path, redis_url: str, leaf: ServerCertificate) -> Iterator[MatchServerProcess]:
    port = free_port()
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-browser-wss",
        ("alice",),
        port=port,
        # The page's origin is the server's own here (a lobby page in production).
        env_extra={"TRADEARENA_CORS_ORIGINS": json.dumps([f"https://{HOST}:{port}"])},
        tls=(leaf.cert_file, leaf.key_file),
        host_name=HOST,
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def browse(url: str, *options: str) -> tuple[int, dict[str, Any]]:
    assert CHROMIUM.is_file(), "no /usr/bin/chromium: run scripts/bootstrap.sh as root"
    assert (JS / "node_modules" / "playwright-core").is_dir(), "run scripts/bootstrap.sh (npm ci)"
    done = subprocess.run(
        ["node", str(JS / "browser_wss.mjs"), url, *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1])
    return done.returncode, result


@pytest.mark.parametrize("trusted", ["ca", "leaf"])
def test_chromium_opens_wss_with_its_resolver_rule_and_the_spki_hash(
    server: MatchServerProcess, ca: ThrowawayCA, leaf: ServerCertificate, trusted: str
) -> None:
    spki = ca.spki_sha256 if trusted == "ca" else leaf.spki_sha256
    code, result = browse(server.url, "--host-resolver-rules", RULES, "--spki", spki)
    assert code == 0, result
    assert result["healthz"] == {"status": 200, "body": {"status": "ok"}}
    assert result["open"].startswith("0{")  # Engine.IO's open packet
    assert json.loads(result["open"][1:])["sid"]


def test_without_the_spki_hash_chromium_refuses_the_certificate(
    server: MatchServerProcess,
) -> None:
    code, result = browse(server.url, "--host-resolver-rules", RULES)
    assert code == 1
    assert "ERR_CERT_AUTHORITY_INVALID" in result["error"]
