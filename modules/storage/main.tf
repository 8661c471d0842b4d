################################################################################
# Archive bucket: settled transactions, daily reports, cleanup archives
################################################################################

data "aws_partition" "current" {}

locals {
  bucket_name = "payment-archive-${var.suffix}-${var.account_id}"
  # Known at plan time (S3 ARNs carry no region or account), so the policy below
  # can be reviewed in the plan.
  bucket_arn       = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket_name}"
  parameter_prefix = "/payment-${var.suffix}"
}

resource "aws_s3_bucket" "archive" {
  #checkov:skip=CKV_AWS_18: Object access is audited with CloudTrail data events on the account trail; a per-environment log bucket would itself need a log bucket.
  #checkov:skip=CKV_AWS_144: The archive is a copy of DynamoDB data (PITR 35 days); cross-region replication is a disaster-recovery decision left to the operator, not a default.
  #checkov:skip=CKV2_AWS_62: Nothing consumes archive object events.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  tags = { Name = local.bucket_name }
}

resource "aws_s3_bucket_public_access_block" "archive" {
  bucket = aws_s3_bucket.archive.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs off: every object belongs to the bucket owner, access is policy-only.
resource "aws_s3_bucket_ownership_controls" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "archive" {
  bucket = aws_s3_bucket.archive.id

  versioning_configuration {
    status = "Enabled"
  }
}

# The bucket key cuts KMS requests (and their quota use) by reusing a
# bucket-level data key instead of one KMS call per object.
resource "aws_s3_bucket_server_side_encryption_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

data "aws_iam_policy_document" "archive" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # A writer may rely on the default encryption (no header: the bucket's CMK
  # applies), but may not downgrade an object to SSE-S3. Negated operators are
  # true when the key is absent, so the Null test limits the deny to requests
  # that do send the header.
  statement {
    sid       = "DenyNonKmsEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms", "aws:kms:dsse"]
    }
  }
}

resource "aws_s3_bucket_policy" "archive" {
  bucket = aws_s3_bucket.archive.id
  policy = data.aws_iam_policy_document.archive.json

  # S3 rejects concurrent configuration calls on one bucket (OperationAborted).
  depends_on = [aws_s3_bucket_public_access_block.archive]
}

# Transition by cost (docs/capacity.md "S3 archive storage classes"): Glacier
# Flexible Retrieval adds about 40 KB per object (32 KB billed at the Glacier
# rate, 8 KB of index at the Standard rate) plus a transition request, and
# Standard-IA bills at least 128 KB per object. The per-transaction archives
# (transactions/, ~1 KB) are cheapest left in Standard, so only the cleanup
# batches (cleanup/, one line per item) are eligible; AWS's default
# transition_default_minimum_object_size (all_storage_classes_128K) keeps
# even those in Standard while they are under 128 KB, where Glacier would not
# pay. (A prefix rather than object_size_greater_than: the same decision, and
# one the emulator can store and return.)
resource "aws_s3_bucket_lifecycle_configuration" "archive" {
  bucket = aws_s3_bucket.archive.id

  rule {
    id     = "cleanup-batches-to-glacier"
    status = "Enabled"

    filter {
      prefix = var.archive_transition_prefix
    }

    transition {
      days          = var.archive_transition_days
      storage_class = "GLACIER"
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  # Noncurrent-version rules need versioning in place first.
  depends_on = [aws_s3_bucket_versioning.archive]
}

################################################################################
# SSM parameters under /payment-<suffix>/
################################################################################

resource "aws_ssm_parameter" "processor_endpoint" {
  #checkov:skip=CKV2_AWS_34: Not a secret (processor URL), String by contract (docs/interfaces.md); credentials are the SecureString next to it.
  name        = "${local.parameter_prefix}/processor/endpoint"
  description = "Payment processor endpoint (sim://approve or an https URL)"
  type        = "String"
  value       = var.processor_endpoint

  lifecycle {
    # The functions' security group allows HTTPS to the VPC endpoints only,
    # unless a NAT gateway adds internet egress: a host outside AWS would time
    # out on every settlement.
    precondition {
      condition     = !startswith(var.processor_endpoint, "https://") || var.internet_egress || can(regex("^https://([A-Za-z0-9-]+\\.)+amazonaws\\.com(\\.cn)?(:443)?(/|$)", var.processor_endpoint))
      error_message = "processor_endpoint ${var.processor_endpoint} is outside AWS, but the functions have no internet egress: set enable_nat_gateway = true (or use a host reached through a VPC endpoint, *.amazonaws.com)."
    }
  }
}

resource "aws_ssm_parameter" "processor_credentials" {
  name        = "${local.parameter_prefix}/processor/credentials"
  description = "Payment processor credentials; set the real value out of band"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = var.processor_credentials

  # The secret is rotated outside Terraform; the placeholder only creates the
  # parameter, so the real value never lands in plans or state diffs.
  lifecycle {
    ignore_changes = [value]
  }
}

resource "aws_ssm_parameter" "fraud_rules" {
  #checkov:skip=CKV2_AWS_34: Not a secret (fraud rule thresholds), String by contract (docs/interfaces.md).
  name        = "${local.parameter_prefix}/fraud/rules"
  description = "Fraud rules (JSON): amount thresholds per currency, velocity, blocked lists, reject score"
  type        = "String"
  value       = var.fraud_rules_json
}
