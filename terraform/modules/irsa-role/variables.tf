variable "name" {
  description = "Name of the IAM role."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (module.eks.oidc_provider_arn)."
  type        = string
}

variable "oidc_provider" {
  description = "Issuer of the cluster's OIDC provider without the https:// scheme (module.eks.oidc_provider)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the service account allowed to assume the role."
  type        = string
}

variable "service_account" {
  description = "Name of the Kubernetes service account allowed to assume the role."
  type        = string
}

variable "policy_json" {
  description = "Inline IAM policy document (JSON) granted to the role; null for none."
  type        = string
  default     = null
}

variable "managed_policy_arns" {
  description = "AWS managed policies to attach, keyed by a static name."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
