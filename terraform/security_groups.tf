# Security groups: each component accepts only what it needs.
#
#   internet --tcp game ports--> game nodes        (game_nodes)
#   system nodes --tcp 5432--> PostgreSQL          (postgres, source: system_nodes)
#   all nodes --tcp 6379--> Redis                  (redis, source: EKS node group)
#
# Node-to-node and control-plane-to-node traffic is handled by the EKS module's node and
# cluster security groups (sources are security groups, never the internet). Groups created
# here have no egress rule, so Terraform removes AWS's default allow-all egress: PostgreSQL
# and Redis never open outbound connections; nodes get their egress from the EKS node group.

resource "aws_security_group" "game_nodes" {
  # checkov:skip=CKV2_AWS_5:Attached to the game node group through the EKS module's launch template, which checkov cannot read offline.
  name_prefix = "${var.name}-game-nodes-"
  description = "Players to match servers on game nodes: the game port range only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description = "Players to match-server host ports (Socket.IO over TCP)"
    protocol    = "tcp"
    from_port   = var.game_port_range.min
    to_port     = var.game_port_range.max
    cidr_blocks = var.game_client_cidrs
  }

  tags = merge(local.tags, { Name = "${var.name}-game-nodes" })

  lifecycle {
    create_before_destroy = true
  }
}

# No rules of its own: it marks system nodes so that PostgreSQL can trust exactly them.
resource "aws_security_group" "system_nodes" {
  # checkov:skip=CKV2_AWS_5:Attached to the system node group through the EKS module's launch template, which checkov cannot read offline.
  name_prefix = "${var.name}-system-nodes-"
  description = "Marker group of the system node group, source of database access"
  vpc_id      = module.vpc.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-system-nodes" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "postgres" {
  name_prefix = "${var.name}-postgres-"
  description = "PostgreSQL: reachable from system nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "PostgreSQL from system nodes (lobby, results worker, migrations)"
    protocol        = "tcp"
    from_port       = 5432
    to_port         = 5432
    security_groups = [aws_security_group.system_nodes.id]
  }

  tags = merge(local.tags, { Name = "${var.name}-postgres" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "redis" {
  name_prefix = "${var.name}-redis-"
  description = "Redis: reachable from cluster nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "Redis TLS from cluster nodes (lobby, match servers, feed relay, workers)"
    protocol        = "tcp"
    from_port       = 6379
    to_port         = 6379
    security_groups = [module.eks.node_security_group_id]
  }

  tags = merge(local.tags, { Name = "${var.name}-redis" })

  lifecycle {
    create_before_destroy = true
  }
}
