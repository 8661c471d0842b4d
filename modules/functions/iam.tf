# -----------------------------------------------------------------------------
# One role per function. The per-role statements below are the whole of what
# each function's code may call, on its own resources only; keep them in step
# with lambda/ (tests/security/test_iam.py compares the two).
# -----------------------------------------------------------------------------
locals {
  r         = var.resources
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id

  tx_table = local.r.transactions_table_arn
  tx_index = {
    customer = "${local.r.transactions_table_arn}/index/by-customer"
    day      = "${local.r.transactions_table_arn}/index/by-day"
  }

  data_key      = local.r.kms_key_arns["data"]
  messaging_key = local.r.kms_key_arns["messaging"]

  # Customer-managed keys are used by the services on the caller's behalf:
  # kms:ViaService pins every grant below to the service that needs it.
  via = {
    data      = [for s in ["dynamodb", "s3", "ssm"] : "${s}.${local.region}.amazonaws.com"]
    messaging = [for s in ["sqs", "sns"] : "${s}.${local.region}.amazonaws.com"]
    states    = ["states.${local.region}.amazonaws.com"]
  }

  # Statement building blocks shared by several roles. A status transition
  # is one TransactWriteItems (authorised per item): UpdateItem on the
  # transaction, PutItem of its audit entry; then the audit stream message.
  tx_read = {
    actions   = ["dynamodb:GetItem"]
    resources = [local.tx_table]
  }
  tx_transition = {
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [local.tx_table]
  }
  audit_write = {
    actions   = ["dynamodb:PutItem"]
    resources = [local.r.audit_table_arn]
  }
  audit_stream = {
    actions   = ["sqs:SendMessage"]
    resources = [local.r.audit_queue_arn]
  }
  data_key_rw = {
    actions    = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources  = [local.data_key]
    conditions = [{ test = "StringEquals", variable = "kms:ViaService", values = local.via.data }]
  }
  data_key_read = {
    actions    = ["kms:Decrypt"]
    resources  = [local.data_key]
    conditions = [{ test = "StringEquals", variable = "kms:ViaService", values = local.via.data }]
  }
  messaging_key_rw = {
    actions    = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources  = [local.messaging_key]
    conditions = [{ test = "StringEquals", variable = "kms:ViaService", values = local.via.messaging }]
  }
  # Lambda delivers a failed asynchronous invocation of a scheduled job to the
  # alerts topic with the function's own role (see the event-invoke config).
  failure_destination = {
    actions   = ["sns:Publish"]
    resources = [var.job_failure_topic_arn]
  }

  # The four workflow steps; the retry consumer resumes a transaction from
  # wherever it stopped with the same domain code, so it gets their union.
  step_statements = {
    validator = {
      TransactionsStep = local.tx_transition
      AuditWrite       = local.audit_write
      AuditStream      = local.audit_stream
      DataKey          = local.data_key_rw
      MessagingKey     = local.messaging_key_rw
    }

    fraud-check = {
      TransactionsStep = local.tx_transition
      CustomerVelocity = {
        actions   = ["dynamodb:Query"]
        resources = [local.tx_index.customer]
      }
      FraudRules = {
        actions   = ["ssm:GetParameter"]
        resources = [local.r.ssm_parameter_arns["fraud_rules"]]
      }
      DataKey = local.data_key_rw
    }

    settlement = {
      TransactionsStep = local.tx_transition
      AuditWrite       = local.audit_write
      AuditStream      = local.audit_stream
      ArchiveWrite = {
        actions   = ["s3:PutObject"]
        resources = ["${local.r.archive_bucket_arn}/transactions/*"]
      }
      # The credentials parameter is a SecureString under the data key
      # (DataKey below, via SSM).
      ProcessorParameters = {
        actions = ["ssm:GetParameter"]
        resources = [
          local.r.ssm_parameter_arns["processor_endpoint"],
          local.r.ssm_parameter_arns["processor_credentials"],
        ]
      }
      DataKey      = local.data_key_rw
      MessagingKey = local.messaging_key_rw
    }

    notification = {
      TransactionsStep = local.tx_transition
      AuditWrite       = local.audit_write
      AuditStream      = local.audit_stream
      OutcomeTopics = {
        actions   = ["sns:Publish"]
        resources = [local.r.events_topic_arn, local.r.failed_topic_arn]
      }
      FailedQueue = {
        actions   = ["sqs:SendMessage"]
        resources = [local.r.failed_queue_arn]
      }
      DataKey      = local.data_key_rw
      MessagingKey = local.messaging_key_rw
    }
  }

  policy_statements = merge(local.step_statements, {
    intake = {
      # One TransactWriteItems puts the PENDING transaction, the idempotency
      # record and the first audit entry; replays read the record back. The
      # workflow start is claimed on the item first (a conditional UpdateItem,
      # released if StartExecution is refused): EXPRESS does not deduplicate
      # executions by name.
      TransactionsCreate = {
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
        resources = [local.tx_table]
      }
      IdempotencyRecords = {
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
        resources = [local.r.idempotency_table_arn]
      }
      AuditWrite = local.audit_write
      StartWorkflow = {
        actions   = ["states:StartExecution"]
        resources = [local.r.state_machine_arn]
      }
      DataKey = local.data_key_rw
      # StartExecution on a CMK-encrypted state machine encrypts the input
      # with that key on the caller's behalf.
      WorkflowKey = {
        actions    = ["kms:GenerateDataKey"]
        resources  = [local.data_key]
        conditions = [{ test = "StringEquals", variable = "kms:ViaService", values = local.via.states }]
      }
    }

    status = {
      TransactionsRead = local.tx_read
      DataKey          = local.data_key_read
    }

    # The authorizer reads one client by key id; it never lists or writes.
    authorizer = {
      ClientsRead = {
        actions   = ["dynamodb:GetItem"]
        resources = [local.r.clients_table_arn]
      }
      DataKey = local.data_key_read
    }

    retry = merge(
      local.step_statements["validator"],
      local.step_statements["fraud-check"],
      local.step_statements["settlement"],
      local.step_statements["notification"],
      {
        # What the Lambda service itself calls with this role to poll the queue.
        FailedQueueConsume = {
          actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
          resources = [local.r.failed_queue_arn]
        }
      },
    )

    health = {
      TablesDescribe = {
        actions   = ["dynamodb:DescribeTable"]
        resources = [local.tx_table, local.r.audit_table_arn, local.r.idempotency_table_arn]
      }
      QueueDepths = {
        actions   = ["sqs:GetQueueAttributes"]
        resources = [local.r.failed_queue_arn, local.r.dlq_arn, local.r.audit_queue_arn]
      }
      # DescribeAlarms is authorised against alarm:* whatever AlarmNamePrefix
      # asks for (it reads alarm state only): an alarm:payment-* scope denies
      # the call and /health would always be "degraded".
      AlarmState = {
        actions   = ["cloudwatch:DescribeAlarms"]
        resources = ["*"]
      }
      AlertsTopic = {
        actions   = ["sns:Publish"]
        resources = [local.r.alerts_topic_arn]
      }
      MessagingKey = local.messaging_key_rw
    }

    report = {
      DayIndex = {
        actions   = ["dynamodb:Query"]
        resources = [local.tx_index.day]
      }
      # GetObject: an upload never replaces a stored report with a lower count.
      ReportWrite = {
        actions   = ["s3:GetObject", "s3:PutObject"]
        resources = ["${local.r.archive_bucket_arn}/reports/*"]
      }
      ReportList = {
        actions    = ["s3:ListBucket"]
        resources  = [local.r.archive_bucket_arn]
        conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["reports/*"] }]
      }
      DataKey = local.data_key_rw
      # On-failure destination of the asynchronous (scheduled) invocation.
      FailureDestination = local.failure_destination
      MessagingKey       = local.messaging_key_rw
    }

    # The sweeper fails stuck transactions and drains owed outboxes with the
    # RecordFailure code (the notification step's grants), found through the
    # by-day index.
    sweeper = merge(
      local.step_statements["notification"],
      {
        DayIndex = {
          actions   = ["dynamodb:Query"]
          resources = [local.tx_index.day]
        }
        # On-failure destination of the asynchronous (scheduled) invocation.
        FailureDestination = local.failure_destination
      },
    )

    cleanup = {
      # Parallel scan segments; deletes conditioned on the archived version
      # (TransactWriteItems, authorised per item as DeleteItem); TTL backfill
      # updates (in the same groups, as UpdateItem); the lock's fencing check
      # in each group (ConditionCheckItem); the run lock (an item of this table: UpdateItem to take and
      # renew, DeleteItem to release, GetItem to name its holder); BatchGetItem
      # re-reads the rows of a chunk an interrupted run left; DescribeTable
      # sizes the scan.
      TransactionsSweep = {
        actions   = ["dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"]
        resources = [local.tx_table]
      }
      CleanupArchive = {
        actions   = ["s3:GetObject", "s3:PutObject"]
        resources = ["${local.r.archive_bucket_arn}/cleanup/*"]
      }
      # Listing tells "object missing" (an interrupted chunk never written)
      # apart from "access denied": without it S3 answers 403 for both.
      CleanupList = {
        actions    = ["s3:ListBucket"]
        resources  = [local.r.archive_bucket_arn]
        conditions = [{ test = "StringLike", variable = "s3:prefix", values = ["cleanup/*"] }]
      }
      DataKey = local.data_key_rw
      # On-failure destination of the asynchronous (scheduled) invocation.
      FailureDestination = local.failure_destination
      MessagingKey       = local.messaging_key_rw
    }
  })
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.functions

  name                  = "payment-${each.key}-${var.suffix}"
  description           = "Execution role of payment-${each.key}-${var.suffix}"
  assume_role_policy    = data.aws_iam_policy_document.assume.json
  force_detach_policies = true
}

