"""Pods on a real node run for real: image root, user, network, Services, hostPorts,
probes, env/volumes/token resolution, restart policy, graceful deletion, the Lease.

Everything is decided by real components: the API server (admission injects the
service-account volume, TokenRequest issues the token, SelfSubjectReview checks it),
the scheduler-free binding via spec.nodeName, and the node's processes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradearena.testing.node import NodeCluster, network, podspec
from tradearena.testing.paths import REPO

pytestmark = pytest.mark.k8s


def _pod(nc: NodeCluster, namespace: str, name: str, script: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": nc.image.name,
        "command": ["python3", "-u", "-c", script],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "nodeName": nc.node.name,
            "terminationGracePeriodSeconds": 5,
            "containers": [container],
            **spec,
        },
    }


def _get(nc: NodeCluster, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = nc.cluster.kubectl_json("get", "pod", name, "-n", namespace)
    return result


def _wait(
    nc: NodeCluster, namespace: str, name: str, what: str, predicate: Any, timeout: float = 30
) -> dict[str, Any]:
    try:
        pod: dict[str, Any] = nc.cluster.wait_until(
            f"pod {name}: {what}",
            lambda: p if predicate(p := _get(nc, namespace, name)) else None,
            timeout=timeout,
        )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n--- node log\n{nc.node.log_tail()}") from exc
    return pod


def _phase(phase: str) -> Any:
    return lambda p: p.get("status", {}).get("phase") == phase


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def _main_status(pod: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = pod["status"]["containerStatuses"][0]
    return status


def _pid(pod: dict[str, Any]) -> int:
    assert "containerID" in _main_status(pod), pod["status"]
    return int(_main_status(pod)["containerID"].rsplit("/", 1)[1])


def _image_config(nc: NodeCluster) -> podspec.ImageConfig:
    return podspec.ImageConfig.from_json(
        json.loads((nc.image.directory / "config.json").read_text())
    )


def _log(nc: NodeCluster, pod: dict[str, Any], container: str = "main") -> str:
    return nc.node.container_log(pod["metadata"]["uid"], container)


SLEEP = "import time\nwhile True: time.sleep(60)"
SERVE = (
    "import http.server, os\n"
    "port = int(os.environ.get('PORT', '8080'))\n"
    "http.server.ThreadingHTTPServer(('', port), http.server.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)


def test_container_has_the_image_root_user_and_workdir(
    node_cluster: NodeCluster, namespace: str
) -> None:
    nc = node_cluster
    nc.cluster.apply(_pod(nc, namespace, "rooted", SLEEP))
    pod = _wait(nc, namespace, "rooted", "Running", _phase("Running"))
    pid = _pid(pod)
    rootfs = nc.image.directory / "rootfs"
    assert sorted(os.listdir(f"/proc/{pid}/root/usr/bin")) == sorted(os.listdir(rootfs / "usr/bin"))
    assert sorted(os.listdir(f"/proc/{pid}/root/etc")) != sorted(os.listdir("/etc"))
    config = _image_config(nc)
    uid, gid, _ = podspec.resolve_user(
        config.user,
        None,
        None,
        (rootfs / "etc/passwd").read_text(),
        (rootfs / "etc/group").read_text(),
    )
    assert uid != 0
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status
    assert f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}" in status
    assert os.path.samefile(f"/proc/{pid}/cwd", f"/proc/{pid}/root{config.workdir}")
    status_json = _main_status(pod)
    assert status_json["ready"] is True
    assert status_json["imageID"].startswith("sha256:")
    assert pod["status"]["hostIP"] == nc.node.address


def test_pods_get_distinct_addresses_and_reach_each_other_and_services(
    node_cluster: NodeCluster, namespace: str
) -> None:
    nc = node_cluster
    nc.cluster.apply(_pod(nc, namespace, "server", SERVE))
    nc.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    )
    server = _wait(nc, namespace, "server", "Ready", _ready)
    client_script = (
        "import os, sys, time, urllib.request\n"
        "for url in sys.argv[1:]:\n"
        "    for _ in range(100):\n"
        "        try:\n"
        "            body = urllib.request.urlopen(url, timeout=2).read()\n"
        "            print(url, len(body)); break\n"
        "        except OSError as e:\n"
        "            print(url, 'retry', e, file=sys.stderr); time.sleep(0.2)\n"
        "    else: sys.exit(1)\n"
    )
    client = _pod(nc, namespace, "client", client_script, restartPolicy="Never")
    server_ip = server["status"]["podIP"]
    client["spec"]["containers"][0]["command"] += [
        f"http://{server_ip}:8080/",
        "http://web/",
        f"http://web.{namespace}.svc.cluster.local/",
    ]
    nc.cluster.apply(client)
    done = _wait(nc, namespace, "client", "Succeeded", _phase("Succeeded"))
    assert done["status"]["podIP"] != server_ip
    assert ipaddress.ip_address(done["status"]["podIP"]) in ipaddress.ip_network(nc.node.cidr)
    log = _log(nc, done)
    assert f"http://{server_ip}:8080/" in log
    assert "http://web/" in log
    assert f"web.{namespace}.svc.cluster.local" in log


def test_readiness_gates_ready_and_liveness_restarts(
    node_cluster: NodeCluster, namespace: str
) -> None:
    nc = node_cluster
    probe = {"periodSeconds": 1, "failureThreshold": 1}
    ok = _pod(
        nc,
        namespace,
        "ready",
        SERVE,
        container={
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, **probe},
        },
    )
    bad = _pod(
        nc,
        namespace,
        "unready",
        SERVE,
        container={
            "readinessProbe": {"tcpSocket": {"port": 9999}, **probe},
        },
    )
    dead = _pod(
        nc,
        namespace,
        "dead",
        SLEEP,
        container={
            "livenessProbe": {"tcpSocket": {"port": 9999}, **probe},
        },
    )
    for manifest in (ok, bad, dead):
        nc.cluster.apply(manifest)
    _wait(nc, namespace, "ready", "Ready", _ready)
    restarted = _wait(
        nc,
        namespace,
        "dead",
        "restarted by liveness",
        lambda p: (
            _main_status(p)["restartCount"] >= 1 if p["status"].get("containerStatuses") else False
        ),
    )
    assert restarted["status"]["phase"] == "Running"
    unready = _get(nc, namespace, "unready")
    assert unready["status"]["phase"] == "Running"
    assert not _ready(unready)
    assert _main_status(unready)["ready"] is False
    assert _main_status(unready)["restartCount"] == 0


ENV_SCRIPT = r"""
import json, os, ssl, urllib.request
sa = '/var/run/secrets/kubernetes.io/serviceaccount'
files = {}
for root in ('/etc/secret', '/etc/config', '/etc/info', sa):
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if os.path.isfile(path):
            files[path] = [open(path).read(), oct(os.stat(path).st_mode & 0o777), os.stat(path).st_gid]
