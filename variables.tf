################################################################################
# Environment
################################################################################

variable "environment_suffix" {
  description = "Suffix of every resource name (`{resource}-{suffix}`), e.g. dev, staging, prod. Also the Environment tag."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.environment_suffix))
    error_message = "environment_suffix must be 2-20 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "aws_region" {
  description = "Region to deploy to. An empty string falls back to eu-central-1."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = var.aws_region == "" || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as us-east-1 (or empty for eu-central-1)."
  }
}

variable "tags" {
  description = "Extra tags merged into the provider's default_tags; they may override Project and DataClassification, not Environment or ManagedBy."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags keys must be 1-128 characters and not start with aws:, values at most 256 characters."
  }
}

################################################################################
# Lambda
################################################################################

variable "lambda_package_path" {
  description = "Deployment zip shared by all functions, built by `devkit build`. A relative path is resolved against this module's directory."
  type        = string
  default     = "build/lambda/payment-app.zip"

  validation {
    condition     = endswith(var.lambda_package_path, ".zip")
    error_message = "lambda_package_path must point to a .zip file."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the functions: arm64 (about 20 % cheaper per GB-second) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_size" {
  description = "Memory (MB) of every function; the report and cleanup jobs keep at least 1024."
  type        = number
  default     = 512

  validation {
    condition     = var.lambda_memory_size >= 512 && var.lambda_memory_size <= 10240 && floor(var.lambda_memory_size) == var.lambda_memory_size
    error_message = "lambda_memory_size must be a whole number of MB between 512 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function role; roles left out are not reserved. Empty by default: a new account's concurrency quota is small and AWS keeps 100 unreserved, so a default reservation would make apply fail there. Production values (validator 100, others 50): examples/production.tfvars."
  type        = map(number)
  default     = {}

  validation {
    condition = alltrue([
      for role in keys(var.reserved_concurrency) :
      contains(["intake", "status", "validator", "fraud-check", "settlement", "notification", "retry", "health", "report", "cleanup", "sweeper", "authorizer"], role)
    ])
    error_message = "reserved_concurrency keys must be function roles: intake, status, validator, fraud-check, settlement, notification, retry, health, report, cleanup, sweeper, authorizer."
  }

  validation {
    condition     = alltrue([for limit in values(var.reserved_concurrency) : limit >= 0 && floor(limit) == limit])
    error_message = "reserved_concurrency values must be non-negative whole numbers (0 stops a function)."
  }
}

variable "account_concurrency_limit" {
  description = "The account's Lambda concurrent-executions quota in the region (Service Quotas: L-B99A9384). When set, the plan fails unless the reserved_concurrency total plus the 100 executions AWS keeps unreserved fits in it. Null: not checked."
  type        = number
  default     = null

  validation {
    condition     = var.account_concurrency_limit == null || try(var.account_concurrency_limit >= 1 && floor(var.account_concurrency_limit) == var.account_concurrency_limit, false)
    error_message = "account_concurrency_limit must be null or a positive whole number."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' operational log groups (days)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "security_log_retention_days" {
  description = "Retention of security-relevant logs: API access, WAF, Step Functions, VPC flow logs. PCI DSS 10.5.1 requires at least a year."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.security_log_retention_days)
    error_message = "security_log_retention_days must be at least 365 (PCI DSS 10.5.1) and a value CloudWatch Logs accepts: 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

################################################################################
# Notifications
################################################################################

variable "alert_subscriptions" {
  description = "Who receives alarms, failed scheduled jobs and health alerts (payment-alerts): a list of { protocol, endpoint, raw_message_delivery } with protocol https (an incident or paging tool), sqs, lambda, sms, or email/email-json beside one of those. No default subscriber: SNS e-mail waits for a human click that Terraform cannot make, so a placeholder address would leave every alert unread. `ops links` shows each subscription's confirmation state."
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

variable "payment_event_email_subscriptions" {
  description = "Opt-in e-mail addresses for payment-events and payment-failed: one e-mail per payment, in plaintext outside AWS. Only for low-volume environments: the plan fails unless api_throttle_rate_limit <= 1 payment/s. Machines read the events queue (events_queue_url) instead."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.payment_event_email_subscriptions : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "payment_event_email_subscriptions must contain e-mail addresses."
  }
}

################################################################################
# API and edge
################################################################################

variable "cors_allowed_origins" {
  description = "Origins allowed by CORS on every API response (OPTIONS, Lambda and gateway responses)."
  type        = list(string)
  default     = ["*"]

  validation {
    condition     = length(var.cors_allowed_origins) > 0 && alltrue([for o in var.cors_allowed_origins : o == "*" || can(regex("^https?://[A-Za-z0-9.-]+(:[0-9]+)?$", o))])
    error_message = "cors_allowed_origins must be \"*\" or origins like https://app.example.com[:port] (no path)."
  }
}

variable "api_authorizer_ttl_seconds" {
  description = "Seconds API Gateway caches a Lambda authorizer decision (0-300); also the longest a revoked client keeps working."
  type        = number
  default     = 120

  validation {
    condition     = var.api_authorizer_ttl_seconds >= 0 && var.api_authorizer_ttl_seconds <= 300
    error_message = "api_authorizer_ttl_seconds must be 0-300."
  }
}

variable "api_throttle_rate_limit" {
  description = "Stage-wide steady-state request rate (requests per second)."
  type        = number
  default     = 10000

  validation {
    condition     = var.api_throttle_rate_limit > 0
    error_message = "api_throttle_rate_limit must be positive."
  }
}

variable "api_throttle_burst_limit" {
  description = "Stage-wide burst (token bucket size, requests)."
  type        = number
  default     = 5000

  validation {
    condition     = var.api_throttle_burst_limit > 0 && floor(var.api_throttle_burst_limit) == var.api_throttle_burst_limit
    error_message = "api_throttle_burst_limit must be a positive whole number."
  }
}

variable "usage_plans" {
  description = "Usage plans (one API key each) by client tier: rate (rps), burst, optional quota per DAY, WEEK or MONTH."
  type = map(object({
    rate_limit   = number
    burst_limit  = number
    quota_limit  = optional(number)
    quota_period = optional(string)
  }))
  default = {
    mobile = {
      rate_limit   = 100
      burst_limit  = 200
      quota_limit  = 10000
      quota_period = "DAY"
    }
    partner = {
      rate_limit  = 1000
      burst_limit = 2000
    }
  }

  validation {
    condition     = length(var.usage_plans) > 0 && alltrue([for tier in keys(var.usage_plans) : can(regex("^[a-z][a-z0-9-]{0,29}$", tier))])
    error_message = "usage_plans needs at least one tier; tier names are lowercase letters, digits and hyphens."
  }

  validation {
    condition     = alltrue([for p in values(var.usage_plans) : p.rate_limit > 0 && p.burst_limit > 0 && floor(p.burst_limit) == p.burst_limit])
    error_message = "usage_plans rate_limit must be positive and burst_limit a positive whole number."
  }

  validation {
    condition = alltrue([
      for p in values(var.usage_plans) :
      (p.quota_limit == null) == (p.quota_period == null) &&
      (p.quota_limit == null || try(p.quota_limit > 0, false)) &&
      (p.quota_period == null || contains(["DAY", "WEEK", "MONTH"], coalesce(p.quota_period, "DAY")))
    ])
    error_message = "usage_plans quota_limit and quota_period go together: a positive limit per DAY, WEEK or MONTH."
  }
}

variable "manage_api_gateway_account" {
  description = "Set the account's API Gateway CloudWatch Logs role (aws_api_gateway_account): an account- and region-wide setting that every REST API's execution and access logging uses. True by default so a stand-alone deployment can log at all (a stage cannot log without it); set false when an account baseline or another stack owns it. Destroy leaves the setting in place."
  type        = bool
  default     = true
}

variable "waf_rate_limit" {
  description = "Requests per IP in any 5-minute window before WAF answers 429 (/health is exempt)."
  type        = number
  default     = 2000

  validation {
    # WAFv2 RateBasedStatement.Limit, as the provider validates it.
    condition     = var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000 && floor(var.waf_rate_limit) == var.waf_rate_limit
    error_message = "waf_rate_limit must be a whole number between 10 and 2000000000."
  }
}

variable "waf_health_rate_limit" {
  description = "Requests to /health per IP in any 5-minute window before WAF answers 429: /health is unauthenticated and exempt from waf_rate_limit, so it gets its own, lower limit."
  type        = number
  default     = 100

  validation {
    condition     = var.waf_health_rate_limit >= 10 && var.waf_health_rate_limit <= 2000000000 && floor(var.waf_health_rate_limit) == var.waf_health_rate_limit
    error_message = "waf_health_rate_limit must be a whole number between 10 and 2000000000."
  }
}

variable "api_domain_name" {
  description = "Custom domain of the API (e.g. api.payments.example.com), with api_domain_certificate_arn. When set, the domain enforces TLS 1.2 (security_policy TLS_1_2) and the default execute-api endpoint is disabled, so clients cannot bypass it with TLS 1.0. Point a DNS alias at the api_domain_target output."
  type        = string
  default     = null

  validation {
    condition     = var.api_domain_name == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.api_domain_name))
    error_message = "api_domain_name must be a lower-case DNS name."
  }
}

variable "api_domain_certificate_arn" {
  description = "ACM certificate ARN (same region as the API) covering api_domain_name; required with it."
  type        = string
  default     = null

  validation {
    condition     = var.api_domain_certificate_arn == null || can(regex("^arn:[a-z-]+:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.api_domain_certificate_arn))
    error_message = "api_domain_certificate_arn must be an ACM certificate ARN."
  }
}

variable "geo_block_countries" {
  description = "ISO 3166-1 alpha-2 country codes WAF answers with 403."
  type        = list(string)
  default     = ["CN", "RU", "KP", "IR"]

  validation {
    condition     = alltrue([for c in var.geo_block_countries : can(regex("^[A-Z]{2}$", c))])
    error_message = "geo_block_countries must contain two-letter uppercase ISO country codes, e.g. RU."
  }
}

variable "enable_bot_control" {
  description = "Add the AWS WAF Bot Control managed rule group (targeted level, billed per request)."
  type        = bool
  default     = false
}

variable "enable_waf" {
  description = "Create the WAF web ACL, its stage association and its logging. Keep it on in every AWS account; only emulators without WAFv2 (LocalStack's free edition) turn it off."
  type        = bool
  default     = true
}

################################################################################
# Workflow
################################################################################

variable "workflow_type" {
  description = "Step Functions workflow type: STANDARD (exactly-once, ~2,000 starts/s soft quota) or EXPRESS (at-least-once, 100,000 starts/s). See docs/capacity.md."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "EXPRESS"], var.workflow_type)
    error_message = "workflow_type must be STANDARD or EXPRESS."
  }
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (/16 to /24)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) &&
      can(regex("^[0-9.]+/[0-9]+$", var.vpc_cidr)) &&
      try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 24, false) &&
      try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr, false)
    )
    error_message = "vpc_cidr must be an IPv4 network address with a prefix between /16 and /24, e.g. 10.40.0.0/16."
  }
}

