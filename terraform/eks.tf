# EKS cluster with two managed node groups:
#   system - private subnets: lobby, operator, feed relay, results worker, add-ons.
#   game   - public subnets, public IPs, tainted so that only match-server pods (which carry
#            the matching toleration and node selector) land there; players reach a match
#            server on <node external IP>:<host port in the game port range>.
module "eks" {
  # checkov:skip=CKV_TF_1:Registry module pinned to an exact release; commit hashes apply to git sources.
  source  = "terraform-aws-modules/eks/aws"
  version = "20.37.2"

  cluster_name    = var.name
  cluster_version = var.kubernetes_version

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

  # API server: private endpoint always; public endpoint only for the listed operator CIDRs.
  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = length(var.cluster_endpoint_public_access_cidrs) > 0
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs

  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true
  access_entries                           = var.cluster_access_entries

  # IAM roles for service accounts (OIDC provider); roles are in iam.tf.
  enable_irsa = true

  # Kubernetes secrets encrypted with a customer-managed KMS key created by the module.
  create_kms_key                  = true
  enable_kms_key_rotation         = true
  kms_key_deletion_window_in_days = 30
  cluster_encryption_config = {
    resources = ["secrets"]
  }

  cluster_enabled_log_types              = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days

  cluster_addons = {
    coredns = {
      most_recent = true
    }
    kube-proxy = {
      most_recent = true
    }
    vpc-cni = {
      most_recent              = true
      before_compute           = true
      service_account_role_arn = module.irsa_vpc_cni.role_arn
    }
    aws-ebs-csi-driver = {
      most_recent              = true
      service_account_role_arn = module.irsa_ebs_csi.role_arn
    }
  }

  eks_managed_node_group_defaults = {
    ami_type = "AL2023_x86_64_STANDARD"

    # IMDSv2 only, and a hop limit of 1 so that pods cannot read the node role's
    # credentials: workloads that need AWS use IRSA.
    metadata_options = {
      http_endpoint               = "enabled"
      http_tokens                 = "required"
      http_put_response_hop_limit = 1
    }

    block_device_mappings = {
      xvda = {
        device_name = "/dev/xvda"
        ebs = {
          volume_size           = 50
          volume_type           = "gp3"
          encrypted             = true
          delete_on_termination = true
        }
      }
    }

    update_config = {
      max_unavailable_percentage = 25
    }
  }

  eks_managed_node_groups = {
    system = {
      name           = "${var.name}-system"
      instance_types = var.system_node_instance_types
      capacity_type  = "ON_DEMAND"
      min_size       = var.system_node_min_size
      max_size       = var.system_node_max_size
      desired_size   = var.system_node_desired_size

      subnet_ids = module.vpc.private_subnets

      # Marker group: PostgreSQL accepts connections only from nodes carrying it.
      vpc_security_group_ids = [aws_security_group.system_nodes.id]

      labels = {
        "tradearena.io/pool" = "system"
      }
    }

    game = {
      name           = "${var.name}-game"
      instance_types = var.game_node_instance_types
      capacity_type  = "ON_DEMAND"
      min_size       = var.game_node_min_size
      max_size       = var.game_node_max_size
      desired_size   = var.game_node_desired_size

      # Public subnets (map_public_ip_on_launch) give every game node a public IPv4 address.
      subnet_ids = module.vpc.public_subnets

      # The only inbound rule reachable from the internet: the game port range.
      vpc_security_group_ids = [aws_security_group.game_nodes.id]

      labels = {
        "tradearena.io/pool" = local.game_node_label_value
      }

      taints = {
        match_servers_only = local.game_node_taint
      }
    }
  }

  tags = local.tags
}
