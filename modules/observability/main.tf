locals {
  dashboard_name = "payment-platform-${var.suffix}"
  functions      = sort(keys(var.function_names))
  tables         = sort(keys(var.table_names))
  queues         = sort(keys(var.queue_names))

  api_dims = ["ApiName", var.api_name, "Stage", var.api_stage_name]
  sfn_dims = ["StateMachineArn", var.state_machine_arn]

  # One row of the dashboard grid: (x, y, w, h) computed from the order.
  widget_specs = [
    { title = "API requests", stat = "Sum", metrics = [concat(["AWS/ApiGateway", "Count"], local.api_dims)] },
    {
      title = "API latency (ms)", stat = "Average", metrics = [
        concat(["AWS/ApiGateway", "Latency"], local.api_dims, [{ stat = "Average", label = "average" }]),
        concat(["AWS/ApiGateway", "Latency"], local.api_dims, [{ stat = "p99", label = "p99" }]),
        concat(["AWS/ApiGateway", "IntegrationLatency"], local.api_dims, [{ stat = "p99", label = "integration p99" }]),
      ]
    },
    {
      title = "API 4XX / 5XX", stat = "Sum", metrics = [
        concat(["AWS/ApiGateway", "4XXError"], local.api_dims),
        concat(["AWS/ApiGateway", "5XXError"], local.api_dims),
      ]
    },
    { title = "Lambda invocations", stat = "Sum", metrics = [for r in local.functions : ["AWS/Lambda", "Invocations", "FunctionName", var.function_names[r], { label = r }]] },
    { title = "Lambda errors", stat = "Sum", metrics = [for r in local.functions : ["AWS/Lambda", "Errors", "FunctionName", var.function_names[r], { label = r }]] },
    { title = "Lambda duration p99 (ms)", stat = "p99", metrics = [for r in local.functions : ["AWS/Lambda", "Duration", "FunctionName", var.function_names[r], { label = r }]] },
    { title = "Lambda throttles", stat = "Sum", metrics = [for r in local.functions : ["AWS/Lambda", "Throttles", "FunctionName", var.function_names[r], { label = r }]] },
    { title = "Lambda concurrency (max)", stat = "Maximum", metrics = [for r in local.functions : ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", var.function_names[r], { label = r }]] },
    {
      title = "DynamoDB consumed capacity", stat = "Sum", metrics = flatten([for t in local.tables : [
        ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", var.table_names[t], { label = "${t} WCU" }],
        ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", var.table_names[t], { label = "${t} RCU" }],
      ]])
    },
    {
      title = "DynamoDB throttles", stat = "Sum", metrics = flatten([for t in local.tables : [
        ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", var.table_names[t], { label = "${t} writes" }],
        ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", var.table_names[t], { label = "${t} reads" }],
      ]])
    },
    { title = "SQS depth (visible)", stat = "Maximum", metrics = [for q in local.queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.queue_names[q], { label = q }]] },
    {
      title = "DLQ oldest message (s)", stat = "Maximum", metrics = [
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_names["dlq"], { label = "dlq" }],
        ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_names["scheduler_dlq"], { label = "scheduler dlq" }],
      ]
    },
    { title = "Workflow outcomes", stat = "Sum", metrics = [for m in ["ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionThrottled"] : concat(["AWS/States", m], local.sfn_dims)] },
    { title = "Workflow duration p99 (ms)", stat = "p99", metrics = [concat(["AWS/States", "ExecutionTime"], local.sfn_dims)] },
  ]

  metric_widgets = [
    for i, w in local.widget_specs : {
      type   = "metric"
      x      = (i % 3) * 8
      y      = floor(i / 3) * 6
      width  = 8
      height = 6
      properties = {
        title   = w.title
        region  = var.region
        view    = "timeSeries"
        stacked = false
        stat    = w.stat
        period  = 60
        metrics = w.metrics
      }
    }
  ]

  alarm_widget = {
    type   = "alarm"
    x      = 0
    y      = ceil(length(local.widget_specs) / 3) * 6
    width  = 24
    height = 6
    properties = {
      title  = "Alarms"
      alarms = sort([for a in values(local.alarms) : a.arn])
    }
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = concat(local.metric_widgets, [local.alarm_widget]) })
}

# -----------------------------------------------------------------------------
# X-Ray
# -----------------------------------------------------------------------------
resource "aws_xray_sampling_rule" "this" {
  count = var.enable_xray_resources ? 1 : 0

  rule_name      = "payment-${var.suffix}"
  priority       = 1000
  version        = 1
  reservoir_size = 1
  fixed_rate     = var.sampling_rate
  service_name   = "payment-*"
  service_type   = "*"
  host           = "*"
  http_method    = "*"
  url_path       = "*"
  resource_arn   = "*"
}

resource "aws_xray_group" "this" {
  count = var.enable_xray_resources ? 1 : 0

  group_name = "payment-${var.suffix}"
  filter_expression = join(" OR ", concat(
    [for r in local.functions : "service(\"${var.function_names[r]}\")"],
    ["service(\"${var.api_name}/${var.api_stage_name}\")", "service(\"${var.state_machine_name}\")"],
  ))

  insights_configuration {
    insights_enabled      = true
    notifications_enabled = false
  }
}

resource "aws_xray_encryption_config" "this" {
  count = var.enable_xray_resources && var.manage_xray_encryption ? 1 : 0

  type   = "KMS"
  key_id = var.xray_kms_key_arn
}

# The sampling rule and group are counted by enable_xray_resources; state that
# records them without an index is mapped to instance 0 (CHANGELOG.md).
moved {
  from = aws_xray_sampling_rule.this
  to   = aws_xray_sampling_rule.this[0]
}

moved {
  from = aws_xray_group.this
  to   = aws_xray_group.this[0]
}

# -----------------------------------------------------------------------------
# On-call links (AWS console URLs for the region)
# -----------------------------------------------------------------------------
locals {
  console    = "https://${var.region}.console.aws.amazon.com"
  cloudwatch = "${local.console}/cloudwatch/home?region=${var.region}"
  # The console double-encodes log group names inside its fragment ("/" -> "$252F").
  log_link = { for name in values(var.log_group_names) : name => "${local.cloudwatch}#logsV2:log-groups/log-group/${replace(urlencode(name), "%", "$25")}" }
  sqs_link = { for k, url in merge(var.queue_urls, { dlq = var.dlq_url }) : k => "${local.console}/sqs/v3/home?region=${var.region}#/queues/${urlencode(url)}" }

  oncall_links = {
    dashboard = "${local.cloudwatch}#dashboards/dashboard/${local.dashboard_name}"
    alarms    = { for a in values(local.alarms) : a.alarm_name => "${local.cloudwatch}#alarmsV2:alarm/${urlencode(a.alarm_name)}" }
    logs      = local.log_link
    queues    = local.sqs_link
    workflow = {
      state_machine = "${local.console}/states/home?region=${var.region}#/statemachines/view/${urlencode(var.state_machine_arn)}"
    }
  }
}
