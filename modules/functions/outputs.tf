output "function_names" {
  description = "Function names keyed by role."
  value       = { for role, f in aws_lambda_function.this : role => f.function_name }
}

output "function_arns" {
  description = "Function ARNs keyed by role."
  value       = { for role, f in aws_lambda_function.this : role => f.arn }
}

output "invoke_arns" {
  description = "API Gateway invoke ARNs keyed by role."
  value       = { for role, f in aws_lambda_function.this : role => f.invoke_arn }
}

output "role_arns" {
  description = "Execution role ARNs keyed by role."
  value       = { for role, r in aws_iam_role.this : role => r.arn }
}

output "role_names" {
  description = "Execution role names keyed by role."
  value       = { for role, r in aws_iam_role.this : role => r.name }
}

output "log_group_names" {
  description = "Log group names keyed by role."
  value       = { for role, g in aws_cloudwatch_log_group.this : role => g.name }
}

output "log_group_arns" {
  description = "Log group ARNs keyed by role."
  value       = { for role, g in aws_cloudwatch_log_group.this : role => g.arn }
}

output "policy_actions" {
  description = "IAM actions granted to each role by its least-privilege policy (for reviews and the IAM-vs-code test)."
  value       = { for role, statements in local.policy_statements : role => sort(distinct(flatten([for s in values(statements) : s.actions]))) }
}

output "service_names" {
  description = "Powertools service name (POWERTOOLS_SERVICE_NAME, the `service` metric dimension) keyed by role."
  value       = local.service_names
}

output "timeouts" {
  description = "Function timeouts (seconds) keyed by role; the workflow derives its task ceilings and execution budget from them."
  value       = { for role, f in local.functions : role => f.timeout }
}

output "reserved_concurrency" {
  description = "Reserved concurrent executions per role (-1: not reserved)."
  value       = local.reserved_concurrency
}
