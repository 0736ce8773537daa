"""A bad replay file stops `up` and the feed relay before they start, naming the file,
the line and the reason (exit 2), instead of a READY followed by a crash loop."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tradearena.launcher.localservices import free_port
from tradearena.testing.platform import CLI

GOOD_ROW = (
    "1704067200000,42283.58,42298.62,42261.02,42298.61,"
    "35.92724,1704067259999,1519032.67,1327,18.58719,785928.40,0\n"
)
GOOD_ROW_2 = GOOD_ROW.replace("1704067200000", "1704067260000").replace(
    "1704067259999", "1704067319999"
)

# name -> (file content or None for a missing file, what stderr must say after the path)
BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    "missing": (None, ": cannot open: No such file or directory"),
    "empty": (b"", ": no data rows"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", ": line 1: not a text file"),
    "corrupt": (
        (GOOD_ROW + GOOD_ROW_2.replace("42283.58", "4228x.58", 1)).encode(),
        ": line 2: open is not a number: '4228x.58'",
    ),
    "letters_in_first_timestamp": (
        GOOD_ROW.replace("1704067200000", "17040672OO000", 1).encode() + GOOD_ROW_2.encode(),
        ": line 1: open_time is not an integer: '17040672OO000'",
    ),
}


def bad_file(tmp_path: Path, name: str) -> tuple[Path, str]:
    content, says = BAD_FILES[name]
    path = tmp_path / f"{name}.csv"
    if content is not None:
        path.write_bytes(content)
    return path, f"{path}{says}"


def run_until_exit_or_ready(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> tuple[int | None, str, str]:
    """Run a command; stop it (SIGINT) as soon as it prints READY. Returns (code, out, err);
    code is None when it had to be stopped."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out: list[str] = []
    ready = False
    for line in proc.stdout:
        out.append(line)
        if line.startswith("READY "):
            ready = True
            proc.send_signal(signal.SIGINT)
            break
    try:
        rest, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, err = proc.communicate()
        ready = True
    return (None if ready else proc.returncode), "".join(out) + rest, err


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_up_refuses_a_bad_replay_file_before_ready(
    tmp_path: Path, data_dir: Path, name: str
) -> None:
    path, says = bad_file(tmp_path, name)
    good = tmp_path / "good.csv"
    good.write_text(GOOD_ROW + GOOD_ROW_2)
    code, out, err = run_until_exit_or_ready(
        [
            CLI,
            "up",
            "--data-dir",
            str(data_dir / "var"),
            "--lobby-port",
            str(free_port()),
            "--feed",
            "replay",
            "--replay-file",
            str(good),
            "--replay-file",
            str(path),
        ],
        dict(os.environ),
    )
    assert code == 2, out + err
    assert "READY" not in out
    assert f"up: replay file {says}" in err.splitlines()
    assert "Traceback" not in out + err


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_the_feed_relay_refuses_a_bad_replay_file_at_start(
    tmp_path: Path, redis_url: str, name: str
) -> None:
    path, says = bad_file(tmp_path, name)
    env = {
        **os.environ,
        "TRADEARENA_REDIS_URL": redis_url,
        "TRADEARENA_RELAY_SOURCE": "replay",
        "TRADEARENA_RELAY_REPLAY_FILES": str(path),
        "TRADEARENA_RELAY_PORT": str(free_port()),
    }
    try:
        done = subprocess.run(
            [CLI, "feed-relay"], env=env, capture_output=True, text=True, timeout=10, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the relay kept running with a bad replay file")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"feed-relay: replay file {says}"]
