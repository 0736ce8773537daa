"""Structural checks over the parsed HCL of terraform/: every property the infrastructure
promises (network layout, node groups, exposure, encryption, backups, failover, IRSA,
outputs) is asserted on the configuration itself, with variables and locals resolved to
their defaults. No provider, no AWS account, no registry access is needed."""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import pytest

from tradearena.testing.paths import REPO

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
CIDRSUBNET = re.compile(
    r"^\$\{\[for i, _ in local\.azs : cidrsubnet\(var\.vpc_cidr, (\d+), i(?: \+ (\d+))?\)\]\}$"
)


def _subnets(root: Any, expr: str) -> list[ipaddress.IPv4Network]:
    """Evaluate `[for i, _ in local.azs : cidrsubnet(var.vpc_cidr, bits, i + offset)]`."""
    match = CIDRSUBNET.match(expr)
    assert match, f"unexpected subnet expression {expr}"
    bits, offset = int(match.group(1)), int(match.group(2) or 0)
    vpc = ipaddress.ip_network(root.variables["vpc_cidr"]["default"])
    candidates = list(vpc.subnets(prefixlen_diff=bits))
    return [candidates[i + offset] for i in range(3)]


# --------------------------------------------------------------------------------------
# Layout and pins
# --------------------------------------------------------------------------------------


def test_every_module_pins_terraform_and_providers(all_modules: list[Any]) -> None:
    for module in all_modules:
        assert module.terraform, f"{module.path} has no terraform block"
        settings = module.terraform[0]
        assert re.match(r"^>= 1\.\d+\.\d+, < 2\.0\.0$", settings["required_version"])
        providers = settings["required_providers"][0]
        assert "aws" in providers
        for name, spec in providers.items():
            assert spec["source"].startswith("hashicorp/"), name
            assert re.match(r"^~> \d+\.\d+$", spec["version"]), f"{name} not pinned"
    assert (REPO / "terraform" / "versions.tf").is_file()


def test_registry_modules_are_pinned_to_exact_releases(all_modules: list[Any]) -> None:
    registry = 0
    for module in all_modules:
        for name, body in module.modules.items():
            source = body["source"]
            if source.startswith("."):
                assert (module.path / source).resolve().is_dir(), f"{name}: {source}"
                assert "version" not in body
            else:
                registry += 1
                assert source.startswith("terraform-aws-modules/"), source
                assert SEMVER.match(body["version"]), f"{name} version {body['version']}"
    assert registry == 2  # vpc and eks


def test_variables_and_outputs_are_typed_and_described(all_modules: list[Any]) -> None:
    for module in all_modules:
        assert module.variables and module.outputs, module.path
        for name, body in module.variables.items():
            assert body.get("description"), f"{module.path.name}: variable {name}"
            assert "type" in body, f"{module.path.name}: variable {name} has no type"
        for name, body in module.outputs.items():
            assert body.get("description"), f"{module.path.name}: output {name}"


def test_providers_are_configured_only_in_the_example(
    root: Any, irsa_module: Any, example: Any
) -> None:
    assert not root.providers and not irsa_module.providers
    assert [next(iter(p)) for p in example.providers] == ["aws"]
    assert example.terraform[0]["backend"] == [{"s3": {}}]


# --------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------


def test_vpc_spans_exactly_three_named_availability_zones(root: Any) -> None:
    vpc = root.modules["vpc"]
    assert vpc["azs"] == "${local.azs}"
    assert root.locals["azs"] == "${data.aws_availability_zones.selected.names}"
    azs = root.data["aws_availability_zones"]["selected"]
    assert azs["filter"] == [{"name": "zone-name", "values": "${var.availability_zones}"}]
    postcondition = azs["lifecycle"][0]["postcondition"][0]["condition"]
    assert postcondition == "${length(self.names) == 3}"
    validation = root.variables["availability_zones"]["validation"][0]["condition"]
    assert "length(var.availability_zones) == 3" in validation
    assert "length(distinct(var.availability_zones)) == 3" in validation
    assert "default" not in root.variables["availability_zones"]


