"""Canonical formatting of every .tf file, checked with hclfmt: the HCL formatter
(hclwrite.Format) that `terraform fmt` is built on, compiled from its pinned Go module by
scripts/install-iac-tools.sh. A file passes when formatting it changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tradearena.testing.paths import REPO

TERRAFORM = REPO / "terraform"


def _format(hclfmt: Path, path: Path) -> str:
    result = subprocess.run(
        [str(hclfmt), str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{path}: {result.stderr}"
    return result.stdout


def test_every_terraform_file_is_canonically_formatted(hclfmt: Path) -> None:
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert len(files) >= 15
    unformatted = [
        str(f.relative_to(TERRAFORM)) for f in files if _format(hclfmt, f) != f.read_text()
    ]
    assert not unformatted, "run hclfmt -w (or terraform fmt) on: " + ", ".join(unformatted)


def test_formatter_rejects_misaligned_code(hclfmt: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample.tf"
    sample.write_text('resource "x" "y" {\n  a = 1\n  long_name = "v"\n}\n')
    formatted = _format(hclfmt, sample)
    assert formatted != sample.read_text()
    assert "  a         = 1\n" in formatted


def test_syntax_errors_fail(hclfmt: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tf"
    broken.write_text('resource "x" "y" {\n  a = \n')
    result = subprocess.run(
        [str(hclfmt), "-check", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
