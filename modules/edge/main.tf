data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = "payment-waf-${var.suffix}"

  managed_rule_groups = {
    AWSManagedRulesCommonRuleSet         = 10
    AWSManagedRulesKnownBadInputsRuleSet = 20
    AWSManagedRulesSQLiRuleSet           = 30
  }

  # The platform's error shape (Stripe's), same as the API's own errors.
  error_bodies = {
    blocked      = { type = "invalid_request_error", code = "request_blocked", message = "Request blocked" }
    rate_limited = { type = "rate_limit_error", code = "rate_limited", message = "Too many requests from this address; retry later" }
    too_large    = { type = "invalid_request_error", code = "payload_too_large", message = "Request body too large" }
  }

  # /health must stay reachable for load balancers and on-call probes: it has
  # its own, lower per-IP rate rule instead of the general one.
  health_paths = ["/health", "/${var.stage_name}/health"]

  # The body-size rule only sees what API Gateway forwards to WAF (16 KB by
  # default, up to 64 KB at extra cost): forward the smallest size that holds
  # the largest valid body.
  body_inspection_limit = [
    for kb in [16, 32, 48, 64] : "KB_${kb}" if kb * 1024 >= var.max_body_bytes
  ][0]
}

resource "aws_wafv2_web_acl" "this" {
  name        = local.name
  description = "Payment API: geo block, per-IP rate limits, schema body size, AWS managed rules"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  association_config {
    request_body {
      api_gateway {
        default_size_inspection_limit = local.body_inspection_limit
      }
    }
  }

  dynamic "custom_response_body" {
    for_each = local.error_bodies

    content {
      key          = custom_response_body.key
      content_type = "APPLICATION_JSON"
      content      = jsonencode({ error = merge(custom_response_body.value, { param = null }) })
    }
  }

  dynamic "rule" {
    for_each = length(var.geo_block_countries) > 0 ? [var.geo_block_countries] : []

    content {
      name     = "geo-block"
      priority = 0

      action {
        block {
          custom_response {
            response_code            = 403
            custom_response_body_key = "blocked"
          }
        }
      }

      statement {
        geo_match_statement {
          country_codes = rule.value
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-geo-block"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 1

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "rate_limited"

          response_header {
            name  = "Retry-After"
            value = "300"
          }
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.rate_limit
        evaluation_window_sec = 300
        aggregate_key_type    = "IP"

        scope_down_statement {
          not_statement {
            statement {
              or_statement {
                dynamic "statement" {
                  for_each = local.health_paths

                  content {
                    byte_match_statement {
                      search_string         = statement.value
                      positional_constraint = "STARTS_WITH"

                      field_to_match {
                        uri_path {}
                      }

                      text_transformation {
                        priority = 0
                        type     = "LOWERCASE"
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  # /health is unauthenticated and exempt from the rule above: its own, lower
  # per-IP limit keeps it from being used to burn concurrency and AWS calls.
  rule {
    name     = "rate-limit-health"
    priority = 2

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "rate_limited"

          response_header {
            name  = "Retry-After"
            value = "300"
          }
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.health_rate_limit
        evaluation_window_sec = 300
        aggregate_key_type    = "IP"

        scope_down_statement {
          or_statement {
            dynamic "statement" {
              for_each = local.health_paths

              content {
                byte_match_statement {
                  search_string         = statement.value
                  positional_constraint = "STARTS_WITH"

                  field_to_match {
                    uri_path {}
                  }

                  text_transformation {
                    priority = 0
                    type     = "LOWERCASE"
                  }
                }
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-rate-limit-health"
      sampled_requests_enabled   = true
    }
  }

  # The schema's own size limit replaces the Core rule set's fixed 8 KB
  # SizeRestrictions_BODY (counted below): every valid body passes, anything
  # larger gets a JSON 413. A body longer than the forwarded inspection size
  # matches too (oversize_handling = MATCH).
  rule {
    name     = "body-size-limit"
    priority = 3

    action {
      block {
        custom_response {
          response_code            = 413
          custom_response_body_key = "too_large"
        }
      }
    }

    statement {
      size_constraint_statement {
        comparison_operator = "GT"
        size                = var.max_body_bytes

        field_to_match {
          body {
            oversize_handling = "MATCH"
          }
        }

        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.name}-body-size-limit"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = local.managed_rule_groups

    content {
      name     = rule.key
      priority = rule.value

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key

          # SizeRestrictions_BODY blocks every body over 8 KB, below the
          # schema's largest valid body: counted, and body-size-limit enforces
          # the schema's size instead.
          dynamic "rule_action_override" {
            for_each = rule.key == "AWSManagedRulesCommonRuleSet" ? ["SizeRestrictions_BODY"] : []

            content {
              name = rule_action_override.value

              action_to_use {
                count {}
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  dynamic "rule" {
    for_each = var.enable_bot_control ? ["AWSManagedRulesBotControlRuleSet"] : []

    content {
      name     = rule.value
      priority = 40

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value

          managed_rule_group_configs {
            aws_managed_rules_bot_control_rule_set {
              inspection_level = "TARGETED"
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.name}-${rule.value}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "stage" {
  resource_arn = var.stage_arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

# -----------------------------------------------------------------------------
# Logging: WAF only delivers to log groups named aws-waf-logs-*.
# -----------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "this" {
  name              = "aws-waf-logs-payment-${var.suffix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

# Written explicitly so delivery does not depend on WAF creating an
# account-wide policy on the caller's behalf.
data "aws_iam_policy_document" "delivery" {
  statement {
    sid       = "WafLogDelivery"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "delivery" {
  policy_name     = "payment-waf-logs-${var.suffix}"
  policy_document = data.aws_iam_policy_document.delivery.json
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.this.arn]

  # Credentials never reach the log.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }

  depends_on = [aws_cloudwatch_log_resource_policy.delivery]
}