def test_subnet_tiers_do_not_overlap_and_fit_the_vpc(root: Any) -> None:
    vpc = root.modules["vpc"]
    network = ipaddress.ip_network(root.variables["vpc_cidr"]["default"])
    tiers = {
        tier: _subnets(root, vpc[f"{tier}_subnets"])
        for tier in ("private", "public", "database", "elasticache")
    }
    everything = [net for nets in tiers.values() for net in nets]
    assert len(everything) == 12
    for net in everything:
        assert net.subnet_of(network)
    for i, a in enumerate(everything):
        for b in everything[i + 1 :]:
            assert not a.overlaps(b), f"{a} overlaps {b}"
    # Pods take VPC addresses: the private tier must hold thousands of them per AZ.
    assert all(net.num_addresses >= 8192 for net in tiers["private"])
    assert all(net.num_addresses >= 1024 for net in tiers["public"])


def test_public_subnets_assign_public_ips_and_data_tiers_stay_private(root: Any) -> None:
    vpc = root.modules["vpc"]
    assert vpc["map_public_ip_on_launch"] is True
    assert vpc["create_database_subnet_group"] is True
    assert vpc["create_database_internet_gateway_route"] is False
    assert vpc["create_database_nat_gateway_route"] is False
    assert vpc["create_elasticache_subnet_group"] is True
    assert vpc["public_subnet_tags"] == {"kubernetes.io/role/elb": 1}
    assert vpc["private_subnet_tags"] == {"kubernetes.io/role/internal-elb": 1}


def test_network_is_highly_available_and_observable(root: Any) -> None:
    vpc = root.modules["vpc"]
    assert vpc["enable_nat_gateway"] is True
    assert root.resolve(vpc["single_nat_gateway"]) is False
    assert vpc["one_nat_gateway_per_az"] == "${!var.single_nat_gateway}"
    assert vpc["enable_flow_log"] is True
    assert vpc["flow_log_cloudwatch_log_group_kms_key_id"] == "${aws_kms_key.data.arn}"
    assert vpc["manage_default_security_group"] is True
    assert vpc["default_security_group_ingress"] == []
    assert vpc["default_security_group_egress"] == []


# --------------------------------------------------------------------------------------
# EKS and node groups
# --------------------------------------------------------------------------------------


def test_cluster_control_plane_is_private_encrypted_and_logged(root: Any) -> None:
    eks = root.modules["eks"]
    assert eks["cluster_endpoint_private_access"] is True
    assert eks["cluster_endpoint_public_access"] == (
        "${length(var.cluster_endpoint_public_access_cidrs) > 0}"
    )
    assert root.resolve(eks["cluster_endpoint_public_access_cidrs"]) == []
    guard = root.variables["cluster_endpoint_public_access_cidrs"]["validation"][0]
    assert guard["condition"] == (
        '${!contains(var.cluster_endpoint_public_access_cidrs, "0.0.0.0/0")}'
    )
    assert eks["subnet_ids"] == "${module.vpc.private_subnets}"
    assert eks["enable_irsa"] is True
    assert eks["create_kms_key"] is True
    assert eks["enable_kms_key_rotation"] is True
    assert eks["cluster_encryption_config"] == {"resources": ["secrets"]}
    assert {"api", "audit", "authenticator"} <= set(eks["cluster_enabled_log_types"])
    assert eks["authentication_mode"] == "API"


def test_exactly_a_system_and_a_game_node_group(root: Any) -> None:
    groups = root.modules["eks"]["eks_managed_node_groups"]
    assert set(groups) == {"system", "game"}
    assert groups["system"]["subnet_ids"] == "${module.vpc.private_subnets}"
    assert groups["game"]["subnet_ids"] == "${module.vpc.public_subnets}"
    for group in groups.values():
        assert group["capacity_type"] == "ON_DEMAND"  # a spot reclaim would kill live matches
    assert root.resolve(groups["system"]["min_size"]) >= 3


def test_game_nodes_are_tainted_and_labelled_for_match_servers_only(root: Any) -> None:
    groups = root.modules["eks"]["eks_managed_node_groups"]
    game, system = groups["game"], groups["system"]
    labels = {k: root.resolve(v) for k, v in game["labels"].items()}
    assert labels == {"tradearena.io/pool": "game"}
    taints = {name: root.resolve(t) for name, t in game["taints"].items()}
    assert list(taints.values()) == [
        {"key": "tradearena.io/pool", "value": "game", "effect": "NO_SCHEDULE"}
    ]
    # System nodes take everything else: no taint, a different label value.
    assert "taints" not in system
    assert system["labels"] == {"tradearena.io/pool": "system"}


