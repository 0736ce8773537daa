"""The web client and the Node bots keep the later of a sync answer's phase and a phase
event's (an event may overtake the answer); both rank phases by GamePhase's order."""

from __future__ import annotations

import json
import re

import pytest

from tradearena.contracts.phases import GamePhase
from tradearena.testing.paths import REPO


@pytest.mark.parametrize("path", ["lobby/web/app.js", "tests/js/platform_bots.mjs"])
def test_the_clients_rank_phases_in_the_game_order(path: str) -> None:
    found = re.search(r"^const PHASES = (\[.*\]);$", (REPO / path).read_text(), re.M)
    assert found, f"{path}: no PHASES list"
    assert json.loads(found.group(1)) == [p.value for p in GamePhase]
