variable "suffix" {
  description = "Environment suffix appended to every name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,19}$", var.suffix))
    error_message = "suffix must be 1-20 lowercase letters, digits or hyphens."
  }
}

variable "function_invoke_arns" {
  description = "API Gateway invoke ARNs of the functions keyed by role (intake, status, health are routed; authorizer guards every route but /health)."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["intake", "status", "health", "authorizer"] : contains(keys(var.function_invoke_arns), k)])
    error_message = "function_invoke_arns needs intake, status, health and authorizer."
  }
}

variable "function_names" {
  description = "Function names keyed by role, for the invoke permissions."
  type        = map(string)

  validation {
    condition     = alltrue([for k in ["intake", "status", "health", "authorizer"] : contains(keys(var.function_names), k)])
    error_message = "function_names needs intake, status, health and authorizer."
  }
}

variable "authorizer_ttl_seconds" {
  description = "How long API Gateway caches an authorizer decision per Authorization header: a revoked client or secret is refused at the latest this long after `ops clients revoke`."
  type        = number
  default     = 120

  validation {
    condition     = var.authorizer_ttl_seconds >= 0 && var.authorizer_ttl_seconds <= 300
    error_message = "authorizer_ttl_seconds must be 0-300: a longer cache keeps revoked clients working longer."
  }
}

variable "request_schema" {
  description = "JSON Schema (draft-04) of the create-transaction body: the same file the intake Lambda validates with."
  type        = string

  validation {
    condition     = can(jsondecode(var.request_schema))
    error_message = "request_schema must be a JSON document."
  }
}

variable "cors_allowed_origins" {
  description = "Origins allowed by CORS; [\"*\"] allows any. With several origins the OPTIONS response echoes the caller's origin when it is listed."
  type        = list(string)
  default     = ["*"]

  validation {
    condition     = length(var.cors_allowed_origins) >= 1 && alltrue([for o in var.cors_allowed_origins : o == "*" || can(regex("^https?://[A-Za-z0-9.-]+(:[0-9]+)?$", o))])
    error_message = "cors_allowed_origins must be \"*\" or scheme://host[:port] origins without a path."
  }
}

variable "stage_name" {
  description = "Name of the one stage."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,128}$", var.stage_name))
    error_message = "stage_name may contain letters, digits and underscores only."
  }
}

variable "api_version" {
  description = "Version label exposed as a stage variable."
  type        = string
  default     = "v1"
}

variable "throttle_rate_limit" {
  description = "Stage-wide steady-state requests per second (AWS account default per region is 10,000)."
  type        = number
  default     = 10000

  validation {
    condition     = var.throttle_rate_limit > 0
    error_message = "throttle_rate_limit must be positive."
  }
}

variable "throttle_burst_limit" {
  description = "Stage-wide burst (token bucket size)."
  type        = number
  default     = 5000

  validation {
    condition     = var.throttle_burst_limit > 0
    error_message = "throttle_burst_limit must be positive."
  }
}

variable "usage_plans" {
  description = "Usage plans per client tier; each gets a key payment-<tier>-<suffix> whose value AWS generates."
  type = map(object({
    rate_limit   = number
    burst_limit  = number
    quota_limit  = optional(number)
    quota_period = optional(string)
  }))
  default = {
    mobile  = { rate_limit = 100, burst_limit = 200, quota_limit = 10000, quota_period = "DAY" }
    partner = { rate_limit = 1000, burst_limit = 2000 }
  }

  validation {
    condition     = alltrue([for p in values(var.usage_plans) : p.quota_period == null || contains(["DAY", "WEEK", "MONTH"], coalesce(p.quota_period, "DAY"))])
    error_message = "quota_period must be DAY, WEEK or MONTH."
  }

  validation {
    condition     = alltrue([for p in values(var.usage_plans) : (p.quota_limit == null) == (p.quota_period == null)])
    error_message = "quota_limit and quota_period are set together or not at all."
  }

  validation {
    condition     = alltrue([for k in keys(var.usage_plans) : can(regex("^[a-z0-9-]+$", k))])
    error_message = "Usage plan tiers must be lowercase letters, digits or hyphens."
  }
}

variable "access_log_retention_days" {
  description = "Retention of the access and execution log groups (security-relevant: a year, PCI DSS 10.5.1)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.access_log_retention_days)
    error_message = "access_log_retention_days must be a value CloudWatch Logs accepts."
  }
}

variable "logs_kms_key_arn" {
  description = "CMK that encrypts the API log groups."
  type        = string
}

variable "manage_account_cloudwatch_role" {
  description = "Set the account-wide API Gateway CloudWatch Logs role (one per account and region: enable in one stack only)."
  type        = bool
  default     = true
}

variable "metadata_key_max_length" {
  description = "Longest metadata key the intake function accepts (payments.validation.METADATA_KEY_MAX); JSON Schema draft-04 cannot bound key length, so the body-size derivation takes it from here."
  type        = number
  default     = 40

  validation {
    condition     = var.metadata_key_max_length >= 1 && floor(var.metadata_key_max_length) == var.metadata_key_max_length
    error_message = "metadata_key_max_length must be a positive whole number."
  }
}

variable "custom_domain_name" {
  description = "Custom domain of the API (e.g. api.payments.example.com). When set, the domain gets security_policy TLS_1_2 and a base-path mapping to the stage, and the default execute-api endpoint is disabled so clients cannot bypass the domain's TLS policy."
  type        = string
  default     = null

  validation {
    condition     = var.custom_domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.custom_domain_name))
    error_message = "custom_domain_name must be a lower-case DNS name."
  }
}

variable "custom_domain_certificate_arn" {
  description = "ARN of the ACM certificate (same region as the API) that covers custom_domain_name; required when custom_domain_name is set."
  type        = string
  default     = null

  validation {
    condition     = var.custom_domain_certificate_arn == null || can(regex("^arn:[a-z-]+:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.custom_domain_certificate_arn))
    error_message = "custom_domain_certificate_arn must be an ACM certificate ARN."
  }
}
