output "audit_queue_url" {
  description = "URL of the audit stream FIFO queue (transaction-queue-<suffix>.fifo)."
  value       = aws_sqs_queue.audit.url
}

output "audit_queue_arn" {
  description = "ARN of the audit stream FIFO queue."
  value       = aws_sqs_queue.audit.arn
}

output "audit_queue_name" {
  description = "Name of the audit stream FIFO queue."
  value       = aws_sqs_queue.audit.name
}

output "failed_queue_url" {
  description = "URL of the failed-transactions queue (consumed by the retry function)."
  value       = aws_sqs_queue.failed.url
}

output "failed_queue_arn" {
  description = "ARN of the failed-transactions queue."
  value       = aws_sqs_queue.failed.arn
}

output "failed_queue_name" {
  description = "Name of the failed-transactions queue."
  value       = aws_sqs_queue.failed.name
}

output "dlq_url" {
  description = "URL of the failed-transactions dead-letter queue (`ops redrive` drains it)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the failed-transactions dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the failed-transactions dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "queue_arns" {
  description = "Queue ARNs by key (audit, failed, dlq, events)."
  value = {
    audit  = aws_sqs_queue.audit.arn
    failed = aws_sqs_queue.failed.arn
    dlq    = aws_sqs_queue.dlq.arn
    events = aws_sqs_queue.events.arn
  }
}

output "topic_arns" {
  description = "SNS topic ARNs by key (alerts, events, failed)."
  value       = { for key, topic in aws_sns_topic.this : key => topic.arn }
}

output "topic_names" {
  description = "SNS topic names by key (alerts, events, failed)."
  value       = { for key, topic in aws_sns_topic.this : key => topic.name }
}

output "events_queue_url" {
  description = "URL of the payment event stream (payment-events and payment-failed messages, SNS envelope) that downstream consumers read."
  value       = aws_sqs_queue.events.url
}

output "events_queue_arn" {
  description = "ARN of the payment event stream queue."
  value       = aws_sqs_queue.events.arn
}

output "alert_subscription_arns" {
  description = "Alerts topic subscriptions by protocol:endpoint (\"pending confirmation\" until an HTTPS or e-mail endpoint confirms)."
  value       = { for key, sub in aws_sns_topic_subscription.alerts : key => sub.arn }
}
