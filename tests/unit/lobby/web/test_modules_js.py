"""The web client's DOM-free modules under Node, each checked by its script in `tests/js`
(which prints "ok", or throws on the first failed assertion):

- `lobby/web/candles.js` (`candle_store.mjs`): how the candles API, the match's `sync`
  candles and official ticks merge;
- `lobby/web/screens/links.js` (`links.mjs`): the handler a link runs and with what
  value, later hash changes, share links, clearing a link;
- `lobby/web/screens/latest.js` (`latest.mjs`): a stale REST answer never overwrites a
  newer socket push or a later request's answer.
"""

from __future__ import annotations

import subprocess

import pytest

from tradearena.testing.paths import REPO


@pytest.mark.parametrize("script", ["candle_store.mjs", "links.mjs", "latest.mjs"])
def test_a_web_module_passes_its_checks_under_node(script: str) -> None:
    proc = subprocess.run(
        ["node", str(REPO / "tests" / "js" / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
