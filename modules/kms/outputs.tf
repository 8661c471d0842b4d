output "key_arns" {
  description = "Key ARNs by use (data, messaging, logs)."
  value       = { for use, key in aws_kms_key.this : use => key.arn }
}

output "key_ids" {
  description = "Key ids by use (data, messaging, logs)."
  value       = { for use, key in aws_kms_key.this : use => key.key_id }
}

output "alias_names" {
  description = "Alias names by use, e.g. alias/payment-data-<suffix>."
  value       = { for use, alias in aws_kms_alias.this : use => alias.name }
}

output "alias_arns" {
  description = "Alias ARNs by use."
  value       = { for use, alias in aws_kms_alias.this : use => alias.arn }
}
