"""Names that JavaScript clients, the chart and the manifests repeat from the contracts.

They cannot import Python, so each repeated name is checked here against its one
definition in `tradearena.contracts`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradearena.contracts import resource
from tradearena.contracts.phases import GamePhase, MatchPhase, ServerPhase

ROOT = Path(__file__).resolve().parents[3]
JS_FILES = sorted([*ROOT.glob("tests/js/*.mjs"), *ROOT.glob("lobby/web/*.js")])
# `x.phase === "live"`, `phase !== "finished"`, `waitAttr("match-phase", "phase", "live")`
_COMPARED = re.compile(r"""phase\s*[!=]==?\s*["'](\w+)["']""")
_WAITED = re.compile(r"""["']phase["']\s*,\s*["'](\w+)["']""")
CHART = ROOT / "charts/tradearena"


def _phases_in(path: Path) -> set[str]:
    text = path.read_text()
    return set(_COMPARED.findall(text)) | set(_WAITED.findall(text))


def test_the_js_clients_compare_phases() -> None:
    """The patterns still find what they look for (else the next test proves nothing)."""
    assert {"live", "finished", "cancelled"} <= set().union(*map(_phases_in, JS_FILES))


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_phase_a_js_client_compares_is_defined(path: Path) -> None:
    known = {str(p) for vocabulary in (GamePhase, ServerPhase, MatchPhase) for p in vocabulary}
    assert _phases_in(path) <= known


def _yaml_documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", [ROOT / "crds/match.yaml", CHART / "crds/match.yaml"])
def test_the_crds_name_the_match_resource(path: Path) -> None:
    [crd] = _yaml_documents(path)
    assert crd["metadata"]["name"] == resource.CRD_NAME
    assert crd["spec"]["group"] == resource.GROUP
    assert crd["spec"]["names"]["plural"] == resource.PLURAL
    assert crd["spec"]["names"]["kind"] == resource.KIND
    assert [v["name"] for v in crd["spec"]["versions"]] == [resource.VERSION]
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"]["phase"]["enum"] == [str(p) for p in MatchPhase]


@pytest.mark.parametrize(
    "path", [ROOT / "crds/matchserverpool.yaml", CHART / "crds/matchserverpool.yaml"]
)
def test_the_crds_name_the_pool_resource(path: Path) -> None:
    [crd] = _yaml_documents(path)
    assert crd["metadata"]["name"] == resource.POOL_CRD_NAME
    assert crd["spec"]["group"] == resource.GROUP
    assert crd["spec"]["names"]["plural"] == resource.POOL_PLURAL
    assert crd["spec"]["names"]["kind"] == resource.POOL_KIND
    assert [v["name"] for v in crd["spec"]["versions"]] == [resource.VERSION]


def test_the_operator_manifests_grant_the_match_resource() -> None:
    rules = [
        r
        for doc in _yaml_documents(ROOT / "deploy/operator/rbac.yaml")
        for r in doc.get("rules") or []
    ]
    ours = [r for r in rules if r["apiGroups"] not in ([""], ["kopf.dev"])]
    assert ours
    for rule in ours:
        assert rule["apiGroups"] == [resource.GROUP]
        assert {r.split("/")[0] for r in rule["resources"]} <= {
            resource.PLURAL,
            resource.POOL_PLURAL,
        }
    assert {r["resources"][0] for r in ours} >= {resource.PLURAL, resource.POOL_PLURAL}


def test_the_chart_rbac_takes_the_group_and_plural_from_the_crd() -> None:
    text = (CHART / "templates/rbac.yaml").read_text()
    assert resource.GROUP not in text
    assert re.search(rf"\b{resource.PLURAL}\b", text) is None
    assert '$group := include "tradearena.matchGroup"' in text


def test_the_chart_selects_match_server_pods_by_the_operators_labels() -> None:
    helpers = (CHART / "templates/_helpers.tpl").read_text()
    block = helpers.split('define "tradearena.matchServerSelector"', 1)[1].split("{{- end", 1)[0]
    labels = dict(line.split(": ", 1) for line in block.splitlines()[1:] if line.strip())
    assert labels == dict(resource.SERVER_POD_LABELS)
