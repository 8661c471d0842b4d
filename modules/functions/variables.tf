variable "suffix" {
  description = "Environment suffix appended to every name (payment-<role>-<suffix>)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.suffix))
    error_message = "suffix must be 1-20 lowercase letters, digits or hyphens."
  }
}

variable "package_path" {
  description = "Path of the one deployment zip shared by all functions (built reproducibly by `devkit build`)."
  type        = string
}

variable "package_hash" {
  description = "base64-encoded SHA-256 of the package (filebase64sha256), so only a changed zip redeploys."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
  default     = "python3.12"

  validation {
    condition     = can(regex("^python3\\.(1[2-9])$", var.runtime))
    error_message = "runtime must be python3.12 or newer."
  }
}

variable "architecture" {
  description = "Instruction set of every function: arm64 (cheaper per GB-second) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Minimum memory (MB) of every function; functions sized larger in the module's table keep their size."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 512 && var.memory_size <= 10240
    error_message = "memory_size must be between 512 and 10240 MB."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function role; roles left out are not reserved (the default reserves nothing; production values: examples/production.tfvars)."
  type        = map(number)
  default     = {}

  validation {
    condition = alltrue([
      for role, limit in var.reserved_concurrency :
      contains(["intake", "status", "validator", "fraud-check", "settlement", "notification", "retry", "health", "report", "cleanup", "sweeper", "authorizer"], role) && limit >= 0 && floor(limit) == limit
    ])
    error_message = "reserved_concurrency keys must be function roles and values non-negative integers."
  }
}

variable "account_concurrency_limit" {
  description = "The account's Lambda concurrent-executions quota in this region (Service Quotas L-B99A9384). When set, the plan fails unless the reserved total plus the 100 AWS keeps unreserved fits in it."
  type        = number
  default     = null

  validation {
    condition     = var.account_concurrency_limit == null || try(var.account_concurrency_limit >= 1 && floor(var.account_concurrency_limit) == var.account_concurrency_limit, false)
    error_message = "account_concurrency_limit must be null or a positive whole number."
  }
}

variable "subnet_ids" {
  description = "Private subnet ids the functions run in (two or more AZs)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one private subnet is required."
  }
}

variable "security_group_ids" {
  description = "Security groups of the functions (egress 443 only)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) >= 1
    error_message = "At least one security group is required."
  }
}

variable "environment" {
  description = "Environment variables shared by every function (table/queue/topic names etc.); POWERTOOLS_SERVICE_NAME is added per function."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the functions' operational log groups."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "logs_kms_key_arn" {
  description = "CMK that encrypts the log groups."
  type        = string
}

variable "env_kms_key_arn" {
  description = "CMK that encrypts the functions' environment variables."
  type        = string
}

variable "failed_queue_arn" {
  description = "ARN of failed-transactions-<suffix>, the event source of the retry function."
  type        = string
}

variable "resources" {
  description = "ARNs the functions' IAM policies are scoped to."
  type = object({
    transactions_table_arn = string
    audit_table_arn        = string
    idempotency_table_arn  = string
    clients_table_arn      = string
    audit_queue_arn        = string
    failed_queue_arn       = string
    dlq_arn                = string
    events_topic_arn       = string
    failed_topic_arn       = string
    alerts_topic_arn       = string
    archive_bucket_arn     = string
    state_machine_arn      = string
    ssm_parameter_arns     = map(string)
    kms_key_arns           = map(string)
  })

  validation {
    condition     = alltrue([for k in ["processor_endpoint", "processor_credentials", "fraud_rules"] : contains(keys(var.resources.ssm_parameter_arns), k)])
    error_message = "resources.ssm_parameter_arns needs processor_endpoint, processor_credentials and fraud_rules."
  }

  validation {
    condition     = alltrue([for k in ["data", "messaging"] : contains(keys(var.resources.kms_key_arns), k)])
    error_message = "resources.kms_key_arns needs the data and messaging keys."
  }
}

variable "job_failure_topic_arn" {
  description = "SNS topic (the alerts topic) that receives failed asynchronous invocations of the scheduled report and cleanup jobs."
  type        = string
}

variable "retry_batch_size" {
  description = "Messages per retry invocation from failed-transactions."
  type        = number
  default     = 10

  validation {
    condition     = var.retry_batch_size >= 1 && var.retry_batch_size <= 10
    error_message = "retry_batch_size must be 1-10 (no batching window is configured)."
  }
}

variable "application_log_level" {
  description = "Lambda application log level filter for the JSON log format."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.application_log_level)
    error_message = "application_log_level must be TRACE, DEBUG, INFO, WARN, ERROR or FATAL."
  }
}
