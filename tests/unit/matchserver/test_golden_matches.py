"""Golden matches: simulated logs and results stay byte-identical across refactors.

Every mode and format of the packaged catalogue is played by scripted players over
synthetic prices (`matchserver.simulate`); the whole written record (header, log,
result) must hash to the value recorded in `tests/golden/simulated.json`. The blitz
records are kept whole beside it, so a difference can be read with `diff`.

Regenerate only for an intended rule change: run this file as a script.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from matchserver.simulate import SimulationSpec, simulate
from tradearena.modes import default_catalogue

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
INDEX = GOLDEN / "simulated.json"
PLAYERS = {"duel": 2, "standard": 10, "arena": 12}
FORMATS = ("blitz", "sprint", "quick", "standard", "extended", "marathon")


def _cases() -> list[tuple[str, str, int]]:
    cases = []
    for mode in PLAYERS:
        for fmt in FORMATS:
            for seed in (1, 2) if fmt == "blitz" else (7,):
                cases.append((mode, fmt, seed))
    return cases


def _name(mode: str, fmt: str, seed: int) -> str:
    return f"{mode}-{fmt}-s{seed}"


def _record_bytes(mode: str, fmt: str, seed: int, tmp: Path) -> bytes:
    spec = SimulationSpec(
        mode=mode, format=fmt, players=PLAYERS[mode], seed=seed, match_id=_name(mode, fmt, seed)
    )
    record = simulate(default_catalogue(), spec)
    path = tmp / f"{_name(mode, fmt, seed)}.jsonl"
    record.write(path)
    return path.read_bytes()


@pytest.mark.parametrize(("mode", "fmt", "seed"), _cases(), ids=str)
def test_simulated_match_is_byte_identical(mode: str, fmt: str, seed: int, tmp_path: Path) -> None:
    expected = json.loads(INDEX.read_text())[_name(mode, fmt, seed)]
    data = _record_bytes(mode, fmt, seed, tmp_path)
    result = json.loads(data.splitlines()[-1])
    assert result == expected["result"]
    assert hashlib.sha256(data).hexdigest() == expected["record_sha256"]
    whole = GOLDEN / f"{_name(mode, fmt, seed)}.jsonl"
    if whole.exists():
        assert data == whole.read_bytes()


def _regenerate(tmp: Path) -> None:
    index = {}
    for mode, fmt, seed in _cases():
        data = _record_bytes(mode, fmt, seed, tmp)
        name = _name(mode, fmt, seed)
        index[name] = {
            "record_sha256": hashlib.sha256(data).hexdigest(),
            "result": json.loads(data.splitlines()[-1]),
        }
        if fmt == "blitz" and seed == 1:
            (GOLDEN / f"{name}.jsonl").write_bytes(data)
    INDEX.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _regenerate(Path(tmp))
    sys.exit(0)
