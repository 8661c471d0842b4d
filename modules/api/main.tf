data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = "payment-api-${var.suffix}"

  # ---------------------------------------------------------------------------
  # Routes (docs/interfaces.md "API"). Explicit resources rather than an
  # OpenAPI body: every piece is plannable, diffable and testable on its own.
  # ---------------------------------------------------------------------------
  top_resources = {
    transactions = "transactions"
    status       = "status"
    validate     = "validate"
    health       = "health"
  }
  child_resources = {
    transaction = { parent = "transactions", path_part = "{id}" }
    status_id   = { parent = "status", path_part = "{id}" }
  }
  resource_paths = {
    transactions = "/transactions"
    transaction  = "/transactions/{id}"
    status       = "/status"
    status_id    = "/status/{id}"
    validate     = "/validate"
    health       = "/health"
  }

  routes = {
    create-transaction = { resource = "transactions", method = "POST", function = "intake", api_key = true, validation = "body" }
    validate           = { resource = "validate", method = "POST", function = "intake", api_key = true, validation = "body" }
    get-transaction    = { resource = "transaction", method = "GET", function = "status", api_key = true, validation = "params" }
    get-status         = { resource = "status_id", method = "GET", function = "status", api_key = true, validation = "params" }
    health             = { resource = "health", method = "GET", function = "health", api_key = false, validation = "none" }
  }

  resource_ids = merge(
    { for k, r in aws_api_gateway_resource.top : k => r.id },
    { for k, r in aws_api_gateway_resource.child : k => r.id },
  )

  # Resources that carry a route get an OPTIONS preflight.
  cors_resources = {
    for res in distinct([for r in values(local.routes) : r.resource]) :
    res => sort(concat(["OPTIONS"], [for r in values(local.routes) : r.method if r.resource == res]))
  }

  # ---------------------------------------------------------------------------
  # CORS: one value used everywhere: the preflight's method and integration
  # responses and the gateway responses declare the same origin, and the
  # functions read the same list (CORS_ALLOWED_ORIGINS).
  # ---------------------------------------------------------------------------
  cors_any_origin = contains(var.cors_allowed_origins, "*")
  cors_origin     = local.cors_any_origin ? "*" : var.cors_allowed_origins[0]
  cors_allow_headers = join(",", [
    "Content-Type", "X-Api-Key", "Idempotency-Key", "Authorization", "X-Amz-Date", "X-Amz-Security-Token",
  ])
  cors_common_headers = {
    "Access-Control-Allow-Origin"  = "'${local.cors_origin}'"
    "Access-Control-Allow-Headers" = "'${local.cors_allow_headers}'"
  }
  # With several listed origins the preflight echoes the caller's Origin when
  # it is one of them (a header holds exactly one origin).
  cors_preflight_template = local.cors_any_origin || length(var.cors_allowed_origins) == 1 ? "" : join("\n", [
    "#set($allowed = [${join(", ", [for o in var.cors_allowed_origins : "\"${o}\""])}])",
    "#set($origin = $input.params().header.get('Origin'))",
    "#if($origin && $allowed.contains($origin))",
    "#set($context.responseOverride.header.Access-Control-Allow-Origin = $origin)",
    "#end",
  ])

  # ---------------------------------------------------------------------------
  # Gateway responses in the platform's error shape (Stripe's), with CORS so
  # browsers can read them.
  #
  # A gateway-response template is plain substitution, not VTL: a variable is
  # pasted as is. $context.error.message and validationErrorString contain
  # quotes (validation strings quote the schema's patterns and property
  # names), so they would break the JSON. `message` here is a JSON value:
  # either a constant string (jsonencode) or $context.error.messageString,
  # which API Gateway renders as an already quoted and escaped JSON string.
  # The gateway's own 400 therefore says "Invalid request body" without the
  # field; the intake function validates the same schema (defence in depth)
  # and names the offending field in "param" for what it answers itself.
  # $context.httpMethod is an HTTP token (no quotes or backslashes).
  # ---------------------------------------------------------------------------
  error_message = "$context.error.messageString"

  gateway_responses = {
    DEFAULT_4XX                  = { status = null, type = "invalid_request_error", code = "bad_request", message = local.error_message }
    DEFAULT_5XX                  = { status = null, type = "api_error", code = "internal_error", message = local.error_message }
    BAD_REQUEST_BODY             = { status = "400", type = "invalid_request_error", code = "invalid_body", message = local.error_message }
    BAD_REQUEST_PARAMETERS       = { status = "400", type = "invalid_request_error", code = "invalid_parameters", message = local.error_message }
    INVALID_API_KEY              = { status = "403", type = "authentication_error", code = "invalid_api_key", message = jsonencode("Invalid or missing API key") }
    ACCESS_DENIED                = { status = "403", type = "authentication_error", code = "access_denied", message = local.error_message }
    WAF_FILTERED                 = { status = "403", type = "invalid_request_error", code = "request_blocked", message = jsonencode("Request blocked") }
    UNAUTHORIZED                 = { status = "401", type = "authentication_error", code = "unauthenticated", message = jsonencode("Missing or malformed credentials: send Authorization: Bearer <key id>.<secret>") }
    AUTHORIZER_FAILURE           = { status = "503", type = "api_error", code = "service_unavailable", message = jsonencode("Service temporarily unavailable") }
    MISSING_AUTHENTICATION_TOKEN = { status = "404", type = "invalid_request_error", code = "route_not_found", message = "\"No such route for method $context.httpMethod\"" }
    REQUEST_TOO_LARGE            = { status = "413", type = "invalid_request_error", code = "payload_too_large", message = jsonencode("Request body too large") }
    UNSUPPORTED_MEDIA_TYPE       = { status = "415", type = "invalid_request_error", code = "unsupported_media_type", message = jsonencode("Content-Type must be application/json") }
    THROTTLED                    = { status = "429", type = "rate_limit_error", code = "rate_limited", message = jsonencode("Too many requests") }
    QUOTA_EXCEEDED               = { status = "429", type = "rate_limit_error", code = "quota_exceeded", message = jsonencode("Usage plan quota exceeded") }
    API_CONFIGURATION_ERROR      = { status = "500", type = "api_error", code = "api_configuration_error", message = jsonencode("Internal error") }
    INTEGRATION_FAILURE          = { status = "503", type = "api_error", code = "service_unavailable", message = jsonencode("Service temporarily unavailable") }
    INTEGRATION_TIMEOUT          = { status = "503", type = "api_error", code = "service_unavailable", message = jsonencode("Service temporarily unavailable") }
  }
}

