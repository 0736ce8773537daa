"""The node's pure pod-spec resolution, rule by rule (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from tradearena.testing.node import podspec
from tradearena.testing.node.podspec import ConfigError, ImageConfig, PodContext

PASSWD = "root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:10001:\naudio:x:29:app\n"
IMAGE = ImageConfig(
    user="app",
    entrypoint=("python3",),
    cmd=("-m", "server"),
    workdir="/srv",
    env=(("PATH", "/usr/bin"), ("MODE", "image")),
)


def _ctx(**kw: Any) -> PodContext:
    base: dict[str, Any] = {
        "node_name": "n1",
        "host_ip": "10.77.0.1",
        "pod_ip": "10.77.0.9",
        "apiserver_host": "10.77.0.1",
        "apiserver_port": 6443,
        "node_allocatable": {"cpu": "16", "memory": "64Gi"},
    }
    base.update(kw)
    return PodContext(**base)


def _pod(container: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"app": "x", "tier": "web"},
            "annotations": {"a": "1"},
        },
        "spec": {
            "nodeName": "n1",
            "serviceAccountName": "sa",
            "containers": [{"name": "c", "image": "img", **(container or {})}],
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("x$(A)y$(B)", "x1y2"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$1"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("cost $5", "cost $5"),
        ("trailing $", "trailing $"),
        ("$()", "$()"),
    ],
)
def test_expansion_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert podspec.expand(text, {"A": "1", "B": "2"}) == expected


def test_env_order_references_and_service_variables() -> None:
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "P_"}, {"secretRef": {"name": "s"}}],
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-$(P_k)-$(KUBERNETES_SERVICE_HOST)-$(LATER)"},
            {"name": "LATER", "value": "l"},
            {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {
                "name": "O",
                "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}},
            },
            {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    }
    ctx = _ctx(config_maps={"cm": {"k": b"v"}}, secrets={"s": {"pw": b"hunter2"}})
    env = dict(podspec.container_env(_pod(container), container, ctx))
    assert env["P_k"] == "v"
    assert env["pw"] == "hunter2"  # envFrom without prefix
    assert env["B"] == "a-v-10.77.0.1-$(LATER)"  # only earlier names expand
    assert env["S"] == "hunter2"
    assert "O" not in env
    assert env["F"] == "web"
    assert env["IP"] == "10.77.0.9"
    assert env["KUBERNETES_SERVICE_PORT"] == "6443"


def test_missing_reference_is_a_config_error() -> None:
    container = {"env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    with pytest.raises(ConfigError, match='secret "s" not found'):
        podspec.container_env(_pod(container), container, _ctx())
    with pytest.raises(ConfigError, match="couldn't find key k"):
        podspec.container_env(_pod(container), container, _ctx(secrets={"s": {}}))


def test_container_env_overrides_image_env() -> None:
    merged = podspec.final_env(IMAGE, [("MODE", "pod"), ("X", "1")])
    assert merged == {"PATH": "/usr/bin", "MODE": "pod", "X": "1"}


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({}, ["python3", "-m", "server"]),
        ({"args": ["-c", "$(X)"]}, ["python3", "-c", "1"]),
        ({"command": ["sh"]}, ["sh"]),
        ({"command": ["sh"], "args": ["-c", "$$(X) $(X)"]}, ["sh", "-c", "$(X) 1"]),
    ],
)
def test_command_and_args_over_entrypoint_and_cmd(
    container: dict[str, Any], expected: list[str]
) -> None:
    assert podspec.argv(IMAGE, container, {"X": "1"}) == expected


@pytest.mark.parametrize(
    ("resource", "divisor", "expected"),
    [
        ("limits.cpu", None, "1"),  # 500m rounds up to a core
        ("limits.cpu", "0", "1"),  # the API server's default divisor
        ("limits.cpu", "1m", "500"),
        ("limits.memory", "1Mi", "64"),
        ("requests.memory", None, str(32 * 2**20)),
        ("requests.cpu", "1m", "500"),  # unset request reads as the limit
    ],
)
def test_resource_field_values(resource: str, divisor: str | None, expected: str) -> None:
    container = {
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"memory": "32Mi"}}
    }
    assert podspec.resource_value(container, resource, divisor, {}) == expected


def test_unset_limit_reads_as_node_allocatable() -> None:
    assert podspec.resource_value({}, "limits.cpu", None, {"cpu": "16"}) == "16"


@pytest.mark.parametrize(
    ("image_user", "run_as_user", "run_as_group", "expected"),
    [
        ("app", None, None, (10001, 10001, [29])),
        ("10001", None, None, (10001, 10001, [29])),
        ("app:audio", None, None, (10001, 29, [])),
        ("", None, None, (0, 0, [])),
        ("app", 0, None, (0, 0, [])),
        ("app", 4000, None, (4000, 0, [])),
        ("app", 10001, 7, (10001, 7, [29])),
        ("5:6", None, None, (5, 6, [])),
    ],
)
def test_user_resolution(
    image_user: str,
    run_as_user: int | None,
    run_as_group: int | None,
    expected: tuple[int, int, list[int]],
) -> None:
    assert podspec.resolve_user(image_user, run_as_user, run_as_group, PASSWD, GROUP) == expected


def test_unknown_image_user_is_an_error() -> None:
    with pytest.raises(ConfigError):
        podspec.resolve_user("nobody-here", None, None, PASSWD, GROUP)


def test_secret_and_config_map_volumes_with_items_and_modes() -> None:
    pod = _pod()
    ctx = _ctx(secrets={"s": {"a": b"1", "b": b"2"}}, config_maps={"cm": {"k": b"v"}})
    secret = podspec.volume_plan(
        pod, {"name": "v", "secret": {"secretName": "s", "defaultMode": 0o400}}, ctx
    )
    assert secret.files == (
        podspec.VolumeFile("a", b"1", 0o400),
        podspec.VolumeFile("b", b"2", 0o400),
    )
    items = podspec.volume_plan(
        pod,
        {
            "name": "v",
            "configMap": {"name": "cm", "items": [{"key": "k", "path": "dir/file", "mode": 0o600}]},
        },
        ctx,
    )
    assert items.files == (podspec.VolumeFile("dir/file", b"v", 0o600),)
    optional = podspec.volume_plan(
        pod, {"name": "v", "secret": {"secretName": "x", "optional": True}}, ctx
    )
    assert optional.files == ()
    with pytest.raises(ConfigError):
        podspec.volume_plan(pod, {"name": "v", "secret": {"secretName": "x"}}, ctx)


def test_service_account_volume_as_admission_injects_it() -> None:
    volume = {
        "name": "kube-api-access-x",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }
    pod = _pod(volumes=[volume])
    (source,) = podspec.token_sources(pod)
    assert source == podspec.TokenSource("kube-api-access-x/token", None, 3607)
    ctx = _ctx(tokens={source.key: "tok"}, config_maps={"kube-root-ca.crt": {"ca.crt": b"CA"}})
    plan = podspec.volume_plan(pod, volume, ctx)
    assert {f.path: (f.content, f.mode) for f in plan.files} == {
        "token": (b"tok", 0o644),
        "ca.crt": (b"CA", 0o644),
        "namespace": (b"ns", 0o644),
    }
    assert podspec.referenced_objects(pod) == (set(), {"kube-root-ca.crt"})


def test_downward_api_volume_formats_maps() -> None:
    volume = {
        "name": "i",
        "downwardAPI": {
            "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
        },
    }
    plan = podspec.volume_plan(_pod(), volume, _ctx())
    assert plan.files[0].content == b'app="x"\ntier="web"'


def test_volume_paths_cannot_escape() -> None:
    volume = {"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../x"}]}}
    with pytest.raises(ConfigError, match="bad path"):
        podspec.volume_plan(_pod(), volume, _ctx(config_maps={"cm": {"k": b"v"}}))


def test_container_plan_security_mounts_and_ports() -> None:
    container = {
        "workingDir": "/w",
        "securityContext": {"readOnlyRootFilesystem": True, "runAsUser": 5},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp", "readOnly": False}],
        "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9090}],
    }
    pod = _pod(
        container,
        volumes=[{"name": "tmp", "emptyDir": {}}],
        securityContext={"runAsUser": 1, "runAsGroup": 2, "fsGroup": 3, "supplementalGroups": [4]},
    )
    plan = podspec.container_plan(pod, pod["spec"]["containers"][0], IMAGE, _ctx())
    assert (plan.run_as_user, plan.run_as_group) == (5, 2)  # container wins, pod fills in
    assert plan.supplemental_groups == (3, 4)
    assert plan.read_only_root
    assert plan.workdir == "/w"
    assert plan.mounts == (podspec.MountPlan("tmp", "/tmp", False),)
    assert plan.host_ports == (podspec.HostPort(8080, 80, "TCP"),)
    assert plan.argv == ("python3", "-m", "server")


def test_mount_of_an_undeclared_volume_is_an_error() -> None:
    container = {"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}
    pod = _pod(container)
    with pytest.raises(ConfigError, match="nope"):
        podspec.container_plan(pod, pod["spec"]["containers"][0], IMAGE, _ctx())


def test_probe_named_port_and_defaults() -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    plan = podspec.probe_plan(container, {"httpGet": {"path": "/healthz", "port": "http"}})
    assert plan == podspec.ProbePlan("http", port=8080, path="/healthz")
    assert podspec.probe_plan(container, None) is None
    with pytest.raises(ConfigError):
        podspec.probe_plan(container, {"tcpSocket": {"port": "admin"}})


def test_hosts_file_names_services_bare_only_in_their_namespace() -> None:
    services = {("ns", "web"): "10.96.0.10", ("default", "kubernetes"): "10.96.0.1"}
    text = podspec.hosts_file("10.77.0.9", "p", services, "ns")
    assert "10.77.0.9\tp" in text
    assert "10.96.0.10\tweb web.ns web.ns.svc web.ns.svc.cluster.local\n" in text
    kubernetes = "kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local"
    assert f"10.96.0.1\t{kubernetes}\n" in text


def test_image_config_from_oci_document() -> None:
    config = ImageConfig.from_json(
        {"config": {"User": "app", "Env": ["A=1=2"], "Entrypoint": ["e"], "WorkingDir": "/w"}}
    )
    assert config == ImageConfig(user="app", entrypoint=("e",), workdir="/w", env=(("A", "1=2"),))
