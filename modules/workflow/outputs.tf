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