variable "availability_zone_count" {
  description = "Availability zones the functions' private subnets span (each interface endpoint is billed per AZ)."
  type        = number
  default     = 2

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 4 && floor(var.availability_zone_count) == var.availability_zone_count
    error_message = "availability_zone_count must be a whole number between 2 and 4."
  }
}

variable "interface_endpoint_services" {
  description = "AWS services the private functions reach through interface endpoints (about 7.30 USD per service and AZ per month). The default is what the functions' code calls (tests/security/code_calls.py): SQS, SNS, Step Functions, SSM and CloudWatch (health's DescribeAlarms). Logs, X-Ray and KMS need none: the Lambda service delivers logs and traces, and KMS is used by the services on the functions' behalf. S3 and DynamoDB use free gateway endpoints."
  type        = list(string)
  default     = ["sqs", "sns", "states", "ssm", "monitoring"]

  validation {
    condition     = alltrue([for s in var.interface_endpoint_services : can(regex("^[a-z0-9][a-z0-9.-]*$", s)) && !contains(["s3", "dynamodb"], s)])
    error_message = "interface_endpoint_services must be short service names (sqs, ecr.api, ...) other than s3 and dynamodb."
  }
}

variable "enable_nat_gateway" {
  description = "Add a NAT gateway (about 33 USD per month plus data) so functions can reach the internet on 443, e.g. an external processor."
  type        = bool
  default     = false
}

