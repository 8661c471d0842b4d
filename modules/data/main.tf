# All four tables are on-demand: the API's 10,000 rps bursts are absorbed without
# capacity planning, and there is no idle cost between bursts.

locals {
  # GSI name => partition key. Every index sorts by `timestamp` so the newest
  # items of a customer, merchant or day come back first.
  index_names = {
    customer = "by-customer"
    merchant = "by-merchant"
    day      = "by-day"
  }

  transaction_indexes = {
    (local.index_names.customer) = "customer_id"
    (local.index_names.merchant) = "merchant_id"
    # `YYYY-MM-DD#NN`: the day is spread over DAY_SHARDS partitions so the busy
    # day's writes do not exceed one partition's 1,000 WCU.
    (local.index_names.day) = "day_shard"
  }

  tables = {
    transactions = {
      name      = "payment-transactions-${var.suffix}"
      hash_key  = "transaction_id"
      range_key = "timestamp"
      attributes = {
        transaction_id = "S"
        timestamp      = "N"
        customer_id    = "S"
        merchant_id    = "S"
        day_shard      = "S"
      }
      indexes = local.transaction_indexes
    }
    audit = {
      name      = "payment-audit-${var.suffix}"
      hash_key  = "transaction_id"
      range_key = "event_id"
      attributes = {
        transaction_id = "S"
        event_id       = "S"
      }
      indexes = {}
    }
    idempotency = {
      name      = "payment-idempotency-${var.suffix}"
      hash_key  = "idempotency_key"
      range_key = null
      attributes = {
        idempotency_key = "S"
      }
      indexes = {}
    }
    # API clients: key id -> salted hashes of its (at most two) secrets, merchant
    # scope and status. Written by `ops clients`, read by the authorizer only.
    clients = {
      name      = "payment-clients-${var.suffix}"
      hash_key  = "key_id"
      range_key = null
      attributes = {
        key_id = "S"
      }
      indexes = {}
    }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = each.value.name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash_key
  range_key                   = each.value.range_key
  deletion_protection_enabled = var.deletion_protection

  dynamic "attribute" {
    for_each = each.value.attributes

    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = each.value.indexes

    content {
      name            = global_secondary_index.key
      hash_key        = global_secondary_index.value
      range_key       = "timestamp"
      projection_type = "ALL"
    }
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  # `expires_at` rather than `TTL`: emulators mishandle an attribute named TTL.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  tags = { Name = each.value.name }
}
