variable "suffix" {
  description = "Environment suffix appended to every name (`payment-archive-<suffix>-<account>`, `/payment-<suffix>/...`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.suffix))
    error_message = "suffix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "account_id" {
  description = "AWS account id; part of the bucket name so the name is globally unique per account."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit AWS account id."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed key for the archive bucket and the SecureString parameter."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty archive bucket (every object version). Turn off in production."
  type        = bool
  default     = false
}

variable "archive_transition_days" {
  description = "Days after which archived objects move to S3 Glacier Flexible Retrieval."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_transition_days >= 1 && floor(var.archive_transition_days) == var.archive_transition_days
    error_message = "archive_transition_days must be a whole number of days, at least 1."
  }
}

variable "archive_transition_prefix" {
  description = "Key prefix of the archive objects that move to Glacier: the cleanup batches. The ~1 KB per-transaction archives (transactions/) cost more in Glacier than in Standard and stay there."
  type        = string
  default     = "cleanup/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+/$", var.archive_transition_prefix)) && !startswith(var.archive_transition_prefix, "transactions/")
    error_message = "archive_transition_prefix must be a key prefix ending in / and must not be transactions/ (~1 KB objects cost more in Glacier)."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed for good."
  type        = number
  default     = 365

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which parts of an unfinished multipart upload are deleted (they are billed but invisible)."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number of days, at least 1."
  }
}

variable "processor_endpoint" {
  description = "Payment processor endpoint stored in SSM: `sim://approve` (built-in simulator) or an https:// URL on port 443."
  type        = string
  default     = "sim://approve"

  validation {
    condition     = can(regex("^(sim://[a-z0-9_-]+|https://[A-Za-z0-9.-]+(:443)?(/[^\\s]*)?)$", var.processor_endpoint))
    error_message = "processor_endpoint must be sim://<mode> or an https:// URL on port 443."
  }
}

variable "internet_egress" {
  description = "The functions can reach the internet (a NAT gateway): required for a processor host outside AWS."
  type        = bool
  default     = false
}

variable "processor_credentials" {
  description = "Initial value of the processor credentials SecureString. Terraform ignores later changes: set the real secret out of band (`aws ssm put-parameter --overwrite`)."
  type        = string
  default     = "unset-configure-out-of-band"
  sensitive   = true

  validation {
    condition     = length(var.processor_credentials) > 0 && length(var.processor_credentials) <= 4096
    error_message = "processor_credentials must be 1-4096 characters (SSM standard tier)."
  }
}

variable "fraud_rules_json" {
  description = "Fraud rules document (JSON) stored in SSM; shape in docs/interfaces.md."
  type        = string

  validation {
    condition     = can(jsondecode(var.fraud_rules_json))
    error_message = "fraud_rules_json must be valid JSON."
  }
}
