output "web_acl_arn" {
  description = "ARN of the web ACL."
  value       = aws_wafv2_web_acl.this.arn
}

output "web_acl_id" {
  description = "Id of the web ACL."
  value       = aws_wafv2_web_acl.this.id
}

output "web_acl_name" {
  description = "Name of the web ACL (CloudWatch WebACL dimension)."
  value       = aws_wafv2_web_acl.this.name
}

output "log_group_name" {
  description = "WAF log group (aws-waf-logs-payment-<suffix>)."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the WAF log group."
  value       = aws_cloudwatch_log_group.this.arn
}