def test_node_defaults_block_imds_for_pods_and_encrypt_disks(root: Any) -> None:
    defaults = root.modules["eks"]["eks_managed_node_group_defaults"]
    metadata = defaults["metadata_options"]
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1
    ebs = defaults["block_device_mappings"]["xvda"]["ebs"]
    assert ebs["encrypted"] is True


# --------------------------------------------------------------------------------------
# Security groups
# --------------------------------------------------------------------------------------


def _ingress(root: Any, name: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = root.resource("aws_security_group", name).get("ingress", [])
    return rules


def test_game_nodes_expose_the_game_port_range_and_nothing_else(root: Any) -> None:
    groups = root.modules["eks"]["eks_managed_node_groups"]
    assert groups["game"]["vpc_security_group_ids"] == ["${aws_security_group.game_nodes.id}"]
    rules = _ingress(root, "game_nodes")
    assert len(rules) == 1
    rule = rules[0]
    assert rule["protocol"] == "tcp"
    assert root.resolve(rule["from_port"]) == 7000
    assert root.resolve(rule["to_port"]) == 8000
    assert root.resolve(rule["cidr_blocks"]) == ["0.0.0.0/0"]
    assert "security_groups" not in rule and "self" not in rule
    assert root.variables["game_port_range"]["default"] == {"min": 7000, "max": 8000}


def test_no_other_group_is_reachable_from_the_internet(root: Any) -> None:
    groups = root.resources["aws_security_group"]
    assert set(groups) == {"game_nodes", "system_nodes", "postgres", "redis"}
    for name, body in groups.items():
        assert "egress" not in body, f"{name}: egress comes from the EKS node group only"
        for rule in body.get("ingress", []):
            assert rule["protocol"] != "-1", f"{name}: all-protocol rule"
            assert rule.get("description"), f"{name}: undocumented rule"
            if name != "game_nodes":
                assert "cidr_blocks" not in rule and "ipv6_cidr_blocks" not in rule, name
    assert "aws_security_group_rule" not in root.resources
    assert "aws_vpc_security_group_ingress_rule" not in root.resources
    assert "node_security_group_additional_rules" not in root.modules["eks"]


def test_postgres_accepts_only_system_nodes_and_redis_only_cluster_nodes(root: Any) -> None:
    (pg,) = _ingress(root, "postgres")
    assert (pg["protocol"], pg["from_port"], pg["to_port"]) == ("tcp", 5432, 5432)
    assert pg["security_groups"] == ["${aws_security_group.system_nodes.id}"]
    (redis,) = _ingress(root, "redis")
    assert (redis["protocol"], redis["from_port"], redis["to_port"]) == ("tcp", 6379, 6379)
    assert redis["security_groups"] == ["${module.eks.node_security_group_id}"]
    groups = root.modules["eks"]["eks_managed_node_groups"]
    assert groups["system"]["vpc_security_group_ids"] == ["${aws_security_group.system_nodes.id}"]
    assert _ingress(root, "system_nodes") == []


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------


def test_postgres_is_multi_az_encrypted_private_and_protected(root: Any) -> None:
    db = root.resource("aws_db_instance", "postgres")
    assert db["engine"] == "postgres"
    assert db["multi_az"] is True
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${aws_kms_key.data.arn}"
    assert db["publicly_accessible"] is False
    assert db["deletion_protection"] is True
    assert db["skip_final_snapshot"] is False
    assert db["db_subnet_group_name"] == "${module.vpc.database_subnet_group_name}"
    assert db["vpc_security_group_ids"] == ["${aws_security_group.postgres.id}"]
    assert db["iam_database_authentication_enabled"] is True
    assert db["performance_insights_kms_key_id"] == "${aws_kms_key.data.arn}"


def test_postgres_backups_give_point_in_time_recovery(root: Any) -> None:
    db = root.resource("aws_db_instance", "postgres")
    assert db["backup_retention_period"] == "${var.db_backup_retention_days}"
    assert root.resolve(db["backup_retention_period"]) >= 7
    guard = root.variables["db_backup_retention_days"]["validation"][0]["condition"]
    assert "var.db_backup_retention_days >= 7" in guard
    assert db["delete_automated_backups"] is False
    assert db["copy_tags_to_snapshot"] is True
    assert re.match(r"^\d\d:\d\d-\d\d:\d\d$", db["backup_window"])


def test_postgres_master_password_is_managed_by_rds(root: Any) -> None:
    db = root.resource("aws_db_instance", "postgres")
    assert db["manage_master_user_password"] is True
    assert db["master_user_secret_kms_key_id"] == "${aws_kms_key.data.key_id}"
    assert "password" not in db
    assert "password_wo" not in db


def test_postgres_requires_tls(root: Any) -> None:
    params = root.resource("aws_db_parameter_group", "postgres")["parameter"]
    assert {"name": "rds.force_ssl", "value": "1"} in params
    db = root.resource("aws_db_instance", "postgres")
    assert db["parameter_group_name"] == "${aws_db_parameter_group.postgres.name}"


# --------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------


def test_redis_is_a_multi_az_replication_group_with_failover(root: Any) -> None:
    rg = root.resource("aws_elasticache_replication_group", "redis")
    assert rg["engine"] == "redis"
    assert rg["automatic_failover_enabled"] is True
    assert rg["multi_az_enabled"] is True
    # By default (cluster mode off) one primary with replicas.
    assert root.variables["redis_cluster_mode"]["default"] is False
    assert root.resolve("${" + _cluster_mode(rg["num_cache_clusters"], False) + "}") >= 2
    guard = root.variables["redis_num_cache_clusters"]["validation"][0]["condition"]
    assert "var.redis_num_cache_clusters >= 2" in guard
    assert rg["subnet_group_name"] == "${module.vpc.elasticache_subnet_group_name}"
    assert rg["security_group_ids"] == ["${aws_security_group.redis.id}"]
    assert root.resolve(rg["snapshot_retention_limit"]) >= 1


def test_redis_requires_tls_and_auth_and_encrypts_at_rest(root: Any) -> None:
    rg = root.resource("aws_elasticache_replication_group", "redis")
    assert rg["transit_encryption_enabled"] is True
    assert rg["transit_encryption_mode"] == "required"
    assert rg["auth_token"] == "${random_password.redis_auth.result}"
    assert rg["at_rest_encryption_enabled"] is True
    assert rg["kms_key_id"] == "${aws_kms_key.data.arn}"
    token = root.resource("random_password", "redis_auth")
    assert token["length"] >= 32
    assert token["special"] is False  # ElastiCache rejects most punctuation in AUTH tokens
    secret = root.resource("aws_secretsmanager_secret", "redis_auth")
    assert secret["kms_key_id"] == "${aws_kms_key.data.arn}"


def test_redis_never_evicts_queues_or_result_streams(root: Any) -> None:
    params = root.resource("aws_elasticache_parameter_group", "redis")["parameter"]
    assert params == [{"name": "maxmemory-policy", "value": "noeviction"}]
    cluster = root.resource("aws_elasticache_parameter_group", "redis_cluster")["parameter"]
    assert {"name": "maxmemory-policy", "value": "noeviction"} in cluster


_CLUSTER_MODE = re.compile(r"^\$\{\(?var\.redis_cluster_mode \? (.+?) : (.+?)\)?\}$")


def _cluster_mode(expr: str, cluster: bool) -> str:
    """The branch of `${var.redis_cluster_mode ? A : B}` that a mode selects."""
    match = _CLUSTER_MODE.match(expr)
    assert match, f"not switched by var.redis_cluster_mode: {expr}"
    return match.group(1 if cluster else 2)


def test_redis_cluster_mode_switches_the_group_to_shards(root: Any) -> None:
    rg = root.resource("aws_elasticache_replication_group", "redis")
    layout = {
        key: (_cluster_mode(rg[key], True), _cluster_mode(rg[key], False))
        for key in (
            "cluster_mode",
            "num_cache_clusters",
            "num_node_groups",
            "replicas_per_node_group",
        )
    }
    assert layout == {
        "cluster_mode": ('"enabled"', '"disabled"'),
        "num_cache_clusters": ("null", "var.redis_num_cache_clusters"),
        "num_node_groups": ("var.redis_num_shards", "null"),
        "replicas_per_node_group": ("var.redis_replicas_per_shard", "null"),
    }
    # Cluster mode keeps failover, Multi-AZ, TLS and AUTH: the same resource, other layout.
    assert rg["automatic_failover_enabled"] is True and rg["multi_az_enabled"] is True
    assert rg["parameter_group_name"] == "${local.redis_parameter_group}"
    groups = root.locals["redis_parameter_group"]
    assert _cluster_mode(groups, True) == "aws_elasticache_parameter_group.redis_cluster.name"
    assert _cluster_mode(groups, False) == "aws_elasticache_parameter_group.redis.name"
    cluster_params = root.resource("aws_elasticache_parameter_group", "redis_cluster")
    assert cluster_params["family"] == "redis7"
    assert {"name": "cluster-enabled", "value": "yes"} in cluster_params["parameter"]
    plain = root.resource("aws_elasticache_parameter_group", "redis")
    assert plain["family"] == "redis7"
    assert all(p["name"] != "cluster-enabled" for p in plain["parameter"])
    assert cluster_params["name"] != plain["name"]
    # Every shard has a replica (Multi-AZ failover); a few shards by default.
    shards, replicas = (
        root.variables["redis_num_shards"],
        root.variables["redis_replicas_per_shard"],
    )
    assert shards["default"] >= 2
    assert "var.redis_num_shards >= 1" in shards["validation"][0]["condition"]
    assert replicas["default"] >= 1
    assert "var.redis_replicas_per_shard >= 1" in replicas["validation"][0]["condition"]
    assert root.variables["redis_cluster_mode"]["type"] == "bool"


def test_redis_output_names_the_endpoint_and_scheme_of_each_mode(root: Any) -> None:
    value = root.outputs["redis"]["value"]
    rg = "aws_elasticache_replication_group.redis"
    assert _cluster_mode(value["host"], True) == f"{rg}.configuration_endpoint_address"
    assert _cluster_mode(value["host"], False) == f"{rg}.primary_endpoint_address"
    assert _cluster_mode(value["configuration_endpoint"], True) == (
        f"{rg}.configuration_endpoint_address"
    )
    assert _cluster_mode(value["reader_host"], True) == '""'
    assert value["cluster"] == "${var.redis_cluster_mode}"
    assert _cluster_mode(value["url_scheme"], True) == '"rediss+cluster"'
    assert _cluster_mode(value["url_scheme"], False) == '"rediss"'
    # Match servers wait for every replica of a shard but one: a failover leaves the
    # promoted replica one to wait for, and the defaults give two.
    wait = value["wait_replicas"]
    assert "var.redis_replicas_per_shard" in wait and "var.redis_num_cache_clusters - 1" in wait
    assert wait.startswith("${max(0,") and wait.rstrip("}").endswith("- 1)")
    assert root.variables["redis_replicas_per_shard"]["default"] >= 2
    assert root.variables["redis_num_cache_clusters"]["default"] >= 3


def test_data_key_rotates(root: Any) -> None:
    key = root.resource("aws_kms_key", "data")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] >= 7


