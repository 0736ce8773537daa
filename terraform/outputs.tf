# Outputs. Everything the Helm release needs is here; scripts/tf-outputs-to-values.py turns
# `terraform output -json` into a values file (contract in README.md, "Helm values").
# No output carries a secret: passwords stay in Secrets Manager and reach the cluster through
# External Secrets, the values only name where they are.

locals {
  kubernetes_taint_effects = {
    NO_SCHEDULE        = "NoSchedule"
    NO_EXECUTE         = "NoExecute"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
  }
}

################################################################################
# Cluster
################################################################################

output "region" {
  description = "AWS region of the stack."
  value       = data.aws_region.current.name
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name <this>)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster (for further IRSA roles)."
  value       = module.eks.oidc_provider_arn
}

output "kubernetes_namespace" {
  description = "Namespace the Helm release goes to (IRSA trust policies name it)."
  value       = var.kubernetes_namespace
}

################################################################################
# PostgreSQL
################################################################################

output "postgresql" {
  description = "PostgreSQL connection data: host, port, database, username, TLS mode and the Secrets Manager ARN of the RDS-managed master password (JSON keys username and password)."
  value = {
    host              = aws_db_instance.postgres.address
    port              = aws_db_instance.postgres.port
    database          = aws_db_instance.postgres.db_name
    username          = aws_db_instance.postgres.username
    sslmode           = "require"
    master_secret_arn = aws_db_instance.postgres.master_user_secret[0].secret_arn
  }
}

################################################################################
# Redis
################################################################################

output "redis" {
  description = "Redis connection data: the endpoint clients use (the primary endpoint, or the configuration endpoint of a Redis Cluster), the reader endpoint (empty for a cluster), port, TLS flag, whether it is a cluster with the URL scheme to use (rediss, or rediss+cluster for a Redis Cluster), how many replicas a match server waits for before it acknowledges (all of a shard's replicas but one, so a failover leaves one to wait for), and the Secrets Manager ARN of the AUTH token (JSON key password)."
  value = {
    host = (
      var.redis_cluster_mode
      ? aws_elasticache_replication_group.redis.configuration_endpoint_address
      : aws_elasticache_replication_group.redis.primary_endpoint_address
    )
    reader_host            = var.redis_cluster_mode ? "" : aws_elasticache_replication_group.redis.reader_endpoint_address
    configuration_endpoint = var.redis_cluster_mode ? aws_elasticache_replication_group.redis.configuration_endpoint_address : ""
    port                   = aws_elasticache_replication_group.redis.port
    tls                    = aws_elasticache_replication_group.redis.transit_encryption_enabled
    cluster                = var.redis_cluster_mode
    url_scheme             = var.redis_cluster_mode ? "rediss+cluster" : "rediss"
    wait_replicas          = max(0, (var.redis_cluster_mode ? var.redis_replicas_per_shard : var.redis_num_cache_clusters - 1) - 1)
    auth_secret_arn        = aws_secretsmanager_secret.redis_auth.arn
  }
}

################################################################################
# IRSA
################################################################################

output "secrets_service_account" {
  description = "Service account that reads the secrets through External Secrets, and its IAM role."
  value = {
    namespace = var.kubernetes_namespace
    name      = var.secrets_service_account
    role_arn  = module.irsa_secrets.role_arn
  }
}

output "irsa_role_arns" {
  description = "IAM role ARNs of the cluster add-ons, for their eks.amazonaws.com/role-arn annotations."
  value = {
    cluster_autoscaler = module.irsa_cluster_autoscaler.role_arn
    vpc_cni            = module.irsa_vpc_cni.role_arn
    ebs_csi            = module.irsa_ebs_csi.role_arn
  }
}

################################################################################
# Game servers
################################################################################

output "game_nodes" {
  description = "Placement of match-server pods on the game node group: node selector, tolerations (Kubernetes spelling) and the host port range open to players."
  value = {
    node_selector = {
      (local.game_node_label_key) = local.game_node_label_value
    }
    tolerations = [
      {
        key      = local.game_node_taint.key
        operator = "Equal"
        value    = local.game_node_taint.value
        effect   = local.kubernetes_taint_effects[local.game_node_taint.effect]
      },
    ]
    port_range = {
      min = var.game_port_range.min
      max = var.game_port_range.max
    }
  }
}

output "match_servers" {
  description = "How players reach match servers: the domain each game node is published under, the address template the operator fills per node, and where the wildcard certificate for wss:// comes from (tls.enabled false when no domain is set)."
  value = {
    domain           = var.match_server_domain
    address_template = var.match_server_domain == "" ? "{node_ip}" : "{node_ip_dashed}.${var.match_server_domain}"
    tls = {
      enabled     = var.match_server_domain != ""
      dns_names   = var.match_server_domain == "" ? [] : ["*.${var.match_server_domain}"]
      issuer_kind = var.match_server_certificate_issuer.kind
      issuer_name = var.match_server_certificate_issuer.name
    }
  }
}
