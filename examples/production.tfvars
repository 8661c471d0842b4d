# Production values for the root module:
#   terraform apply -var-file=examples/production.tfvars
# (examples/complete shows the same stack as a module call.)
#
# Reserved concurrency is off by default because a new account's concurrency
# quota is small and AWS keeps 100 executions unreserved: reserving 500 on such
# an account makes PutFunctionConcurrency fail during apply. Use these values
# once the account's quota has been raised, and state the quota so the plan
# checks that the reservations fit (total + 100 <= account_concurrency_limit).

environment_suffix = "prod"

# Service Quotas: AWS Lambda "Concurrent executions" (L-B99A9384) of this
# account and region. The plan fails if the reservations below do not fit.
account_concurrency_limit = 1000

reserved_concurrency = {
  # Workflow path: the validator takes every payment first.
  validator    = 100
  fraud-check  = 50
  settlement   = 50
  notification = 50
  # Request path: intake and the status reads keep their share when the
  # workflow is saturated.
  intake = 50
  status = 50
  # Every uncached API request waits for the authorizer first.
  authorizer = 50
  # Operations.
  retry  = 50
  health = 50
  report = 50
  # One cleanup at a time (its DynamoDB lock is the real guard; the
  # reservation keeps a second run from even starting).
  cleanup = 1
  # One sweep at a time: a second concurrent sweep would only repeat the
  # first one's conditional writes.
  sweeper = 1
}

# A real card processor outside AWS: HTTPS on 443 through a NAT gateway.
processor_endpoint = "https://api.processor.example.com/v1/charges"
enable_nat_gateway = true

# Protection a production stack wants and a test stack does not.
table_deletion_protection   = true
archive_force_destroy       = false
kms_deletion_window_in_days = 30

# EXPRESS starts 100,000 executions/s; STANDARD's start quota cannot follow
# 10,000 rps (docs/capacity.md). The workflow's execution budget fits EXPRESS's
# 300 s limit (the plan refuses it otherwise).
workflow_type = "EXPRESS"

# A stage cannot enable execution or access logging until the account has an
# API Gateway CloudWatch role (API Gateway developer guide, "Set up CloudWatch
# logging for REST APIs"): a new account has none, so this stack sets it. Set
# false only where an account baseline already sets that role in this region.
manage_api_gateway_account = true
# Account-wide X-Ray encryption stays with the account baseline.
manage_xray_encryption = false

# Alerts go to a machine-confirmed channel: the incident tool's SNS webhook
# (HTTPS; it confirms the subscription itself, and the apply waits for it).
# E-mail may be added beside it, never alone.
alert_subscriptions = [
  { protocol = "https", endpoint = "https://events.pagerduty.com/integration/REPLACE_WITH_INTEGRATION_KEY/enqueue" },
]

# Payment events reach consumers through the events queue (events_queue_url);
# no e-mail per payment at production volume (the plan refuses it).

# Clients reach the API only through its custom domain (TLS 1.2); the default
# execute-api endpoint is disabled. The certificate is issued by ACM in this
# region for the name.
api_domain_name            = "api.payments.example.com"
api_domain_certificate_arn = "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
