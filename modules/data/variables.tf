variable "suffix" {
  description = "Environment suffix appended to every name (`payment-transactions-<suffix>`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.suffix))
    error_message = "suffix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key that encrypts the tables (and their backups)."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "deletion_protection" {
  description = "Turn on DynamoDB deletion protection (production); off keeps the stack destroyable."
  type        = bool
  default     = false
}

variable "point_in_time_recovery" {
  description = "Continuous backups with point-in-time recovery (35 days) on every table."
  type        = bool
  default     = true
}