################################################################################
# Data protection
################################################################################

variable "table_deletion_protection" {
  description = "DynamoDB deletion protection on every table. Turn on in production."
  type        = bool
  default     = false
}

variable "archive_force_destroy" {
  description = "Let destroy empty the archive bucket. Turn off in production."
  type        = bool
  default     = true
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before a deleted KMS key is gone (7-30 days)."
  type        = number
  default     = 7

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30 && floor(var.kms_deletion_window_in_days) == var.kms_deletion_window_in_days
    error_message = "kms_deletion_window_in_days must be a whole number between 7 and 30."
  }
}

variable "archive_transition_days" {
  description = "Days after which the archive objects under archive_transition_prefix (cleanup batches of 128 KB or more) move to S3 Glacier Flexible Retrieval; the ~1 KB per-transaction archives stay in Standard (docs/capacity.md)."
  type        = number
  default     = 30

  validation {
    condition     = var.archive_transition_days >= 1 && floor(var.archive_transition_days) == var.archive_transition_days
    error_message = "archive_transition_days must be a whole number of days, at least 1."
  }
}

variable "archive_transition_prefix" {
  description = "Key prefix of the archive objects that move to Glacier after archive_transition_days: the cleanup batches. The ~1 KB per-transaction archives stay in S3 Standard, their cheapest class (docs/capacity.md); AWS's default 128 KB minimum also keeps small batches there."
  type        = string
  default     = "cleanup/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+/$", var.archive_transition_prefix)) && !startswith(var.archive_transition_prefix, "transactions/")
    error_message = "archive_transition_prefix must be a key prefix ending in / and must not be transactions/ (~1 KB objects cost more in Glacier)."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent archive object versions are deleted."
  type        = number
  default     = 365

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

