# -----------------------------------------------------------------------------
# The twelve functions share one package; this table is the only place their
# shape differs (docs/interfaces.md "Lambda package").
# -----------------------------------------------------------------------------
locals {
  # Powertools' service name: the `service` key of every log line and the `service` dimension of the
  # PaymentPlatform metrics (the PaymentParked alarm watches the retry consumer's).
  service_names = { for role in keys(local.functions) : role => "payment-${role}" }

  functions = {
    intake       = { handler = "payments.handlers.intake.handler", memory = 512, timeout = 10, description = "POST /transactions and /validate: validate, store PENDING, start the workflow" }
    status       = { handler = "payments.handlers.status.handler", memory = 512, timeout = 10, description = "GET /transactions/{id} and /status/{id}" }
    validator    = { handler = "payments.handlers.validator.handler", memory = 512, timeout = 15, description = "Workflow step: PENDING -> VALIDATING and business validation" }
    fraud-check  = { handler = "payments.handlers.fraud_check.handler", memory = 512, timeout = 15, description = "Workflow step: rule-based risk score" }
    settlement   = { handler = "payments.handlers.settlement.handler", memory = 512, timeout = 20, description = "Workflow step: processor call, COMPLETED + archive or REJECTED" }
    notification = { handler = "payments.handlers.notification.handler", memory = 512, timeout = 15, description = "Workflow step: outcome/reject/failure events" }
    retry        = { handler = "payments.handlers.retry.handler", memory = 512, timeout = 60, description = "Consumer of failed-transactions: resumes failed transactions" }
    health       = { handler = "payments.handlers.health.handler", memory = 512, timeout = 15, description = "GET /health: tables, queues, DLQ and alarm state" }
    report       = { handler = "payments.handlers.report.handler", memory = 1024, timeout = 300, description = "02:00 UTC daily report (by-day index)" }
    cleanup      = { handler = "payments.handlers.cleanup.handler", memory = 1024, timeout = 900, description = "03:00 UTC archive-then-delete of old transactions" }
    authorizer   = { handler = "payments.handlers.authorizer.handler", memory = 512, timeout = 5, description = "API Gateway REQUEST authorizer: client secret -> principal and merchant scope" }
    sweeper      = { handler = "payments.handlers.sweeper.handler", memory = 512, timeout = 120, description = "Every 5 minutes: transactions stuck past the workflow budget back to the failed path" }
  }

  function_names = { for role in keys(local.functions) : role => "payment-${role}-${var.suffix}" }

  # No reservation unless asked for: a new account's concurrency quota is small
  # and AWS keeps 100 unreserved, so reserving by default makes
  # PutFunctionConcurrency fail on such accounts (production values:
  # examples/production.tfvars). -1 is the provider's "unreserved".
  reserved_concurrency = { for role in keys(local.functions) : role => lookup(var.reserved_concurrency, role, -1) }
  reserved_total       = sum(concat([0], values(var.reserved_concurrency)))
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

# -----------------------------------------------------------------------------
# Log groups exist before the functions so Lambda never creates an
# unencrypted, never-expiring group on first invocation.
# -----------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338: operational function logs are kept 30 days by default (var.log_retention_days); the security-relevant API, WAF and workflow logs keep 365
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116: a Lambda DLQ covers asynchronous invocations only; the API, workflow and queue functions are invoked synchronously, and the two Scheduler-invoked (asynchronous) jobs have an event-invoke config instead: no automatic retries, on-failure destination = the alerts topic
  #checkov:skip=CKV_AWS_272: no AWS Signer profile in scope; the package is built reproducibly by devkit build and pinned by source_code_hash
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = each.value.description
  role             = aws_iam_role.this[each.key].arn
  handler          = each.value.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  memory_size      = max(var.memory_size, each.value.memory)
  timeout          = each.value.timeout
  filename         = var.package_path
  source_code_hash = var.package_hash
  kms_key_arn      = var.env_kms_key_arn

  reserved_concurrent_executions = local.reserved_concurrency[each.key]

  environment {
    variables = merge(var.environment, {
      POWERTOOLS_SERVICE_NAME = local.service_names[each.key]
    })
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = var.security_group_ids
  }

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.this[each.key].name
    application_log_level = var.application_log_level
    system_log_level      = "WARN"
  }

  # The role's inline policy must exist before the first invocation and the
  # log group before the first log line.
  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
    aws_iam_role_policy.vpc_access,
  ]

  lifecycle {
    # AWS refuses a reservation that leaves fewer than 100 unreserved
    # executions in the account (Lambda quotas): fail at plan time instead.
    precondition {
      condition     = var.account_concurrency_limit == null || local.reserved_total + 100 <= coalesce(var.account_concurrency_limit, 0)
      error_message = "reserved_concurrency reserves ${local.reserved_total} executions in total, but the account's concurrency limit is ${coalesce(var.account_concurrency_limit, 0)} and AWS keeps 100 unreserved: the total plus 100 must not exceed account_concurrency_limit (raise the quota or reserve less)."
    }
  }
}

# -----------------------------------------------------------------------------
# The scheduled jobs are invoked asynchronously (EventBridge Scheduler), so a
# function error is Lambda's to handle: by default it retries twice and then
# drops the event silently (the scheduler's DLQ sees delivery failures only).
# No automatic retry — a cleanup that failed half-way is finished by its next
# run or by hand, and a report is rerun deliberately (docs/runbooks.md) — and
# every failed or expired invocation goes to the alerts topic, which pages.
# -----------------------------------------------------------------------------
resource "aws_lambda_function_event_invoke_config" "scheduled" {
  for_each = toset(["report", "cleanup", "sweeper"])

  function_name                = aws_lambda_function.this[each.key].function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = var.job_failure_topic_arn
    }
  }
}

# -----------------------------------------------------------------------------
# failed-transactions -> retry. Partial batch responses so one bad message
# does not send its nine neighbours back to the queue.
# -----------------------------------------------------------------------------
resource "aws_lambda_event_source_mapping" "retry" {
  event_source_arn        = var.failed_queue_arn
  function_name           = aws_lambda_function.this["retry"].arn
  batch_size              = var.retry_batch_size
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = true
}
