"""The `tradearena` console script as a user runs it: simulate, then replay-verify."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "tradearena"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def match_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("logs") / "m.jsonl"
    done = run("simulate", "--players", "5", "--seed", "7", "--match-id", "m-7", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout
    return out


def test_replay_of_an_untouched_log_succeeds(match_log: Path) -> None:
    done = run("replay", str(match_log))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("OK m-7:")


def test_replay_reports_a_tampered_result_with_a_diff(match_log: Path, tmp_path: Path) -> None:
    lines = match_log.read_text().splitlines()
    result = json.loads(lines[-1])
    assert result["type"] == "result"
    result["standings"][0]["equity"] = "99999"
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([*lines[:-1], json.dumps(result)]) + "\n")
    done = run("replay", str(tampered))
    assert done.returncode == 1
    assert "MISMATCH m-7" in done.stdout
    assert "result.standings[0].equity: recorded '99999', replay gives" in done.stdout


def test_replay_reports_a_tampered_action(match_log: Path, tmp_path: Path) -> None:
    lines = match_log.read_text().splitlines()
    for i, line in enumerate(lines):
        rec = json.loads(line)
        if rec.get("kind") == "action" and rec["data"]["type"] == "open":
            rec["data"]["margin"] = str(int(rec["data"]["margin"]) * 2)
            lines[i] = json.dumps(rec)
            break
    else:
        pytest.fail("the simulated match has no open order")
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    done = run("replay", "--json", str(tampered))
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert any("ledger_digest" in d for d in report["differences"])


def test_replay_of_an_unreadable_log_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "schema": 1}\nnot json\n')
    done = run("replay", str(bad))
    assert done.returncode == 2
    assert "line 2: not a log record" in done.stderr
    bad.write_text('{"type": "entry", "seq": 1}\n')
    done = run("replay", str(bad))
    assert done.returncode == 2
    assert "line 1: entry lacks the field 'at'" in done.stderr
    missing = run("replay", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_modes_lists_the_catalogue() -> None:
    done = run("modes")
    assert done.returncode == 0
    assert "duel" in done.stdout
    assert "players 2/2/2" in done.stdout


def _entries_edited(match_log: Path, edit: str) -> list[str]:
    """The log with its second entry dropped, duplicated, or swapped with the third."""
    lines = match_log.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == "entry") + 1
    if edit == "dropped":
        return [*lines[:at], *lines[at + 1 :]]
    if edit == "duplicated":
        return [*lines[: at + 1], lines[at], *lines[at + 1 :]]
    return [*lines[:at], lines[at + 1], lines[at], *lines[at + 2 :]]


@pytest.mark.parametrize(
    ("edit", "difference"),
    [
        ("dropped", "log: entry 2 is missing"),
        ("duplicated", "log: entry 2 appears 2 times"),
        ("reordered", "log: entry 3 comes before entry 2"),
    ],
)
def test_replay_of_a_log_with_a_broken_entry_sequence_is_a_mismatch(
    match_log: Path, tmp_path: Path, edit: str, difference: str
) -> None:
    edited = tmp_path / f"{edit}.jsonl"
    edited.write_text("\n".join(_entries_edited(match_log, edit)) + "\n")
    done = run("replay", str(edited))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("MISMATCH m-7:")
    assert f"  - {difference}" in done.stdout.splitlines()
    assert done.stderr == ""
    report = json.loads(run("replay", "--json", str(edited)).stdout)
    assert report["ok"] is False
    assert difference in report["differences"]


def test_bots_refuse_a_malformed_resolve_entry() -> None:
    done = run("bots", "--count", "1", "--resolve", "play.test")
    assert done.returncode == 2
    assert "--resolve: expected NAME=ADDRESS" in done.stderr


def test_up_refuses_a_pool_that_cannot_hold_before_starting_anything(tmp_path: Path) -> None:
    done = run("up", "--data-dir", str(tmp_path / "var"), "--pool-capacity", "0")
    assert done.returncode == 2
    assert "up: pool: capacity must be at least 1" in done.stderr
    assert not (tmp_path / "var").exists()
