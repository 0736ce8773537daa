# TradeArena on AWS: shared data sources and naming.
# Layout: vpc.tf (network), eks.tf (cluster and node groups), security_groups.tf,
# rds.tf (PostgreSQL), redis.tf (ElastiCache), kms.tf, iam.tf (IRSA roles), outputs.tf.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# The three zones are named explicitly (var.availability_zones): the set never grows or
# shifts by itself when AWS adds a zone. The lookup checks that all three exist and are up.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = var.availability_zones
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == 3
      error_message = "All three var.availability_zones must exist and be available in this region."
    }
  }
}

locals {
  # Exactly three availability zones: every tier (public, private, database, cache) has one
  # subnet per zone, RDS Multi-AZ and the Redis replicas spread over them.
  azs = data.aws_availability_zones.selected.names

  # Label and taint of the game-server node group; the Helm values reuse them verbatim.
  game_node_label_key   = "tradearena.io/pool"
  game_node_label_value = "game"
  game_node_taint = {
    key    = "tradearena.io/pool"
    value  = "game"
    effect = "NO_SCHEDULE"
  }

  tags = merge(var.tags, {
    Project   = "tradearena"
    Stack     = var.name
    ManagedBy = "terraform"
  })
}
