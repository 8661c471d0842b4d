data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  group_name = "payment-${var.suffix}"

  # Payloads per docs/interfaces.md "Scheduled jobs".
  schedules = {
    report = {
      name         = "payment-daily-report-${var.suffix}"
      description  = "Daily transaction report for the previous UTC day"
      expression   = var.report_schedule_expression
      function_arn = var.report_function_arn
      input        = { date = "yesterday", upload = true }
    }
    cleanup = {
      name         = "payment-cleanup-${var.suffix}"
      description  = "Archive then delete transactions older than ${var.cleanup_retention_days} days"
      expression   = var.cleanup_schedule_expression
      function_arn = var.cleanup_function_arn
      input        = { older_than_days = var.cleanup_retention_days, archive = true, dry_run = false, backfill_ttl = false }
    }
    sweeper = {
      name         = "payment-sweeper-${var.suffix}"
      description  = "Return transactions stuck past the workflow budget to the failed path"
      expression   = var.sweeper_schedule_expression
      function_arn = var.sweeper_function_arn
      input        = {}
    }
  }
}

resource "aws_scheduler_schedule_group" "this" {
  name = local.group_name
}

# -----------------------------------------------------------------------------
# Dead-letter queue for deliveries Scheduler gave up on
# -----------------------------------------------------------------------------
resource "aws_sqs_queue" "dlq" {
  name                              = "payment-scheduler-dlq-${var.suffix}"
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "SchedulerRolesSend"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "AWS"
      identifiers = [for r in aws_iam_role.this : r.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

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

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

# -----------------------------------------------------------------------------
# One role per schedule: it may invoke its own function only.
# -----------------------------------------------------------------------------
data "aws_iam_policy_document" "assume" {
  for_each = local.schedules

  statement {
    sid     = "SchedulerAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    # Scheduler presents the schedule group as the source.
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_scheduler_schedule_group.this.arn]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.schedules

  name                  = "${each.value.name}-scheduler"
  description           = "EventBridge Scheduler role of ${each.value.name}"
  assume_role_policy    = data.aws_iam_policy_document.assume[each.key].json
  force_detach_policies = true
}

data "aws_iam_policy_document" "this" {
  for_each = local.schedules

  statement {
    sid       = "InvokeTarget"
    actions   = ["lambda:InvokeFunction"]
    resources = [each.value.function_arn, "${each.value.function_arn}:*"]
  }

  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "DeadLetterKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${data.aws_region.current.name}.amazonaws.com"]
    }
  }

  # The schedule itself is encrypted with kms_key_arn: EventBridge Scheduler
  # decrypts its target input with the execution role at every run (Scheduler
  # user guide, "Encryption at rest"), under the encryption context
  # aws:scheduler:schedule:arn. Without this the run is denied and the job
  # never starts. Scoped to this role's own schedule.
  statement {
    sid       = "ScheduleKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:scheduler:schedule:arn"
      values   = ["arn:${data.aws_partition.current.partition}:scheduler:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:schedule/${local.group_name}/${each.value.name}"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = local.schedules

  name   = "least-privilege"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.this[each.key].json
}

resource "aws_scheduler_schedule" "this" {
  for_each = local.schedules

  name                         = each.value.name
  description                  = each.value.description
  group_name                   = aws_scheduler_schedule_group.this.name
  schedule_expression          = each.value.expression
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = var.kms_key_arn
  state                        = "ENABLED"

  # Batch jobs run at the hour on the dot: the report covers a closed day.
  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = each.value.function_arn
    role_arn = aws_iam_role.this[each.key].arn
    input    = jsonencode(each.value.input)

    retry_policy {
      maximum_retry_attempts       = var.maximum_retry_attempts
      maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }

  depends_on = [aws_iam_role_policy.this, aws_sqs_queue_policy.dlq]
}
