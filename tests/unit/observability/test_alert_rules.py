"""The shipped Prometheus rules (charts/tradearena/files/prometheus-rules.yaml) checked
by promtool, unit-tested by promtool (every alert firing and not firing), and held to
their contract: a runbook per alert, a runbook_url per alert, metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

from tradearena.testing.prometheus import (
    PROMTOOL_TESTS,
    REPO,
    RULES,
    RUNBOOKS,
    alert_names,
    metric_names_in,
    promtool,
    promtool_cases,
    rule_groups,
)


def _promtool_files() -> list[Path]:
    return sorted(PROMTOOL_TESTS.glob("*.test.yaml"))


def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    files = _promtool_files()
    assert len(files) >= 2
    ran = promtool("test", "rules", *map(str, files))
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    alerts = alert_names()
    assert len(alerts) >= 20 and len(set(alerts)) == len(alerts)
    cases = set(promtool_cases(_promtool_files()))
    missing = [
        f"{alert} ({'firing' if fires else 'not firing'})"
        for alert in alerts
        for fires in (True, False)
        if (alert, fires) not in cases
    ]
    assert not missing, f"promtool cases missing: {missing}"
    unknown = {name for name, _ in cases} - set(alerts)
    assert not unknown, f"promtool cases of no alert: {unknown}"


def test_every_alert_has_its_runbook_and_runbook_url() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            runbook = RUNBOOKS / f"{name}.md"
            assert runbook.is_file(), f"no runbook {runbook.relative_to(REPO)}"
            text = runbook.read_text()
            assert text.startswith(f"# {name}\n"), runbook
            for section in ("## Meaning", "## Confirm", "## Mitigate"):
                assert section in text, f"{runbook.name}: no {section!r}"
            assert rule["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{name}.md")
            assert rule["labels"]["severity"] in ("critical", "warning")
            assert rule["annotations"]["summary"]
    extra = {p.stem for p in RUNBOOKS.glob("*.md")} - set(alert_names()) - {"README"}
    assert not extra, f"runbooks of no alert: {extra}"


def test_the_dead_letter_runbook_uses_the_dlq_cli() -> None:
    text = (RUNBOOKS / "TradeArenaResultsDeadLettered.md").read_text()
    for command in ("tradearena dlq list", "tradearena dlq show", "tradearena dlq redrive"):
        assert command in text
    assert "tradearena dlq drop" in text and "--actor" in text and "--note" in text


def _code_metric_names() -> set[str]:
    names: set[str] = set()
    for package in ("tradearena", "lobby", "matchserver", "operator"):
        for path in (REPO / package).rglob("*.py"):
            names |= set(re.findall(r"\"((?:lobby|tradearena)_[a-z_]+)\"", path.read_text()))
    return {n.removesuffix("_total") for n in names}


def test_every_metric_the_rules_read_exists() -> None:
    used = {
        name
        for group in rule_groups()
        for rule in group["rules"]
        for name in metric_names_in(rule["expr"])
    }
    code = _code_metric_names()
    missing = sorted(n for n in used if re.sub(r"_(total|bucket|sum|count)$", "", n) not in code)
    assert not missing, f"metrics the rules read that no code defines: {missing}"