# -----------------------------------------------------------------------------
# REST API and resources
# -----------------------------------------------------------------------------
resource "aws_api_gateway_rest_api" "this" {
  name           = local.name
  description    = "Payment platform API (${var.suffix})"
  api_key_source = "HEADER"

  # With a custom domain (TLS_1_2) the default endpoint would let clients
  # negotiate TLS 1.0 and skip the domain: it answers 403 instead.
  disable_execute_api_endpoint = var.custom_domain_name != null

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "top" {
  for_each = local.top_resources

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.value
}

resource "aws_api_gateway_resource" "child" {
  for_each = local.child_resources

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.top[each.value.parent].id
  path_part   = each.value.path_part
}

# -----------------------------------------------------------------------------
# Validation: the JSON-schema model on POST bodies, path parameters on GETs
# -----------------------------------------------------------------------------
resource "aws_api_gateway_model" "create_transaction" {
  rest_api_id  = aws_api_gateway_rest_api.this.id
  name         = "CreateTransaction"
  description  = "Create-transaction request body (lambda/payments/schemas/create_transaction.json)"
  content_type = "application/json"
  schema       = var.request_schema
}

resource "aws_api_gateway_request_validator" "body" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "payment-body-${var.suffix}"
  validate_request_body       = true
  validate_request_parameters = false
}

resource "aws_api_gateway_request_validator" "params" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "payment-params-${var.suffix}"
  validate_request_body       = false
  validate_request_parameters = true
}

# -----------------------------------------------------------------------------
# Authorizer: the caller's secret (Authorization header) -> principal and
# merchant scope (docs/interfaces.md "Authorization"). The decision covers the
# whole stage, so a cached one is valid on every route; a short TTL bounds how
# long a revoked client keeps working.
# -----------------------------------------------------------------------------
resource "aws_api_gateway_authorizer" "this" {
  name                             = "payment-clients-${var.suffix}"
  rest_api_id                      = aws_api_gateway_rest_api.this.id
  type                             = "REQUEST"
  authorizer_uri                   = var.function_invoke_arns["authorizer"]
  identity_source                  = "method.request.header.Authorization"
  authorizer_result_ttl_in_seconds = var.authorizer_ttl_seconds
}

resource "aws_lambda_permission" "authorizer" {
  statement_id  = "apigateway-authorizer"
  action        = "lambda:InvokeFunction"
  function_name = var.function_names["authorizer"]
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/authorizers/${aws_api_gateway_authorizer.this.id}"
}

