"""charts/tradearena rendered with `helm template` (default, production-like and the
Terraform values contract) and checked object by object; `helm lint`; the values schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradearena.contracts import resource as ta_resource
from tradearena.testing.helm_chart import (
    CHART,
    REPO,
    VALUES_DIR,
    Rendered,
    helm,
    pod_specs,
    render,
    terraform_values,
    value_args,
)

REL = "tradearena"
NS = "tradearena"


@pytest.fixture(scope="module")
def tf_values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return terraform_values(tmp_path_factory.mktemp("tf") / "values-aws.yaml")


@pytest.fixture(scope="module", params=["default", "production", "terraform"])
def values_files(request: pytest.FixtureRequest, tf_values: Path) -> list[Path]:
    return {
        "default": [],
        "production": [VALUES_DIR / "production.yaml"],
        "terraform": [tf_values],
    }[request.param]


@pytest.fixture(scope="module")
def rendered(values_files: list[Path]) -> Rendered:
    return render(values_files, release=REL, namespace=NS)


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_helm_lint_strict(values_files: list[Path]) -> None:
    out = helm("lint", str(CHART), "--strict", *value_args(values_files)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_chart_crds_are_the_repository_crds_byte_for_byte() -> None:
    chart_crds = sorted(p.name for p in (CHART / "crds").iterdir())
    assert chart_crds == ["kopf-peering.yaml", "match.yaml", "matchserverpool.yaml"]
    for name in chart_crds:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), name


def test_every_workload_and_the_test_pod_run_with_secure_defaults(rendered: Rendered) -> None:
    specs = pod_specs(rendered)
    assert set(specs) == {
        f"{REL}-lobby",
        f"{REL}-operator",
        f"{REL}-feed-relay",
        f"{REL}-results-worker",
        f"{REL}-test-lobby-ready",
        f"{REL}-drain-matches",
        f"{REL}-migrate",
    }
    for name, spec in specs.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] > 0 and pod["runAsGroup"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, name
        for container in _containers(spec):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["privileged"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert "memory" in container["resources"]["limits"], name
            assert container["resources"]["requests"], name
        if name.endswith("test-lobby-ready"):
            continue
        # Read-only root: /tmp is an emptyDir, the only writable mount.
        (container,) = spec["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/tmp"]["name"] == "tmp"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        writable = [m for m in mounts.values() if not m.get("readOnly")]
        assert [m["mountPath"] for m in writable] == ["/tmp"], name
        # One image, the subcommand picks the process.
        component = name.removeprefix(f"{REL}-")
        assert container["args"][0] == component, name
        assert (
            container["image"]
            == rendered.get("Deployment", f"{REL}-lobby")["spec"]["template"]["spec"]["containers"][
                0
            ]["image"]
        )
        if component in ("drain-matches", "migrate"):
            continue  # run-to-completion hook Jobs: no server, no probes
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == "http", (name, probe)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # The operator serves /healthz and /metrics only; the services have /readyz.
        ready = "/healthz" if component == "operator" else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == ready


def test_only_operator_and_lobby_get_an_api_token(rendered: Rendered) -> None:
    specs = pod_specs(rendered)
    tokens = {name: spec["automountServiceAccountToken"] for name, spec in specs.items()}
    assert tokens == {
        f"{REL}-lobby": True,
        f"{REL}-operator": True,
        f"{REL}-feed-relay": False,
        f"{REL}-results-worker": False,
        f"{REL}-test-lobby-ready": False,
        f"{REL}-drain-matches": True,
        f"{REL}-migrate": False,
    }
    accounts = {sa["metadata"]["name"]: sa for sa in rendered.of_kind("ServiceAccount")}
    for name in ("feed-relay", "results-worker", "match-server", "migrate"):
        assert accounts[f"{REL}-{name}"]["automountServiceAccountToken"] is False
    for name in ("lobby", "operator", "feed-relay", "results-worker"):
        assert specs[f"{REL}-{name}"]["serviceAccountName"] == f"{REL}-{name}"
    # Match pods run under the chart's match-server account, which no binding names.
    operator_env = _env(specs[f"{REL}-operator"]["containers"][0])
    assert operator_env["TRADEARENA_OPERATOR_SERVICE_ACCOUNT"]["value"] == f"{REL}-match-server"
    bound = {
        s["name"]
        for b in rendered.of_kind("RoleBinding") + rendered.of_kind("ClusterRoleBinding")
        for s in b["subjects"]
    }
    assert bound == {f"{REL}-operator", f"{REL}-lobby", f"{REL}-drain-matches"}


Rule = tuple[str, str, str, str]  # group, resource, verb, resourceName ("" for any)


def _rules(role: dict[str, Any]) -> set[Rule]:
    return {
        (group, resource, verb, name)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", [""])
    }


def test_operator_rbac_is_the_operators_own_manifest(rendered: Rendered) -> None:
    """The chart's operator Role and ClusterRole grant exactly what deploy/operator/rbac.yaml
    (maintained with the operator code) grants: nothing more, nothing less."""
    manifest = [
        d for d in yaml.safe_load_all((REPO / "deploy/operator/rbac.yaml").read_text()) if d
    ]
    (own_role,) = [d for d in manifest if d["kind"] == "Role"]
    (own_cluster_role,) = [d for d in manifest if d["kind"] == "ClusterRole"]
    assert _rules(rendered.get("Role", f"{REL}-operator")) == _rules(own_role)
    assert _rules(rendered.get("ClusterRole", f"{NS}-{REL}-operator")) == _rules(own_cluster_role)
    # Same peering object, same match-server account name as the operator's defaults.
    (own_peering,) = [d for d in manifest if d["kind"] == "KopfPeering"]
    (peering,) = rendered.of_kind("KopfPeering")
    assert peering["metadata"]["name"] == own_peering["metadata"]["name"]
    own_accounts = {d["metadata"]["name"] for d in manifest if d["kind"] == "ServiceAccount"}
    assert own_accounts <= {sa["metadata"]["name"] for sa in rendered.of_kind("ServiceAccount")}


def test_rbac_has_no_wildcards_and_the_lobby_only_manages_matches(rendered: Rendered) -> None:
    for kind in ("Role", "ClusterRole"):
        for role in rendered.of_kind(kind):
            for group, resource, verb, _ in _rules(role):
                assert "*" not in (group, resource, verb), role["metadata"]["name"]
            assert ("", "secrets", "get", "") not in _rules(role)
    lobby = _rules(rendered.get("Role", f"{REL}-lobby"))
    assert lobby == {
        ("tradearena.io", "matches", verb, "")
        for verb in ("create", "get", "list", "watch", "patch")
    }
    for kind in ("Role", "RoleBinding"):
        for obj in rendered.of_kind(kind):
            assert obj["metadata"]["namespace"] == NS
    (binding,) = rendered.of_kind("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{REL}-operator", "namespace": NS}
    ]


def test_network_policies_default_deny_and_allow_only_the_needed_paths(
    rendered: Rendered, values_files: list[Path]
) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.of_kind("NetworkPolicy")}
    deny = policies[f"{REL}-default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    lobby = policies[f"{REL}-lobby"]
    assert lobby["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "lobby"
    sources = lobby["ingress"][0]["from"]
    assert sources[0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
    }
    assert lobby["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8080}]

    def egress_ports(spec: dict[str, Any]) -> set[int]:
        return {p["port"] for rule in spec["egress"] for p in rule["ports"]}

    values: dict[str, Any] = {}
    for path in values_files:
        values.update(yaml.safe_load(path.read_text()))
    api_ports = set(values.get("networkPolicy", {}).get("apiServer", {}).get("ports", [443, 6443]))
    assert egress_ports(lobby) == {53, 6379, 5432} | api_ports
    admin_port = values.get("matchServer", {}).get("adminPort", 9100)
    # The operator may reach the match pods' admin port (/status, /metrics).
    assert egress_ports(policies[f"{REL}-operator"]) == {53, 6379, admin_port} | api_ports
    assert egress_ports(policies[f"{REL}-results-worker"]) == {53, 6379, 5432}
    assert egress_ports(policies[f"{REL}-feed-relay"]) == {53, 6379, 443, 9443}
    match = policies[f"{REL}-match-server"]
    assert match["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "tradearena-matchserver",
        "app.kubernetes.io/component": "match-server",
    }
    game, admin = match["ingress"]
    assert {"ipBlock": {"cidr": "0.0.0.0/0"}} in game["from"]
    (port,) = game["ports"]
    expected_range = values.get("matchServer", {}).get("portRange", {"min": 7000, "max": 8000})
    assert (port["port"], port["endPort"]) == (expected_range["min"], expected_range["max"])
    assert not expected_range["min"] <= admin_port <= expected_range["max"]
    # /status and /metrics: Prometheus and the operator only, never the world.
    assert admin["ports"] == [{"protocol": "TCP", "port": admin_port}]
    prometheus, operator = admin["from"]
    assert prometheus["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    assert operator == {
        "podSelector": {"matchLabels": policies[f"{REL}-operator"]["podSelector"]["matchLabels"]}
    }
    operator_env = _env(pod_specs(rendered)[f"{REL}-operator"]["containers"][0])
    assert operator_env["TRADEARENA_OPERATOR_ADMIN_PORT"]["value"] == str(admin_port)
    assert egress_ports(match) == {53, 6379}, "match pods reach Redis and DNS only"
    # Restricted destinations when CIDRs are given (production-like values).
    if values_files and values_files[0].name == "production.yaml":
        api_rule = next(
            r for r in policies[f"{REL}-operator"]["egress"] if r["ports"][0]["port"] == 443
        )
        assert api_rule["to"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
        pg_rule = next(r for r in lobby["egress"] if r["ports"][0]["port"] == 5432)
        assert pg_rule["to"] == [{"ipBlock": {"cidr": "10.0.64.0/20"}}]


def test_no_secret_values_in_rendered_manifests(rendered: Rendered) -> None:
    assert not rendered.of_kind("Secret"), "the chart only references existing Secrets"
    for name, spec in pod_specs(rendered).items():
        for container in _containers(spec):
            env = _env(container)
            for key, entry in env.items():
                if (
                    re.search(r"PASSWORD|SECRET_KEY$|TOKEN", key)
                    and key != "TRADEARENA_OPERATOR_REDIS_SECRET_KEY"
                ):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (name, key)
            if "TRADEARENA_REDIS_URL" in env:
                url = env["TRADEARENA_REDIS_URL"]["value"]
                assert re.fullmatch(
                    r"rediss?://(:\$\(TRADEARENA_REDIS_PASSWORD\)@)?[^:@]+:\d+/\d+", url
                ), url
            if "TRADEARENA_DATABASE_URL" in env:
                url = env["TRADEARENA_DATABASE_URL"]["value"]
                assert re.fullmatch(r"postgresql://[^:@/]+@[^@/]+:\d+/\w+\?sslmode=[a-z-]+", url), (
                    url
                )
                assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    lobby = pod_specs(rendered)[f"{REL}-lobby"]
    (signing,) = [v for v in lobby["volumes"] if v["name"] == "signing-key"]
    assert signing["secret"]["secretName"] == "tradearena-signing-key"
    assert signing["secret"]["defaultMode"] == 0o400
    env = _env(lobby["containers"][0])
    assert env["TRADEARENA_SIGNING_KEY_FILE"]["value"] == "/etc/tradearena/signing-key/private.pem"
    assert "TRADEARENA_SIGNING_KEY_PEM" not in env


def test_terraform_contract_values_reach_the_manifests(tf_values: Path) -> None:
    contract = json.loads(
        "\n".join(line for line in tf_values.read_text().splitlines() if not line.startswith("#"))
    )
    out = render([tf_values], release=REL, namespace=NS)
    (store,) = out.of_kind("SecretStore")
    assert store["metadata"]["name"] == "tradearena-aws"
    assert store["spec"]["provider"]["aws"] == {
        "service": "SecretsManager",
        "region": contract["global"]["region"],
        "auth": {"jwt": {"serviceAccountRef": {"name": "tradearena-secrets"}}},
    }
    externals = {e["metadata"]["name"]: e["spec"] for e in out.of_kind("ExternalSecret")}
    assert set(externals) == {"tradearena-postgresql", "tradearena-redis"}
    for entry in contract["externalSecrets"]["secrets"]:
        spec = externals[entry["name"]]
        assert spec["refreshInterval"] == "5m"
        assert spec["secretStoreRef"] == {"name": "tradearena-aws", "kind": "SecretStore"}
        assert spec["data"] == [
            {
                "secretKey": "password",
                "remoteRef": {"key": entry["remoteKey"], "property": "password"},
            }
        ]
    # Match pods read the whole Redis URL from the same Secret: the ExternalSecret builds it.
    template = externals["tradearena-redis"]["target"]["template"]["data"]
    redis = contract["redis"]
    assert template["url"] == f"rediss://:{{{{ .password }}}}@{redis['host']}:{redis['port']}/0"
    secrets_sa = out.get("ServiceAccount", "tradearena-secrets")
    assert (
        secrets_sa["metadata"]["annotations"]
        == contract["externalSecrets"]["serviceAccount"]["annotations"]
    )
    specs = pod_specs(out)
    operator = _env(specs[f"{REL}-operator"]["containers"][0])
    assert (
        json.loads(operator["TRADEARENA_OPERATOR_NODE_SELECTOR"]["value"])
        == contract["matchServer"]["nodeSelector"]
    )
    assert (
        json.loads(operator["TRADEARENA_OPERATOR_TOLERATIONS"]["value"])
        == contract["matchServer"]["tolerations"]
    )
    assert operator["TRADEARENA_OPERATOR_PORT_MIN"]["value"] == "7000"
    assert operator["TRADEARENA_OPERATOR_PORT_MAX"]["value"] == "8000"
    assert operator["TRADEARENA_OPERATOR_REDIS_SECRET"]["value"] == "tradearena-redis"
    lobby = _env(specs[f"{REL}-lobby"]["containers"][0])
    pg = contract["postgresql"]
    assert lobby["TRADEARENA_DATABASE_URL"]["value"] == (
        f"postgresql://{pg['username']}@{pg['host']}:{pg['port']}/{pg['database']}?sslmode=require"
    )
    assert lobby["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "tradearena-postgresql",
        "key": "password",
    }
    assert lobby["TRADEARENA_REDIS_URL"]["value"].startswith(
        "rediss://:$(TRADEARENA_REDIS_PASSWORD)@"
    )
    assert lobby["TRADEARENA_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "tradearena-redis",
        "key": "password",
    }


@pytest.mark.parametrize(("tls", "scheme"), [(True, "rediss+cluster"), (False, "redis+cluster")])
def test_redis_cluster_selects_the_cluster_url_scheme(
    tf_values: Path, tls: bool, scheme: str
) -> None:
    contract = json.loads(
        "\n".join(line for line in tf_values.read_text().splitlines() if not line.startswith("#"))
    )
    host, port = contract["redis"]["host"], contract["redis"]["port"]
    out = render(
        [tf_values],
        ["redis.cluster=true", f"redis.tls={str(tls).lower()}"],
        release=REL,
        namespace=NS,
    )
    # Every process of the chart: the cluster scheme, no database path (database 0 only).
    urls = {
        name: _env(container)["TRADEARENA_REDIS_URL"]["value"]
        for name, spec in pod_specs(out).items()
        for container in _containers(spec)
        if "TRADEARENA_REDIS_URL" in _env(container)
    }
    assert set(urls) >= {f"{REL}-lobby", f"{REL}-feed-relay", f"{REL}-results-worker"}
    for name, url in urls.items():
        assert url == f"{scheme}://:$(TRADEARENA_REDIS_PASSWORD)@{host}:{port}", name
    # Match-server pods: the URL the ExternalSecret writes into the Secret's url key.
    (external,) = [
        e for e in out.of_kind("ExternalSecret") if e["metadata"]["name"] == "tradearena-redis"
    ]
    template = external["spec"]["target"]["template"]["data"]
    assert template["url"] == f"{scheme}://:{{{{ .password }}}}@{host}:{port}"
    # Off by default: one Redis, with its database.
    plain = render([tf_values], release=REL, namespace=NS)
    lobby = _env(pod_specs(plain)[f"{REL}-lobby"]["containers"][0])
    assert lobby["TRADEARENA_REDIS_URL"]["value"] == (
        f"rediss://:$(TRADEARENA_REDIS_PASSWORD)@{host}:{port}/0"
    )
    assert yaml.safe_load((CHART / "values.yaml").read_text())["redis"]["cluster"] is False


def test_a_redis_cluster_without_auth_has_no_credentials_in_its_url() -> None:
    out = render([], ["redis.cluster=true", "redis.existingSecret.name=", "redis.host=cfg.example"])
    lobby = _env(pod_specs(out)[f"{REL}-lobby"]["containers"][0])
    assert lobby["TRADEARENA_REDIS_URL"]["value"] == "redis+cluster://cfg.example:6379"
    assert "TRADEARENA_REDIS_PASSWORD" not in lobby


def test_components_replicas_and_leader_election(rendered: Rendered) -> None:
    deployments = {d["metadata"]["name"]: d["spec"] for d in rendered.of_kind("Deployment")}
    assert deployments[f"{REL}-operator"]["replicas"] == 2
    assert deployments[f"{REL}-feed-relay"]["replicas"] >= 2
    operator = _env(pod_specs(rendered)[f"{REL}-operator"]["containers"][0])
    assert operator["TRADEARENA_OPERATOR_STANDALONE"]["value"] == "false"
    assert operator["TRADEARENA_OPERATOR_NAMESPACES"]["value"] == NS
    (peering,) = rendered.of_kind("KopfPeering")
    assert peering["metadata"]["name"] == operator["TRADEARENA_OPERATOR_PEERING"]["value"]
    relay = _env(pod_specs(rendered)[f"{REL}-feed-relay"]["containers"][0])
    assert relay["TRADEARENA_RELAY_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # The lobby: Service, HPA (replicas left to it), PDB; ingress only when enabled.
    hpa = rendered.get("HorizontalPodAutoscaler", f"{REL}-lobby")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{REL}-lobby",
    }
    assert hpa["minReplicas"] >= 2
    assert "replicas" not in deployments[f"{REL}-lobby"]
    pdbs = {p["metadata"]["name"]: p["spec"] for p in rendered.of_kind("PodDisruptionBudget")}
    assert pdbs[f"{REL}-lobby"]["minAvailable"] == 1
    assert (
        pdbs[f"{REL}-operator"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        == "operator"
    )
    service = rendered.get("Service", f"{REL}-lobby")["spec"]
    assert service["ports"][0]["targetPort"] == "http"


def _match_server_origins(out: Rendered) -> list[str]:
    env = _env(pod_specs(out)[f"{REL}-operator"]["containers"][0])
    origins: list[str] = json.loads(env["TRADEARENA_OPERATOR_CORS_ORIGINS"]["value"])
    return origins


def test_match_servers_allow_the_lobbys_origins_only() -> None:
    # No ingress, no extra origins: no browser page may connect (bots still do).
    assert _match_server_origins(render([], release=REL, namespace=NS)) == []
    production = [VALUES_DIR / "production.yaml"]
    out = render(production, release=REL, namespace=NS)
    assert _match_server_origins(out) == ["https://play.example.com"]
    # One value for both: the lobby's extra origins are the match servers' too.
    extra = ["lobby.corsOrigins={https://beta.example.com}"]
    out = render(production, extra, release=REL, namespace=NS)
    assert _match_server_origins(out) == ["https://play.example.com", "https://beta.example.com"]
    # The lobby accepts the same ones: its own public origin among them, since once a
    # list is set, Socket.IO checks a browser's Origin against that list alone.
    lobby_env = _env(pod_specs(out)[f"{REL}-lobby"]["containers"][0])
    assert json.loads(lobby_env["TRADEARENA_CORS_ORIGINS"]["value"]) == [
        "https://play.example.com",
        "https://beta.example.com",
    ]


def test_production_values_add_ingress_monitors_and_pinned_digest() -> None:
    out = render([VALUES_DIR / "production.yaml"], release=REL, namespace=NS)
    ingress = out.get("Ingress", f"{REL}-lobby")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"secretName": "play-example-com-tls", "hosts": ["play.example.com"]}]
    assert ingress["rules"][0]["host"] == "play.example.com"
    monitors = {m["metadata"]["name"] for m in out.of_kind("ServiceMonitor")}
    assert monitors == {f"{REL}-{c}" for c in ("lobby", "operator", "feed-relay", "results-worker")}
    (pod_monitor,) = out.of_kind("PodMonitor")
    assert pod_monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "admin", "path": "/metrics", "interval": "15s"}
    ]
    for spec in pod_specs(out).values():
        for container in spec["containers"]:
            if container["name"] != "curl":
                assert container["image"].startswith(
                    "registry.example.com/tradearena/tradearena@sha256:"
                )
    default = render([], release=REL, namespace=NS)
    assert not default.of_kind("Ingress") and not default.of_kind("ServiceMonitor")


def test_lobby_and_relay_roll_one_new_pod_before_stopping_an_old_one() -> None:
    """An upgrade never leaves fewer serving lobbies or relay standbys than it found:
    a new pod is ready before an old one stops (the relay's leader then hands over)."""
    out = render([], release=REL, namespace=NS)
    for name in ("lobby", "feed-relay"):
        strategy = out.get("Deployment", f"{REL}-{name}")["spec"]["strategy"]
        assert strategy == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }, name


