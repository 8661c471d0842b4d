variable "suffix" {
  description = "Environment suffix appended to every name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.suffix))
    error_message = "suffix must be 1-20 lowercase letters, digits or hyphens."
  }
}

variable "region" {
  description = "Region of the platform (dashboard widgets and console links)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "alerts_topic_arn" {
  description = "SNS topic every alarm notifies (alarm and OK)."
  type        = string
}

variable "function_names" {
  description = "Function names keyed by role."
  type        = map(string)
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the functions' own metrics (POWERTOOLS_METRICS_NAMESPACE)."
  type        = string
}

variable "service_names" {
  description = "Powertools service name (the `service` dimension of the functions' own metrics) keyed by role."
  type        = map(string)
}

variable "api_name" {
  description = "REST API name (ApiName dimension)."
  type        = string
}

variable "api_stage_name" {
  description = "Stage name (Stage dimension)."
  type        = string
  default     = "prod"
}

variable "table_names" {
  description = "DynamoDB table names keyed by use (transactions, audit, idempotency)."
  type        = map(string)
}

variable "queue_names" {
  description = "SQS queue names keyed by use: failed, dlq, audit, scheduler_dlq."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["failed", "dlq", "audit", "scheduler_dlq"] : contains(keys(var.queue_names), k)])
    error_message = "queue_names needs failed, dlq, audit and scheduler_dlq."
  }
}

variable "queue_urls" {
  description = "Optional SQS queue URLs keyed like queue_names, for extra on-call links (the DLQ link comes from dlq_url)."
  type        = map(string)
  default     = {}
}

variable "dlq_url" {
  description = "URL of failed-transactions-dlq-<suffix> (on-call link)."
  type        = string
}

variable "state_machine_arn" {
  description = "ARN of the payment workflow."
  type        = string
}

variable "state_machine_name" {
  description = "Name of the payment workflow."
  type        = string
}

variable "log_group_names" {
  description = "Log groups to link for on-call, keyed by what they hold."
  type        = map(string)
  default     = {}
}

variable "xray_kms_key_arn" {
  description = "CMK for X-Ray trace encryption (used when manage_xray_encryption is true)."
  type        = string
  default     = null
}

variable "enable_xray_resources" {
  description = "Create the X-Ray sampling rule, group and encryption config (off only where the X-Ray control plane does not exist, e.g. LocalStack's free edition)."
  type        = bool
  default     = true
}

variable "manage_xray_encryption" {
  description = "X-Ray encryption is one account-and-region-wide setting: manage it from one stack only."
  type        = bool
  default     = true

  validation {
    condition     = !var.manage_xray_encryption || var.xray_kms_key_arn != null
    error_message = "manage_xray_encryption needs xray_kms_key_arn."
  }
}

variable "sampling_rate" {
  description = "Fixed X-Ray sampling rate after the reservoir (0-1)."
  type        = number
  default     = 0.1

  validation {
    condition     = var.sampling_rate >= 0 && var.sampling_rate <= 1
    error_message = "sampling_rate must be between 0 and 1."
  }
}

variable "lambda_error_rate_threshold" {
  description = "Per-function error rate (%) above which the error-rate alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.lambda_error_rate_threshold > 0 && var.lambda_error_rate_threshold <= 100
    error_message = "lambda_error_rate_threshold is a percentage in (0, 100]."
  }
}

variable "api_4xx_rate_threshold" {
  description = "API 4XX rate (%) above which the alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.api_4xx_rate_threshold > 0 && var.api_4xx_rate_threshold <= 100
    error_message = "api_4xx_rate_threshold is a percentage in (0, 100]."
  }
}

variable "api_latency_threshold_ms" {
  description = "Average API latency (ms over 5 minutes) above which the alarm fires."
  type        = number
  default     = 1000

  validation {
    condition     = var.api_latency_threshold_ms > 0
    error_message = "api_latency_threshold_ms must be positive."
  }
}

variable "dynamodb_throttle_threshold" {
  description = "Throttled read+write events per table in 5 minutes above which the alarm fires."
  type        = number
  default     = 10

  validation {
    condition     = var.dynamodb_throttle_threshold >= 0
    error_message = "dynamodb_throttle_threshold must not be negative."
  }
}

variable "dlq_max_age_seconds" {
  description = "Age (s) of the oldest DLQ message above which the age alarm fires."
  type        = number
  default     = 3600

  validation {
    condition     = var.dlq_max_age_seconds >= 60
    error_message = "dlq_max_age_seconds must be at least 60."
  }
}