# -----------------------------------------------------------------------------
# Routes -> Lambda proxy integrations
# -----------------------------------------------------------------------------
resource "aws_api_gateway_method" "route" {
  #checkov:skip=CKV_AWS_59: every route but GET /health has the Lambda authorizer and an API key; /health is open by design (load balancers and on-call probes call it without credentials), returns no customer data and sits behind WAF and stage throttling
  for_each = local.routes

  rest_api_id      = aws_api_gateway_rest_api.this.id
  resource_id      = local.resource_ids[each.value.resource]
  http_method      = each.value.method
  authorization    = each.value.api_key ? "CUSTOM" : "NONE"
  authorizer_id    = each.value.api_key ? aws_api_gateway_authorizer.this.id : null
  api_key_required = each.value.api_key
  operation_name   = replace(title(replace(each.key, "-", " ")), " ", "")

  request_validator_id = (
    each.value.validation == "body" ? aws_api_gateway_request_validator.body.id :
    each.value.validation == "params" ? aws_api_gateway_request_validator.params.id : null
  )
  request_models     = each.value.validation == "body" ? { "application/json" = aws_api_gateway_model.create_transaction.name } : null
  request_parameters = each.value.validation == "params" ? { "method.request.path.id" = true } : null
}

resource "aws_api_gateway_integration" "route" {
  for_each = local.routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = local.resource_ids[each.value.resource]
  http_method             = aws_api_gateway_method.route[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_invoke_arns[each.value.function]
  timeout_milliseconds    = 29000
}

resource "aws_lambda_permission" "route" {
  for_each = local.routes

  statement_id  = "apigateway-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = var.function_names[each.value.function]
  principal     = "apigateway.amazonaws.com"
  # Path parameters appear as "*" so the grant covers every id but no other route.
  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}/*/${each.value.method}${replace(local.resource_paths[each.value.resource], "{id}", "*")}"
}

# -----------------------------------------------------------------------------
# CORS preflight (MOCK)
# -----------------------------------------------------------------------------
resource "aws_api_gateway_method" "options" {
  #checkov:skip=CKV2_AWS_53: CORS preflight answered by a MOCK integration; it has no body or parameters to validate
  for_each = local.cors_resources

  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = local.resource_ids[each.key]
  http_method   = "OPTIONS"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "options" {
  for_each = local.cors_resources

  rest_api_id       = aws_api_gateway_rest_api.this.id
  resource_id       = local.resource_ids[each.key]
  http_method       = aws_api_gateway_method.options[each.key].http_method
  type              = "MOCK"
  request_templates = { "application/json" = jsonencode({ statusCode = 200 }) }
}

resource "aws_api_gateway_method_response" "options" {
  for_each = local.cors_resources

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = local.resource_ids[each.key]
  http_method = aws_api_gateway_method.options[each.key].http_method
  status_code = "200"

  response_models = { "application/json" = "Empty" }
  # Declares exactly the headers the integration response fills in: both
  # come from local.preflight_headers.
  response_parameters = {
    for h in keys(local.preflight_headers[each.key]) : "method.response.header.${h}" => true
  }
}

# Header values of each preflight, computed once and shared by the method and
# integration responses.
locals {
  preflight_headers = {
    for res, methods in local.cors_resources : res => merge(local.cors_common_headers, {
      "Access-Control-Allow-Methods" = "'${join(",", methods)}'"
      "Access-Control-Max-Age"       = "'600'"
    })
  }
}

resource "aws_api_gateway_integration_response" "options" {
  for_each = local.cors_resources

  rest_api_id = aws_api_gateway_rest_api.this.id
  resource_id = local.resource_ids[each.key]
  http_method = aws_api_gateway_method.options[each.key].http_method
  status_code = aws_api_gateway_method_response.options[each.key].status_code

  response_parameters = {
    for h, v in local.preflight_headers[each.key] : "method.response.header.${h}" => v
  }
  response_templates = { "application/json" = local.cors_preflight_template }

  depends_on = [aws_api_gateway_integration.options]
}

# -----------------------------------------------------------------------------
# Gateway responses
# -----------------------------------------------------------------------------
resource "aws_api_gateway_gateway_response" "this" {
  for_each = local.gateway_responses

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.key
  status_code   = each.value.status

  response_parameters = {
    for h, v in local.cors_common_headers : "gatewayresponse.header.${h}" => v
  }
  response_templates = {
    "application/json" = join("", [
      "{\"error\":{",
      "\"type\":\"${each.value.type}\",",
      "\"code\":\"${each.value.code}\",",
      "\"message\":${each.value.message},",
      "\"param\":null",
      "}}",
    ])
  }
}

# -----------------------------------------------------------------------------
# Deployment and stage
# -----------------------------------------------------------------------------
resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  description = "Managed by Terraform"

  # Any change to a route, integration, model, validator, CORS answer or
  # gateway response yields a new deployment; the stage then points at it.
  # Hashes the configuration plus the ids of what it creates (a re-created
  # resource gets a new id), never attributes read back from the service,
  # which may come back normalised (e.g. the model schema's whitespace) and
  # would redeploy on every plan.
  triggers = {
    redeployment = sha1(jsonencode({
      api_key_source    = aws_api_gateway_rest_api.this.api_key_source
      resources         = local.resource_paths
      routes            = local.routes
      integrations      = { for k, r in local.routes : k => var.function_invoke_arns[r.function] }
      request_schema    = var.request_schema
      validators        = [aws_api_gateway_request_validator.body.id, aws_api_gateway_request_validator.params.id]
      preflight         = local.preflight_headers
      preflight_body    = local.cors_preflight_template
      gateway_responses = local.gateway_responses
      cors_headers      = local.cors_common_headers
      ids = concat(
        [for r in aws_api_gateway_resource.top : r.id],
        [for r in aws_api_gateway_resource.child : r.id],
        [for m in aws_api_gateway_method.route : m.id],
        [for i in aws_api_gateway_integration.route : i.id],
        [for m in aws_api_gateway_method.options : m.id],
        [for i in aws_api_gateway_integration.options : i.id],
        [for r in aws_api_gateway_method_response.options : r.id],
        [for r in aws_api_gateway_integration_response.options : r.id],
        [for r in aws_api_gateway_gateway_response.this : r.id],
        [aws_api_gateway_model.create_transaction.id, aws_api_gateway_authorizer.this.id],
      )
      authorizer = [var.function_invoke_arns["authorizer"], var.authorizer_ttl_seconds]
    }))
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [
    aws_api_gateway_integration.route,
    aws_api_gateway_integration_response.options,
    aws_api_gateway_gateway_response.this,
  ]
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${local.name}/access"
  retention_in_days = var.access_log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

# API Gateway would otherwise create this group itself on first request:
# unencrypted and never expiring.
resource "aws_cloudwatch_log_group" "execution" {
  name              = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
  retention_in_days = var.access_log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120: caching stays off: transaction status changes and idempotent replays must never come from a cache
  #checkov:skip=CKV2_AWS_51: clients authenticate with a bearer client secret (Lambda authorizer) over TLS, API keys meter usage; mutual TLS needs a truststore on the custom domain, out of scope
  #checkov:skip=CKV2_AWS_29: the WAF web ACL is associated with this stage by modules/edge (aws_wafv2_web_acl_association.stage)
  rest_api_id           = aws_api_gateway_rest_api.this.id
  deployment_id         = aws_api_gateway_deployment.this.id
  stage_name            = var.stage_name
  description           = "Production stage"
  xray_tracing_enabled  = true
  cache_cluster_enabled = false

  variables = {
    environment = var.suffix
    api_version = var.api_version
  }

  # Metadata only: never the body, headers or API key value.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      extendedRequestId  = "$context.extendedRequestId"
      ip                 = "$context.identity.sourceIp"
      caller             = "$context.identity.caller"
      user               = "$context.identity.user"
      userAgent          = "$context.identity.userAgent"
      requestTime        = "$context.requestTime"
      requestTimeEpoch   = "$context.requestTimeEpoch"
      httpMethod         = "$context.httpMethod"
      resourcePath       = "$context.resourcePath"
      path               = "$context.path"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      responseLatency    = "$context.responseLatency"
      integrationLatency = "$context.integration.latency"
      integrationStatus  = "$context.integration.status"
      errorType          = "$context.error.responseType"
      wafResponseCode    = "$context.wafResponseCode"
      webAclArn          = "$context.webaclArn"
      apiKeyId           = "$context.identity.apiKeyId"
      xrayTraceId        = "$context.xrayTraceId"
    })
  }

  depends_on = [
    aws_api_gateway_account.this,
    aws_cloudwatch_log_group.execution,
  ]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225: caching stays off: transaction status changes and idempotent replays must never come from a cache
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled = true
    logging_level   = "INFO"
    # Data trace writes full request and response bodies (card tokens,
    # customer data) to the execution log: out of PCI scope only while off.
    data_trace_enabled     = false
    throttling_rate_limit  = var.throttle_rate_limit
    throttling_burst_limit = var.throttle_burst_limit
    caching_enabled        = false
  }
}

# -----------------------------------------------------------------------------
# Usage plans and keys (values generated by AWS, exposed only as sensitive
# outputs)
# -----------------------------------------------------------------------------
resource "aws_api_gateway_usage_plan" "this" {
  for_each = var.usage_plans

  name        = "payment-${each.key}-${var.suffix}"
  description = "${each.key} clients"

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = each.value.rate_limit
    burst_limit = each.value.burst_limit
  }

  dynamic "quota_settings" {
    for_each = each.value.quota_limit == null ? [] : [each.value]

    content {
      limit  = quota_settings.value.quota_limit
      period = quota_settings.value.quota_period
    }
  }
}

resource "aws_api_gateway_api_key" "this" {
  for_each = var.usage_plans

  name        = "payment-${each.key}-${var.suffix}"
  description = "${each.key} tier key"
  enabled     = true
}

resource "aws_api_gateway_usage_plan_key" "this" {
  for_each = var.usage_plans

  key_id        = aws_api_gateway_api_key.this[each.key].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.this[each.key].id
}