# --------------------------------------------------------------------------------------
# IRSA
# --------------------------------------------------------------------------------------


def test_irsa_trust_pins_audience_and_exact_service_account(irsa_module: Any) -> None:
    (statement,) = irsa_module.data["aws_iam_policy_document"]["assume"]["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["principals"] == [
        {"type": "Federated", "identifiers": ["${var.oidc_provider_arn}"]}
    ]
    conditions = {c["variable"]: c for c in statement["condition"]}
    assert set(conditions) == {"${var.oidc_provider}:sub", "${var.oidc_provider}:aud"}
    sub = conditions["${var.oidc_provider}:sub"]
    assert sub["test"] == "StringEquals"  # never StringLike with wildcards
    assert sub["values"] == ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    assert conditions["${var.oidc_provider}:aud"]["values"] == ["sts.amazonaws.com"]


def test_irsa_roles_exist_for_the_components_that_call_aws(root: Any) -> None:
    roles = {
        name: (root.resolve(body["namespace"]), body["service_account"])
        for name, body in root.modules.items()
        if body["source"] == "./modules/irsa-role"
    }
    assert roles == {
        "irsa_secrets": ("tradearena", "${var.secrets_service_account}"),
        "irsa_cluster_autoscaler": ("kube-system", "cluster-autoscaler"),
        "irsa_vpc_cni": ("kube-system", "aws-node"),
        "irsa_ebs_csi": ("kube-system", "ebs-csi-controller-sa"),
    }
    addons = root.modules["eks"]["cluster_addons"]
    assert addons["vpc-cni"]["service_account_role_arn"] == "${module.irsa_vpc_cni.role_arn}"
    assert (
        addons["aws-ebs-csi-driver"]["service_account_role_arn"]
        == "${module.irsa_ebs_csi.role_arn}"
    )


