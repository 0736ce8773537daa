# Complete deployment of the TradeArena infrastructure, sized by var.profile.
#   terraform init -backend-config=backend.hcl
#   terraform apply -var profile=1k      (or 10k)
provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "tradearena"
      Environment = "production"
    }
  }
}

locals {
  profiles = {
    "1k" = {
      system_node_instance_types = ["m7i.large"]
      system_node_min_size       = 3
      system_node_desired_size   = 3
      system_node_max_size       = 6
      game_node_instance_types   = ["c7i.xlarge"]
      game_node_min_size         = 3
      game_node_desired_size     = 6
      game_node_max_size         = 10
      db_instance_class          = "db.m7g.large"
      db_allocated_storage       = 50
      db_max_allocated_storage   = 500
      redis_node_type            = "cache.m7g.large"
      redis_num_cache_clusters   = 3
    }
    "10k" = {
      system_node_instance_types = ["m7i.xlarge"]
      system_node_min_size       = 6
      system_node_desired_size   = 6
      system_node_max_size       = 12
      game_node_instance_types   = ["c7i.xlarge"]
      game_node_min_size         = 20
      game_node_desired_size     = 54
      game_node_max_size         = 80
      db_instance_class          = "db.r7g.xlarge"
      db_allocated_storage       = 200
      db_max_allocated_storage   = 2000
      redis_node_type            = "cache.r7g.large"
      redis_num_cache_clusters   = 3
    }
  }

  size = local.profiles[var.profile]
}

module "tradearena" {
  source = "../.."

  name               = var.name
  availability_zones = coalesce(var.availability_zones, [for suffix in ["a", "b", "c"] : "${var.region}${suffix}"])

  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  cluster_access_entries               = var.cluster_access_entries

  system_node_instance_types = local.size.system_node_instance_types
  system_node_min_size       = local.size.system_node_min_size
  system_node_desired_size   = local.size.system_node_desired_size
  system_node_max_size       = local.size.system_node_max_size

  game_node_instance_types = local.size.game_node_instance_types
  game_node_min_size       = local.size.game_node_min_size
  game_node_desired_size   = local.size.game_node_desired_size
  game_node_max_size       = local.size.game_node_max_size

  db_instance_class        = local.size.db_instance_class
  db_allocated_storage     = local.size.db_allocated_storage
  db_max_allocated_storage = local.size.db_max_allocated_storage

  redis_node_type          = local.size.redis_node_type
  redis_num_cache_clusters = local.size.redis_num_cache_clusters

  match_server_domain             = var.match_server_domain
  match_server_certificate_issuer = var.match_server_certificate_issuer
}
