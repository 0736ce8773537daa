"""`make cluster` (python -m tradearena.testing.kube_platform up): the developer's third
command starts the Kubernetes path, prints where to play, and removes it all on SIGTERM."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tradearena.testing.paths import REPO

pytestmark = [pytest.mark.k8s, pytest.mark.slow, pytest.mark.timeout(600)]


def _value(lines: list[str], label: str) -> str:
    (line,) = [line for line in lines if line.startswith(f"{label}:")]
    return line.split(":", 1)[1].strip()


def test_make_cluster_serves_the_lobby_over_https_and_cleans_up() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ta-dev-")) / "cluster"
    index = 1 + os.getpid() % 249  # not a developer's own `make cluster` (index 0)
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "tradearena.testing.kube_platform", "up"),
            *("--workdir", str(workdir), "--index", str(index)),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # up prints its summary once everything is installed
            lines.append(line.rstrip())
            if line.startswith("Ctrl-C"):
                break
        assert lines and lines[-1].startswith("Ctrl-C"), "\n".join(lines[-40:])
        lobby = _value(lines, "lobby").split()[0]
        ca_file = _value(lines, "lobby").split("CA: ")[1].rstrip(")")
        names = dict(pair.split(" -> ") for pair in _value(lines, "names").split(", "))
        host = lobby.removeprefix("https://").rstrip("/")
        # What a browser does with the printed resolver rule and CA: HTTPS to the lobby.
        context = ssl.create_default_context(cafile=ca_file)
        with (
            socket.create_connection((names[host], 443), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            conn = http.client.HTTPConnection(host)
            conn.sock = tls
            conn.request("GET", "/readyz")
            assert conn.getresponse().status == 200
        assert "KUBECONFIG=" in _value(lines, "kubeconfig")
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, rest[-3000:]
    assert not workdir.exists()
    bridges = subprocess.run(
        ["ip", "-br", "link"], capture_output=True, text=True, check=True
    ).stdout
    assert f"ta-dev{index}" not in bridges