variable "audit_ttl_days" {
  description = "Days an audit record is kept before DynamoDB TTL removes it."
  type        = number
  default     = 90

  validation {
    condition     = var.audit_ttl_days >= 1 && floor(var.audit_ttl_days) == var.audit_ttl_days
    error_message = "audit_ttl_days must be a whole number of days, at least 1."
  }
}

variable "idempotency_ttl_hours" {
  description = "Hours an idempotency key is remembered (at least 24)."
  type        = number
  default     = 24

  validation {
    condition     = var.idempotency_ttl_hours >= 24 && floor(var.idempotency_ttl_hours) == var.idempotency_ttl_hours
    error_message = "idempotency_ttl_hours must be a whole number of hours, at least 24."
  }
}

variable "day_shard_count" {
  description = "Write shards of the by-day index (`YYYY-MM-DD#NN`); each shard partition takes up to 1,000 writes/s."
  type        = number
  default     = 16

  validation {
    condition     = var.day_shard_count >= 1 && var.day_shard_count <= 100 && floor(var.day_shard_count) == var.day_shard_count
    error_message = "day_shard_count must be a whole number between 1 and 100."
  }
}

################################################################################
# Fraud rules and processor (stored in SSM)
################################################################################

variable "fraud_amount_threshold" {
  description = "Default amount threshold in major units (e.g. 10000 = USD 10,000.00) above which a payment scores as high risk."
  type        = number
  default     = 10000

  validation {
    condition     = var.fraud_amount_threshold > 0
    error_message = "fraud_amount_threshold must be positive."
  }
}

variable "fraud_amount_thresholds" {
  description = "Per-currency amount thresholds in major units, overriding fraud_amount_threshold, e.g. { JPY = 1500000 }."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for c, v in var.fraud_amount_thresholds : can(regex("^[A-Z]{3}$", c)) && v > 0])
    error_message = "fraud_amount_thresholds keys must be ISO 4217 codes (USD) and values positive."
  }
}

variable "fraud_blocked_countries" {
  description = "ISO 3166-1 alpha-2 countries whose payments the fraud check rejects."
  type        = list(string)
  default     = ["CN", "RU", "KP", "IR"]

  validation {
    condition     = alltrue([for c in var.fraud_blocked_countries : can(regex("^[A-Z]{2}$", c))])
    error_message = "fraud_blocked_countries must contain two-letter uppercase ISO country codes."
  }
}

variable "fraud_blocked_merchants" {
  description = "Merchant ids whose payments the fraud check rejects."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.fraud_blocked_merchants : length(trimspace(m)) > 0])
    error_message = "fraud_blocked_merchants must not contain empty ids."
  }
}

