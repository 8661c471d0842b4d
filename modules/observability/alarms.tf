# -----------------------------------------------------------------------------
# Alarms: every one notifies the alerts topic on ALARM and OK, and treats
# missing data as fine (no traffic is not an incident).
# -----------------------------------------------------------------------------
locals {
  period = 300

  api_dimensions = { ApiName = var.api_name, Stage = var.api_stage_name }
  sfn_dimensions = { StateMachineArn = var.state_machine_arn }

  # Single-metric alarms, keyed by the <thing> in payment-<thing>-<suffix>.
  metric_alarms = merge(
    {
      for role, name in var.function_names : "${role}-errors" => {
        description = "${name} raised at least one error in 5 minutes"
        namespace   = "AWS/Lambda"
        metric      = "Errors"
        dimensions  = { FunctionName = name }
        statistic   = "Sum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
    },
    {
      api-5xx = {
        description = "The API answered at least one 5XX in 5 minutes"
        namespace   = "AWS/ApiGateway"
        metric      = "5XXError"
        dimensions  = local.api_dimensions
        statistic   = "Sum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
      api-latency = {
        description = "Average API latency above ${var.api_latency_threshold_ms} ms over 5 minutes"
        namespace   = "AWS/ApiGateway"
        metric      = "Latency"
        dimensions  = local.api_dimensions
        statistic   = "Average"
        comparison  = "GreaterThanThreshold"
        threshold   = var.api_latency_threshold_ms
      }
      dlq-messages = {
        description = "Failed transactions exhausted their retries and wait in the DLQ: run `ops redrive` after fixing the cause"
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = var.queue_names["dlq"] }
        statistic   = "Maximum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
      dlq-age = {
        description = "The oldest DLQ message is older than ${var.dlq_max_age_seconds} s"
        namespace   = "AWS/SQS"
        metric      = "ApproximateAgeOfOldestMessage"
        dimensions  = { QueueName = var.queue_names["dlq"] }
        statistic   = "Maximum"
        comparison  = "GreaterThanThreshold"
        threshold   = var.dlq_max_age_seconds
      }
      scheduler-dlq-messages = {
        description = "A scheduled report or cleanup could not be delivered"
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = { QueueName = var.queue_names["scheduler_dlq"] }
        statistic   = "Maximum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
      workflow-failed = {
        description = "A payment workflow execution failed"
        namespace   = "AWS/States"
        metric      = "ExecutionsFailed"
        dimensions  = local.sfn_dimensions
        statistic   = "Sum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
      payment-parked = {
        description = "A payment's retry budget ran out while a charge may exist: it is parked, with no event, until a human reconciles it with the processor (docs/runbooks.md, parked payments)"
        namespace   = var.metrics_namespace
        metric      = "PaymentParked"
        dimensions  = { service = var.service_names["retry"] }
        statistic   = "Sum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
      workflow-timed-out = {
        description = "A payment workflow execution timed out"
        namespace   = "AWS/States"
        metric      = "ExecutionsTimedOut"
        dimensions  = local.sfn_dimensions
        statistic   = "Sum"
        comparison  = "GreaterThanOrEqualToThreshold"
        threshold   = 1
      }
    },
  )

  # The payment path: the five functions every payment passes through.
  # Five functions x (errors, invocations) = 10 metrics, the most a
  # metric-math alarm may hold.
  path_functions = {
    for role in ["intake", "validator", "fraud-check", "settlement", "notification"] :
    replace(role, "-", "_") => var.function_names[role] if contains(keys(var.function_names), role)
  }

  # Metric-math alarms. An alarm may hold at most 10 metrics and SEARCH() is
  # not allowed in alarms, so the error rate is one alarm per function
  # (2 metrics each) plus one aggregate over the payment path.
  math_alarms = merge(
    {
      lambda-error-rate = {
        description = "Payment-path Lambda error rate (${join(", ", values(local.path_functions))}) above ${var.lambda_error_rate_threshold} % over 5 minutes"
        expression = format("100 * (%s) / (%s)",
          join(" + ", [for id in keys(local.path_functions) : "FILL(errors_${id}, 0)"]),
          join(" + ", [for id in keys(local.path_functions) : "FILL(invocations_${id}, 0)"]),
        )
        label     = "Payment-path error rate (%)"
        threshold = var.lambda_error_rate_threshold
        metrics = merge(
          { for id, name in local.path_functions : "errors_${id}" => { namespace = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = name } } },
          { for id, name in local.path_functions : "invocations_${id}" => { namespace = "AWS/Lambda", metric = "Invocations", dimensions = { FunctionName = name } } },
        )
      }
    },
    {
      for role, name in var.function_names : "${role}-error-rate" => {
        description = "${name} error rate above ${var.lambda_error_rate_threshold} % over 5 minutes"
        expression  = "100 * errors / invocations"
        label       = "Error rate (%)"
        threshold   = var.lambda_error_rate_threshold
        metrics = {
          errors      = { namespace = "AWS/Lambda", metric = "Errors", dimensions = { FunctionName = name } }
          invocations = { namespace = "AWS/Lambda", metric = "Invocations", dimensions = { FunctionName = name } }
        }
      }
    },
    {
      api-4xx-rate = {
        description = "More than ${var.api_4xx_rate_threshold} % of API requests answered 4XX over 5 minutes"
        expression  = "100 * client_errors / requests"
        label       = "4XX rate (%)"
        threshold   = var.api_4xx_rate_threshold
        metrics = {
          client_errors = { namespace = "AWS/ApiGateway", metric = "4XXError", dimensions = local.api_dimensions }
          requests      = { namespace = "AWS/ApiGateway", metric = "Count", dimensions = local.api_dimensions }
        }
      }
    },
    {
      for use, table in var.table_names : "${use}-throttles" => {
        description = "${table}: more than ${var.dynamodb_throttle_threshold} throttled reads+writes in 5 minutes"
        expression  = "FILL(reads, 0) + FILL(writes, 0)"
        label       = "Throttle events"
        threshold   = var.dynamodb_throttle_threshold
        metrics = {
          reads  = { namespace = "AWS/DynamoDB", metric = "ReadThrottleEvents", dimensions = { TableName = table } }
          writes = { namespace = "AWS/DynamoDB", metric = "WriteThrottleEvents", dimensions = { TableName = table } }
        }
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "metric" {
  for_each = local.metric_alarms

  alarm_name          = "payment-${each.key}-${var.suffix}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = local.period
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "math" {
  for_each = local.math_alarms

  alarm_name          = "payment-${each.key}-${var.suffix}"
  alarm_description   = each.value.description
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]

  metric_query {
    id          = "result"
    expression  = each.value.expression
    label       = each.value.label
    return_data = true
  }

  dynamic "metric_query" {
    for_each = each.value.metrics

    content {
      id          = metric_query.key
      return_data = false

      metric {
        namespace   = metric_query.value.namespace
        metric_name = metric_query.value.metric
        dimensions  = metric_query.value.dimensions
        stat        = "Sum"
        period      = local.period
      }
    }
  }
}

locals {
  alarms = merge(aws_cloudwatch_metric_alarm.metric, aws_cloudwatch_metric_alarm.math)
}