def test_secrets_role_reads_only_the_two_secrets(root: Any) -> None:
    doc = root.data["aws_iam_policy_document"]["secrets_reader"]
    read, decrypt = doc["statement"]
    assert set(read["actions"]) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    assert read["resources"] == [
        "${aws_db_instance.postgres.master_user_secret[0].secret_arn}",
        "${aws_secretsmanager_secret.redis_auth.arn}",
    ]
    assert decrypt["actions"] == ["kms:Decrypt"]
    assert decrypt["resources"] == ["${aws_kms_key.data.arn}"]
    assert root.modules["irsa_secrets"]["policy_json"] == (
        "${data.aws_iam_policy_document.secrets_reader.json}"
    )


def test_wildcard_resources_only_for_unscopable_actions(root: Any) -> None:
    for name, doc in root.data["aws_iam_policy_document"].items():
        for statement in doc["statement"]:
            if "*" not in statement.get("resources", []):
                continue
            if name == "data_key":
                continue  # a key policy: "*" is the key itself
            assert all(
                re.match(r"^[a-z0-9]+:(Describe|Get)", action) for action in statement["actions"]
            ), f"{name}/{statement.get('sid')}: wildcard resource on {statement['actions']}"


# --------------------------------------------------------------------------------------
# Outputs for Helm
# --------------------------------------------------------------------------------------


