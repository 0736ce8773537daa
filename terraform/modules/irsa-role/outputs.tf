output "role_arn" {
  description = "ARN of the IAM role; the value of the eks.amazonaws.com/role-arn annotation."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the IAM role."
  value       = aws_iam_role.this.name
}

output "service_account" {
  description = "The <namespace>/<name> of the service account allowed to assume the role."
  value       = "${var.namespace}/${var.service_account}"
}
