"""Smoke tests proving the test control plane is a real Kubernetes API server.

Every check below is decided by the real components (kube-apiserver's schema
validation and RBAC authorizer, the scheduler, the garbage collector in
kube-controller-manager, kwok playing the kubelet), never by a mock.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradearena.testing.kube import NODE_CAPACITY, KubeCluster, pinned_versions

pytestmark = pytest.mark.k8s


@pytest.fixture
def namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    kube_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_binaries_report_the_pinned_versions(kube_cluster: KubeCluster) -> None:
    versions = pinned_versions()
    info = json.loads(kube_cluster.kubectl("version", "-o", "json").stdout)
    assert info["serverVersion"]["gitVersion"] == versions["kubernetes"]
    assert info["clientVersion"]["gitVersion"] == versions["kubernetes"]
    helm = kube_cluster.helm("version", "--short").stdout
    assert helm.startswith(versions["helm"])


def test_nodes_carry_external_ips_and_capacity(kube_cluster: KubeCluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in kube_cluster.kubectl_json("get", "nodes")["items"]}
    assert sorted(nodes) == sorted(kube_cluster.node_names)
    assert len(nodes) >= 3
    for name, node in nodes.items():
        addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addresses["ExternalIP"] == kube_cluster.node_external_ips[name]
        assert addresses["InternalIP"]
        for resource in ("cpu", "memory", "pods"):
            assert node["status"]["capacity"][resource] == NODE_CAPACITY[resource]
            assert node["status"]["allocatable"][resource] == NODE_CAPACITY[resource]
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert ready["Ready"] == "True"


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.tradearena.dev
spec:
  group: smoke.tradearena.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1, maximum: 10}
                colour: {type: string, enum: [red, green]}
"""


def widget(name: str, namespace: str, size: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "smoke.tradearena.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": size, "colour": "red"},
        }
    )


