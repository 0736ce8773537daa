"""The web client's hash links (`lobby/web/screens/links.js`) under Node: the handler a
link runs and with what value, later hash changes, share links, clearing a link
(`tests/js/links.mjs`)."""

from __future__ import annotations

import subprocess

from tradearena.testing.paths import REPO


def test_links_run_their_handlers_share_and_clear() -> None:
    proc = subprocess.run(
        ["node", str(REPO / "tests" / "js" / "links.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