def test_helm_test_hook_asks_the_lobby_readyz() -> None:
    out = render([], release=REL, namespace=NS)
    pod = out.get("Pod", f"{REL}-test-lobby-ready")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    # The release's own image (no third-party image to mirror), its http-check command.
    assert (
        container["image"]
        == out.get("Deployment", f"{REL}-lobby")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )
    assert container["args"][0] == "http-check"
    assert container["args"][-1] == f"http://{REL}-lobby.{NS}.svc:80/readyz"
    # The default-deny policy lets it reach the lobby (and DNS) only.
    policy = out.get("NetworkPolicy", f"{REL}-test")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_the_lobby_forms_matches_in_the_release_namespace_by_default() -> None:
    out = render([], release=REL, namespace=NS)
    spec = out.get("Deployment", f"{REL}-lobby")["spec"]["template"]["spec"]
    env = _env(spec["containers"][0])
    assert env["TRADEARENA_ORCHESTRATOR"]["value"] == "kubernetes"
    assert env["TRADEARENA_KUBERNETES_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert spec["automountServiceAccountToken"] is True
    # The names the chart sets are the lobby's own settings.
    from lobby.settings import LobbySettings

    fields = {f"TRADEARENA_{name.upper()}" for name in LobbySettings.model_fields}
    assert {"TRADEARENA_ORCHESTRATOR", "TRADEARENA_KUBERNETES_NAMESPACE"} <= fields


def test_a_lobby_only_install_gets_no_api_access() -> None:
    out = render([], ["lobby.orchestrator.enabled=false"], release=REL, namespace=NS)
    spec = out.get("Deployment", f"{REL}-lobby")["spec"]["template"]["spec"]
    assert "TRADEARENA_ORCHESTRATOR" not in _env(spec["containers"][0])
    assert spec["automountServiceAccountToken"] is False
    assert f"{REL}-lobby" not in {r["metadata"]["name"] for r in out.of_kind("Role")}


def test_uninstall_hook_settles_matches_with_least_privilege() -> None:
    out = render([], release=REL, namespace=NS)
    job = out.get("Job", f"{REL}-drain-matches")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    # Its ServiceAccount, Role and binding are hooks too, created before the Job.
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        obj = out.get(kind, f"{REL}-drain-matches")["metadata"]["annotations"]
        assert obj["helm.sh/hook"] == "pre-delete"
        assert int(obj["helm.sh/hook-weight"]) < int(
            job["metadata"]["annotations"]["helm.sh/hook-weight"]
        )
    assert _rules(out.get("Role", f"{REL}-drain-matches")) == {
        ("tradearena.io", "matches", verb, "") for verb in ("list", "delete")
    }
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"][0] == "drain-matches"
    timeout = float(container["args"][container["args"].index("--timeout") + 1])
    # Long enough for a match pod's graceful stop; the Job's deadline is longer still.
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert timeout > values["matchServer"]["terminationGracePeriodSeconds"]
    assert job["spec"]["activeDeadlineSeconds"] > timeout
    policy = out.get("NetworkPolicy", f"{REL}-drain-matches")["spec"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert "ingress" not in policy  # nothing may call it
    off = render([], ["uninstallHook.enabled=false"], release=REL, namespace=NS)
    assert f"{REL}-drain-matches" not in {j["metadata"]["name"] for j in off.of_kind("Job")}


def test_migrations_run_in_a_hook_job_before_install_and_upgrade() -> None:
    out = render([], release=REL, namespace=NS)
    job = out.get("Job", f"{REL}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    # Its ServiceAccount and network policy are hooks of the same events, created first
    # (the policy must exist before the Job on the first upgrade that brings it).
    for kind in ("ServiceAccount", "NetworkPolicy"):
        obj = out.get(kind, f"{REL}-migrate")["metadata"]["annotations"]
        assert obj["helm.sh/hook"] == annotations["helm.sh/hook"], kind
        assert obj["helm.sh/hook-delete-policy"] == annotations["helm.sh/hook-delete-policy"]
        assert int(obj["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"]), kind
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    hook = values["migrations"]["hook"]
    assert job["spec"]["backoffLimit"] == hook["backoffLimit"]
    assert job["spec"]["activeDeadlineSeconds"] == hook["timeoutSeconds"]
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    # No API access: a token-less ServiceAccount that no binding names.
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == f"{REL}-migrate"
    bound = {s["name"] for b in out.of_kind("RoleBinding") for s in b["subjects"]}
    assert f"{REL}-migrate" not in bound
    (container,) = spec["containers"]
    assert container["args"] == ["migrate"]
    assert container["resources"] == hook["resources"]
    lobby = out.get("Deployment", f"{REL}-lobby")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == lobby["image"]
    # The database exactly as the lobby reaches it (the URL, libpq's password and TLS).
    env, lobby_env = _env(container), _env(lobby)
    for name in ("TRADEARENA_DATABASE_URL", "PGPASSWORD", "PGSSLMODE"):
        assert env[name] == lobby_env[name], name
    assert "secretKeyRef" in env["PGPASSWORD"]["valueFrom"]
    assert not {k for k in env if k.startswith("TRADEARENA_REDIS")}  # PostgreSQL only
    # The lobby leaves migrating to the hook.
    assert values["lobby"]["migrateOnStart"] is False
    assert lobby_env["TRADEARENA_MIGRATE_ON_START"]["value"] == "false"
    # DNS and PostgreSQL out, nothing in.
    policy = out.get("NetworkPolicy", f"{REL}-migrate")["spec"]
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert "ingress" not in policy
    ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {53, values["postgresql"]["port"]}

    custom = render(
        [],
        [
            "migrations.hook.timeoutSeconds=900",
            "postgresql.port=6432",
            "networkPolicy.postgresqlCidrs={10.0.64.0/20}",
        ],
        release=REL,
        namespace=NS,
    )
    assert custom.get("Job", f"{REL}-migrate")["spec"]["activeDeadlineSeconds"] == 900
    egress = custom.get("NetworkPolicy", f"{REL}-migrate")["spec"]["egress"]
    (pg,) = [r for r in egress if r["ports"][0]["port"] == 6432]
    assert pg["to"] == [{"ipBlock": {"cidr": "10.0.64.0/20"}}]

    # A Secret External Secrets makes with the release exists only after the first
    # install's objects: then the hook runs after install (still before every upgrade).
    external = render([], ["externalSecrets.enabled=true"], release=REL, namespace=NS)
    for kind in ("ServiceAccount", "NetworkPolicy", "Job"):
        hook = external.get(kind, f"{REL}-migrate")["metadata"]["annotations"]["helm.sh/hook"]
        assert hook == "post-install,pre-upgrade", kind

    off = render([], ["migrations.hook.enabled=false"], release=REL, namespace=NS)
    assert f"{REL}-migrate" not in {o["metadata"]["name"] for o in off.docs}


def _code_metric_names() -> set[str]:
    names: set[str] = set()
    for package in ("tradearena", "lobby", "matchserver", "operator"):
        names |= _metric_names_in(REPO / package)
    return names


def _metric_names_in(tree: Path) -> set[str]:
    names: set[str] = set()
    for path in tree.rglob("*.py"):
        for match in re.finditer(
            r"(?:Counter|Gauge|Histogram|Summary)\(\s*\"([a-z_:]+)\"", path.read_text()
        ):
            names.add(match.group(1).removesuffix("_total"))
    return names


def test_every_dashboard_metric_exists_in_the_code() -> None:
    dashboard = json.loads((CHART / "dashboards" / "tradearena.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = {
        name for expr in exprs for name in re.findall(r"\b((?:lobby|tradearena)_[a-z_]+)\b", expr)
    }
    code = _code_metric_names()
    assert len(code) >= 20, "the metric scan found the metric definitions"
    missing = []
    for name in used:
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        if base not in code:
            missing.append(name)
    assert not missing, f"dashboard metrics not defined in the code: {sorted(missing)}"
    # Every component is on the dashboard.
    prefixes = {"lobby_", "tradearena_match_", "tradearena_feed_", "tradearena_results_"}
    assert all(any(n.startswith(p) for n in used) for p in prefixes)
    # The ConfigMap carries the same JSON.
    out = render([], release=REL, namespace=NS)
    cm = out.get("ConfigMap", f"{REL}-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["tradearena.json"]) == dashboard


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["lobby.replicas=0"], "at '/lobby/replicas': minimum: got 0, want 1"),
        (["operator.replicas=0"], "at '/operator/replicas': minimum: got 0, want 1"),
        (["feedRelay.replicas=-1"], "at '/feedRelay/replicas'"),
        (["lobby.replicas=two"], "at '/lobby/replicas': got string, want integer"),
        (["unknownKey=1"], "additional properties 'unknownKey' not allowed"),
        (
            ["matchServer.portRange.min=80"],
            "at '/matchServer/portRange/min': minimum: got 80, want 1,024",
        ),
        (
            ["matchServer.portRange.max=70000"],
            "at '/matchServer/portRange/max': maximum: got 70,000, want 65,535",
        ),
        (["matchServer.portRange.min=8100"], "matchServer.portRange: min 8100 is above max 8000"),
        (["redis.tls=yes"], "at '/redis/tls': got string, want boolean"),
        (["redis.cluster=yes"], "at '/redis/cluster': got string, want boolean"),
        (["redis.cluster=true", "redis.db=1"], "a Redis Cluster has database 0 only"),
        (["podSecurityContext.runAsNonRoot=false"], "at '/podSecurityContext/runAsNonRoot'"),
        (
            ["containerSecurityContext.allowPrivilegeEscalation=true"],
            "at '/containerSecurityContext/allowPrivilegeEscalation'",
        ),
        (["logLevel=TRACE"], "at '/logLevel'"),
        (["postgresql.enabled=true"], "this chart deploys no PostgreSQL"),
        (["image.digest=latest"], "at '/image/digest'"),
        (["lobby.corsOrigins={https://play.example.com/}"], "at '/lobby/corsOrigins/0'"),
        (["migrations.hook.timeoutSeconds=5"], "at '/migrations/hook/timeoutSeconds'"),
        (["migrations.hook.enable=false"], "additional properties 'enable' not allowed"),
        (["matchServer.spectators.maxPerServer=-1"], "at '/matchServer/spectators/maxPerServer'"),
        (["matchServer.spectators.lagLimitMs=0"], "at '/matchServer/spectators/lagLimitMs'"),
    ],
)
def test_schema_refuses_bad_values(sets: list[str], message: str) -> None:
    proc = helm("template", REL, str(CHART), *value_args([], sets), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_a_catalogue_value_reaches_every_process_that_reads_one() -> None:
    text = (REPO / "tradearena" / "modes.toml").read_text().replace("blitz = 3", "blitz = 1")
    out = render([], [], release=REL, namespace=NS, set_files={"catalogue": text})
    config = out.get("ConfigMap", f"{REL}-catalogue")
    assert config["data"]["modes.toml"] == text
    specs = pod_specs(out)
    for name in ("lobby", "results-worker"):
        spec = specs[f"{REL}-{name}"]
        env = _env(spec["containers"][0])
        assert env["TRADEARENA_CATALOGUE"]["value"] == "/etc/tradearena/catalogue/modes.toml"
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["catalogue"]["configMap"]["name"] == f"{REL}-catalogue"
    operator_env = _env(specs[f"{REL}-operator"]["containers"][0])
    assert operator_env["TRADEARENA_OPERATOR_CATALOGUE_CONFIGMAP"]["value"] == f"{REL}-catalogue"
    # A new catalogue rolls the pods that read it.
    lobby = out.get("Deployment", f"{REL}-lobby")["spec"]["template"]["metadata"]
    assert "checksum/catalogue" in lobby["annotations"]
    default = render([], release=REL, namespace=NS)
    assert not [
        c for c in default.of_kind("ConfigMap") if c["metadata"]["name"].endswith("catalogue")
    ]


def test_pools_render_as_matchserverpools_of_the_shipped_crd() -> None:
    crd = yaml.safe_load((CHART / "crds" / "matchserverpool.yaml").read_text())
    out = render([], release=REL, namespace=NS)
    (pool,) = out.of_kind(crd["spec"]["names"]["kind"])
    assert pool["apiVersion"] == f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    assert pool["metadata"] == {**pool["metadata"], "name": "default", "namespace": NS}
    assert pool["spec"] == {"capacity": 1, "buffer": 1, "minReplicas": 1, "maxReplicas": 50}
    custom = render(
        [],
        [
            "pools[0].name=duels",
            "pools[0].buffer=25%",
            "pools[0].capacity=4",
            "pools[0].maxReplicas=8",
            "pools[0].modes={duel}",
            "pools[0].formats={blitz}",
            "pools[0].image=registry.example/tradearena:canary",
        ],
        release=REL,
        namespace=NS,
    )
    (duels,) = custom.of_kind("MatchServerPool")
    assert duels["spec"] == {
        "capacity": 4,
        "buffer": "25%",
        "minReplicas": 0,
        "maxReplicas": 8,
        "modes": ["duel"],
        "formats": ["blitz"],
        "image": "registry.example/tradearena:canary",
    }
    assert not render([], ["pools=null"], release=REL, namespace=NS).of_kind("MatchServerPool")


def test_the_operator_manages_pools_and_patches_pods_but_creates_no_pool(
    rendered: Rendered,
) -> None:
    operator = _rules(rendered.get("Role", f"{REL}-operator"))
    pools = {(r, v) for g, r, v, _ in operator if r.startswith("matchserverpools")}
    assert pools == {
        ("matchserverpools", "get"),
        ("matchserverpools", "list"),
        ("matchserverpools", "watch"),
        ("matchserverpools/status", "get"),
        ("matchserverpools/status", "patch"),
        ("matchserverpools/finalizers", "update"),
    }
    assert ("", "pods", "patch", "") in operator
    assert ("", "pods", "update", "") not in operator
    lobby = _rules(rendered.get("Role", f"{REL}-lobby"))
    assert not any(r.startswith("matchserverpools") for _, r, _, _ in lobby)


def test_no_match_server_with_a_match_on_it_may_be_evicted() -> None:
    out = render([], release=REL, namespace=NS)
    pdb = out.get("PodDisruptionBudget", f"{REL}-match-server")["spec"]
    assert pdb["maxUnavailable"] == 0
    assert pdb["selector"]["matchLabels"] == {
        **ta_resource.SERVER_POD_LABELS,
        ta_resource.SAFE_TO_EVICT_LABEL: "false",
    }
    off = render([], ["matchServer.podDisruptionBudget.enabled=false"], release=REL, namespace=NS)
    assert f"{REL}-match-server" not in {
        p["metadata"]["name"] for p in off.of_kind("PodDisruptionBudget")
    }


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["pools[0].buffer=100%"], "at '/pools/0/buffer'"),
        (["pools[0].name=Default"], "at '/pools/0/name'"),
        (["pools[0].capacity=0"], "at '/pools/0/capacity'"),
        (["pools[0].color=red"], "additional properties 'color' not allowed"),
    ],
)
def test_schema_refuses_bad_pools(sets: list[str], message: str) -> None:
    proc = helm("template", REL, str(CHART), *value_args([], sets), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_tracing_is_off_by_default_and_one_value_turns_it_on_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from match_operator.builders import build_pod_spec
    from match_operator.settings import OperatorSettings
    from tradearena.tracing import actions_ratio, tracing_requested

    assert "OTEL_" not in render([], release=REL, namespace=NS).text
    out = render(
        [],
        ["tracing.otlpEndpoint=http://collector.obs:4318", "tracing.samplerArg=0.25"],
        release=REL,
        namespace=NS,
    )
    specs = pod_specs(out)
    for name in ("lobby", "feed-relay", "results-worker", "operator"):
        container = specs[f"{REL}-{name}"]["containers"][0]
        env = {k: e.get("value", "") for k, e in _env(container).items()}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.obs:4318", name
        assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
        assert tracing_requested(env) and actions_ratio(env) == 0.01
    # Match-server pods get the same variables through the operator's extra env.
    extra = _env(specs[f"{REL}-operator"]["containers"][0])["TRADEARENA_OPERATOR_EXTRA_ENV"]
    monkeypatch.setenv("TRADEARENA_OPERATOR_EXTRA_ENV", extra["value"])
    match = {
        "metadata": {"name": "m-1", "namespace": NS, "uid": "u", "generation": 1},
        "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"]},
    }
    pod = build_pod_spec(match, OperatorSettings(image="registry.example/ta:1"), 7001)
    server_env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert server_env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert server_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.obs:4318"
    assert server_env["OTEL_RESOURCE_ATTRIBUTES"] == f"k8s.namespace.name={NS}"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["tracing.otlpEndpoint=collector:4318"], "at '/tracing/otlpEndpoint'"),
        (["tracing.sampler=sometimes"], "at '/tracing/sampler'"),
        (["tracing.samplerArg=1.5"], "at '/tracing/samplerArg'"),
    ],
)
def test_schema_refuses_bad_tracing_values(sets: list[str], message: str) -> None:
    proc = helm("template", REL, str(CHART), *value_args([], sets), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def match_server_envs(out: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The env of both match-server pod kinds the operator builds (a Match's own pod, a
    pool server) under the rendered chart's operator settings (its extra env)."""
    from match_operator.builders import build_pod_spec
    from match_operator.pools import PoolSpec, build_pool_pod_spec
    from match_operator.settings import OperatorSettings

    extra = _env(pod_specs(out)[f"{REL}-operator"]["containers"][0])
    monkeypatch.setenv(
        "TRADEARENA_OPERATOR_EXTRA_ENV", extra["TRADEARENA_OPERATOR_EXTRA_ENV"]["value"]
    )
    settings = OperatorSettings(image="registry.example/ta:1")
    match = {
        "metadata": {"name": "m-1", "namespace": NS, "uid": "u", "generation": 1},
        "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"]},
    }
    (pool,) = out.of_kind("MatchServerPool")
    pods = {
        "dedicated": build_pod_spec(match, settings, 7001),
        "pool": build_pool_pod_spec(PoolSpec.of(pool), settings, "default-abcde", 7002),
    }
    return {
        kind: {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        for kind, pod in pods.items()
    }


def test_wait_replicas_is_off_by_default_and_reaches_every_match_server_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matchserver.settings import MatchServerSettings

    plain = pod_specs(render([], release=REL, namespace=NS))
    plain_extra = _env(plain[f"{REL}-operator"]["containers"][0])["TRADEARENA_OPERATOR_EXTRA_ENV"]
    assert "TRADEARENA_REDIS_WAIT_REPLICAS" not in json.loads(plain_extra["value"])
    out = render(
        [],
        [
            "redis.waitReplicas=1",
            "redis.waitTimeoutMs=5000",
            "tracing.otlpEndpoint=http://collector.obs:4318",
        ],
        release=REL,
        namespace=NS,
    )
    for kind, env in match_server_envs(out, monkeypatch).items():
        assert env["TRADEARENA_REDIS_WAIT_REPLICAS"] == "1", kind
        assert env["TRADEARENA_REDIS_WAIT_TIMEOUT_MS"] == "5000", kind
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.obs:4318", kind
        for name in ("TRADEARENA_REDIS_WAIT_REPLICAS", "TRADEARENA_REDIS_WAIT_TIMEOUT_MS"):
            monkeypatch.setenv(name, env[name])
        server = MatchServerSettings(match_id="m-1", players=("alice", "bob"))
        assert (server.redis_wait_replicas, server.redis_wait_timeout_ms) == (1, 5000)


def test_spectator_limits_reach_every_match_server_pod_and_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matchserver.settings import MatchServerSettings

    names = ("TRADEARENA_MATCH_MAX_SPECTATORS", "TRADEARENA_SPECTATOR_LAG_LIMIT_MS")
    defaults = MatchServerSettings(match_id="m-1", players=("alice", "bob"))
    for sets, expected in (
        # the chart's own values are the match server's defaults
        ([], (defaults.max_spectators, defaults.spectator_lag_limit_ms)),
        (
            ["matchServer.spectators.maxPerServer=0", "matchServer.spectators.lagLimitMs=100"],
            (0, 100),
        ),
    ):
        out = render([], sets, release=REL, namespace=NS)
        for kind, env in match_server_envs(out, monkeypatch).items():
            for name in names:
                monkeypatch.setenv(name, env[name])
            server = MatchServerSettings(match_id="m-1", players=("alice", "bob"))
            assert (server.max_spectators, server.spectator_lag_limit_ms) == expected, kind
        for name in names:
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["redis.waitReplicas=-1"], "at '/redis/waitReplicas'"),
        (["redis.waitReplicas=one"], "at '/redis/waitReplicas'"),
        (["redis.waitTimeoutMs=0"], "at '/redis/waitTimeoutMs'"),
    ],
)
def test_schema_refuses_bad_wait_values(sets: list[str], message: str) -> None:
    proc = helm("template", REL, str(CHART), *value_args([], sets), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