variable "fraud_velocity_window_minutes" {
  description = "Window (minutes) over which a customer's recent transactions are counted."
  type        = number
  default     = 60

  validation {
    condition     = var.fraud_velocity_window_minutes >= 1 && var.fraud_velocity_window_minutes <= 10080 && floor(var.fraud_velocity_window_minutes) == var.fraud_velocity_window_minutes
    error_message = "fraud_velocity_window_minutes must be a whole number between 1 and 10080 (a week)."
  }
}

variable "fraud_velocity_max" {
  description = "Transactions per customer within the velocity window before the velocity rule fires."
  type        = number
  default     = 10

  validation {
    condition     = var.fraud_velocity_max >= 1 && floor(var.fraud_velocity_max) == var.fraud_velocity_max
    error_message = "fraud_velocity_max must be a positive whole number."
  }
}

variable "fraud_reject_score" {
  description = "Risk score (0-100) at or above which a payment is rejected."
  type        = number
  default     = 70

  validation {
    condition     = var.fraud_reject_score >= 1 && var.fraud_reject_score <= 100 && floor(var.fraud_reject_score) == var.fraud_reject_score
    error_message = "fraud_reject_score must be a whole number between 1 and 100."
  }
}

variable "processor_endpoint" {
  description = "Payment processor endpoint: sim://<mode> (the in-process simulator: no network call) or an https:// URL on port 443 (the functions' only egress). A host outside AWS (not *.amazonaws.com) is reached through the internet and needs enable_nat_gateway."
  type        = string
  default     = "sim://approve"

  validation {
    condition     = can(regex("^(sim://[a-z0-9_-]+|https://[A-Za-z0-9.-]+(:443)?(/[^\\s]*)?)$", var.processor_endpoint))
    error_message = "processor_endpoint must be sim://<mode> or an https:// URL on port 443 (Lambda egress is HTTPS only; http:// and other ports cannot leave the VPC)."
  }
}

variable "processor_credentials" {
  description = "Initial processor credentials (SecureString). A placeholder: Terraform ignores later changes, set the real secret out of band."
  type        = string
  default     = "unset-configure-out-of-band"
  sensitive   = true

  validation {
    condition     = length(var.processor_credentials) > 0 && length(var.processor_credentials) <= 4096
    error_message = "processor_credentials must be 1-4096 characters."
  }
}

################################################################################
# Scheduled jobs
################################################################################

variable "report_schedule_expression" {
  description = "EventBridge Scheduler expression of the daily report (UTC)."
  type        = string
  default     = "cron(0 2 * * ? *)"

  validation {
    condition     = can(regex("^(cron\\([^)]+\\)|rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\))$", var.report_schedule_expression))
    error_message = "report_schedule_expression must be cron(...) or rate(N unit)."
  }
}

variable "cleanup_schedule_expression" {
  description = "EventBridge Scheduler expression of the cleanup job (UTC)."
  type        = string
  default     = "cron(0 3 * * ? *)"

  validation {
    condition     = can(regex("^(cron\\([^)]+\\)|rate\\([0-9]+ (minute|minutes|hour|hours|day|days)\\))$", var.cleanup_schedule_expression))
    error_message = "cleanup_schedule_expression must be cron(...) or rate(N unit)."
  }
}

variable "cleanup_retention_days" {
  description = "Transactions older than this many days are archived to S3 and deleted by the cleanup job."
  type        = number
  default     = 90

  validation {
    condition     = var.cleanup_retention_days >= 1 && floor(var.cleanup_retention_days) == var.cleanup_retention_days
    error_message = "cleanup_retention_days must be a whole number of days, at least 1."
  }
}

variable "settlement_lease_seconds" {
  description = "Lease of a settlement attempt (SETTLEMENT_LEASE_SECONDS). Must exceed the settlement and retry functions' timeouts (checked at plan): an expired lease has to mean its holder is gone."
  type        = number
  default     = 90

  validation {
    condition     = var.settlement_lease_seconds >= 1 && floor(var.settlement_lease_seconds) == var.settlement_lease_seconds
    error_message = "settlement_lease_seconds must be a whole number of seconds, at least 1."
  }
}

