variable "suffix" {
  description = "Environment suffix appended to every name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.suffix))
    error_message = "suffix must be 1-20 lowercase letters, digits or hyphens."
  }
}

variable "report_function_arn" {
  description = "ARN of payment-report-<suffix>."
  type        = string
}

variable "cleanup_function_arn" {
  description = "ARN of payment-cleanup-<suffix>."
  type        = string
}

variable "sweeper_function_arn" {
  description = "ARN of payment-sweeper-<suffix>."
  type        = string
}

variable "sweeper_schedule_expression" {
  description = "How often the sweeper looks for transactions stuck past the workflow budget."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.sweeper_schedule_expression))
    error_message = "sweeper_schedule_expression must be a cron() or rate() expression."
  }
}

variable "report_schedule_expression" {
  description = "When the daily report runs (UTC)."
  type        = string
  default     = "cron(0 2 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.report_schedule_expression))
    error_message = "report_schedule_expression must be a cron(), rate() or at() expression."
  }
}

variable "cleanup_schedule_expression" {
  description = "When the cleanup job runs (UTC)."
  type        = string
  default     = "cron(0 3 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate|at)\\(.+\\)$", var.cleanup_schedule_expression))
    error_message = "cleanup_schedule_expression must be a cron(), rate() or at() expression."
  }
}

variable "cleanup_retention_days" {
  description = "Transactions older than this many days are archived and deleted by the cleanup job."
  type        = number
  default     = 90

  validation {
    condition     = var.cleanup_retention_days >= 1 && floor(var.cleanup_retention_days) == var.cleanup_retention_days
    error_message = "cleanup_retention_days must be a positive whole number."
  }
}

variable "kms_key_arn" {
  description = "CMK that encrypts the schedules' payloads and the scheduler DLQ."
  type        = string
}

variable "maximum_retry_attempts" {
  description = "Delivery retries before an invocation goes to the DLQ."
  type        = number
  default     = 3

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 185
    error_message = "maximum_retry_attempts must be between 0 and 185."
  }
}

variable "maximum_event_age_in_seconds" {
  description = "How long Scheduler keeps retrying one delivery."
  type        = number
  default     = 3600

  validation {
    condition     = var.maximum_event_age_in_seconds >= 60 && var.maximum_event_age_in_seconds <= 86400
    error_message = "maximum_event_age_in_seconds must be between 60 and 86400."
  }
}

variable "dlq_message_retention_seconds" {
  description = "Retention of the scheduler DLQ (14 days by default, SQS's maximum)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}
