output "bucket_name" {
  description = "Name of the archive bucket."
  value       = aws_s3_bucket.archive.id
}

output "bucket_arn" {
  description = "ARN of the archive bucket."
  value       = aws_s3_bucket.archive.arn
}

output "parameter_names" {
  description = "SSM parameter names by key (processor_endpoint, processor_credentials, fraud_rules)."
  value = {
    processor_endpoint    = aws_ssm_parameter.processor_endpoint.name
    processor_credentials = aws_ssm_parameter.processor_credentials.name
    fraud_rules           = aws_ssm_parameter.fraud_rules.name
  }
}

output "parameter_arns" {
  description = "SSM parameter ARNs by key (processor_endpoint, processor_credentials, fraud_rules)."
  value = {
    processor_endpoint    = aws_ssm_parameter.processor_endpoint.arn
    processor_credentials = aws_ssm_parameter.processor_credentials.arn
    fraud_rules           = aws_ssm_parameter.fraud_rules.arn
  }
}
