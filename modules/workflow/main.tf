data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = "payment-workflow-${var.suffix}"
  # Built from the name (as the root does) so IAM/KMS conditions need no
  # reference to the state machine itself.
  state_machine_arn = "arn:${data.aws_partition.current.partition}:states:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:stateMachine:${local.name}"

  step_roles = ["validator", "fraud-check", "settlement", "notification"]

  # The definition names the functions by ARNs built from their names, so it
  # is known at plan time (reviewable in the plan, testable); the
  # precondition below proves they are the ARNs the functions module made.
  step_function_arns = {
    for role in local.step_roles :
    role => "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:function:payment-${role}-${var.suffix}"
  }

  # Every task: 3 retries, 2 s, x2.0. States.ALL never matches States.Runtime,
  # so malformed state is not retried.
  retry_interval_seconds = 2
  retry_backoff_rate     = 2.0
  retry = [{
    ErrorEquals     = ["States.ALL"]
    IntervalSeconds = local.retry_interval_seconds
    MaxAttempts     = var.retry_max_attempts
    BackoffRate     = local.retry_backoff_rate
  }]

  catch = [{
    ErrorEquals = ["States.ALL"]
    ResultPath  = "$.error"
    Next        = "RecordFailure"
  }]

  # Notify runs after the transaction is final (COMPLETED or REJECTED): a failure
  # there strands nothing, and RecordFailure would find nothing to record, so it
  # ends the execution directly (the safety-net rule still sees the FAILED
  # execution and the retry consumer acks a final transaction).
  catch_notify = [{
    ErrorEquals = ["States.ALL"]
    ResultPath  = "$.error"
    Next        = "NotificationFailed"
  }]

  # ---------------------------------------------------------------------------
  # Time budget. An execution-level time-out (States.Timeout of the execution)
  # cannot be caught, so it must never fire before the caught task-level ones:
  # each task's ceiling is a little above its function's own timeout, and the
  # execution budget is the worst path of
  #   ceiling x (1 + retries) + back-off waits
  # summed along the longest route through the definition, plus an allowance
  # for state transitions.
  # ---------------------------------------------------------------------------
  task_timeouts = {
    for role in local.step_roles : role => var.function_timeouts[role] + var.task_timeout_margin_seconds
  }
  retry_wait_seconds = sum(concat([0], [
    for attempt in range(var.retry_max_attempts) : local.retry_interval_seconds * pow(local.retry_backoff_rate, attempt)
  ]))
  task_budget = {
    for role, timeout in local.task_timeouts : role => timeout * (1 + var.retry_max_attempts) + local.retry_wait_seconds
  }
  # Routes: Checks -> RecordFailure; Checks -> Reject -> RecordFailure;
  # Checks -> Settle -> RecordFailure; Checks -> Settle -> Notify (-> Fail).
  # Reject, Notify and RecordFailure are all the notification function.
  checks_budget = max(local.task_budget["validator"], local.task_budget["fraud-check"])
  worst_path_seconds = local.checks_budget + max(
    local.task_budget["notification"],
    local.task_budget["settlement"],
  ) + local.task_budget["notification"]
  execution_budget_seconds = ceil(local.worst_path_seconds + var.transition_allowance_seconds)
  timeout_seconds          = coalesce(var.timeout_seconds, local.execution_budget_seconds)

  definition = templatefile("${path.module}/definition.asl.json.tftpl", {
    partition        = data.aws_partition.current.partition
    timeout_seconds  = local.timeout_seconds
    validator_arn    = local.step_function_arns["validator"]
    fraud_check_arn  = local.step_function_arns["fraud-check"]
    settlement_arn   = local.step_function_arns["settlement"]
    notification_arn = local.step_function_arns["notification"]
    retry            = jsonencode(local.retry)
    catch            = jsonencode(local.catch)
    catch_notify     = jsonencode(local.catch_notify)
    task_timeouts = {
      validator    = local.task_timeouts["validator"]
      fraud_check  = local.task_timeouts["fraud-check"]
      settlement   = local.task_timeouts["settlement"]
      notification = local.task_timeouts["notification"]
    }
  })
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/vendedlogs/states/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_sfn_state_machine" "this" {
  #checkov:skip=CKV_AWS_285: logging is level ALL; include_execution_data stays false so transaction input never reaches the logs (PCI)
  name       = local.name
  type       = var.type
  role_arn   = aws_iam_role.this.arn
  definition = local.definition

  logging_configuration {
    log_destination = "${aws_cloudwatch_log_group.this.arn}:*"
    level           = "ALL"
    # Execution data holds transaction input (customer ids, tokens): PCI keeps
    # it out of logs.
    include_execution_data = false
  }

  tracing_configuration {
    enabled = true
  }

  dynamic "encryption_configuration" {
    for_each = var.kms_encryption_enabled ? ["cmk"] : []

    content {
      type                              = "CUSTOMER_MANAGED_KMS_KEY"
      kms_key_id                        = var.kms_key_arn
      kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for role in local.step_roles : var.function_arns[role] == local.step_function_arns[role]])
      error_message = "function_arns must be the ARNs of payment-<role>-${var.suffix} in this account and region."
    }

    precondition {
      condition     = local.timeout_seconds >= local.worst_path_seconds
      error_message = "timeout_seconds (${local.timeout_seconds}) is below the workflow's worst case (${local.worst_path_seconds} s: task ceilings x attempts + back-off along the longest route); the execution time-out cannot be caught and would strand the transaction."
    }

    precondition {
      condition     = var.type != "EXPRESS" || local.timeout_seconds <= 300
      error_message = "EXPRESS executions end after 300 s, but this workflow needs ${local.timeout_seconds} s: shorten the step functions' timeouts or retries, or use STANDARD."
    }
  }

  depends_on = [aws_iam_role_policy.this]
}
