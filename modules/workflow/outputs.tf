output "state_machine_arn" {
  description = "ARN of payment-workflow-<suffix>."
  value       = aws_sfn_state_machine.this.arn
}

output "state_machine_name" {
  description = "Name of the state machine."
  value       = aws_sfn_state_machine.this.name
}

output "role_arn" {
  description = "Execution role of the state machine."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Execution log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the execution log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "definition" {
  description = "Rendered Amazon States Language definition."
  value       = local.definition
}

output "timeout_seconds" {
  description = "TimeoutSeconds of the state machine (the execution budget)."
  value       = local.timeout_seconds
}

output "task_timeouts" {
  description = "TimeoutSeconds of each step's task, keyed by function role."
  value       = local.task_timeouts
}

output "worst_path_seconds" {
  description = "Worst case of the longest route: task ceilings x attempts + back-off waits."
  value       = local.worst_path_seconds
}

output "stranded_rule_name" {
  description = "EventBridge rule that sends timed-out, aborted and failed executions to failed-transactions."
  value       = aws_cloudwatch_event_rule.stranded.name
}

output "stranded_rule_arn" {
  description = "ARN of the safety-net rule."
  value       = aws_cloudwatch_event_rule.stranded.arn
}
