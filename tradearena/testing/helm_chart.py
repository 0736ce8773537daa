"""Render, lint and install charts/tradearena with the helm binary of the test toolchain.

The helm binary is the one scripts/build-kube.sh builds from the Go module pinned in
hack/kube/tools (``tradearena.testing.kube.require_tools``): missing tools fail, never skip.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tradearena.testing.kube import KubeCluster, require_tools

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tradearena"
VALUES_DIR = REPO / "tests" / "cluster" / "charts" / "values"
TF_VALUES_SCRIPT = REPO / "scripts" / "tf-outputs-to-values.py"
TF_OUTPUTS_FIXTURE = (
    REPO / "tests" / "integration" / "terraform" / "fixtures" / "terraform-outputs.json"
)

Manifest = dict[str, Any]
RELEASE = "tradearena"
PREREQUISITE_SECRETS = ("tradearena-postgresql", "tradearena-redis", "tradearena-signing-key")


def helm_binary() -> Path:
    return require_tools() / "helm"


def helm(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def terraform_values(path: Path) -> Path:
    """The values file scripts/tf-outputs-to-values.py writes from the recorded outputs."""
    subprocess.run(
        [sys.executable, str(TF_VALUES_SCRIPT), str(TF_OUTPUTS_FIXTURE), "-o", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


def value_args(values: Iterable[Path], sets: Sequence[str] = ()) -> list[str]:
    args: list[str] = []
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


@dataclass
class Rendered:
    """`helm template` output, parsed; `docs` excludes nothing (test hooks included)."""

    text: str
    docs: list[Manifest]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
        return found[0]


def render(
    values: Iterable[Path] = (),
    sets: Sequence[str] = (),
    *,
    release: str = "tradearena",
    namespace: str = "tradearena",
    include_crds: bool = False,
    set_files: Mapping[str, str] | None = None,
) -> Rendered:
    """`helm template`; `set_files` gives values whose text is a file's (`--set-file`)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    if include_crds:
        args.append("--include-crds")
    with tempfile.TemporaryDirectory() as tmp:
        for key, content in (set_files or {}).items():
            path = Path(tmp) / key
            path.write_text(content)
            args += ["--set-file", f"{key}={path}"]
        text = helm(*args, *value_args(values, sets)).stdout
    docs = [d for d in yaml.safe_load_all(text) if d]
    return Rendered(text=text, docs=docs)


def render_notes(
    workdir: Path, values: Iterable[Path] = (), sets: Sequence[str] = (), *, release: str = RELEASE
) -> str:
    """templates/NOTES.txt as `helm install` would print it, without a cluster: in a copy
    of the chart its text becomes a named template, rendered into one YAML document."""
    import shutil

    chart = workdir / "chart"
    shutil.copytree(CHART, chart)
    notes = chart / "templates" / "NOTES.txt"
    text = notes.read_text()
    notes.unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + text + "\n{{- end -}}\n"
    )
    (chart / "templates" / "notes.yaml").write_text('text: {{ include "test.notes" . | toJson }}\n')
    out = helm(
        "template",
        release,
        str(chart),
        "--show-only",
        "templates/notes.yaml",
        *value_args(values, sets),
    ).stdout
    rendered: str = yaml.safe_load(out)["text"]
    return rendered


def pod_specs(rendered: Rendered) -> dict[str, Manifest]:
    """Pod specs by workload name: Deployments' and Jobs' templates, bare Pods (hooks)."""
    specs = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in rendered.of_kind("Deployment") + rendered.of_kind("Job")
    }
    specs.update({d["metadata"]["name"]: d["spec"] for d in rendered.of_kind("Pod")})
    return specs


@dataclass(frozen=True)
class Installed:
    """A release of the chart in the test cluster."""

    cluster: KubeCluster
    namespace: str
    release: str

    def name(self, component: str) -> str:
        return f"{self.release}-{component}"

    def sa(self, component: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name(component)}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create_prerequisites(cluster: KubeCluster, namespace: str) -> None:
    """The Secrets and ConfigMap the chart references but never creates (test values only)."""
    password = uuid.uuid4().hex
    data = {
        "tradearena-postgresql": {"password": uuid.uuid4().hex},
        "tradearena-redis": {"password": password, "url": f"redis://:{password}@redis:6379/0"},
        "tradearena-signing-key": {"private.pem": "not a key: never read on kwok"},
    }
    assert set(data) == set(PREREQUISITE_SECRETS)
    for name, items in data.items():
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": {k: _b64(v) for k, v in items.items()},
            }
        )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tradearena-match-keys", "namespace": namespace},
            "data": {"jwks.json": json.dumps({"keys": []})},
        }
    )
