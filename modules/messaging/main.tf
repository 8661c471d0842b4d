# Queues carry their policies inline (rather than aws_sqs_queue_policy) and the
# DLQ's redrive-allow policy names the failed queue by a computed ARN: the failed
# queue points at the DLQ, so referencing it back would be a cycle. Topic ARNs
# are computed the same way so the topic policies are readable in the plan.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  arn_prefix = "arn:${data.aws_partition.current.partition}"

  queue_names = {
    audit  = "transaction-queue-${var.suffix}.fifo"
    failed = "failed-transactions-${var.suffix}"
    dlq    = "failed-transactions-dlq-${var.suffix}"
    events = "payment-event-stream-${var.suffix}"
  }

  queue_arns = {
    for key, name in local.queue_names :
    key => "${local.arn_prefix}:sqs:${data.aws_region.current.name}:${local.account_id}:${name}"
  }

  topic_arns = {
    for key, topic in local.topics :
    key => "${local.arn_prefix}:sns:${data.aws_region.current.name}:${local.account_id}:${topic.name}"
  }

  topics = {
    alerts = {
      name         = "payment-alerts-${var.suffix}"
      display_name = "Payment alerts (${var.suffix})"
      # Only the alarms topic accepts CloudWatch as a publisher.
      cloudwatch = true
    }
    events = {
      name         = "payment-events-${var.suffix}"
      display_name = "Payments completed (${var.suffix})"
      cloudwatch   = false
    }
    failed = {
      name         = "payment-failed-${var.suffix}"
      display_name = "Payments rejected or failed (${var.suffix})"
      cloudwatch   = false
    }
  }
}

################################################################################
# Queues
################################################################################

data "aws_iam_policy_document" "queue" {
  for_each = local.queue_arns

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # The events queue is the machine channel of payment-events and
  # payment-failed: SNS delivers as sns.amazonaws.com, for those topics only.
  dynamic "statement" {
    for_each = each.key == "events" ? [1] : []

    content {
      sid       = "PaymentTopicsSend"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [each.value]

      principals {
        type        = "Service"
        identifiers = ["sns.amazonaws.com"]
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [local.topic_arns["events"], local.topic_arns["failed"]]
      }
    }
  }

  # The workflow's safety-net rule (timed-out, aborted and failed executions)
  # delivers to failed-transactions as events.amazonaws.com, for the named
  # rules only.
  dynamic "statement" {
    for_each = each.key == "failed" && length(var.eventbridge_rule_arns) > 0 ? [1] : []

    content {
      sid       = "EventBridgeRulesSend"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = [each.value]

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
}

# Audit stream: one message group per transaction keeps its state changes in
# order; high-throughput mode lifts the per-queue limit to the per-group limit.
resource "aws_sqs_queue" "audit" {
  name                              = local.queue_names.audit
  fifo_queue                        = true
  content_based_deduplication       = true
  deduplication_scope               = "messageGroup"
  fifo_throughput_limit             = "perMessageGroupId"
  message_retention_seconds         = var.message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds
  policy                            = data.aws_iam_policy_document.queue["audit"].json

  tags = { Name = local.queue_names.audit }
}

# A standard queue keeps a message's original enqueue time when it moves to
# the DLQ, so the DLQ retains longer than failed-transactions (SQS developer
# guide, "Setting-up dead-letter queue retention").
resource "aws_sqs_queue" "dlq" {
  name                              = local.queue_names.dlq
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds
  policy                            = data.aws_iam_policy_document.queue["dlq"].json

  # Only the failed queue may dead-letter here; it also lets the console and
  # StartMessageMoveTask redrive back to it.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arns.failed]
  })

  tags = { Name = local.queue_names.dlq }

  lifecycle {
    precondition {
      condition     = var.dlq_message_retention_seconds > var.failed_message_retention_seconds
      error_message = "dlq_message_retention_seconds (${var.dlq_message_retention_seconds}) must exceed failed_message_retention_seconds (${var.failed_message_retention_seconds}): a dead-lettered message keeps its original enqueue time and would expire early."
    }
  }
}

resource "aws_sqs_queue" "failed" {
  name                              = local.queue_names.failed
  visibility_timeout_seconds        = var.failed_visibility_timeout_seconds
  message_retention_seconds         = var.failed_message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds
  policy                            = data.aws_iam_policy_document.queue["failed"].json

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = { Name = local.queue_names.failed }
}

# Payment events for machines: every message of payment-events (completed) and
# payment-failed (rejected or failed), in the SNS envelope (TopicArn tells
# which). Downstream consumers read it; nothing in the platform does.
resource "aws_sqs_queue" "events" {
  name                              = local.queue_names.events
  message_retention_seconds         = var.message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds
  policy                            = data.aws_iam_policy_document.queue["events"].json

  tags = { Name = local.queue_names.events }
}

