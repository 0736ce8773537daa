"""The web client's ordering of socket pushes and REST answers
(`lobby/web/screens/latest.js`) under Node: a stale answer never overwrites a newer push
or a later request's answer (`tests/js/latest.mjs`)."""

from __future__ import annotations

import subprocess

from tradearena.testing.paths import REPO


def test_a_stale_answer_never_overwrites_a_newer_push_or_answer() -> None:
    proc = subprocess.run(
        ["node", str(REPO / "tests" / "js" / "latest.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
