# Provider and module pins. Providers are pinned here (pessimistic constraint, a lock file is
# committed by whoever first runs `terraform init` against a real backend); registry modules
# are pinned to exact versions in their module blocks:
#   terraform-aws-modules/vpc/aws  5.21.0  (vpc.tf)
#   terraform-aws-modules/eks/aws  20.37.2 (eks.tf)
terraform {
  required_version = ">= 1.5.7, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
