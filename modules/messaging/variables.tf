variable "suffix" {
  description = "Environment suffix appended to every name (`failed-transactions-<suffix>`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.suffix))
    error_message = "suffix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key that encrypts every queue and topic."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "alert_email" {
  description = "Address subscribed to the alerts topic (alarms, health). AWS sends a confirmation mail first."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an email address."
  }
}

variable "notification_email" {
  description = "Address subscribed to the payment events and payment failed topics."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an email address."
  }
}

variable "publisher_role_arns" {
  description = "IAM role ARNs allowed to publish to the topics (the platform's functions). When set, every other principal except CloudWatch alarms is denied sns:Publish."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.publisher_role_arns : can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/", arn))])
    error_message = "publisher_role_arns must contain IAM role ARNs."
  }
}

variable "message_retention_seconds" {
  description = "Retention of every queue (SQS maximum 14 days = 1209600 s, so a weekend outage loses nothing)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "failed_visibility_timeout_seconds" {
  description = "Visibility timeout of the failed-transactions queue; AWS recommends 6 x the consumer's timeout (retry function: 60 s)."
  type        = number
  default     = 360

  validation {
    condition     = var.failed_visibility_timeout_seconds >= 0 && var.failed_visibility_timeout_seconds <= 43200
    error_message = "failed_visibility_timeout_seconds must be between 0 and 43200."
  }
}

variable "max_receive_count" {
  description = "Receives of a failed transaction before SQS moves it to the DLQ."
  type        = number
  default     = 3

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number between 1 and 1000."
  }
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long SQS reuses a data key before calling KMS again; longer means fewer KMS requests at high throughput."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 86400
    error_message = "kms_data_key_reuse_period_seconds must be between 60 and 86400."
  }
}

variable "eventbridge_rule_arns" {
  description = "EventBridge rules allowed to send to failed-transactions (the workflow's safety net), by aws:SourceArn."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.eventbridge_rule_arns : can(regex("^arn:[a-z-]+:events:[a-z0-9-]+:[0-9]{12}:rule/", arn))])
    error_message = "eventbridge_rule_arns must contain EventBridge rule ARNs."
  }
}
