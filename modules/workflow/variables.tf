variable "suffix" {
  description = "Environment suffix appended to every name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.suffix))
    error_message = "suffix must be 1-20 lowercase letters, digits or hyphens."
  }
}

variable "type" {
  description = "STANDARD (exactly-once, 2,000 StartExecution/s soft quota in the largest regions) or EXPRESS (at-least-once, 100,000/s); see docs/capacity.md."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "EXPRESS"], var.type)
    error_message = "type must be STANDARD or EXPRESS."
  }
}

variable "function_arns" {
  description = "Function ARNs keyed by role; the workflow invokes validator, fraud-check, settlement and notification."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["validator", "fraud-check", "settlement", "notification"] : contains(keys(var.function_arns), k)])
    error_message = "function_arns needs validator, fraud-check, settlement and notification."
  }
}

variable "log_retention_days" {
  description = "Retention of the execution log group (security-relevant: a year by default, PCI DSS 10.5.1)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "logs_kms_key_arn" {
  description = "CMK that encrypts the execution log group."
  type        = string
}

variable "kms_key_arn" {
  description = "CMK that encrypts the state machine definition and execution data (when kms_encryption_enabled)."
  type        = string
  default     = null
}

variable "kms_encryption_enabled" {
  description = "Encrypt with kms_key_arn instead of the AWS-owned key (a plain bool: the key ARN is unknown until apply)."
  type        = bool
  default     = true

  validation {
    condition     = !var.kms_encryption_enabled || var.kms_key_arn != null
    error_message = "kms_encryption_enabled needs kms_key_arn."
  }
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long Step Functions reuses a data key before calling KMS again (60-900 s); longer means fewer KMS requests."
  type        = number
  default     = 300

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 900
    error_message = "kms_data_key_reuse_period_seconds must be between 60 and 900."
  }
}

variable "timeout_seconds" {
  description = "Workflow-wide TimeoutSeconds. Null (the default) computes it from the step functions' timeouts, retries and back-off (the worst case plus transition_allowance_seconds); a value below that worst case is refused."
  type        = number
  default     = null

  validation {
    condition     = var.timeout_seconds == null || try(var.timeout_seconds >= 1 && var.timeout_seconds <= 31536000, false)
    error_message = "timeout_seconds must be null or between 1 and 31536000 (a year, the STANDARD maximum)."
  }
}

variable "retry_max_attempts" {
  description = "Retries of every task."
  type        = number
  default     = 3

  validation {
    condition     = var.retry_max_attempts >= 0 && var.retry_max_attempts <= 10
    error_message = "retry_max_attempts must be between 0 and 10."
  }
}

variable "function_timeouts" {
  description = "Timeout (seconds) of each step function, keyed by role (validator, fraud-check, settlement, notification): the task ceilings and the execution budget are derived from them."
  type        = map(number)

  validation {
    condition     = alltrue([for k in ["validator", "fraud-check", "settlement", "notification"] : contains(keys(var.function_timeouts), k)])
    error_message = "function_timeouts needs validator, fraud-check, settlement and notification."
  }
}

variable "task_timeout_margin_seconds" {
  description = "Seconds a task's TimeoutSeconds exceeds its function's timeout, so the function's own time-out (a clean, retried error) normally fires first."
  type        = number
  default     = 2

  validation {
    condition     = var.task_timeout_margin_seconds >= 1 && var.task_timeout_margin_seconds <= 30
    error_message = "task_timeout_margin_seconds must be between 1 and 30."
  }
}

variable "transition_allowance_seconds" {
  description = "Seconds added to the worst task path for state transitions and Lambda cold starts when the execution budget is computed."
  type        = number
  default     = 10

  validation {
    condition     = var.transition_allowance_seconds >= 0 && var.transition_allowance_seconds <= 120
    error_message = "transition_allowance_seconds must be between 0 and 120."
  }
}

variable "failed_queue_arn" {
  description = "failed-transactions queue: the safety-net rule sends timed-out, aborted and failed executions there."
  type        = string
}
