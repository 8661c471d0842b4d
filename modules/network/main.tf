# Private-only VPC for the functions. Without a NAT gateway the only ways out are
# the endpoints below: gateway endpoints (free) for S3 and DynamoDB on the PRIVATE
# route tables, interface endpoints for every other AWS API the code calls.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394: Subnets use the first var.az_count zones of the sorted list; a zone AWS adds later sorts after them, and pinning zone names would tie the module to one region.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_caller_identity" "current" {}

locals {
  azs = slice(sort(data.aws_availability_zones.available.names), 0, var.az_count)

  # The VPC is split into eighths: 0..3 private, 4..7 public (used only with NAT).
  private_cidrs = { for i, az in local.azs : az => cidrsubnet(var.vpc_cidr, 3, i) }
  public_cidrs  = { for i, az in local.azs : az => cidrsubnet(var.vpc_cidr, 3, i + 4) }

  gateway_services   = toset(["s3", "dynamodb"])
  interface_services = toset(var.interface_endpoint_services)

  # Interface endpoints whose APIs act on this account's named resources get
  # the own-account endpoint policy; logs, monitoring and xray have no
  # per-account resource to match and keep AWS's default policy.
  own_account_policy_services = toset(["sqs", "sns", "ssm", "kms", "states"])

  # AWS's default endpoint policy, written out so every endpoint's policy is
  # known at plan time (and reviewed) instead of left to the service.
  aws_default_endpoint_policy = jsonencode({
    Statement = [{ Sid = "AwsDefaultEndpointPolicy", Effect = "Allow", Principal = "*", Action = "*", Resource = "*" }]
  })

  # Lambda's VPC network interfaces outlive their functions by 20-45 minutes
  # and hold the functions' security group and subnets until they are gone:
  # deletes of those wait this long instead of failing the destroy.
  eni_release_timeout = "45m"
}

################################################################################
# VPC and subnets
################################################################################

resource "aws_vpc" "this" {
  cidr_block = var.vpc_cidr

  # Private DNS of the interface endpoints needs both.
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = "payment-vpc-${var.suffix}" }
}

# Adopting the default security group strips its allow-all rules, so nothing
# that lands in the VPC without an explicit group gets network access.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = { Name = "payment-default-${var.suffix}" }
}

resource "aws_subnet" "private" {
  for_each = local.private_cidrs

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.key
  cidr_block              = each.value
  map_public_ip_on_launch = false

  tags = { Name = "payment-private-${each.key}-${var.suffix}", Tier = "private" }

  timeouts {
    delete = local.eni_release_timeout
  }
}

resource "aws_route_table" "private" {
  for_each = local.private_cidrs

  vpc_id = aws_vpc.this.id

  tags = { Name = "payment-private-${each.key}-${var.suffix}", Tier = "private" }
}

resource "aws_route_table_association" "private" {
  for_each = local.private_cidrs

  subnet_id      = aws_subnet.private[each.key].id
  route_table_id = aws_route_table.private[each.key].id
}

################################################################################
# Optional NAT egress (one gateway: an outage of its AZ only cuts internet egress,
# the AWS APIs stay reachable through the endpoints)
################################################################################

resource "aws_subnet" "public" {
  for_each = var.enable_nat_gateway ? local.public_cidrs : {}

  vpc_id                  = aws_vpc.this.id
  availability_zone       = each.key
  cidr_block              = each.value
  map_public_ip_on_launch = false

  tags = { Name = "payment-public-${each.key}-${var.suffix}", Tier = "public" }
}

resource "aws_internet_gateway" "this" {
  count = var.enable_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this.id

  tags = { Name = "payment-igw-${var.suffix}" }
}

resource "aws_route_table" "public" {
  count = var.enable_nat_gateway ? 1 : 0

  vpc_id = aws_vpc.this.id

  tags = { Name = "payment-public-${var.suffix}", Tier = "public" }
}

