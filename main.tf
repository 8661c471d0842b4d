# The platform, in the order a payment travels through it:
#   keys and network underneath; WAF -> API -> functions -> tables -> workflow
#   -> queues/topics -> archive; scheduled jobs; alarms and dashboards watching it all.
# Only module calls and the glue locals they share live here.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  # S3's fallback rule: an empty region means eu-central-1.
  region     = var.aws_region != "" ? var.aws_region : "eu-central-1"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  suffix     = var.environment_suffix
  # The functions' own metrics (Powertools); the PaymentParked alarm watches one of them.
  metrics_namespace = "PaymentPlatform"

  # Functions need the state machine ARN (environment, IAM) and the state machine
  # needs the function ARNs: building the ARN from its name breaks the cycle.
  state_machine_name = "payment-workflow-${local.suffix}"
  state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.state_machine_name}"

  # The workflow's safety-net rule sends to failed-transactions (queue policy)
  # under the messaging key (key policy); its ARN is built from its name so
  # neither needs the workflow module.
  stranded_rule_arn = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/payment-workflow-stranded-${local.suffix}"

  # payment-events and payment-failed deliver to the encrypted events queue:
  # the messaging key admits SNS for these topics (built ARNs: no cycle).
  payment_topic_arns = [
    for name in ["payment-events-${local.suffix}", "payment-failed-${local.suffix}"] :
    "arn:${local.partition}:sns:${local.region}:${local.account_id}:${name}"
  ]

  # Runbook "restore to a point in time" (docs/runbooks.md, `ops restore`): a restored copy of
  # a table replaces the managed one for the functions, their IAM, the alarms and the outputs.
  # The managed table stays in the state untouched: it is the evidence.
  table_overrides = {
    transactions = var.transactions_table_override
    audit        = var.audit_table_override
    idempotency  = var.idempotency_table_override
  }
  table_names = {
    for key, name in module.data.table_names : key => coalesce(lookup(local.table_overrides, key, null), name)
  }
  table_arns = {
    for key, arn in module.data.table_arns : key => (
      lookup(local.table_overrides, key, null) == null
      ? arn
      : "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${lookup(local.table_overrides, key, "")}"
    )
  }
  transactions_table_name = local.table_names["transactions"]
  transactions_table_arn  = local.table_arns["transactions"]

  lambda_package_path = startswith(var.lambda_package_path, "/") ? var.lambda_package_path : "${path.module}/${var.lambda_package_path}"

  fraud_rules = {
    amount_thresholds = merge(
      { default = tostring(var.fraud_amount_threshold) },
      { for currency, amount in var.fraud_amount_thresholds : currency => tostring(amount) },
    )
    velocity_window_minutes = var.fraud_velocity_window_minutes
    velocity_max            = var.fraud_velocity_max
    blocked_countries       = var.fraud_blocked_countries
    blocked_merchants       = var.fraud_blocked_merchants
    reject_score            = var.fraud_reject_score
  }

  # The same names for every function (docs/interfaces.md "Environment
  # variables"); IAM decides what each may touch. No secrets: credentials are
  # read from SSM at run time. POWERTOOLS_SERVICE_NAME is added per function.
  lambda_environment = {
    ENVIRONMENT_SUFFIX           = local.suffix
    TRANSACTIONS_TABLE           = local.transactions_table_name
    AUDIT_TABLE                  = local.table_names["audit"]
    IDEMPOTENCY_TABLE            = local.table_names["idempotency"]
    CLIENTS_TABLE                = module.data.clients_table_name
    BY_DAY_INDEX                 = module.data.index_names["day"]
    BY_CUSTOMER_INDEX            = module.data.index_names["customer"]
    BY_MERCHANT_INDEX            = module.data.index_names["merchant"]
    DAY_SHARDS                   = tostring(var.day_shard_count)
    AUDIT_QUEUE_URL              = module.messaging.audit_queue_url
    FAILED_QUEUE_URL             = module.messaging.failed_queue_url
    DLQ_URL                      = module.messaging.dlq_url
    ALERTS_TOPIC_ARN             = module.messaging.topic_arns["alerts"]
    EVENTS_TOPIC_ARN             = module.messaging.topic_arns["events"]
    FAILED_TOPIC_ARN             = module.messaging.topic_arns["failed"]
    ARCHIVE_BUCKET               = module.storage.bucket_name
    STATE_MACHINE_ARN            = local.state_machine_arn
    PROCESSOR_ENDPOINT_PARAM     = module.storage.parameter_names["processor_endpoint"]
    PROCESSOR_CREDENTIALS_PARAM  = module.storage.parameter_names["processor_credentials"]
    FRAUD_RULES_PARAM            = module.storage.parameter_names["fraud_rules"]
    AUDIT_TTL_DAYS               = tostring(var.audit_ttl_days)
    IDEMPOTENCY_TTL_HOURS        = tostring(var.idempotency_ttl_hours)
    CLEANUP_RETENTION_DAYS       = tostring(var.cleanup_retention_days)
    SETTLEMENT_LEASE_SECONDS     = tostring(var.settlement_lease_seconds)
    STUCK_AFTER_SECONDS          = tostring(var.stuck_after_seconds)
    MAX_SETTLEMENT_ATTEMPTS      = tostring(var.max_settlement_attempts)
    REQUIRE_PRINCIPAL            = tostring(var.require_authorizer_principal)
    ALARM_NAME_PREFIX            = "payment-"
    CORS_ALLOWED_ORIGINS         = join(",", var.cors_allowed_origins)
    POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    LOG_LEVEL                    = "INFO"
  }

  log_group_names = merge(
    module.functions.log_group_names,
    {
      workflow   = module.workflow.log_group_name
      api-access = module.api.access_log_group_name
      vpc-flow   = module.network.flow_log_group_name
    },
    { for edge in module.edge : "waf" => edge.log_group_name },
  )
}

