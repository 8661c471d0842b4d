# A production-shaped environment: protection on, a dedicated region, the real
# alert addresses. Build the Lambda package first (`make build`), then
# `terraform init && terraform apply` in this directory.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6.0"
    }
  }
}

module "payment_platform" {
  source = "../.."

  environment_suffix = "prod"
  aws_region         = "eu-central-1"
  tags = {
    CostCenter = "payments"
    Owner      = "platform-team"
  }

  # Protection a production stack wants and a test stack does not.
  table_deletion_protection   = true
  archive_force_destroy       = false
  kms_deletion_window_in_days = 30

  # Alarms go to the incident tool's webhook (machine-confirmed), e-mail beside it.
  alert_subscriptions = [
    { protocol = "https", endpoint = "https://events.pagerduty.com/integration/REPLACE_WITH_INTEGRATION_KEY/enqueue" },
    { protocol = "email", endpoint = "payments-oncall@example.com" },
  ]
  cors_allowed_origins = ["https://checkout.example.com"]

  # EXPRESS starts 100,000 executions/s; STANDARD's quota cannot follow 10,000 rps.
  workflow_type = "EXPRESS"

  # Another stack in this account already manages the API Gateway CloudWatch role.
  manage_api_gateway_account = false

  # Reserved concurrency and the account quota it must fit in: the same values
  # as ../production.tfvars (none are reserved by default).
  account_concurrency_limit = 1000
  reserved_concurrency = {
    validator    = 100
    fraud-check  = 50
    settlement   = 50
    notification = 50
    intake       = 50
    status       = 50
    retry        = 50
    health       = 50
    report       = 50
    cleanup      = 1
  }
}

output "api_invoke_url" {
  description = "Base URL of the prod stage."
  value       = module.payment_platform.api_invoke_url
}

output "oncall_links" {
  description = "Console links for the on-call engineer."
  value       = module.payment_platform.oncall_links
}
