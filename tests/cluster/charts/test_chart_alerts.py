"""The chart's PrometheusRule is the plain rule file (files/prometheus-rules.yaml), with
the runbook base URL of the values; off by default (it needs the monitoring CRDs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tradearena.testing.helm_chart import CHART, VALUES_DIR, helm, render
from tradearena.testing.prometheus import RULES, alert_names, promtool

REL = "tradearena"
NS = "tradearena"


def _rule(sets: list[str]) -> dict[str, Any]:
    out = render([], ["metrics.prometheusRule.enabled=true", *sets], release=REL, namespace=NS)
    return out.get("PrometheusRule", f"{REL}-alerts")


def test_the_prometheus_rule_is_the_plain_file_with_the_default_base_url() -> None:
    assert not render([], release=REL, namespace=NS).of_kind("PrometheusRule")
    rule = _rule([])
    assert rule["metadata"]["namespace"] == NS
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    base = values["metrics"]["prometheusRule"]["runbookBaseUrl"]
    urls = [
        r["annotations"]["runbook_url"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    ]
    assert urls == [f"{base}/{name}.md" for name in alert_names()]


def test_the_runbook_base_url_and_labels_come_from_the_values(tmp_path: Path) -> None:
    rule = _rule(
        [
            "metrics.prometheusRule.runbookBaseUrl=https://wiki.example.org/ops/runbooks",
            "metrics.prometheusRule.labels.release=kube-prometheus",
        ]
    )
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    groups = rule["spec"]["groups"]
    urls = [r["annotations"]["runbook_url"] for g in groups for r in g["rules"] if "alert" in r]
    assert urls == [f"https://wiki.example.org/ops/runbooks/{n}.md" for n in alert_names()]
    plain = yaml.safe_load(RULES.read_text())["groups"]
    for got, want in zip(groups, plain, strict=True):  # nothing else changed
        for a, b in zip(got["rules"], want["rules"], strict=True):
            a.get("annotations", {}).pop("runbook_url", None)
            b.get("annotations", {}).pop("runbook_url", None)
            assert a == b
    # The rendered spec is a valid rule file for promtool too.
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_runbook_base_url_is_validated() -> None:
    bad = helm(
        "template",
        REL,
        str(CHART),
        "--set",
        "metrics.prometheusRule.runbookBaseUrl=not a url/",
        check=False,
    )
    assert bad.returncode != 0
    assert "runbookBaseUrl" in bad.stderr


def test_production_values_ship_the_rules_to_kube_prometheus_stack() -> None:
    out = render([VALUES_DIR / "production.yaml"], release=REL, namespace=NS)
    rule = out.get("PrometheusRule", f"{REL}-alerts")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    urls = {
        r["annotations"]["runbook_url"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert urls == {
        f"https://git.example.com/tradearena/blob/v1.0.0/docs/runbooks/{n}.md"
        for n in alert_names()
    }
