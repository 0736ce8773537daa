# IAM roles for service accounts (IRSA). Only what needs AWS gets a role:
#   secrets            tradearena/<secrets SA>        read the two secrets (External Secrets)
#   cluster-autoscaler kube-system/cluster-autoscaler  scale this cluster's node groups
#   vpc-cni            kube-system/aws-node           manage pod ENIs (EKS add-on)
#   ebs-csi            kube-system/ebs-csi-controller-sa  EBS volumes (EKS add-on)
# The TradeArena services themselves (lobby, match servers, operator, feed relay, results
# worker) call no AWS API and run without a role; node roles are out of reach of pods
# (IMDS hop limit 1, see eks.tf).

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
}

# --- External Secrets: PostgreSQL master password and Redis AUTH token ---------------------

data "aws_iam_policy_document" "secrets_reader" {
  statement {
    sid    = "ReadTradeArenaSecrets"
    effect = "Allow"
    actions = [
      "secretsmanager:GetSecretValue",
      "secretsmanager:DescribeSecret",
    ]
    resources = [
      aws_db_instance.postgres.master_user_secret[0].secret_arn,
      aws_secretsmanager_secret.redis_auth.arn,
    ]
  }

  statement {
    sid       = "DecryptTradeArenaSecrets"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

module "irsa_secrets" {
  source = "./modules/irsa-role"

  name              = "${var.name}-secrets"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = var.kubernetes_namespace
  service_account   = var.secrets_service_account
  policy_json       = data.aws_iam_policy_document.secrets_reader.json

  tags = local.tags
}

# --- Cluster Autoscaler: grows the game node group with the number of live matches ---------

data "aws_iam_policy_document" "cluster_autoscaler" {
  statement {
    sid    = "ScaleOwnNodeGroups"
    effect = "Allow"
    actions = [
      "autoscaling:SetDesiredCapacity",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.name}"
      values   = ["owned"]
    }
  }

  statement {
    sid       = "DescribeOwnNodeGroups"
    effect    = "Allow"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:${local.partition}:eks:${local.region}:${local.account_id}:nodegroup/${var.name}/*/*"]
  }

  statement {
    sid    = "DescribeScalingInputs"
    effect = "Allow"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"]
  }
}

module "irsa_cluster_autoscaler" {
  source = "./modules/irsa-role"

  name              = "${var.name}-cluster-autoscaler"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = "kube-system"
  service_account   = "cluster-autoscaler"
  policy_json       = data.aws_iam_policy_document.cluster_autoscaler.json

  tags = local.tags
}

# --- EKS add-ons --------------------------------------------------------------------------

module "irsa_vpc_cni" {
  source = "./modules/irsa-role"

  name              = "${var.name}-vpc-cni"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = "kube-system"
  service_account   = "aws-node"
  managed_policy_arns = {
    cni = "arn:${local.partition}:iam::aws:policy/AmazonEKS_CNI_Policy"
  }

  tags = local.tags
}

module "irsa_ebs_csi" {
  source = "./modules/irsa-role"

  name              = "${var.name}-ebs-csi"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = "kube-system"
  service_account   = "ebs-csi-controller-sa"
  managed_policy_arns = {
    ebs = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
  }

  tags = local.tags
}
