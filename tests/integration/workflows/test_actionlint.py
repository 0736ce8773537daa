"""actionlint (pinned in scripts/install-iac-tools.sh, built from its Go module) over
.github/workflows: the repository's workflows are clean, and a deliberately broken
workflow is rejected, so the check that `make lint` runs can fail. With shellcheck on PATH
(the installer puts Debian's there) the run: scripts are checked too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tradearena.testing.paths import REPO

INSTALLER = REPO / "scripts" / "install-iac-tools.sh"
WORKFLOWS = REPO / ".github" / "workflows"


def _pinned_version() -> str:
    match = re.search(r"^ACTIONLINT_VERSION=(\S+)$", INSTALLER.read_text(), re.MULTILINE)
    assert match, f"ACTIONLINT_VERSION not found in {INSTALLER}"
    return match.group(1)


@pytest.fixture(scope="module")
def actionlint() -> Path:
    tools = Path(os.environ.get("TRADEARENA_TOOLS", Path.home() / ".cache/tradearena/tools"))
    path = tools / f"actionlint-{_pinned_version()}" / "bin" / "actionlint"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: run scripts/install-iac-tools.sh actionlint (make lint) first",
            pytrace=False,
        )
    return path


def _lint(actionlint: Path, cwd: Path, *files: Path) -> tuple[int, list[dict[str, Any]]]:
    """actionlint's findings as JSON objects (kind, message, filepath, line)."""
    result = subprocess.run(
        [str(actionlint), "-no-color", "-format", "{{json .}}", *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 0: clean, 1: findings; anything else is a usage or fatal error.
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]") or []
    return result.returncode, findings


def test_the_pinned_version_is_the_built_one(actionlint: Path) -> None:
    out = subprocess.run(
        [str(actionlint), "-version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out.splitlines()[0] == _pinned_version()


def test_repository_workflows_are_clean(actionlint: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"test.yml", "image.yml", "chart.yml", "deploy.yml"}
    code, findings = _lint(actionlint, REPO)
    assert code == 0 and not findings, "\n".join(
        f"{f['filepath']}:{f['line']}: [{f['kind']}] {f['message']}" for f in findings
    )


BROKEN = """\
name: broken
on:
  push:
  pull_request_targett:
jobs:
  build:
    runs-on: ubuntu-24.04
    needs: nothing-of-that-name
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depht: 0
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo ${{ matrix.missing }}
      - if: ${{ steps.none.outputs.x == 'y' }
        run: echo $UNQUOTED
"""


def test_a_broken_workflow_is_rejected(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    code, findings = _lint(actionlint, tmp_path, broken)
    assert code == 1
    kinds = {f["kind"] for f in findings}
    # Unknown event, missing job, unknown input of a known action, untrusted input in a
    # script, unknown context property, a bad expression.
    assert {"events", "job-needs", "action", "expression"} <= kinds, findings
    messages = "\n".join(f["message"] for f in findings)
    assert "pull_request_targett" in messages
    assert "nothing-of-that-name" in messages
    assert "fetch-depht" in messages
    assert "github.event.pull_request.title" in messages
    if shutil.which("shellcheck"):
        assert "shellcheck" in kinds, findings


def test_the_same_check_fails_a_repository_workflow_once_broken(
    actionlint: Path, tmp_path: Path
) -> None:
    # One workflow of the repository, with a job depending on one that does not exist.
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "    runs-on: ubuntu-24.04\n" in text
    broken = tmp_path / "deploy.yml"
    broken.write_text(
        text.replace(
            "    runs-on: ubuntu-24.04\n", "    runs-on: ubuntu-24.04\n    needs: ghost\n", 1
        )
    )
    code, findings = _lint(actionlint, REPO, broken)
    assert code == 1
    assert [f["kind"] for f in findings] == ["job-needs"], findings
