# -----------------------------------------------------------------------------
# Safety net: an execution that ends TIMED_OUT, ABORTED or FAILED reaches the
# failed-transactions queue, whatever state its transaction was left in.
#
# Caught task time-outs send a transaction through RecordFailure; this rule
# covers what the definition cannot catch (an execution-level time-out, a
# StopExecution, RecordFailure itself failing). Step Functions emits these
# events for STANDARD workflows; EXPRESS relies on the budget in main.tf.
#
# The message is what the retry consumer reads (docs/interfaces.md): the
# execution name is the transaction id (intake starts the execution with
# name = transaction_id). There is no "timestamp": the execution input is only
# an escaped JSON string in the event, so the consumer looks the item up by id.
# Delivery is at least once, and for a FAILED execution that went through
# RecordFailure the message repeats the one RecordFailure sent; the consumer
# acks a final transaction and resumes a FAILED one, so a repeat is harmless.
# -----------------------------------------------------------------------------
locals {
  stranded_rule_name = "payment-workflow-stranded-${var.suffix}"
}

resource "aws_cloudwatch_event_rule" "stranded" {
  name        = local.stranded_rule_name
  description = "Executions of ${local.name} that timed out, were aborted or failed -> failed-transactions"

  event_pattern = jsonencode({
    source        = ["aws.states"]
    "detail-type" = ["Step Functions Execution Status Change"]
    detail = {
      stateMachineArn = [local.state_machine_arn]
      status          = ["FAILED", "TIMED_OUT", "ABORTED"]
    }
  })
}

resource "aws_cloudwatch_event_target" "stranded" {
  rule      = aws_cloudwatch_event_rule.stranded.name
  target_id = "failed-transactions"
  arn       = var.failed_queue_arn

  # Placeholders outside quotes are inserted as JSON values (strings quoted and
  # escaped by EventBridge).
  input_transformer {
    input_paths = {
      name   = "$.detail.name"
      arn    = "$.detail.executionArn"
      status = "$.detail.status"
      time   = "$.time"
    }
    input_template = "{\"transaction_id\": <name>, \"source\": \"workflow-safety-net\", \"execution_status\": <status>, \"execution_arn\": <arn>, \"failed_at\": <time>}"
  }

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
}
