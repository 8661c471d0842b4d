# -----------------------------------------------------------------------------
# Account-wide CloudWatch Logs role of API Gateway (one per account and
# region), needed before a stage may log. Behind a variable so a second stack
# in the same account does not fight over it.
# -----------------------------------------------------------------------------
data "aws_iam_policy_document" "apigateway_assume" {
  statement {
    sid     = "ApiGatewayAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }

    # AWS's documented trust policy for this role, without a confused-deputy
    # condition: API Gateway is reported not to send aws:SourceAccount when it
    # assumes the account's CloudWatch role, so a condition on it can make
    # aws_api_gateway_account fail. The role only writes logs of this account.
  }
}

resource "aws_iam_role" "cloudwatch" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  name                  = "payment-apigateway-cloudwatch-${var.suffix}"
  description           = "API Gateway account role: writes execution and access logs"
  assume_role_policy    = data.aws_iam_policy_document.apigateway_assume.json
  force_detach_policies = true
}

# Equivalent of AmazonAPIGatewayPushToCloudWatchLogs, inline: the writes are
# limited to this account's log groups in this region; DescribeLogGroups is a
# list call that IAM authorizes only on "*" (the managed policy grants it so).
data "aws_iam_policy_document" "cloudwatch" {
  statement {
    sid       = "ListLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }

  statement {
    sid = "PushLogs"
    actions = [
      "logs:CreateLogGroup",
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:FilterLogEvents",
      "logs:GetLogEvents",
      "logs:PutLogEvents",
    ]
    resources = [
      "arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:*",
    ]
  }
}

resource "aws_iam_role_policy" "cloudwatch" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  name   = "push-to-cloudwatch-logs"
  role   = aws_iam_role.cloudwatch[0].id
  policy = data.aws_iam_policy_document.cloudwatch.json
}

# Destroy leaves the account setting in place (no reset_on_delete): other
# APIs in the account may log through it. Destroying the role afterwards
# only stops logging until another stack sets its own.
resource "aws_api_gateway_account" "this" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.cloudwatch[0].arn

  depends_on = [aws_iam_role_policy.cloudwatch]
}
