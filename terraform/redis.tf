# Redis: matchmaking queues, live match state, event log, results stream, feed fan-out.
# Replication group (primary + replicas in different AZs) with automatic Multi-AZ failover,
# TLS required in transit, AUTH token, encrypted at rest with the data key, never public.
#
# maxmemory-policy is noeviction: results streams and queues must never be evicted silently;
# a full Redis rejects writes instead, which the services surface as errors and alerts.
#
# var.redis_cluster_mode switches the same replication group to Redis Cluster: shards
# (num_node_groups) of one primary and replicas_per_node_group replicas each, the
# cluster-enabled parameter group, and clients reach it through the configuration
# endpoint with a rediss+cluster:// URL (outputs.tf, output "redis"). Switching an existing
# deployment replaces the replication group: see docs/operations.md.

resource "aws_elasticache_parameter_group" "redis" {
  name        = "${var.name}-redis7"
  family      = "redis7"
  description = "TradeArena Redis: never evict (queues and result streams)"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  tags = local.tags
}

# Redis Cluster (var.redis_cluster_mode): the same policy with cluster-enabled. Both groups
# always exist (they cost nothing), so switching modes never leaves a dangling reference.
resource "aws_elasticache_parameter_group" "redis_cluster" {
  name        = "${var.name}-redis7-cluster"
  family      = "redis7"
  description = "TradeArena Redis Cluster: never evict (queues and result streams)"

  parameter {
    name  = "cluster-enabled"
    value = "yes"
  }

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }

  tags = local.tags
}

# AUTH token: alphanumeric (ElastiCache accepts only a subset of punctuation), 64 characters.
# It is kept in Secrets Manager for the cluster; the Terraform state therefore holds it too
# and must live in an encrypted, access-controlled backend (see README.md).
resource "random_password" "redis_auth" {
  length  = 64
  special = false

  # Bump var.redis_auth_token_version to rotate: ElastiCache switches with the ROTATE
  # strategy (old and new token both valid) and External Secrets refreshes the cluster copy.
  keepers = {
    version = var.redis_auth_token_version
  }
}

resource "aws_secretsmanager_secret" "redis_auth" {
  # checkov:skip=CKV2_AWS_57:Rotated by Terraform (var.redis_auth_token_version, ROTATE strategy): a Secrets Manager rotation Lambda cannot change an ElastiCache AUTH token.
  name_prefix             = "${var.name}/redis-auth-"
  description             = "AUTH token of the ${var.name} ElastiCache Redis replication group"
  kms_key_id              = aws_kms_key.data.arn
  recovery_window_in_days = 7

  tags = local.tags
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  secret_id = aws_secretsmanager_secret.redis_auth.id
  secret_string = jsonencode({
    password = random_password.redis_auth.result
  })
}

resource "aws_cloudwatch_log_group" "redis_slow" {
  name              = "/aws/elasticache/${var.name}-redis/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn

  tags = local.tags
}

locals {
  redis_parameter_group = (
    var.redis_cluster_mode
    ? aws_elasticache_parameter_group.redis_cluster.name
    : aws_elasticache_parameter_group.redis.name
  )
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = "${var.name}-redis"
  description          = "TradeArena queues, live match state and results streams"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = local.redis_parameter_group

  # Either one shard (primary + replicas) or a Redis Cluster of shards.
  cluster_mode            = var.redis_cluster_mode ? "enabled" : "disabled"
  num_cache_clusters      = var.redis_cluster_mode ? null : var.redis_num_cache_clusters
  num_node_groups         = var.redis_cluster_mode ? var.redis_num_shards : null
  replicas_per_node_group = var.redis_cluster_mode ? var.redis_replicas_per_shard : null

  subnet_group_name  = module.vpc.elasticache_subnet_group_name
  security_group_ids = [aws_security_group.redis.id]

  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.data.arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.redis_auth.result
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  tags = local.tags
}