def _script_required_outputs() -> list[str]:
    source = (REPO / "scripts" / "tf-outputs-to-values.py").read_text()
    block = re.search(r"REQUIRED_OUTPUTS = \((.*?)\)", source, re.DOTALL)
    assert block
    return re.findall(r'"([a-z_]+)"', block.group(1))


def test_outputs_feed_the_values_script(root: Any, example: Any) -> None:
    required = _script_required_outputs()
    assert len(required) >= 8
    assert set(required) <= set(root.outputs)
    # The example re-exports every root output unchanged, so the script runs there.
    assert set(example.outputs) == set(root.outputs)
    for name, body in example.outputs.items():
        assert body["value"] == f"${{module.tradearena.{name}}}", name


def test_game_nodes_output_matches_the_taint_and_label(root: Any) -> None:
    value = root.outputs["game_nodes"]["value"]
    effects = root.locals["kubernetes_taint_effects"]
    taint = root.resolve("${local.game_node_taint}")
    assert effects[taint["effect"]] == "NoSchedule"
    (toleration,) = value["tolerations"]
    assert root.resolve(toleration["key"]) == taint["key"]
    assert root.resolve(toleration["value"]) == taint["value"]
    assert toleration["operator"] == "Equal"
    assert value["port_range"] == {
        "min": "${var.game_port_range.min}",
        "max": "${var.game_port_range.max}",
    }


def test_outputs_carry_no_secret_values(root: Any) -> None:
    text = json.dumps(root.outputs)
    assert "random_password" not in text
    assert "auth_token" not in text
    assert "secret_string" not in text
    for body in root.outputs.values():
        assert body.get("sensitive") is not True


# --------------------------------------------------------------------------------------
# Example sizing profiles
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["1k", "10k"])
def test_example_profiles_satisfy_the_module_guards(example: Any, profile: str) -> None:
    size = example.locals["profiles"][profile]
    assert size["system_node_min_size"] >= 3
    assert size["redis_num_cache_clusters"] >= 2
    assert size["game_node_min_size"] <= size["game_node_desired_size"]
    assert size["game_node_desired_size"] <= size["game_node_max_size"]
    assert size["db_allocated_storage"] < size["db_max_allocated_storage"]
    module = example.modules["tradearena"]
    assert module["source"] == "../.."
    for key in size:
        assert module[key] == f"${{local.size.{key}}}", key


def test_example_profiles_grow_with_players(example: Any) -> None:
    small, large = example.locals["profiles"]["1k"], example.locals["profiles"]["10k"]
    assert large["game_node_desired_size"] >= 5 * small["game_node_desired_size"]
    assert large["system_node_desired_size"] > small["system_node_desired_size"]
