# Three customer-managed keys split by blast radius: data at rest (tables, archive,
# parameters, Lambda environment, state machine), messaging (queues, topics) and
# telemetry (log groups, WAF logs, X-Ray). A key policy cannot name the function
# roles (they are created later and a deleted role would orphan the statement), so
# the account root delegates to IAM and each role's own policy grants key use.

locals {
  root_arn = "arn:${var.partition}:iam::${var.account_id}:root"

  keys = {
    data = {
      description = "payment-${var.suffix}: DynamoDB tables, S3 archive, SSM parameters, Lambda environment, Step Functions"
      # Services that call KMS on a caller's behalf (grants or per-request data keys).
      via_services = ["dynamodb", "s3", "ssm", "lambda", "states"]
      # Services that call KMS with their own identity.
      service_principals = []
    }
    messaging = {
      description  = "payment-${var.suffix}: SQS queues and SNS topics"
      via_services = ["sqs", "sns"]
      # CloudWatch alarms publish to the encrypted alerts topic as themselves;
      # without this statement alarm notifications are silently dropped. (The
      # Scheduler DLQ is written with the schedule's own role, not the service.)
      service_principals = ["cloudwatch.amazonaws.com"]
    }
    logs = {
      description = "payment-${var.suffix}: CloudWatch log groups, WAF logs${var.xray_encryption ? ", X-Ray traces" : ""}"
      # X-Ray uses the key only when this stack manages the account's X-Ray encryption.
      via_services       = var.xray_encryption ? ["xray"] : []
      service_principals = ["delivery.logs.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111: Key policy: "*" is this key only; the root statement is AWS's default key policy and delegates use to IAM (the roles' policies carry kms:ViaService).
  #checkov:skip=CKV_AWS_356: Key policy: "*" as Resource means the key the policy is attached to.
  #checkov:skip=CKV_AWS_109: Key policy: key administration stays with the account root (AWS default); no other principal can change the policy.
  for_each = local.keys

  statement {
    sid       = "EnableIAMPolicies"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.root_arn]
    }
  }

  # Redundant with the root statement today; it keeps the integrated services
  # working if an operator narrows EnableIAMPolicies to key administrators
  # (a common hardening step), the way AWS-managed key policies are written.
  # (Only for keys some integrated service uses: an empty kms:ViaService list
  # would drop the condition.)
  dynamic "statement" {
    for_each = length(each.value.via_services) > 0 ? [1] : []

    content {
      sid    = "AllowUseThroughIntegratedServices"
      effect = "Allow"
      actions = [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "kms:DescribeKey",
        "kms:CreateGrant",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = [local.root_arn]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:CallerAccount"
        values   = [var.account_id]
      }

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [for service in each.value.via_services : "${service}.${var.region}.amazonaws.com"]
      }

    }
  }

  dynamic "statement" {
    for_each = length(each.value.service_principals) > 0 ? [each.value.service_principals] : []

    content {
      sid       = "AllowServicePrincipals"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = statement.value
      }
    }
  }

  # Step Functions logging of a state machine encrypted with this key: the
  # execution role encrypts each record with a data key of this key, and the
  # vended-logs delivery service decrypts it before CloudWatch Logs stores it
  # under the logs key (Step Functions "Data at rest encryption").
  dynamic "statement" {
    for_each = each.key == "data" ? [1] : []

    content {
      sid       = "AllowStepFunctionsLogDelivery"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["delivery.logs.amazonaws.com"]
      }
    }
  }

  # EventBridge rules that target an encrypted queue (the workflow safety net)
  # send as events.amazonaws.com, which needs the key to encrypt the message;
  # aws:SourceArn keeps it to this stack's rules.
  dynamic "statement" {
    for_each = each.key == "messaging" && length(var.eventbridge_rule_arns) > 0 ? [1] : []

    content {
      sid       = "AllowEventBridgeRules"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = var.eventbridge_rule_arns
      }
    }
  }

  # SNS delivers payment-events and payment-failed to the encrypted events
  # queue as sns.amazonaws.com, which needs a data key of the queue's key;
  # aws:SourceArn keeps it to this stack's topics.
  dynamic "statement" {
    for_each = each.key == "messaging" && length(var.sns_topic_arns) > 0 ? [1] : []

    content {
      sid       = "AllowSnsToEncryptedQueues"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["sns.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = var.sns_topic_arns
      }
    }
  }

  # CloudWatch Logs encrypts with its regional principal; the encryption-context
  # condition keeps it to log groups of this account and region.
  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []

    content {
      sid    = "AllowCloudWatchLogs"
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
        identifiers = ["logs.${var.region}.amazonaws.com"]
      }

      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:logs:arn"
        values   = ["arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:*"]
      }
    }
  }
}

resource "aws_kms_key" "this" {
  for_each = local.keys

  description             = each.value.description
  deletion_window_in_days = var.deletion_window_in_days
  enable_key_rotation     = true
  key_usage               = "ENCRYPT_DECRYPT"
  policy                  = data.aws_iam_policy_document.key[each.key].json
}

resource "aws_kms_alias" "this" {
  for_each = local.keys

  name          = "alias/payment-${each.key}-${var.suffix}"
  target_key_id = aws_kms_key.this[each.key].key_id
}
