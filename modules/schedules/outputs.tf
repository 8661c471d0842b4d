output "schedule_names" {
  description = "Schedule names keyed by job (report, cleanup, sweeper)."
  value       = { for k, s in aws_scheduler_schedule.this : k => s.name }
}

output "schedule_arns" {
  description = "Schedule ARNs keyed by job."
  value       = { for k, s in aws_scheduler_schedule.this : k => s.arn }
}

output "group_name" {
  description = "Schedule group."
  value       = aws_scheduler_schedule_group.this.name
}

output "role_arns" {
  description = "Scheduler execution roles keyed by job."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}

output "dlq_url" {
  description = "URL of payment-scheduler-dlq-<suffix>."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the scheduler DLQ."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the scheduler DLQ."
  value       = aws_sqs_queue.dlq.name
}