resource "aws_route" "public_internet" {
  count = var.enable_nat_gateway ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  for_each = aws_subnet.public

  subnet_id      = each.value.id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count = var.enable_nat_gateway ? 1 : 0

  domain = "vpc"

  tags = { Name = "payment-nat-${var.suffix}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = var.enable_nat_gateway ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[local.azs[0]].id

  tags = { Name = "payment-nat-${var.suffix}" }
}

resource "aws_route" "private_nat" {
  for_each = var.enable_nat_gateway ? local.private_cidrs : {}

  route_table_id         = aws_route_table.private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

################################################################################
# Security groups
################################################################################

resource "aws_security_group" "lambda" {
  #checkov:skip=CKV2_AWS_5: Attached to every function through the functions module (vpc_config.security_group_ids); checkov does not follow the module output.
  # name_prefix, not name: with create_before_destroy a replacement group is
  # created while the old one still holds the name (InvalidGroup.Duplicate).
  name_prefix = "payment-lambda-${var.suffix}-"
  description = "Payment functions: no ingress, HTTPS egress to the VPC endpoints only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "payment-lambda-${var.suffix}" }

  lifecycle {
    create_before_destroy = true
  }

  timeouts {
    delete = local.eni_release_timeout
  }
}

resource "aws_vpc_security_group_egress_rule" "lambda_endpoints" {
  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to the interface endpoints inside the VPC"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "lambda_gateway" {
  for_each = local.gateway_services

  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to ${each.key} through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.gateway[each.key].prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "lambda_internet" {
  count = var.enable_nat_gateway ? 1 : 0

  security_group_id = aws_security_group.lambda.id
  description       = "HTTPS to the internet through the NAT gateway"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_security_group" "endpoints" {
  name_prefix = "payment-endpoints-${var.suffix}-"
  description = "Payment interface endpoints: HTTPS from the payment functions only"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "payment-endpoints-${var.suffix}" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_lambda" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the payment functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda.id
}

################################################################################
# VPC endpoints
################################################################################

# Only resources owned by this account are reachable through the endpoints, so a
# compromised function cannot copy data to a bucket or table elsewhere.
data "aws_iam_policy_document" "endpoint" {
  #checkov:skip=CKV_AWS_49: VPC endpoint policy, not a grant: it only narrows what the endpoints carry to this account's resources (aws:ResourceAccount); IAM still decides what a caller may do.
  #checkov:skip=CKV_AWS_1: Same endpoint policy: a data-perimeter filter, grants nothing.
  #checkov:skip=CKV2_AWS_40: Same endpoint policy: grants no IAM privilege.
  statement {
    sid       = "OwnAccountResourcesOnly"
    effect    = "Allow"
    actions   = ["*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_vpc_endpoint" "gateway" {
  for_each = local.gateway_services

  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [for az in local.azs : aws_route_table.private[az].id]
  policy            = data.aws_iam_policy_document.endpoint.json

  tags = { Name = "payment-${each.key}-${var.suffix}" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_services

  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = [for az in local.azs : aws_subnet.private[az].id]
  security_group_ids  = [aws_security_group.endpoints.id]
  policy              = contains(local.own_account_policy_services, each.key) ? data.aws_iam_policy_document.endpoint.json : local.aws_default_endpoint_policy

  tags = { Name = "payment-${each.key}-${var.suffix}" }
}

################################################################################
# Flow logs
################################################################################

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/aws/vpc/payment-flow-logs-${var.suffix}"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

data "aws_iam_policy_document" "flow_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow" {
  statement {
    effect = "Allow"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "logs:DescribeLogStreams",
    ]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }

  # A list call: IAM authorizes DescribeLogGroups only on "*" (the flow-logs
  # role policy AWS documents grants it so); the writes above stay on the group.
  statement {
    effect    = "Allow"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "flow" {
  name               = "payment-vpc-flow-logs-${var.suffix}"
  description        = "Lets VPC Flow Logs write to payment-flow-logs-${var.suffix}"
  assume_role_policy = data.aws_iam_policy_document.flow_assume.json
}

resource "aws_iam_role_policy" "flow" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow.id
  policy = data.aws_iam_policy_document.flow.json
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow.arn
  iam_role_arn         = aws_iam_role.flow.arn

  tags = { Name = "payment-flow-logs-${var.suffix}" }
}