data "aws_iam_policy_document" "this" {
  for_each = local.functions

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }

  # X-Ray trace writes have no resource type: "*" is the only valid scope.
  statement {
    sid       = "XRayWrite"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }

  # No cloudwatch:PutMetricData: metrics leave as Embedded Metric Format log
  # lines (Powertools), which CloudWatch turns into PaymentPlatform metrics.

  dynamic "statement" {
    for_each = local.policy_statements[each.key]

    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = lookup(statement.value, "conditions", [])

        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  for_each = local.functions

  name   = "least-privilege"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.this[each.key].json
}

# Equivalent of AWSLambdaVPCAccessExecutionRole, inline so the role carries no
# managed-policy attachment. ENI management happens before the function
# exists in a subnet, so AWS accepts nothing narrower than "*" here.
data "aws_iam_policy_document" "vpc_access" {
  #checkov:skip=CKV_AWS_111: ENI actions of AWSLambdaVPCAccessExecutionRole accept no narrower resource
  #checkov:skip=CKV_AWS_356: ENI actions of AWSLambdaVPCAccessExecutionRole accept no narrower resource
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:AssignPrivateIpAddresses",
      "ec2:CreateNetworkInterface",
      "ec2:DeleteNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "vpc_access" {
  for_each = local.functions

  name   = "vpc-access"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.vpc_access.json
}
