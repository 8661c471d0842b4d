output "transactions_table_name" {
  description = "Name of the transactions table."
  value       = aws_dynamodb_table.this["transactions"].name
}

output "transactions_table_arn" {
  description = "ARN of the transactions table."
  value       = aws_dynamodb_table.this["transactions"].arn
}

output "audit_table_name" {
  description = "Name of the audit table (one item per state change, TTL 90 days)."
  value       = aws_dynamodb_table.this["audit"].name
}

output "audit_table_arn" {
  description = "ARN of the audit table."
  value       = aws_dynamodb_table.this["audit"].arn
}

output "idempotency_table_name" {
  description = "Name of the idempotency table."
  value       = aws_dynamodb_table.this["idempotency"].name
}

output "idempotency_table_arn" {
  description = "ARN of the idempotency table."
  value       = aws_dynamodb_table.this["idempotency"].arn
}

output "clients_table_name" {
  description = "Name of the API clients table (hashed secrets and merchant scopes)."
  value       = aws_dynamodb_table.this["clients"].name
}

output "clients_table_arn" {
  description = "ARN of the API clients table."
  value       = aws_dynamodb_table.this["clients"].arn
}

output "table_names" {
  description = "Table names by key (transactions, audit, idempotency, clients)."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "table_arns" {
  description = "Table ARNs by key (transactions, audit, idempotency, clients)."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}

output "index_names" {
  description = "GSI names of the transactions table by key (customer, merchant, day)."
  value       = local.index_names
}