token = open(sa + '/token').read()
context = ssl.create_default_context(cafile=sa + '/ca.crt')
url = 'https://%s:%s/apis/authentication.k8s.io/v1/selfsubjectreviews' % (
    os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])
request = urllib.request.Request(url, method='POST', data=json.dumps({
    'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}).encode(),
    headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
review = json.load(urllib.request.urlopen(request, context=context, timeout=10))
version = urllib.request.Request('https://kubernetes.default.svc/version',
    headers={'Authorization': 'Bearer ' + token})
version = json.load(urllib.request.urlopen(version, context=context, timeout=10))
open('/scratch/probe', 'w').write('x')
print(json.dumps({'env': dict(os.environ), 'files': files, 'review': review, 'version': version,
                  'groups': os.getgroups(), 'scratch_gid': os.stat('/scratch/probe').st_gid}))
"""


def test_env_volumes_and_token_resolve_as_kubernetes_does(
    node_cluster: NodeCluster, namespace: str
) -> None:
    nc = node_cluster
    nc.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": namespace},
            "stringData": {"password": "s3cret", "other": "unused"},
        }
    )
    nc.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"mode": "fast", "LEVEL": "debug"},
        }
    )
    env = [
        {"name": "BASE", "value": "base"},
        {"name": "DERIVED", "value": "$(BASE)-x $$(BASE) $(MISSING)"},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {
            "name": "ABSENT",
            "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
        },
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {
            "name": "MEM",
            "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
        },
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    manifest = _pod(
        nc,
        namespace,
        "resolved",
        ENV_SCRIPT,
        restartPolicy="Never",
        container={
            "env": env,
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
            "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
            "volumeMounts": [
                {"name": "secret", "mountPath": "/etc/secret"},
                {"name": "config", "mountPath": "/etc/config"},
                {"name": "info", "mountPath": "/etc/info"},
                {"name": "scratch", "mountPath": "/scratch"},
            ],
        },
    )
    manifest["spec"]["securityContext"] = {"fsGroup": 4242}
    manifest["spec"]["volumes"] = [
        {
            "name": "secret",
            "secret": {
                "secretName": "creds",
                "items": [{"key": "password", "path": "pw", "mode": 0o600}],
            },
        },
        {"name": "config", "configMap": {"name": "settings", "defaultMode": 0o640}},
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                ]
            },
        },
        {"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}},
    ]
    nc.cluster.apply(manifest)
    pod = _wait(
        nc,
        namespace,
        "resolved",
        "finished",
        lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
    )
    log = _log(nc, pod)
    assert pod["status"]["phase"] == "Succeeded", nc.node.container_log(
        pod["metadata"]["uid"], "main", "stderr"
    )
    out = json.loads(log)
    e = out["env"]
    assert e["DERIVED"] == "base-x $(BASE) $(MISSING)"
    assert e["PASSWORD"] == "s3cret"
    assert "ABSENT" not in e
    assert e["MODE"] == "fast"
    assert (e["CM_mode"], e["CM_LEVEL"]) == ("fast", "debug")
    assert e["POD_NAME"] == "resolved"
    assert e["POD_NS"] == namespace
    assert e["POD_UID"] == pod["metadata"]["uid"]
    assert e["POD_IP"] == pod["status"]["podIP"]
    assert e["HOST_IP"] == nc.node.address
    assert e["NODE"] == nc.node.name
    assert e["SA"] == "default"
    assert e["APP"] == "resolved"
    assert (e["MEM"], e["CPU"]) == ("64", "1")
    assert e["KUBERNETES_SERVICE_HOST"] == nc.node.address
    image_env = dict(_image_config(nc).env)
    assert image_env
    for key, value in image_env.items():  # image Env kept under the container's
        assert e[key] == value
    files = out["files"]
    assert files["/etc/secret/pw"] == ["s3cret", oct(0o640), 4242]  # fsGroup adds group read
    assert files["/etc/config/mode"] == ["fast", oct(0o640), 4242]
    assert files["/etc/info/name"][0] == "resolved"
    assert files["/etc/info/labels"][0] == 'app="resolved"'
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert files[f"{sa}/namespace"][0] == namespace
    assert "BEGIN CERTIFICATE" in files[f"{sa}/ca.crt"][0]
    user = out["review"]["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:default"
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    assert out["version"]["gitVersion"].startswith("v1.")  # via the Service's ClusterIP
    assert 4242 in out["groups"]
    assert out["scratch_gid"] == 4242


def test_host_port_reaches_the_pod_from_the_host(node_cluster: NodeCluster, namespace: str) -> None:
    nc = node_cluster
    nc.cluster.apply(
        _pod(
            nc,
            namespace,
            "exposed",
            SERVE,
            container={
                "ports": [{"containerPort": 8080, "hostPort": 31080}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            },
        )
    )
    _wait(nc, namespace, "exposed", "Ready", _ready)
    with urllib.request.urlopen(f"http://{nc.node.address}:31080/", timeout=5) as response:
        assert response.status == 200
        assert b"Directory listing" in response.read()


def test_restart_policy_and_init_containers(node_cluster: NodeCluster, namespace: str) -> None:
    nc = node_cluster
    flaky = (
        "import os, sys\n"
        "assert open('/work/init').read() == 'ready'\n"
        "seen = os.path.exists('/work/ran'); open('/work/ran', 'w').close()\n"
        "sys.exit(0 if seen else 3)\n"
    )
    manifest = _pod(
        nc,
        namespace,
        "onfailure",
        flaky,
        restartPolicy="OnFailure",
        container={
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        },
    )
    manifest["spec"]["volumes"] = [{"name": "work", "emptyDir": {}}]
    manifest["spec"]["initContainers"] = [
        {
            "name": "init",
            "image": nc.image.name,
            "command": ["sh", "-c", "printf ready > /work/init"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
        }
    ]
    nc.cluster.apply(manifest)
    nc.cluster.apply(_pod(nc, namespace, "never", "import sys; sys.exit(3)", restartPolicy="Never"))
    nc.cluster.apply(_pod(nc, namespace, "always", "print('bye')", restartPolicy="Always"))
    onfailure = _wait(nc, namespace, "onfailure", "Succeeded", _phase("Succeeded"))
    status = _main_status(onfailure)
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert onfailure["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    never = _wait(nc, namespace, "never", "Failed", _phase("Failed"))
    assert _main_status(never)["state"]["terminated"]["exitCode"] == 3
    assert _main_status(never)["restartCount"] == 0
    always = _wait(
        nc,
        namespace,
        "always",
        "restarted",
        lambda p: (
            bool(p["status"].get("containerStatuses")) and _main_status(p)["restartCount"] >= 1
        ),
    )
    assert always["status"]["phase"] == "Running"
    # `kubectl logs` goes through the API server to the node's log endpoint.
    assert "bye" in nc.cluster.kubectl("logs", "always", "-n", namespace).stdout


def test_unknown_image_waits_as_a_failed_pull(node_cluster: NodeCluster, namespace: str) -> None:
    nc = node_cluster
    manifest = _pod(nc, namespace, "pull", SLEEP)
    manifest["spec"]["containers"][0]["image"] = "registry.invalid/none:1"
    nc.cluster.apply(manifest)
    pod = _wait(
        nc,
        namespace,
        "pull",
        "ImagePullBackOff",
        lambda p: (
            bool(p["status"].get("containerStatuses"))
            and _main_status(p)["state"].get("waiting", {}).get("reason") == "ImagePullBackOff"
        ),
    )
    assert pod["status"]["phase"] == "Pending"


def test_deletion_runs_pre_stop_honours_grace_and_cleans_up(
    node_cluster: NodeCluster, namespace: str
) -> None:
    nc = node_cluster
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('TERM', flush=True))\n"
        "while True: time.sleep(60)\n"
    )
    manifest = _pod(
        nc,
        namespace,
        "stubborn",
        stubborn,
        container={
            "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
        },
    )
    manifest["spec"]["terminationGracePeriodSeconds"] = 3
    nc.cluster.apply(manifest)
    pod = _wait(nc, namespace, "stubborn", "Running", _phase("Running"))
    pid = _pid(pod)
    netns, _ = network.pod_names("ta" + network.node_tag(nc.node.name), pod["metadata"]["uid"])
    assert (network.NETNS_DIR / netns).exists()
    started = time.monotonic()
    nc.cluster.kubectl("delete", "pod", "stubborn", "-n", namespace, "--timeout=30s")
    took = time.monotonic() - started
    assert 3 <= took < 10, took  # the full grace: SIGTERM ignored, SIGKILL at its end
    assert not Path(f"/proc/{pid}").exists()
    assert not (network.NETNS_DIR / netns).exists()


def test_node_is_registered_and_renews_its_lease(node_cluster: NodeCluster) -> None:
    nc = node_cluster
    node = nc.cluster.kubectl_json("get", "node", nc.node.name)
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == addresses["ExternalIP"] == nc.node.address
    assert node["spec"]["podCIDR"] == nc.node.cidr
    # This node's kubelet is the node process, not kwok's simulation.
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "tradearena://0"
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    first = nc.cluster.kubectl_json("get", "lease", nc.node.name, "-n", "kube-node-lease")
    renewed = nc.cluster.wait_until(
        "the node Lease renewed",
        lambda: (
            lease
            if (
                lease := nc.cluster.kubectl_json(
                    "get", "lease", nc.node.name, "-n", "kube-node-lease"
                )
            )["spec"]["renewTime"]
            != first["spec"]["renewTime"]
            else None
        ),
        timeout=15,
        interval=0.5,
    )
    assert renewed["spec"]["holderIdentity"] == nc.node.name


def test_scheduler_places_pods_on_the_node(node_cluster: NodeCluster, namespace: str) -> None:
    nc = node_cluster
    manifest = _pod(nc, namespace, "scheduled", SLEEP)
    del manifest["spec"]["nodeName"]
    manifest["spec"]["nodeSelector"] = {"kubernetes.io/hostname": nc.node.name}
    nc.cluster.apply(manifest)
    pod = _wait(nc, namespace, "scheduled", "Running", _phase("Running"))
    assert pod["spec"]["nodeName"] == nc.node.name
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["PodScheduled"] == conditions["Ready"] == "True"


def test_read_only_root_keeps_volumes_writable(node_cluster: NodeCluster, namespace: str) -> None:
    nc = node_cluster
    script = (
        "import errno, os\n"
        "try:\n"
        "    open('/var/tmp/x', 'w')\n"  # world-writable in the image
        "    print('root writable')\n"
        "except OSError as e:\n"
        "    print('root', errno.errorcode[e.errno])\n"
        "open('/tmp/x', 'w').write('ok'); print('tmp', open('/tmp/x').read())\n"
    )
    manifest = _pod(
        nc,
        namespace,
        "readonly",
        script,
        restartPolicy="Never",
        container={
            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
    )
    manifest["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    nc.cluster.apply(manifest)
    writer = _pod(
        nc,
        namespace,
        "writable",
        "open('/written-by-pod', 'w').write('x')\n" + SLEEP,
        container={"securityContext": {"runAsUser": 0}},
    )
    nc.cluster.apply(writer)
    pod = _wait(nc, namespace, "readonly", "Succeeded", _phase("Succeeded"))
    assert _log(nc, pod).splitlines() == ["root EROFS", "tmp ok"]
    # A writable root takes writes in the pod's own layer, never in the cached image.
    pid = _pid(_wait(nc, namespace, "writable", "Running", _phase("Running")))
    nc.cluster.wait_until("the write", lambda: Path(f"/proc/{pid}/root/written-by-pod").exists())
    assert not (nc.image.directory / "rootfs" / "written-by-pod").exists()


def test_exec_startup_and_readiness_probes(node_cluster: NodeCluster, namespace: str) -> None:
    nc = node_cluster
    script = "import time\ntime.sleep(3)\nopen('/tmp/ready', 'w').close()\n" + SLEEP
    ready = "import os, sys; sys.exit(not os.path.exists('/tmp/ready'))"
    exec_probe = {"exec": {"command": ["python3", "-c", ready]}, "periodSeconds": 1}
    manifest = _pod(
        nc,
        namespace,
        "execprobe",
        script,
        container={
            "startupProbe": {**exec_probe, "failureThreshold": 30},
            "readinessProbe": exec_probe,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
    )
    manifest["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    nc.cluster.apply(manifest)
    started = _wait(
        nc,
        namespace,
        "execprobe",
        "running",
        lambda p: (
            bool(p["status"].get("containerStatuses")) and "running" in _main_status(p)["state"]
        ),
    )
    # Not started (so not ready either) while the startup probe fails.
    assert _main_status(started)["started"] is False
    assert not _ready(started)
    pod = _wait(nc, namespace, "execprobe", "Ready", _ready)
    assert _main_status(pod)["started"] is True
    assert _main_status(pod)["restartCount"] == 0


def test_image_entrypoint_runs_under_the_charts_security_context(
    node_cluster: NodeCluster, namespace: str
) -> None:
    """The image's own Entrypoint/Cmd (no command, no args), with the pod and container
    security contexts and the /tmp volume every pod of the chart gets."""
    nc = node_cluster
    values = yaml.safe_load((REPO / "charts" / "tradearena" / "values.yaml").read_text())
    manifest = _pod(
        nc,
        namespace,
        "entrypoint",
        "",
        restartPolicy="Never",
        securityContext=values["podSecurityContext"],
        volumes=[{"name": "tmp", "emptyDir": {"sizeLimit": values["tmpVolume"]["sizeLimit"]}}],
        container={
            "securityContext": values["containerSecurityContext"],
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
    )
    del manifest["spec"]["containers"][0]["command"]
    nc.cluster.apply(manifest)
    pod = _wait(
        nc,
        namespace,
        "entrypoint",
        "finished",
        lambda p: p["status"].get("phase") in ("Succeeded", "Failed"),
    )
    logs = nc.cluster.kubectl("logs", "entrypoint", "-n", namespace).stdout
    assert pod["status"]["phase"] == "Succeeded", logs
    config = _image_config(nc)
    assert config.entrypoint and config.cmd
    assert logs.strip(), "the image's default command printed nothing"
