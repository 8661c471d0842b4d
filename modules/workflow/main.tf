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

  # Every task: 3 retries, 2 s, x2.0 (SPEC §3). States.ALL never matches
  # States.Runtime, so malformed state is not retried.
  retry = [{
    ErrorEquals     = ["States.ALL"]
    IntervalSeconds = 2
    MaxAttempts     = var.retry_max_attempts
    BackoffRate     = 2.0
  }]

  catch = [{
    ErrorEquals = ["States.ALL"]
    ResultPath  = "$.error"
    Next        = "RecordFailure"
  }]

  definition = templatefile("${path.module}/definition.asl.json.tftpl", {
    partition        = data.aws_partition.current.partition
    timeout_seconds  = var.timeout_seconds
    validator_arn    = local.step_function_arns["validator"]
    fraud_check_arn  = local.step_function_arns["fraud-check"]
    settlement_arn   = local.step_function_arns["settlement"]
    notification_arn = local.step_function_arns["notification"]
    retry            = jsonencode(local.retry)
    catch            = jsonencode(local.catch)
    # Per-task ceilings a little above each function's own timeout.
    task_timeouts = {
      validator    = 20
      fraud_check  = 20
      settlement   = 35
      notification = 20
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
  }

  depends_on = [aws_iam_role_policy.this]
}