################################################################################
# Foundations: keys and network
################################################################################

module "kms" {
  source = "./modules/kms"

  suffix                  = local.suffix
  account_id              = local.account_id
  region                  = local.region
  partition               = local.partition
  deletion_window_in_days = var.kms_deletion_window_in_days
  xray_encryption         = var.manage_xray_encryption
  eventbridge_rule_arns   = [local.stranded_rule_arn]
  sns_topic_arns          = local.payment_topic_arns
}

module "network" {
  source = "./modules/network"

  suffix                      = local.suffix
  region                      = local.region
  vpc_cidr                    = var.vpc_cidr
  az_count                    = var.availability_zone_count
  interface_endpoint_services = var.interface_endpoint_services
  enable_nat_gateway          = var.enable_nat_gateway
  flow_log_retention_days     = var.security_log_retention_days
  logs_kms_key_arn            = module.kms.key_arns["logs"]
}

################################################################################
# Request path: WAF -> API Gateway -> functions
################################################################################

module "edge" {
  source = "./modules/edge"
  count  = var.enable_waf ? 1 : 0

  suffix              = local.suffix
  stage_arn           = module.api.stage_arn
  stage_name          = module.api.stage_name
  rate_limit          = var.waf_rate_limit
  health_rate_limit   = var.waf_health_rate_limit
  max_body_bytes      = module.api.request_body_max_bytes
  geo_block_countries = var.geo_block_countries
  enable_bot_control  = var.enable_bot_control
  log_retention_days  = var.security_log_retention_days
  logs_kms_key_arn    = module.kms.key_arns["logs"]
}

# module.edge is counted by enable_waf; state that records it without an index
# is mapped to instance 0 instead of being destroyed and recreated (CHANGELOG.md).
moved {
  from = module.edge
  to   = module.edge[0]
}

module "api" {
  source = "./modules/api"

  suffix                         = local.suffix
  function_invoke_arns           = module.functions.invoke_arns
  function_names                 = module.functions.function_names
  authorizer_ttl_seconds         = var.api_authorizer_ttl_seconds
  request_schema                 = file("${path.module}/lambda/payments/schemas/create_transaction.json")
  cors_allowed_origins           = var.cors_allowed_origins
  throttle_rate_limit            = var.api_throttle_rate_limit
  throttle_burst_limit           = var.api_throttle_burst_limit
  usage_plans                    = var.usage_plans
  access_log_retention_days      = var.security_log_retention_days
  logs_kms_key_arn               = module.kms.key_arns["logs"]
  manage_account_cloudwatch_role = var.manage_api_gateway_account
  custom_domain_name             = var.api_domain_name
  custom_domain_certificate_arn  = var.api_domain_certificate_arn
}

