# The root module's outputs, unchanged: `terraform output -json` here feeds
# scripts/tf-outputs-to-values.py.

output "region" {
  description = "AWS region of the stack."
  value       = module.tradearena.region
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.tradearena.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.tradearena.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the Kubernetes API."
  value       = module.tradearena.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "IAM OIDC provider of the cluster."
  value       = module.tradearena.oidc_provider_arn
}

output "kubernetes_namespace" {
  description = "Namespace of the Helm release."
  value       = module.tradearena.kubernetes_namespace
}

output "postgresql" {
  description = "PostgreSQL connection data and the ARN of its master password secret."
  value       = module.tradearena.postgresql
}

output "redis" {
  description = "Redis connection data and the ARN of its AUTH token secret."
  value       = module.tradearena.redis
}

output "secrets_service_account" {
  description = "Service account reading the secrets, and its IAM role."
  value       = module.tradearena.secrets_service_account
}

output "irsa_role_arns" {
  description = "IAM role ARNs of the cluster add-ons."
  value       = module.tradearena.irsa_role_arns
}

output "game_nodes" {
  description = "Node selector, tolerations and port range of match-server pods."
  value       = module.tradearena.game_nodes
}

output "match_servers" {
  description = "Domain, address template and certificate source of the match servers."
  value       = module.tradearena.match_servers
}
