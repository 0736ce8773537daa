# Customer-managed key for data at rest: RDS storage, Performance Insights, the RDS master
# password secret, the Redis AUTH secret, ElastiCache storage and the CloudWatch log groups.
# (Kubernetes secrets use a separate key created by the EKS module.)
data "aws_iam_policy_document" "data_key" {
  # checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key only; the account-root statement is the AWS default that delegates key access to IAM.
  # checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key only; the account-root statement is the AWS default that delegates key access to IAM.
  # checkov:skip=CKV_AWS_356:Key policy: Resource "*" is this key only; the account-root statement is the AWS default that delegates key access to IAM.
  statement {
    sid       = "AccountAdministration"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid    = "CloudWatchLogs"
    effect = "Allow"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${var.name}: RDS, ElastiCache, Secrets Manager and log encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.data_key.json

  tags = local.tags
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name}-data"
  target_key_id = aws_kms_key.data.key_id
}
