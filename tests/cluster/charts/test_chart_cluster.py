"""charts/tradearena against the real test apiserver: server-side dry runs of every
rendered object, a real `helm install` whose pods reach Running on kwok nodes, the
`helm test` hook, and what each ServiceAccount may do (`kubectl auth can-i`)."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradearena.testing.helm_chart import (
    PREREQUISITE_SECRETS,
    VALUES_DIR,
    Installed,
    render,
    terraform_values,
)
from tradearena.testing.kube import KubeCluster

pytestmark = pytest.mark.k8s

# Kinds whose CRDs belong to add-ons the test cluster does not run (Prometheus
# Operator, External Secrets Operator, cert-manager): everything else must pass the
# dry run.
ADDON_GROUPS = {"monitoring.coreos.com", "external-secrets.io", "cert-manager.io"}


def test_rendered_manifests_pass_server_side_dry_run(
    kube_cluster: KubeCluster, chart_install: Installed, tmp_path: Path
) -> None:
    values_sets = {
        "default": [],
        "production": [VALUES_DIR / "production.yaml"],
        "terraform": [terraform_values(tmp_path / "values-aws.yaml")],
    }
    for label, values in values_sets.items():
        namespace = f"dry-{label}-{uuid.uuid4().hex[:6]}"
        kube_cluster.kubectl("create", "namespace", namespace)
        try:
            rendered = render(values, release=f"dry-{label}", namespace=namespace)
            kept: list[dict[str, Any]] = []
            skipped: set[str] = set()
            for doc in rendered.docs:
                group = doc["apiVersion"].rpartition("/")[0]
                if group in ADDON_GROUPS:
                    skipped.add(doc["kind"])
                else:
                    kept.append(doc)
            expected_skips = {
                "default": set(),
                "production": {"ServiceMonitor", "PodMonitor", "PrometheusRule", "Certificate"},
                "terraform": {"SecretStore", "ExternalSecret", "Certificate"},
            }[label]
            assert skipped == expected_skips, label
            out = kube_cluster.kubectl(
                "apply",
                "--dry-run=server",
                "-n",
                namespace,
                "-f",
                "-",
                input=yaml.safe_dump_all(kept),
            ).stdout
            lines = [line for line in out.splitlines() if line.strip()]
            assert len(lines) == len(kept), out
            assert all("(server dry run)" in line for line in lines), out
        finally:
            kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_helm_install_runs_operator_and_lobby_on_kwok_nodes(chart_install: Installed) -> None:
    cluster, ns = chart_install.cluster, chart_install.namespace
    status = json.loads(
        cluster.helm("status", chart_install.release, "-n", ns, "-o", "json").stdout
    )
    assert status["info"]["status"] == "deployed"
    crds = cluster.kubectl("get", "crd", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/matches.tradearena.io" in crds
    assert "customresourcedefinition.apiextensions.k8s.io/kopfpeerings.kopf.dev" in crds
    expected = {"operator": 2, "lobby": 2, "feed-relay": 2, "results-worker": 2}
    for component, replicas in expected.items():
        selector = f"app.kubernetes.io/instance={chart_install.release},app.kubernetes.io/component={component}"
        cluster.kubectl(
            "wait", "-n", ns, "--for=condition=Ready", "pod", "-l", selector, "--timeout=120s"
        )
        pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]
        assert len(pods) == replicas, component
        for pod in pods:
            assert pod["status"]["phase"] == "Running"
            assert pod["spec"]["nodeName"] in cluster.node_names
            assert pod["spec"]["serviceAccountName"] == chart_install.name(component)
        deployment = cluster.kubectl_json(
            "get", "deployment", "-n", ns, chart_install.name(component)
        )
        assert deployment["status"]["readyReplicas"] == replicas
    # Admission kept the secure defaults (nothing mutated them away).
    lobby = cluster.kubectl_json("get", "deployment", "-n", ns, chart_install.name("lobby"))
    container = lobby["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    peering = cluster.kubectl_json("get", "kopfpeerings.kopf.dev", "-n", ns)["items"]
    assert [p["metadata"]["name"] for p in peering] == [chart_install.name("operator")]
    policies = cluster.kubectl_json("get", "networkpolicies", "-n", ns)["items"]
    assert {p["metadata"]["name"] for p in policies} >= {
        chart_install.name("default-deny"),
        chart_install.name("lobby"),
        chart_install.name("match-server"),
    }


def test_helm_test_creates_the_readyz_pod(chart_install: Installed) -> None:
    """kwok runs no container, so the hook pod never finishes; what is checked is that
    `helm test` creates it with the request the chart promises."""
    cluster, ns = chart_install.cluster, chart_install.namespace
    pod_name = chart_install.name("test-lobby-ready")
    proc = subprocess.Popen(
        [
            str(cluster.helm_path),
            f"--kubeconfig={cluster.kubeconfig}",
            "test",
            chart_install.release,
            "-n",
            ns,
            "--timeout",
            "120s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cluster.env(),
    )
    try:
        cluster.wait_until(
            "the helm test pod",
            lambda: cluster.kubectl("get", "pod", "-n", ns, pod_name, check=False).returncode == 0,
            timeout=60,
        )
        pod = cluster.kubectl_json("get", "pod", "-n", ns, pod_name)
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        (container,) = pod["spec"]["containers"]
        assert container["args"][-1] == f"http://{chart_install.name('lobby')}.{ns}.svc:80/readyz"
        assert pod["spec"]["automountServiceAccountToken"] is False
        cluster.kubectl(
            "wait", "-n", ns, "--for=condition=PodScheduled", "pod", pod_name, "--timeout=60s"
        )
    finally:
        proc.kill()
        proc.wait(timeout=30)
        cluster.kubectl("delete", "pod", "-n", ns, pod_name, "--wait=false", check=False)


def _can(cluster: KubeCluster, who: str, namespace: str | None, *what: str) -> bool:
    args = ["auth", "can-i", *what, f"--as={who}"]
    args += ["-n", namespace] if namespace else []
    proc = cluster.kubectl(*args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


def test_rbac_matrix(chart_install: Installed) -> None:
    cluster, ns = chart_install.cluster, chart_install.namespace
    operator, lobby = chart_install.sa("operator"), chart_install.sa("lobby")
    peering = chart_install.name("operator")
    allowed = [
        (operator, ns, "watch", "matches.tradearena.io"),
        (operator, ns, "patch", "matches.tradearena.io"),
        (operator, ns, "delete", "matches.tradearena.io"),
        (operator, ns, "patch", "matches.tradearena.io", "--subresource=status"),
        (operator, ns, "update", "matches.tradearena.io", "--subresource=finalizers"),
        (operator, ns, "create", "pods"),
        (operator, ns, "delete", "pods"),
        (operator, ns, "watch", "pods"),
        (operator, ns, "create", "events"),
        (operator, ns, "patch", f"kopfpeerings.kopf.dev/{peering}"),
        (operator, ns, "list", "kopfpeerings.kopf.dev"),
        (operator, None, "list", "nodes"),
        (operator, None, "get", "nodes"),
        (lobby, ns, "create", "matches.tradearena.io"),
        (lobby, ns, "get", "matches.tradearena.io"),
        (lobby, ns, "list", "matches.tradearena.io"),
        (lobby, ns, "watch", "matches.tradearena.io"),
        (lobby, ns, "patch", "matches.tradearena.io"),
    ]
    denied = [
        (operator, ns, "get", "secrets"),
        (operator, ns, "list", "secrets"),
        (operator, ns, "create", "events.events.k8s.io"),  # core Events are enough
        (operator, ns, "get", "configmaps"),
        (operator, None, "delete", "nodes"),
        (operator, None, "patch", "nodes"),
        (operator, ns, "create", "matches.tradearena.io"),
        (operator, ns, "update", "pods"),
        (operator, ns, "create", "pods", "--subresource=exec"),
        (operator, ns, "create", "deployments.apps"),
        (operator, ns, "create", "rolebindings.rbac.authorization.k8s.io"),
        (operator, ns, "patch", "kopfpeerings.kopf.dev/someone-else"),
        (operator, "default", "create", "pods"),
        (operator, "default", "list", "matches.tradearena.io"),
        (lobby, ns, "delete", "matches.tradearena.io"),
        (lobby, ns, "patch", "matches.tradearena.io", "--subresource=status"),
        (lobby, ns, "get", "pods"),
        (lobby, ns, "create", "pods"),
        (lobby, ns, "get", "secrets"),
        (lobby, "default", "create", "matches.tradearena.io"),
        (lobby, None, "list", "nodes"),
    ]
    for component in ("match-server", "feed-relay", "results-worker"):
        who = chart_install.sa(component)
        for verb, resource in (
            ("get", "pods"),
            ("list", "matches.tradearena.io"),
            ("get", "secrets"),
            ("create", "events"),
            ("list", "configmaps"),
        ):
            denied.append((who, ns, verb, resource))
        denied.append((who, None, "list", "nodes"))
    wrong = [row for row in allowed if not _can(cluster, row[0], row[1], *row[2:])]
    wrong += [row for row in denied if _can(cluster, row[0], row[1], *row[2:])]
    assert not wrong, (
        f"RBAC differs from the matrix (allowed rows denied / denied rows allowed): {wrong}"
    )
    # Those accounts have no token in their pods either.
    for component in ("match-server", "feed-relay", "results-worker"):
        sa = cluster.kubectl_json("get", "serviceaccount", "-n", ns, chart_install.name(component))
        assert sa["automountServiceAccountToken"] is False


def test_default_values_reference_exactly_the_prerequisite_secrets() -> None:
    """The install fixture creates the Secrets the default values reference, no other."""
    rendered = render([], release="x", namespace="x")
    refs = set()
    for doc in rendered.of_kind("Deployment"):
        spec = doc["spec"]["template"]["spec"]
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                refs.add(volume["secret"]["secretName"])
        for env in spec["containers"][0].get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add(ref["name"])
    assert refs == {"tradearena-postgresql", "tradearena-redis", "tradearena-signing-key"}
    assert refs == set(PREREQUISITE_SECRETS)
