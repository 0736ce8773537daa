"""Snapshots: restoring at any point and replaying the rest equals a full replay."""

from __future__ import annotations

import json

import pytest

from matchserver.engine import snapshot
from matchserver.engine.match import replay_entries
from matchserver.simulate import SimulationSpec, simulate
from tradearena.modes import default_catalogue


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_restore_anywhere_then_replay_the_rest_gives_the_full_result(seed: int) -> None:
    record = simulate(default_catalogue(), SimulationSpec(players=6, seed=seed))
    assert record.result is not None
    end = record.result["ended_at"]
    full, _ = replay_entries(record.header, record.entries, until=end)
    cuts = [1, len(record.entries) // 3, len(record.entries) // 2, len(record.entries) - 1]
    for cut in cuts:
        head, _ = replay_entries(record.header, record.entries[:cut])
        snap = json.loads(json.dumps(snapshot.take(head)))  # must survive JSON
        restored = snapshot.restore(snap, record.entries[:cut])
        for entry in record.entries[cut:]:
            restored.apply_entry(entry)
        restored.advance(end)
        assert restored.result() == full.result(), f"cut at {cut}"
        assert restored.reconcile() == []
        assert restored.player_state("player-1") == full.player_state("player-1")


def test_a_snapshot_must_match_the_log_it_covers() -> None:
    record = simulate(default_catalogue(), SimulationSpec(players=2, seed=4))
    head, _ = replay_entries(record.header, record.entries[:10])
    snap = snapshot.take(head)
    with pytest.raises(ValueError, match="covers 10 entries, got 9"):
        snapshot.restore(snap, record.entries[:9])
    with pytest.raises(ValueError, match="unsupported snapshot schema"):
        snapshot.restore({**snap, "schema": 99}, record.entries[:10])
