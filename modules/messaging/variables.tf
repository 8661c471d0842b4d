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

variable "alert_subscriptions" {
  description = "Subscribers of the alerts topic (alarms, failed jobs, health): protocol https (an incident or paging tool's webhook), sqs, lambda, sms, or email/email-json beside a machine channel. SNS e-mail waits for a human to click a link and Terraform cannot confirm it; SQS and Lambda in this account confirm on creation, HTTPS endpoints confirm by answering SNS's SubscriptionConfirmation."
  type = list(object({
    protocol             = string
    endpoint             = string
    raw_message_delivery = optional(bool, false)
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.alert_subscriptions : contains(["https", "sqs", "lambda", "sms", "email", "email-json"], s.protocol)])
    error_message = "alert_subscriptions protocol must be one of https, sqs, lambda, sms, email, email-json."
  }

  validation {
    condition = alltrue([for s in var.alert_subscriptions : (
      s.protocol == "https" ? can(regex("^https://[^/\\s]+", s.endpoint)) :
      s.protocol == "sqs" ? can(regex("^arn:[a-z-]+:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", s.endpoint)) :
      s.protocol == "lambda" ? can(regex("^arn:[a-z-]+:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$", s.endpoint)) :
      s.protocol == "sms" ? can(regex("^\\+[1-9][0-9]{6,14}$", s.endpoint)) :
      can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", s.endpoint))
    )])
    error_message = "alert_subscriptions endpoint must match its protocol: an https:// URL, an SQS queue ARN, a Lambda function ARN, an E.164 phone number or an e-mail address."
  }

  validation {
    condition     = !anytrue([for s in var.alert_subscriptions : startswith(s.protocol, "email")]) || anytrue([for s in var.alert_subscriptions : !startswith(s.protocol, "email")])
    error_message = "alert_subscriptions: e-mail only beside a machine-confirmed channel (https, sqs, lambda or sms): an unconfirmed e-mail subscription receives nothing."
  }
}

variable "event_email_subscriptions" {
  description = "Opt-in e-mail addresses for payment-events and payment-failed (one e-mail per payment, in plaintext outside AWS): only for low-volume environments, checked against max_payment_rate. Machines read the events queue instead."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.event_email_subscriptions : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "event_email_subscriptions must contain e-mail addresses."
  }
}

variable "max_payment_rate" {
  description = "Highest rate of payments per second the stack admits (the API stage's throttle): e-mail per payment is refused above email_max_rate."
  type        = number
}

variable "email_max_rate" {
  description = "Highest payment rate (per second) at which e-mail per payment is allowed. SNS e-mail delivery has a low per-account rate quota (Amazon SNS endpoints and quotas) and each e-mail carries a payment in plaintext: keep it to test and low-volume stacks."
  type        = number
  default     = 1

  validation {
    condition     = var.email_max_rate > 0 && var.email_max_rate <= 10
    error_message = "email_max_rate must be above 0 and at most 10 payments per second."
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
  description = "Retention of the audit stream and the events queue (SQS maximum 14 days = 1209600 s, so a weekend outage loses nothing)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "failed_visibility_timeout_seconds" {
  description = "Visibility timeout of the failed-transactions queue. AWS requires at least 6 x the timeout of the Lambda function consuming it (Lambda developer guide, \"Using Lambda with Amazon SQS\"): the root module passes 6 x the retry function's timeout."
  type        = number

  validation {
    condition     = var.failed_visibility_timeout_seconds >= 0 && var.failed_visibility_timeout_seconds <= 43200
    error_message = "failed_visibility_timeout_seconds must be between 0 and 43200."
  }
}

variable "failed_message_retention_seconds" {
  description = "Retention of failed-transactions (7 days). Shorter than the DLQ's: a standard queue keeps each message's original enqueue time when it is dead-lettered, so the DLQ must retain longer than its source."
  type        = number
  default     = 604800

  validation {
    condition     = var.failed_message_retention_seconds >= 60 && var.failed_message_retention_seconds < 1209600
    error_message = "failed_message_retention_seconds must be between 60 and 1209599: the DLQ (at most 14 days) must keep messages longer."
  }
}

variable "dlq_message_retention_seconds" {
  description = "Retention of failed-transactions-dlq (14 days, SQS's maximum); must exceed failed_message_retention_seconds."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

variable "max_receive_count" {
  description = "Receives of a failed transaction before SQS moves it to the DLQ. At least 5: Lambda's SQS poller counts a receive for messages it cannot hand to a throttled function, and AWS advises maxReceiveCount >= 5 for an event-source queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 5 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number between 5 and 1000 (AWS advises at least 5 for a Lambda event-source queue)."
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