def test_crd_is_served_and_its_schema_enforced_by_the_apiserver(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    kube_cluster.apply(WIDGET_CRD)
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/widgets.smoke.tradearena.dev",
        "--timeout=60s",
    )
    resources = kube_cluster.kubectl("api-resources", "--api-group=smoke.tradearena.dev")
    assert "widgets" in resources.stdout

    kube_cluster.kubectl("create", "-f", "-", input=widget("good", namespace, 3))
    got = kube_cluster.kubectl_json("get", "widget", "good", "-n", namespace)
    assert got["spec"]["size"] == 3

    # --validate=false: kubectl checks nothing itself, so the rejection below is the
    # apiserver's structural-schema validation.
    bad = kube_cluster.kubectl(
        "create",
        "--validate=false",
        "-f",
        "-",
        input=widget("bad", namespace, "huge"),
        check=False,
    )
    assert bad.returncode != 0
    assert 'The Widget "bad" is invalid' in bad.stderr
    assert "spec.size" in bad.stderr
    assert "must be of type integer" in bad.stderr

    too_big = kube_cluster.kubectl(
        "create",
        "--validate=false",
        "-f",
        "-",
        input=widget("too-big", namespace, 11),
        check=False,
    )
    assert too_big.returncode != 0
    assert "should be less than or equal to 10" in too_big.stderr
    missing = kube_cluster.kubectl("get", "widget", "bad", "-n", namespace, check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr or "not found" in missing.stderr


class WatchStream:
    """`kubectl get --raw ...?watch=1`: the API's newline-delimited JSON event stream."""

    def __init__(self, cluster: KubeCluster, path: str) -> None:
        self.proc = subprocess.Popen(
            [str(cluster.kubectl_path), f"--kubeconfig={cluster.kubeconfig}", "get", "--raw", path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cluster.env(),
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.events.put(json.loads(line))
        self.events.put(None)

    def next_event(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no watch event within {timeout}s") from None
        if event is None:
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"watch stream ended: {stderr}")
        return event

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def test_watch_sees_changes(kube_cluster: KubeCluster, namespace: str) -> None:
    listed = kube_cluster.kubectl_json("get", "configmaps", "-n", namespace)
    rv = listed["metadata"]["resourceVersion"]
    stream = WatchStream(
        kube_cluster,
        f"/api/v1/namespaces/{namespace}/configmaps?watch=1&resourceVersion={rv}"
        "&fieldSelector=metadata.name%3Dwatched",
    )
    try:
        kube_cluster.kubectl(
            "create", "configmap", "watched", "-n", namespace, "--from-literal=a=1"
        )
        kube_cluster.kubectl(
            "patch", "configmap", "watched", "-n", namespace, "-p", '{"data":{"a":"2"}}'
        )
        kube_cluster.kubectl("delete", "configmap", "watched", "-n", namespace)
        seen = []
        for _ in range(3):
            event = stream.next_event()
            seen.append((event["type"], event["object"]["data"]["a"]))
        assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
    finally:
        stream.close()


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.invalid/never-pulled:1
          resources: {requests: {cpu: 500m, memory: 256Mi}}
"""


def test_deployment_pods_are_scheduled_onto_kwok_nodes_and_run(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    kube_cluster.apply(DEPLOYMENT, "-n", namespace)
    kube_cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s")
    kube_cluster.kubectl(
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod",
        "-l",
        "app=web",
        "-n",
        namespace,
        "--timeout=60s",
    )
    pods = kube_cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 4
    for pod in pods:
        assert pod["spec"]["nodeName"] in kube_cluster.node_names
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"]
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True"
        # Bound by kube-scheduler, not by anyone writing nodeName directly.
        assert pod["spec"].get("schedulerName") == "default-scheduler"

    events = kube_cluster.kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", "reason=Scheduled"
    )["items"]
    assert len(events) >= 4


def test_serviceaccount_without_rights_is_denied(kube_cluster: KubeCluster, namespace: str) -> None:
    kube_cluster.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    who = f"--as=system:serviceaccount:{namespace}:nobody"

    denied = kube_cluster.kubectl(
        "auth", "can-i", "list", "pods", "-n", namespace, who, check=False
    )
    assert denied.returncode == 1
    assert denied.stdout.strip() == "no"

    forbidden = kube_cluster.kubectl("get", "pods", "-n", namespace, who, check=False)
    assert forbidden.returncode != 0
    assert "Forbidden" in forbidden.stderr or "forbidden" in forbidden.stderr
    assert f"system:serviceaccount:{namespace}:nobody" in forbidden.stderr

    # Granting a Role flips the answer: the decision really comes from RBAC.
    kube_cluster.kubectl(
        "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace
    )
    kube_cluster.kubectl(
        "create",
        "rolebinding",
        "nobody-reads",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:nobody",
        "-n",
        namespace,
    )
    kube_cluster.wait_until(
        "RBAC to pick up the new RoleBinding",
        lambda: (
            kube_cluster.kubectl(
                "auth", "can-i", "list", "pods", "-n", namespace, who, check=False
            ).returncode
            == 0
        ),
    )
    still_denied = kube_cluster.kubectl(
        "auth", "can-i", "delete", "pods", "-n", namespace, who, check=False
    )
    assert still_denied.stdout.strip() == "no"


def test_deleting_an_owner_garbage_collects_its_dependents(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    kube_cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner_uid = kube_cluster.kubectl_json("get", "configmap", "owner", "-n", namespace)["metadata"][
        "uid"
    ]
    for i in range(2):
        kube_cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"dependent-{i}",
                    "namespace": namespace,
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
                    ],
                },
            }
        )
    kube_cluster.kubectl("create", "configmap", "bystander", "-n", namespace)

    kube_cluster.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")
    kube_cluster.kubectl(
        "wait",
        "--for=delete",
        "configmap/dependent-0",
        "configmap/dependent-1",
        "-n",
        namespace,
        "--timeout=60s",
    )
    left = kube_cluster.kubectl(
        "get", "configmaps", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}"
    ).stdout.split()
    assert "bystander" in left
    assert not {"owner", "dependent-0", "dependent-1"} & set(left)


def test_helm_installs_a_chart_into_the_cluster(
    kube_cluster: KubeCluster, namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("greeting: hello\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    kube_cluster.helm(
        "install", "smoke", str(chart), "-n", namespace, "--set", "greeting=hi", "--wait"
    )
    data = kube_cluster.kubectl_json("get", "configmap", "smoke-cm", "-n", namespace)["data"]
    assert data == {"greeting": "hi"}
    status = json.loads(kube_cluster.helm("status", "smoke", "-n", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    kube_cluster.helm("uninstall", "smoke", "-n", namespace, "--wait")
    kube_cluster.kubectl(
        "wait", "--for=delete", "configmap/smoke-cm", "-n", namespace, "--timeout=30s"
    )
