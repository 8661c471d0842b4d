output "alarm_names" {
  description = "Alarm names keyed by what they watch (e.g. intake-errors, api-4xx-rate)."
  value       = { for k, a in local.alarms : k => a.alarm_name }
}

output "alarm_arns" {
  description = "Alarm ARNs keyed like alarm_names."
  value       = { for k, a in local.alarms : k => a.arn }
}

output "dashboard_name" {
  description = "Name of the platform dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "xray_group_name" {
  description = "X-Ray group filtering the platform's services (null when enable_xray_resources is false)."
  value       = one(aws_xray_group.this[*].group_name)
}

output "oncall_links" {
  description = "Console URLs for on-call: dashboard, each alarm, each log group, the DLQ(s), the state machine."
  value       = local.oncall_links
}
