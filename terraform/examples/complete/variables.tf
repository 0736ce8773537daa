variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "availability_zones" {
  description = "Three availability zones; null means <region>a, <region>b and <region>c."
  type        = list(string)
  default     = null
}

variable "name" {
  description = "Name of the stack (EKS cluster name, resource prefix)."
  type        = string
  default     = "tradearena"
}

variable "profile" {
  description = "Sizing profile: \"1k\" or \"10k\" concurrent players (see ../../README.md, Sizing and cost)."
  type        = string
  default     = "1k"

  validation {
    condition     = contains(["1k", "10k"], var.profile)
    error_message = "profile must be \"1k\" or \"10k\"."
  }
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "Operator CIDRs allowed to reach the Kubernetes API publicly; empty for private access only."
  type        = list(string)
  default     = []
}

variable "cluster_access_entries" {
  description = "EKS access entries for the people and CI roles that administer the cluster."
  type        = any
  default     = {}
}

variable "match_server_domain" {
  description = "Domain the game nodes are published under for wss:// (e.g. play.example.com); empty for plaintext by IP."
  type        = string
  default     = ""
}

variable "match_server_certificate_issuer" {
  description = "cert-manager issuer that solves DNS-01 for match_server_domain."
  type = object({
    kind = string
    name = string
  })
  default = {
    kind = "ClusterIssuer"
    name = "letsencrypt-dns01"
  }
}