module "functions" {
  source = "./modules/functions"

  suffix                    = local.suffix
  package_path              = local.lambda_package_path
  package_hash              = filebase64sha256(local.lambda_package_path)
  architecture              = var.lambda_architecture
  memory_size               = var.lambda_memory_size
  reserved_concurrency      = var.reserved_concurrency
  account_concurrency_limit = var.account_concurrency_limit
  subnet_ids                = module.network.private_subnet_ids
  security_group_ids        = [module.network.lambda_security_group_id]
  environment               = local.lambda_environment
  log_retention_days        = var.log_retention_days
  logs_kms_key_arn          = module.kms.key_arns["logs"]
  env_kms_key_arn           = module.kms.key_arns["data"]
  failed_queue_arn          = module.messaging.failed_queue_arn
  job_failure_topic_arn     = module.messaging.topic_arns["alerts"]

  resources = {
    transactions_table_arn = local.transactions_table_arn
    audit_table_arn        = local.table_arns["audit"]
    idempotency_table_arn  = local.table_arns["idempotency"]
    clients_table_arn      = module.data.clients_table_arn
    audit_queue_arn        = module.messaging.audit_queue_arn
    failed_queue_arn       = module.messaging.failed_queue_arn
    dlq_arn                = module.messaging.dlq_arn
    events_topic_arn       = module.messaging.topic_arns["events"]
    failed_topic_arn       = module.messaging.topic_arns["failed"]
    alerts_topic_arn       = module.messaging.topic_arns["alerts"]
    archive_bucket_arn     = module.storage.bucket_arn
    state_machine_arn      = local.state_machine_arn
    ssm_parameter_arns     = module.storage.parameter_arns
    kms_key_arns           = module.kms.key_arns
  }
}

################################################################################
# State: tables, workflow, queues and topics, archive and parameters
################################################################################

module "data" {
  source = "./modules/data"

  suffix                 = local.suffix
  kms_key_arn            = module.kms.key_arns["data"]
  deletion_protection    = var.table_deletion_protection
  point_in_time_recovery = true
}

module "workflow" {
  source = "./modules/workflow"

  suffix             = local.suffix
  type               = var.workflow_type
  function_arns      = module.functions.function_arns
  log_retention_days = var.security_log_retention_days
  logs_kms_key_arn   = module.kms.key_arns["logs"]
  kms_key_arn        = module.kms.key_arns["data"]
  # TimeoutSeconds is derived from these (every task's worst case fits).
  function_timeouts = module.functions.timeouts
  failed_queue_arn  = module.messaging.failed_queue_arn
}

module "messaging" {
  source = "./modules/messaging"

  suffix              = local.suffix
  kms_key_arn         = module.kms.key_arns["messaging"]
  publisher_role_arns = values(module.functions.role_arns)

  alert_subscriptions       = var.alert_subscriptions
  event_email_subscriptions = var.payment_event_email_subscriptions
  max_payment_rate          = var.api_throttle_rate_limit

  # The retry function consumes failed-transactions: AWS requires an event-source queue's visibility
  # timeout to be at least 6 x its function's timeout (Lambda developer guide, "Using Lambda with
  # Amazon SQS"), so it is derived from that timeout, never set apart from it.
  failed_visibility_timeout_seconds = 6 * module.functions.timeouts["retry"]

  eventbridge_rule_arns = [local.stranded_rule_arn]
}

module "storage" {
  source = "./modules/storage"

  suffix                             = local.suffix
  account_id                         = local.account_id
  kms_key_arn                        = module.kms.key_arns["data"]
  force_destroy                      = var.archive_force_destroy
  archive_transition_days            = var.archive_transition_days
  archive_transition_prefix          = var.archive_transition_prefix
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  processor_endpoint                 = var.processor_endpoint
  internet_egress                    = var.enable_nat_gateway
  processor_credentials              = var.processor_credentials
  fraud_rules_json                   = jsonencode(local.fraud_rules)
}

