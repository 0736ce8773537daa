# Network: one VPC over three availability zones.
#   public      /22 per AZ  - NAT gateways, load balancers, game-server nodes (public IPs)
#   private     /19 per AZ  - system nodes and their pods (VPC CNI gives pods VPC addresses)
#   database    /24 per AZ  - RDS PostgreSQL, no route to the internet
#   elasticache /24 per AZ  - ElastiCache Redis, no route to the internet
module "vpc" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact release; commit hashes apply to git sources.
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.21.0"

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets     = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 3, i)]
  public_subnets      = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 6, i + 48)]
  database_subnets    = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 208)]
  elasticache_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, i + 212)]

  create_database_subnet_group           = true
  create_database_subnet_route_table     = true
  create_database_internet_gateway_route = false
  create_database_nat_gateway_route      = false
  create_elasticache_subnet_group        = true
  create_elasticache_subnet_route_table  = true

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  enable_dns_hostnames = true
  enable_dns_support   = true

  # Game-server nodes live in the public subnets and must get a public IPv4 address:
  # players connect straight to <node external IP>:<host port>.
  map_public_ip_on_launch = true

  # The default security group denies everything; every component has its own group.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_max_aggregation_interval               = 60
  flow_log_cloudwatch_log_group_retention_in_days = var.log_retention_days
  flow_log_cloudwatch_log_group_kms_key_id        = aws_kms_key.data.arn

  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }

  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
  }

  tags = local.tags
}
