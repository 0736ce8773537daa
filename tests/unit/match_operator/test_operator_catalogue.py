"""Match pods read the lobby's mode catalogue when the chart gives one. Pure."""

from __future__ import annotations

import pytest

from match_operator.builders import CATALOGUE_DIR, build_pod_spec
from match_operator.settings import OperatorSettings
from matchserver.settings import MatchServerSettings
from tradearena.contracts import resource

IMAGE = "registry.example/tradearena:1.2.3"
MATCH = {
    "metadata": {
        "name": "m-1",
        "namespace": "games",
        "uid": "u",
        "generation": 1,
        "finalizers": [resource.FINALIZER],
    },
    "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"]},
}


def test_without_a_catalogue_the_packaged_one_is_used() -> None:
    pod = build_pod_spec(MATCH, OperatorSettings(image=IMAGE), 7001)
    (c,) = pod["spec"]["containers"]
    assert "TRADEARENA_CATALOGUE" not in {e["name"] for e in c["env"]}
    assert "catalogue" not in {v["name"] for v in pod["spec"]["volumes"]}


def test_the_catalogue_configmap_is_mounted_and_named_to_the_server() -> None:
    settings = OperatorSettings(image=IMAGE, catalogue_configmap="rel-catalogue")
    pod = build_pod_spec(MATCH, settings, 7001)
    (c,) = pod["spec"]["containers"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "catalogue")
    assert volume["configMap"] == {
        "name": "rel-catalogue",
        "items": [{"key": "modes.toml", "path": "modes.toml"}],
    }
    mount = next(m for m in c["volumeMounts"] if m["name"] == "catalogue")
    assert mount == {"name": "catalogue", "mountPath": CATALOGUE_DIR, "readOnly": True}
    env = {e["name"]: e.get("value") for e in c["env"]}
    path = env["TRADEARENA_CATALOGUE"]
    assert path == f"{CATALOGUE_DIR}/modes.toml"
    # The name the server reads it under.
    assert str(MatchServerSettings(match_id="m", players=("a",), catalogue=path).catalogue) == path


def test_an_empty_configmap_name_is_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="catalogue_configmap"):
        OperatorSettings(image=IMAGE, catalogue_configmap="")