variable "stuck_after_seconds" {
  description = "Age past which the sweeper fails an unfinished transaction (STUCK_AFTER_SECONDS). Must exceed the workflow's execution budget plus the lease (checked at plan)."
  type        = number
  default     = 900

  validation {
    condition     = var.stuck_after_seconds >= 60 && floor(var.stuck_after_seconds) == var.stuck_after_seconds
    error_message = "stuck_after_seconds must be a whole number of seconds, at least 60."
  }
}

variable "require_authorizer_principal" {
  description = "The API functions refuse (401) a request that reaches them without the Lambda authorizer's principal (REQUIRE_PRINCIPAL): a route outside the authorizer never serves a merchant without a scope. Keep it on; only an emulator whose gateway cannot run Lambda authorizers (LocalStack's free edition) turns it off."
  type        = bool
  default     = true
}

variable "max_settlement_attempts" {
  description = "The retry budget (MAX_SETTLEMENT_ATTEMPTS): attempts a payment gets before it is final FAILED (no charge request ever left) or parked for a human with the PaymentParked alarm (a charge may exist). Every delivery of a retry message that finds the payment FAILED spends one, and one failure can queue several messages (RecordFailure's, the Step Functions safety net's, the sweeper's re-enqueue), each received 5 times before the DLQ. At least 16 = the workflow's attempt + 5 receives of three messages, so a redrive after an outage still settles. The default 50 leaves room for three such rounds and still ends an unresolvable payment within hours (5 receives 6 minutes apart, the sweeper's re-enqueue after 15 minutes), well inside the processor's 24 h idempotency-key retention."
  type        = number
  default     = 50

  validation {
    # 1 + 3 x maxReceiveCount of failed-transactions (5, modules/messaging).
    condition     = var.max_settlement_attempts >= 16 && var.max_settlement_attempts <= 100 && floor(var.max_settlement_attempts) == var.max_settlement_attempts
    error_message = "max_settlement_attempts must be a whole number between 16 (the workflow's attempt and three rounds of the failed queue's 5 receives) and 100."
  }
}

################################################################################
# Observability
################################################################################

variable "enable_xray_resources" {
  description = "Create the X-Ray sampling rule and group (and the encryption config when manage_xray_encryption is on). Keep it on in every AWS account; only emulators without the X-Ray control plane (LocalStack's free edition) turn it off. Function and stage tracing stay on either way."
  type        = bool
  default     = true
}

variable "manage_xray_encryption" {
  description = "Encrypt X-Ray traces with this stack's logs CMK. Off by default: the X-Ray encryption setting is account- and region-wide, so one stack would take over every workload's traces, and destroying it would leave them on a key pending deletion (X-Ray then stops storing data). An account baseline should own it."
  type        = bool
  default     = false
}

variable "xray_sampling_rate" {
  description = "Fixed X-Ray sampling rate after the reservoir of one trace per second (0-1)."
  type        = number
  default     = 0.1

  validation {
    condition     = var.xray_sampling_rate >= 0 && var.xray_sampling_rate <= 1
    error_message = "xray_sampling_rate must be between 0 and 1."
  }
}

variable "transactions_table_override" {
  description = "Name of a restored copy of the transactions table (`ops restore --table transactions`) that the functions, their IAM policies, the alarms and the outputs use instead of the managed table. null = the managed table."
  type        = string
  default     = null

  validation {
    condition     = var.transactions_table_override == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.transactions_table_override))
    error_message = "transactions_table_override must be a DynamoDB table name (3-255 characters: letters, digits, _ . -)."
  }
}

variable "audit_table_override" {
  description = "Name of a restored copy of the audit table (`ops restore --table audit`) that the functions, their IAM policies, the alarms and the outputs use instead of the managed table. null = the managed table."
  type        = string
  default     = null

  validation {
    condition     = var.audit_table_override == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.audit_table_override))
    error_message = "audit_table_override must be a DynamoDB table name (3-255 characters: letters, digits, _ . -)."
  }
}

variable "idempotency_table_override" {
  description = "Name of a restored copy of the idempotency table (`ops restore --table idempotency`) that the functions, their IAM policies, the alarms and the outputs use instead of the managed table. null = the managed table."
  type        = string
  default     = null

  validation {
    condition     = var.idempotency_table_override == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.idempotency_table_override))
    error_message = "idempotency_table_override must be a DynamoDB table name (3-255 characters: letters, digits, _ . -)."
  }
}