################################################################################
# Topics
################################################################################

resource "aws_sns_topic" "this" {
  for_each = local.topics

  name              = each.value.name
  display_name      = each.value.display_name
  kms_master_key_id = var.kms_key_arn

  tags = { Name = each.value.name }
}

data "aws_iam_policy_document" "topic" {
  for_each = local.topics

  statement {
    sid    = "OwnerManagesTopic"
    effect = "Allow"
    actions = [
      "sns:GetTopicAttributes",
      "sns:SetTopicAttributes",
      "sns:AddPermission",
      "sns:RemovePermission",
      "sns:DeleteTopic",
      "sns:Subscribe",
      "sns:ListSubscriptionsByTopic",
    ]
    resources = [local.topic_arns[each.key]]

    principals {
      type        = "AWS"
      identifiers = ["${local.arn_prefix}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = each.value.cloudwatch ? [1] : []

    content {
      sid       = "AllowCloudWatchAlarms"
      effect    = "Allow"
      actions   = ["sns:Publish"]
      resources = [local.topic_arns[each.key]]

      principals {
        type        = "Service"
        identifiers = ["cloudwatch.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }

      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = ["${local.arn_prefix}:cloudwatch:${data.aws_region.current.name}:${local.account_id}:alarm:*"]
      }
    }
  }

  dynamic "statement" {
    for_each = length(var.publisher_role_arns) > 0 ? [1] : []

    content {
      sid       = "AllowPlatformRoles"
      effect    = "Allow"
      actions   = ["sns:Publish"]
      resources = [local.topic_arns[each.key]]

      principals {
        type        = "AWS"
        identifiers = var.publisher_role_arns
      }
    }
  }

  # Makes "only the platform publishes" hold even against broad IAM grants in the
  # account. Service principals carry no aws:PrincipalArn; on the alerts topic
  # the CloudWatch exemption keeps alarm notifications flowing.
  dynamic "statement" {
    for_each = length(var.publisher_role_arns) > 0 ? [1] : []

    content {
      sid       = "DenyOtherPublishers"
      effect    = "Deny"
      actions   = ["sns:Publish"]
      resources = [local.topic_arns[each.key]]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "ArnNotEquals"
        variable = "aws:PrincipalArn"
        values   = var.publisher_role_arns
      }

      dynamic "condition" {
        for_each = each.value.cloudwatch ? [1] : []

        content {
          test     = "StringNotEqualsIfExists"
          variable = "aws:PrincipalServiceName"
          values   = ["cloudwatch.amazonaws.com"]
        }
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish", "sns:Subscribe"]
    resources = [local.topic_arns[each.key]]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  for_each = local.topics

  arn    = aws_sns_topic.this[each.key].arn
  policy = data.aws_iam_policy_document.topic[each.key].json
}

# Alerts: explicit subscribers (HTTPS to an incident tool, SQS, Lambda, SMS;
# e-mail only beside one of those). Keyed by protocol and endpoint so adding a
# subscriber does not touch the others.
resource "aws_sns_topic_subscription" "alerts" {
  for_each = { for s in var.alert_subscriptions : "${s.protocol}:${s.endpoint}" => s }

  topic_arn            = aws_sns_topic.this["alerts"].arn
  protocol             = each.value.protocol
  endpoint             = each.value.endpoint
  raw_message_delivery = contains(["https", "sqs", "firehose"], each.value.protocol) ? each.value.raw_message_delivery : null
  # HTTPS endpoints confirm by answering SNS's SubscriptionConfirmation; the
  # apply waits for it instead of leaving a subscription that receives nothing.
  endpoint_auto_confirms = each.value.protocol == "https" ? true : null
}

# Payment events and failures to the events queue (confirmed on creation: the
# queue is in this account).
resource "aws_sns_topic_subscription" "events_queue" {
  for_each = toset(["events", "failed"])

  topic_arn = aws_sns_topic.this[each.key].arn
  protocol  = "sqs"
  endpoint  = aws_sqs_queue.events.arn
}

# Opt-in e-mail per payment, for low-volume environments only.
resource "aws_sns_topic_subscription" "event_email" {
  for_each = {
    for pair in setproduct(["events", "failed"], var.event_email_subscriptions) : "${pair[0]}:${pair[1]}" => pair
  }

  topic_arn = aws_sns_topic.this[each.value[0]].arn
  protocol  = "email"
  endpoint  = each.value[1]

  lifecycle {
    precondition {
      condition     = var.max_payment_rate <= var.email_max_rate
      error_message = "event_email_subscriptions sends one e-mail per payment: the stack admits ${var.max_payment_rate} payments/s, above email_max_rate (${var.email_max_rate}/s). Read the events queue instead, or lower api_throttle_rate_limit in a low-volume environment."
    }
  }
}
