################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the stack: prefix of every resource, EKS cluster name."
  type        = string
  default     = "tradearena"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (VPC flow logs, EKS control plane, Redis slow log)."
  type        = number
  default     = 365
}

################################################################################
# Network
################################################################################

variable "availability_zones" {
  description = "The three availability zones of the stack, e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "Give exactly three distinct availability zones."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (a /16: private /19s, public /22s, database and cache /24s)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a valid /16 IPv4 CIDR."
  }
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway instead of one per AZ (cheaper, loses egress when its AZ fails)."
  type        = bool
  default     = false
}

################################################################################
# EKS
################################################################################

variable "kubernetes_version" {
  description = "Kubernetes <major>.<minor> version of the EKS control plane and node groups."
  type        = string
  default     = "1.33"
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint; empty disables the public endpoint (private access only)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.cluster_endpoint_public_access_cidrs, "0.0.0.0/0")
    error_message = "The Kubernetes API must not be open to the whole internet."
  }
}

variable "cluster_access_entries" {
  description = "EKS access entries (IAM principals to Kubernetes permissions), in the eks module's access_entries format."
  type        = any
  default     = {}
}

variable "system_node_instance_types" {
  description = "Instance types of the system node group (lobby, operator, feed relay, results worker, add-ons)."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "system_node_min_size" {
  description = "Minimum size of the system node group (at least one node per AZ)."
  type        = number
  default     = 3

  validation {
    condition     = var.system_node_min_size >= 3
    error_message = "The system node group needs at least 3 nodes (one per availability zone)."
  }
}

variable "system_node_desired_size" {
  description = "Initial size of the system node group."
  type        = number
  default     = 3
}

variable "system_node_max_size" {
  description = "Maximum size of the system node group."
  type        = number
  default     = 6
}

variable "game_node_instance_types" {
  description = "Instance types of the game-server node group (one match-server pod per match)."
  type        = list(string)
  default     = ["c7i.xlarge"]
}

variable "game_node_min_size" {
  description = "Minimum size of the game-server node group."
  type        = number
  default     = 2
}

variable "game_node_desired_size" {
  description = "Initial size of the game-server node group."
  type        = number
  default     = 3
}

variable "game_node_max_size" {
  description = "Maximum size of the game-server node group (the cluster autoscaler works within it)."
  type        = number
  default     = 10
}

variable "game_port_range" {
  description = "Host port range of match servers, open to players on the game nodes (tcp)."
  type = object({
    min = number
    max = number
  })
  default = {
    min = 7000
    max = 8000
  }

  validation {
    condition     = var.game_port_range.min >= 1024 && var.game_port_range.min <= var.game_port_range.max && var.game_port_range.max <= 65535
    error_message = "game_port_range must satisfy 1024 <= min <= max <= 65535."
  }
}

variable "game_client_cidrs" {
  description = "IPv4 CIDRs of players allowed to reach the game port range (the whole internet by default)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "kubernetes_namespace" {
  description = "Namespace of the TradeArena Helm release."
  type        = string
  default     = "tradearena"
}

variable "secrets_service_account" {
  description = "Service account (in kubernetes_namespace) that External Secrets uses to read the database and Redis secrets."
  type        = string
  default     = "tradearena-secrets"
}

################################################################################
# PostgreSQL (RDS)
################################################################################

variable "postgres_major_version" {
  description = "PostgreSQL major version (minor versions are upgraded automatically in the maintenance window)."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_allocated_storage" {
  description = "Initial storage in GiB (gp3)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500
}

variable "db_name" {
  description = "Name of the application database."
  type        = string
  default     = "tradearena"
}

variable "db_username" {
  description = "Master user name (its password is managed by RDS in Secrets Manager)."
  type        = string
  default     = "tradearena"
}

variable "db_backup_retention_days" {
  description = "Days of automated backups, which is also the point-in-time recovery window."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

################################################################################
# Redis (ElastiCache)
################################################################################

variable "redis_engine_version" {
  description = "ElastiCache Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_num_cache_clusters" {
  description = "Nodes in the replication group: one primary plus replicas, spread over the AZs. Match servers wait for all replicas but one (output redis.wait_replicas), so a failover leaves the new primary a replica to wait for: 3 nodes keep that true."
  type        = number
  default     = 3

  validation {
    condition     = var.redis_num_cache_clusters >= 2 && var.redis_num_cache_clusters <= 6
    error_message = "Multi-AZ failover needs at least one replica: 2 to 6 nodes."
  }
}

variable "redis_cluster_mode" {
  description = "Run Redis as a Redis Cluster (cluster mode enabled: redis_num_shards shards of one primary and redis_replicas_per_shard replicas) instead of one primary with replicas (redis_num_cache_clusters). Clients then use rediss+cluster:// through the configuration endpoint (chart value redis.cluster)."
  type        = bool
  default     = false
}

variable "redis_num_shards" {
  description = "Shards (node groups) of the Redis Cluster when redis_cluster_mode is true."
  type        = number
  default     = 3

  validation {
    condition     = var.redis_num_shards >= 1 && var.redis_num_shards <= 500
    error_message = "A Redis Cluster has 1 to 500 shards."
  }
}

variable "redis_replicas_per_shard" {
  description = "Replicas of each shard's primary when redis_cluster_mode is true, spread over the AZs. Match servers wait for all but one (output redis.wait_replicas): 2 leave a promoted replica one replica of its own."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_replicas_per_shard >= 1 && var.redis_replicas_per_shard <= 5
    error_message = "Multi-AZ failover needs at least one replica per shard: 1 to 5."
  }
}

variable "redis_auth_token_version" {
  description = "Generation of the Redis AUTH token; change it (e.g. to a date) to rotate the token."
  type        = string
  default     = "1"
}

variable "redis_snapshot_retention_days" {
  description = "Days of daily Redis snapshots."
  type        = number
  default     = 7

  validation {
    condition     = var.redis_snapshot_retention_days >= 1
    error_message = "Keep at least one day of Redis snapshots."
  }
}

variable "match_server_domain" {
  description = "DNS domain under which each game node is published (e.g. play.example.com: node 203.0.113.7 is 203-0-113-7.play.example.com) and which one wildcard certificate covers for wss:// to match servers. Empty: match servers are advertised by bare IP, in plaintext."
  type        = string
  default     = ""

  validation {
    condition     = var.match_server_domain == "" || can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$", var.match_server_domain))
    error_message = "match_server_domain must be a lower-case DNS domain such as play.example.com, or empty."
  }
}

variable "match_server_certificate_issuer" {
  description = "cert-manager issuer (kind ClusterIssuer or Issuer, and name) that solves DNS-01 for match_server_domain; it issues the wildcard certificate the match servers serve."
  type = object({
    kind = string
    name = string
  })
  default = {
    kind = "ClusterIssuer"
    name = "letsencrypt-dns01"
  }

  validation {
    condition     = contains(["ClusterIssuer", "Issuer"], var.match_server_certificate_issuer.kind) && var.match_server_certificate_issuer.name != ""
    error_message = "match_server_certificate_issuer: kind ClusterIssuer or Issuer, and a name."
  }
}
