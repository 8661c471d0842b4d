variable "suffix" {
  description = "Environment suffix appended to every name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.suffix))
    error_message = "suffix must be 1-20 lowercase letters, digits or hyphens."
  }
}

variable "stage_arn" {
  description = "ARN of the API Gateway REST API stage the web ACL protects."
  type        = string
}

variable "stage_name" {
  description = "Stage name: on the execute-api host WAF sees paths as /<stage>/..., on a custom domain without it."
  type        = string
  default     = "prod"
}

variable "rate_limit" {
  description = "Requests per IP per 5-minute window before WAF answers 429 (/health exempt)."
  type        = number
  default     = 2000

  validation {
    condition     = var.rate_limit >= 10 && var.rate_limit <= 2000000000
    error_message = "rate_limit must be between 10 and 2,000,000,000 (WAF's bounds)."
  }
}

variable "geo_block_countries" {
  description = "ISO 3166-1 alpha-2 country codes answered with a JSON 403; empty disables the rule."
  type        = list(string)
  default     = ["CN", "RU", "KP", "IR"]

  validation {
    condition     = alltrue([for c in var.geo_block_countries : can(regex("^[A-Z]{2}$", c))])
    error_message = "geo_block_countries must be two-letter upper-case country codes."
  }
}

variable "enable_bot_control" {
  description = "Add AWSManagedRulesBotControlRuleSet (TARGETED inspection); billed per request on top of WAF."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the WAF log group (security-relevant: a year, PCI DSS 10.5.1)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "logs_kms_key_arn" {
  description = "CMK that encrypts the WAF log group."
  type        = string
}

variable "max_body_bytes" {
  description = "Largest valid request body in bytes (module.api's request_body_max_bytes, derived from the request schema). Bodies above it get a JSON 413; the Core rule set's fixed 8 KB SizeRestrictions_BODY is counted instead of blocking, and the web ACL forwards enough of the body (16-64 KB) for the rule to see all of it."
  type        = number

  validation {
    condition     = var.max_body_bytes >= 1 && var.max_body_bytes <= 65536
    error_message = "max_body_bytes must be between 1 and 65536: AWS WAF inspects at most 64 KB of an API Gateway request body."
  }
}

variable "health_rate_limit" {
  description = "Requests to /health per IP per 5-minute window before WAF answers 429: lower than rate_limit, since /health is unauthenticated and each check costs several AWS calls."
  type        = number
  default     = 100

  validation {
    condition     = var.health_rate_limit >= 10 && var.health_rate_limit <= 2000000000
    error_message = "health_rate_limit must be between 10 and 2,000,000,000 (WAF's bounds)."
  }
}
