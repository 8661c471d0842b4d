variable "suffix" {
  description = "Environment suffix appended to every name (`alias/payment-<use>-<suffix>`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.suffix))
    error_message = "suffix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "account_id" {
  description = "AWS account id that owns the keys; its root principal administers them."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit AWS account id."
  }
}

variable "region" {
  description = "Region the keys live in; scopes the kms:ViaService and CloudWatch Logs conditions."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must look like an AWS region name, e.g. us-east-1."
  }
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov) used to build principal and resource ARNs."
  type        = string
  default     = "aws"

  validation {
    condition     = contains(["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"], var.partition)
    error_message = "partition must be one of aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled key deletion completes (KMS accepts 7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30 && floor(var.deletion_window_in_days) == var.deletion_window_in_days
    error_message = "deletion_window_in_days must be a whole number between 7 and 30."
  }
}

variable "xray_encryption" {
  description = "The logs key encrypts X-Ray traces (the stack manages the account's X-Ray encryption): its policy then admits kms:ViaService xray."
  type        = bool
  default     = false
}

variable "eventbridge_rule_arns" {
  description = "EventBridge rules that deliver to queues encrypted with the messaging key (the workflow safety net): events.amazonaws.com may use the key for them only."
  type        = list(string)
  default     = []
}

variable "sns_topic_arns" {
  description = "SNS topics that deliver to queues encrypted with the messaging key (payment-events and payment-failed to the events queue): sns.amazonaws.com may use the key for them only."
  type        = list(string)
  default     = []
}