################################################################################
# Scheduled jobs (02:00 report, 03:00 cleanup)
################################################################################

module "schedules" {
  source = "./modules/schedules"

  suffix                      = local.suffix
  report_function_arn         = module.functions.function_arns["report"]
  cleanup_function_arn        = module.functions.function_arns["cleanup"]
  sweeper_function_arn        = module.functions.function_arns["sweeper"]
  report_schedule_expression  = var.report_schedule_expression
  cleanup_schedule_expression = var.cleanup_schedule_expression
  cleanup_retention_days      = var.cleanup_retention_days
  kms_key_arn                 = module.kms.key_arns["messaging"]
}

################################################################################
# Observability: alarms, dashboard, X-Ray, on-call links
################################################################################

module "observability" {
  source = "./modules/observability"

  suffix                 = local.suffix
  region                 = local.region
  alerts_topic_arn       = module.messaging.topic_arns["alerts"]
  function_names         = module.functions.function_names
  metrics_namespace      = local.metrics_namespace
  service_names          = module.functions.service_names
  api_name               = module.api.rest_api_name
  api_stage_name         = module.api.stage_name
  table_names            = local.table_names
  dlq_url                = module.messaging.dlq_url
  state_machine_arn      = module.workflow.state_machine_arn
  state_machine_name     = module.workflow.state_machine_name
  log_group_names        = local.log_group_names
  xray_kms_key_arn       = module.kms.key_arns["logs"]
  manage_xray_encryption = var.manage_xray_encryption
  enable_xray_resources  = var.enable_xray_resources
  sampling_rate          = var.xray_sampling_rate

  queue_names = {
    failed        = module.messaging.failed_queue_name
    dlq           = module.messaging.dlq_name
    audit         = module.messaging.audit_queue_name
    scheduler_dlq = module.schedules.dlq_name
  }

  queue_urls = {
    failed        = module.messaging.failed_queue_url
    dlq           = module.messaging.dlq_url
    audit         = module.messaging.audit_queue_url
    scheduler_dlq = module.schedules.dlq_url
  }
}

# The functions were given an ARN built from this name: the workflow module must
# create exactly that state machine (the name is known at plan time).
check "state_machine_name_matches" {
  assert {
    condition     = module.workflow.state_machine_name == local.state_machine_name
    error_message = "module.workflow names the state machine ${module.workflow.state_machine_name}, but the functions were wired to ${local.state_machine_arn}."
  }
}

# The queue and key policies name the safety-net rule by a built ARN: it must be
# the rule the workflow module made.
check "stranded_rule_arn_matches" {
  assert {
    condition     = module.workflow.stranded_rule_arn == local.stranded_rule_arn
    error_message = "module.workflow's safety-net rule is ${module.workflow.stranded_rule_arn}, but the failed queue and messaging key admit ${local.stranded_rule_arn}."
  }
}

# No default subscriber (an unconfirmed placeholder e-mail reaches nobody
# either); a stack without one is allowed but warned about on every plan.
check "alerts_reach_someone" {
  assert {
    condition     = length(var.alert_subscriptions) > 0
    error_message = "alert_subscriptions is empty: alarms, failed scheduled jobs and health alerts reach nobody. Subscribe an incident tool (https), an SQS queue or a Lambda function (see examples/production.tfvars); `ops links --subscriptions` shows which are confirmed."
  }
}

# A warning, not an error: the production example ships with a placeholder integration key, which an
# HTTPS subscription can never confirm (the incident tool answers 404), so alerts would reach nobody.
check "alert_endpoints_are_not_placeholders" {
  assert {
    condition     = alltrue([for s in var.alert_subscriptions : !strcontains(upper(s.endpoint), "REPLACE_WITH")])
    error_message = "an alert_subscriptions endpoint still holds a placeholder (REPLACE_WITH_...): put the incident tool's real integration URL there; a placeholder endpoint never confirms, so alerts reach nobody."
  }
}
