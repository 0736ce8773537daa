terraform {
  required_version = ">= 1.10.0, < 2.0.0"

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

  # State holds the Redis AUTH token: keep it in an encrypted, versioned, access-controlled
  # S3 bucket. Settings come from backend.hcl (see backend.hcl.example and ../../README.md).
  backend "s3" {}
}
