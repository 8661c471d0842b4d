# -----------------------------------------------------------------------------
# Largest valid request body, derived from the request schema: every property
# present at its longest, compact JSON, UTF-8. Text without a pattern or enum
# may hold any character, and UTF-8 needs up to 4 bytes for one code point
# (JSON Schema's maxLength counts code points); pattern and enum values are
# ASCII. The WAF's body-size rule uses this number, so the WAF admits every
# body the schema admits and nothing much larger.
# -----------------------------------------------------------------------------
locals {
  schema         = jsondecode(var.request_schema)
  utf8_max_bytes = 4

  # One string value at its longest, with its two quotes.
  leaf_bytes = {
    for key, prop in local.schema.properties : key => try(
      max([for value in prop.enum : length(value)]...),
      prop.maxLength * (try(prop.pattern, "") != "" ? 1 : local.utf8_max_bytes),
    ) + 2
    if !try(prop.type == "object", false)
  }

  # A nested object with named properties ({"k":"v",...}), or a map of strings
  # (metadata): maxProperties entries at the longest key and value.
  object_bytes = {
    for key, prop in local.schema.properties : key => (
      can(prop.properties)
      ? 2 + length(prop.properties) - 1 + sum([
        for k2, p2 in prop.properties : length(k2) + 3 + try(
          max([for value in p2.enum : length(value)]...),
          p2.maxLength * (try(p2.pattern, "") != "" ? 1 : local.utf8_max_bytes),
        ) + 2
      ])
      : 2 + prop.maxProperties - 1 + prop.maxProperties * (
        var.metadata_key_max_length * local.utf8_max_bytes + 2 + 1 +
        prop.additionalProperties.maxLength * local.utf8_max_bytes + 2
      )
    )
    if try(prop.type == "object", false)
  }

  # {"key":value,...}: braces, commas, each quoted key and its colon.
  request_body_max_bytes = (
    2 + length(local.schema.properties) - 1
    + sum([for key in keys(local.schema.properties) : length(key) + 3])
    + sum(values(local.leaf_bytes)) + sum(values(local.object_bytes))
  )
}

# -----------------------------------------------------------------------------
# Custom domain (optional): TLS 1.2 minimum, mapped to the stage; the REST API
# disables its default execute-api endpoint when this exists.
# -----------------------------------------------------------------------------
resource "aws_api_gateway_domain_name" "this" {
  count = var.custom_domain_name == null ? 0 : 1

  domain_name              = var.custom_domain_name
  regional_certificate_arn = var.custom_domain_certificate_arn
  security_policy          = "TLS_1_2"

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    precondition {
      condition     = var.custom_domain_certificate_arn != null
      error_message = "custom_domain_name needs custom_domain_certificate_arn: an ACM certificate in this region that covers the name."
    }
  }
}

resource "aws_api_gateway_base_path_mapping" "this" {
  count = var.custom_domain_name == null ? 0 : 1

  api_id      = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  domain_name = aws_api_gateway_domain_name.this[0].domain_name
}
