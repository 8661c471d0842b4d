data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "StatesAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }

    # Confused-deputy guard: only this account's state machines.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                  = "${local.name}-role"
  description           = "Execution role of ${local.name}"
  assume_role_policy    = data.aws_iam_policy_document.assume.json
  force_detach_policies = true
}

data "aws_iam_policy_document" "this" {
  statement {
    sid     = "InvokeSteps"
    actions = ["lambda:InvokeFunction"]
    resources = flatten([
      for role in local.step_roles : [local.step_function_arns[role], "${local.step_function_arns[role]}:*"]
    ])
  }

  # The CloudWatch Logs vended-delivery API has no resource-level
  # permissions: AWS documents "*" as the only accepted resource.
  statement {
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    resources = ["*"]
  }

  # X-Ray writes have no resource type.
  statement {
    sid = "XRayWrite"
    actions = [
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.kms_encryption_enabled ? ["cmk"] : []

    content {
      sid       = "StateMachineKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:aws:states:stateMachineArn"
        values   = [local.state_machine_arn]
      }
    }
  }

  # A state machine encrypted with a customer managed key that logs to
  # CloudWatch Logs: Step Functions encrypts each log record for the vended-logs
  # delivery with a data key it generates as the execution role, under the
  # logs encryption context (Step Functions "Data at rest encryption"); the key
  # policy lets delivery.logs.amazonaws.com decrypt it (modules/kms).
  dynamic "statement" {
    for_each = var.kms_encryption_enabled ? ["cmk"] : []

    content {
      sid       = "LogDeliveryKey"
      actions   = ["kms:GenerateDataKey"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:SourceArn"
        values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "least-privilege"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
