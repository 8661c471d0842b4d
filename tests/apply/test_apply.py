"""The root module applied to the emulator: deployed settings match the spec and a second plan is clean.

The deployment is the session's one stack (tests/support/stack.py), shared with the end-to-end flows:
these describe checks and the re-plan run before the flows (tests/apply is collected first); the
destroy and the sweep for anything of ours left behind run once, when the session ends.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from devkit.emulator.endpoints import selected_backend
from tests.emulator_gaps import PLAN_DRIFT, supports, unexpected_changes

if TYPE_CHECKING:
    from tests.support.stack import Deployment

ROLES = (
    "intake",
    "status",
    "validator",
    "fraud-check",
    "settlement",
    "notification",
    "retry",
    "health",
    "report",
    "cleanup",
    "sweeper",
    "authorizer",
)
# docs/interfaces.md "Lambda package": handler module, memory, timeout. Reserved concurrency: none by
# default (a new account's quota is small; production values in examples/production.tfvars).
FUNCTION_TABLE = {
    "intake": ("payments.handlers.intake.handler", 512, 10),
    "status": ("payments.handlers.status.handler", 512, 10),
    "validator": ("payments.handlers.validator.handler", 512, 15),
    "fraud-check": ("payments.handlers.fraud_check.handler", 512, 15),
    "settlement": ("payments.handlers.settlement.handler", 512, 20),
    "notification": ("payments.handlers.notification.handler", 512, 15),
    "retry": ("payments.handlers.retry.handler", 512, 60),
    "health": ("payments.handlers.health.handler", 512, 15),
    "report": ("payments.handlers.report.handler", 1024, 300),
    "cleanup": ("payments.handlers.cleanup.handler", 1024, 900),
    "sweeper": ("payments.handlers.sweeper.handler", 512, 120),
    "authorizer": ("payments.handlers.authorizer.handler", 512, 5),
}
ENV_KEYS = {
    "ENVIRONMENT_SUFFIX",
    "TRANSACTIONS_TABLE",
    "AUDIT_TABLE",
    "IDEMPOTENCY_TABLE",
    "CLIENTS_TABLE",
    "BY_DAY_INDEX",
    "BY_CUSTOMER_INDEX",
    "BY_MERCHANT_INDEX",
    "DAY_SHARDS",
    "AUDIT_QUEUE_URL",
    "FAILED_QUEUE_URL",
    "DLQ_URL",
    "ALERTS_TOPIC_ARN",
    "EVENTS_TOPIC_ARN",
    "FAILED_TOPIC_ARN",
    "ARCHIVE_BUCKET",
    "STATE_MACHINE_ARN",
    "PROCESSOR_ENDPOINT_PARAM",
    "PROCESSOR_CREDENTIALS_PARAM",
    "FRAUD_RULES_PARAM",
    "AUDIT_TTL_DAYS",
    "IDEMPOTENCY_TTL_HOURS",
    "CLEANUP_RETENTION_DAYS",
    "SETTLEMENT_LEASE_SECONDS",
    "STUCK_AFTER_SECONDS",
    "MAX_SETTLEMENT_ATTEMPTS",
    "REQUIRE_PRINCIPAL",
    "ALARM_NAME_PREFIX",
    "CORS_ALLOWED_ORIGINS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
}


# --------------------------------------------------------------------------- outputs


def test_outputs_name_everything_with_the_suffix(deployment: Deployment) -> None:
    out, s = deployment.outputs, deployment.suffix
    assert out["environment_suffix"] == s
    assert out["region"] == deployment.emulator.region
    assert out["transactions_table_name"] == f"payment-transactions-{s}"
    assert out["audit_table_name"] == f"payment-audit-{s}"
    assert out["idempotency_table_name"] == f"payment-idempotency-{s}"
    assert out["audit_queue_url"].endswith(f"/transaction-queue-{s}.fifo")
    assert out["failed_queue_url"].endswith(f"/failed-transactions-{s}")
    assert out["dlq_url"].endswith(f"/failed-transactions-dlq-{s}")
    assert out["scheduler_dlq_url"].endswith(f"/payment-scheduler-dlq-{s}")
    assert out["archive_bucket_name"] == f"payment-archive-{s}-{out['account_id']}"
    assert out["state_machine_name"] == f"payment-workflow-{s}"
    assert out["state_machine_arn"].endswith(f":stateMachine:payment-workflow-{s}")
    assert out["function_names"] == {role: f"payment-{role}-{s}" for role in ROLES}
    assert out["api_stage_name"] == "prod"
    assert set(out["api_key_ids"]) == {"mobile", "partner"}
    links = out["oncall_links"]
    assert links["dashboard"].startswith("https://") and set(links) >= {
        "dashboard",
        "alarms",
        "logs",
        "queues",
        "workflow",
    }


# --------------------------------------------------------------------------- Lambda


def test_functions_have_the_spec_settings(deployment: Deployment) -> None:
    lam = deployment.client("lambda")
    out = deployment.outputs
    subnets = set(out["private_subnet_ids"])
    for role, (handler, memory, timeout) in FUNCTION_TABLE.items():
        name = out["function_names"][role]
        fn = lam.get_function(FunctionName=name)
        config = fn["Configuration"]
        assert config["Runtime"] == "python3.12", name
        assert config["Handler"] == handler, name
        assert config["MemorySize"] == memory, name
        assert config["Timeout"] == timeout, name
        assert config["Architectures"] == [deployment.package.architecture], name
        assert config["TracingConfig"]["Mode"] == "Active", name
        assert config["CodeSha256"] == deployment.package.sha256_b64, name
        assert set(config["VpcConfig"]["SubnetIds"]) == subnets, name
        assert config["VpcConfig"]["SecurityGroupIds"] == [out["lambda_security_group_id"]], name
        if supports("lambda:KMSKeyArn"):
            assert config.get("KMSKeyArn"), f"{name}: environment not encrypted with a CMK"
        env = config["Environment"]["Variables"]
        assert set(env) >= ENV_KEYS, f"{name} lacks {sorted(ENV_KEYS - set(env))}"
        assert env["ENVIRONMENT_SUFFIX"] == deployment.suffix
        assert env["TRANSACTIONS_TABLE"] == out["transactions_table_name"]
        assert env["STATE_MACHINE_ARN"] == out["state_machine_arn"]
        assert env["DLQ_URL"].endswith(f"/failed-transactions-dlq-{deployment.suffix}")
        assert env["POWERTOOLS_SERVICE_NAME"] == f"payment-{role}"
        # Fail closed without the authorizer's principal, except where the gateway cannot run it.
        assert env["REQUIRE_PRINCIPAL"] == str(supports("apigateway:lambda-authorizers")).lower(), name
        assert not any(re.search(r"SECRET|PASSWORD|CREDENTIALS$", k) for k in env), (
            f"{name} has a secret in env"
        )
        assert "ReservedConcurrentExecutions" not in (fn.get("Concurrency") or {}), name


def test_each_function_has_its_own_role_and_log_group(deployment: Deployment) -> None:
    lam, logs = deployment.client("lambda"), deployment.client("logs")
    roles = set()
    for name in deployment.outputs["function_names"].values():
        roles.add(lam.get_function_configuration(FunctionName=name)["Role"])
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        group = next(g for g in groups if g["logGroupName"] == f"/aws/lambda/{name}")
        assert group["retentionInDays"] == 30
        assert group.get("kmsKeyId"), f"{group['logGroupName']} not KMS-encrypted"
    assert len(roles) == len(ROLES)


def test_failed_queue_feeds_the_retry_function(deployment: Deployment) -> None:
    mappings = deployment.client("lambda").list_event_source_mappings(
        FunctionName=deployment.outputs["function_names"]["retry"]
    )["EventSourceMappings"]
    assert [m["EventSourceArn"] for m in mappings] == [deployment.outputs["failed_queue_arn"]]
    assert mappings[0]["BatchSize"] == 10
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


# --------------------------------------------------------------------------- DynamoDB


def test_tables_have_pitr_cmk_ttl_and_indexes(deployment: Deployment) -> None:
    ddb = deployment.client("dynamodb")
    data_key = deployment.outputs["kms_key_arns"]["data"]
    for key in ("transactions_table_name", "audit_table_name", "idempotency_table_name"):
        name = deployment.outputs[key]
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", name
        assert table["SSEDescription"]["SSEType"] == "KMS", name
        assert table["SSEDescription"]["KMSMasterKeyArn"] == data_key, name
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", name
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}, name
    txn = ddb.describe_table(TableName=deployment.outputs["transactions_table_name"])["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in txn["KeySchema"]} == {
        "transaction_id": "HASH",
        "timestamp": "RANGE",
    }
    indexes = {i["IndexName"]: i for i in txn["GlobalSecondaryIndexes"]}
    expected = {"by-customer": "customer_id", "by-merchant": "merchant_id", "by-day": "day_shard"}
    assert set(indexes) == set(expected)
    for index, partition in expected.items():
        keys = {k["AttributeName"]: k["KeyType"] for k in indexes[index]["KeySchema"]}
        assert keys == {partition: "HASH", "timestamp": "RANGE"}, index
        assert indexes[index]["Projection"]["ProjectionType"] == "ALL", index
    audit = ddb.describe_table(TableName=deployment.outputs["audit_table_name"])["Table"]
    assert {k["AttributeName"] for k in audit["KeySchema"]} == {"transaction_id", "event_id"}


# --------------------------------------------------------------------------- SQS / SNS


def _queue_attributes(deployment: Deployment, url: str) -> dict[str, str]:
    attrs: dict[str, str] = deployment.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"]
    )["Attributes"]
    return attrs


def test_queues_are_encrypted_retained_and_redriven(deployment: Deployment) -> None:
    out = deployment.outputs
    audit = _queue_attributes(deployment, out["audit_queue_url"])
    assert audit["FifoQueue"] == "true"
    assert audit["ContentBasedDeduplication"] == "true"
    failed = _queue_attributes(deployment, out["failed_queue_url"])
    dlq = _queue_attributes(deployment, out["dlq_url"])
    events = _queue_attributes(deployment, out["events_queue_url"])
    for attrs in (audit, dlq, events):
        assert attrs["MessageRetentionPeriod"] == "1209600"
    # A dead-lettered message keeps its original enqueue time: the DLQ outlives its source.
    assert int(failed["MessageRetentionPeriod"]) < int(dlq["MessageRetentionPeriod"])
    for attrs in (audit, failed, dlq, events):
        assert attrs.get("KmsMasterKeyId"), attrs["QueueArn"]
    redrive = json.loads(failed["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": out["dlq_arn"], "maxReceiveCount": 5}
    allow = json.loads(dlq["RedriveAllowPolicy"])
    assert allow["redrivePermission"] == "byQueue"
    assert allow["sourceQueueArns"] == [out["failed_queue_arn"]]
    assert _queue_attributes(deployment, out["scheduler_dlq_url"]).get("KmsMasterKeyId")


def test_topics_are_encrypted_and_subscribed(deployment: Deployment) -> None:
    sns = deployment.client("sns")
    protocols: dict[str, set[str]] = {}
    for key in ("alerts_topic_arn", "events_topic_arn", "failed_topic_arn"):
        arn = deployment.outputs[key]
        attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        assert attrs.get("KmsMasterKeyId"), arn
        policy = json.loads(attrs["Policy"])
        assert any(st.get("Effect") == "Deny" for st in policy["Statement"]), f"{arn}: no TLS-only deny"
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        protocols[key] = {(s["Protocol"], s["Endpoint"]) for s in subs}
    # Payment events and failures reach the events queue; no e-mail placeholder anywhere.
    events_queue = ("sqs", deployment.outputs["events_queue_arn"])
    assert events_queue in protocols["events_topic_arn"]
    assert events_queue in protocols["failed_topic_arn"]
    assert not [p for subs in protocols.values() for p, _ in subs if p.startswith("email")]


# --------------------------------------------------------------------------- S3


def test_archive_bucket_is_versioned_encrypted_private_tls_only_and_tiered(deployment: Deployment) -> None:
    s3 = deployment.client("s3")
    bucket = deployment.outputs["archive_bucket_name"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert rule["BucketKeyEnabled"] is True
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(
        block[k]
        for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    )
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    moving = [r for r in rules if r["Status"] == "Enabled" and r.get("Transitions")]
    assert [
        {"Days": t.get("Days"), "StorageClass": t["StorageClass"]} for r in moving for t in r["Transitions"]
    ] == [{"Days": 30, "StorageClass": "GLACIER"}]
    # Only the cleanup batches: Glacier's ~40 KB per-object overhead makes ~1 KB archives cost more there.
    assert [r["Filter"].get("Prefix") for r in moving] == ["cleanup/"], moving
    expirations = [
        r["NoncurrentVersionExpiration"]["NoncurrentDays"]
        for r in rules
        if "NoncurrentVersionExpiration" in r
    ]
    assert expirations == [365]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert any(
        st["Effect"] == "Deny"
        and "false" in json.dumps(st.get("Condition", {})).lower()
        and "aws:securetransport" in json.dumps(st.get("Condition", {})).lower()
        for st in policy["Statement"]
    )


# --------------------------------------------------------------------------- Step Functions


def test_state_machine_logs_all_without_execution_data_and_traces(deployment: Deployment) -> None:
    sm = deployment.client("stepfunctions").describe_state_machine(
        stateMachineArn=deployment.outputs["state_machine_arn"]
    )
    assert sm["type"] == "STANDARD"
    assert sm["loggingConfiguration"]["level"] == "ALL"
    # The provider omits a false includeExecutionData and moto echoes the request: absent means false.
    assert sm["loggingConfiguration"].get("includeExecutionData", False) is False
    if supports("stepfunctions:tracingConfiguration"):
        assert sm["tracingConfiguration"]["enabled"] is True
    definition = json.loads(sm["definition"])
    # The computed budget: every task's worst case along the longest route, within EXPRESS's 300 s.
    assert 60 < definition["TimeoutSeconds"] <= 300
    assert definition["States"][definition["StartAt"]]["Type"] == "Parallel"


def test_stranded_executions_rule_targets_the_failed_queue(deployment: Deployment) -> None:
    events = deployment.client("events")
    out = deployment.outputs
    rule = events.describe_rule(Name=f"payment-workflow-stranded-{deployment.suffix}")
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert pattern["detail"]["stateMachineArn"] == [out["state_machine_arn"]]
    assert set(pattern["detail"]["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == out["failed_queue_arn"]
    assert target["InputTransformer"]["InputPathsMap"]["name"] == "$.detail.name"


def _inline_policy(deployment: Deployment, role_arn: str) -> list[dict[str, Any]]:
    iam = deployment.client("iam")
    role = role_arn.rsplit("/", 1)[1]
    statements: list[dict[str, Any]] = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        found = document["Statement"]
        statements += found if isinstance(found, list) else [found]
    return statements


def test_schedule_roles_decrypt_their_own_schedule_and_health_reads_every_alarm(
    deployment: Deployment,
) -> None:
    iam = deployment.client("iam")
    scheduler = deployment.client("scheduler")
    for job, name in deployment.outputs["schedule_names"].items():
        schedule = next(
            scheduler.get_schedule(Name=name, GroupName=g["Name"])
            for g in scheduler.list_schedule_groups()["ScheduleGroups"]
            if any(s["Name"] == name for s in scheduler.list_schedules(GroupName=g["Name"])["Schedules"])
        )
        context = "kms:EncryptionContext:aws:scheduler:schedule:arn"
        decrypt = [
            s
            for s in _inline_policy(deployment, schedule["Target"]["RoleArn"])
            if context in json.dumps(s.get("Condition", {}))
        ]
        assert len(decrypt) == 1, job
        assert decrypt[0]["Condition"]["StringEquals"][context] == schedule["Arn"], job
    health_role = iam.get_role(RoleName=f"payment-health-{deployment.suffix}")["Role"]["Arn"]
    describe = [
        s
        for s in _inline_policy(deployment, health_role)
        if "cloudwatch:DescribeAlarms" in json.dumps(s["Action"])
    ]
    assert describe and all(s["Resource"] in ("*", ["*"]) for s in describe), describe


def test_the_authorizer_role_reads_only_the_clients_table(deployment: Deployment) -> None:
    """The authorizer sees every caller's credentials: its role may read one client by key id
    (``dynamodb:GetItem`` on the clients table) and decrypt with the data key, nothing else."""
    iam = deployment.client("iam")
    dynamodb = deployment.client("dynamodb")
    role = iam.get_role(RoleName=f"payment-authorizer-{deployment.suffix}")["Role"]["Arn"]
    clients = dynamodb.describe_table(TableName=deployment.outputs["clients_table_name"])["Table"]["TableArn"]
    statements = _inline_policy(deployment, role)
    table_access = [s for s in statements if "dynamodb:" in json.dumps(s["Action"])]
    assert table_access, statements
    for statement in table_access:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert actions == ["dynamodb:GetItem"] and resources == [clients], statement
    other = {
        action
        for s in statements
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        if not action.startswith(("dynamodb:", "kms:", "logs:", "xray:", "ec2:"))
    }
    assert not other, other


# --------------------------------------------------------------------------- API Gateway + WAF


def test_api_stage_settings_usage_plans_and_keys(deployment: Deployment) -> None:
    apigw = deployment.client("apigateway")
    api_id = deployment.outputs["api_id"]
    stage = apigw.get_stage(restApiId=api_id, stageName="prod")
    assert stage["tracingEnabled"] is True
    assert stage.get("cacheClusterEnabled", False) is False
    assert stage["accessLogSettings"]["destinationArn"]
    json.loads(stage["accessLogSettings"]["format"])  # JSON access logs
    assert stage.get("variables"), "stage variables missing"
    settings = stage["methodSettings"]["*/*"]
    assert settings["metricsEnabled"] is True
    assert settings["loggingLevel"] == "INFO"
    assert settings["dataTraceEnabled"] is False
    assert settings["throttlingRateLimit"] == 10000
    assert settings["throttlingBurstLimit"] == 5000
    plans = {p["name"]: p for p in apigw.get_usage_plans()["items"] if p["name"].endswith(deployment.suffix)}
    mobile, partner = (
        plans[f"payment-mobile-{deployment.suffix}"],
        plans[f"payment-partner-{deployment.suffix}"],
    )
    assert mobile["throttle"] == {"rateLimit": 100.0, "burstLimit": 200}
    assert mobile["quota"]["limit"] == 10000 and mobile["quota"]["period"] == "DAY"
    assert partner["throttle"] == {"rateLimit": 1000.0, "burstLimit": 2000}
    for tier, plan in (("mobile", mobile), ("partner", partner)):
        assert {"apiId": api_id, "stage": "prod"} in [
            {k: s[k] for k in ("apiId", "stage")} for s in plan["apiStages"]
        ]
        keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
        assert [k["id"] for k in keys] == [deployment.outputs["api_key_ids"][tier]]
        key = apigw.get_api_key(apiKey=deployment.outputs["api_key_ids"][tier])
        assert key["enabled"] is True


def test_api_routes_require_keys_except_health(deployment: Deployment) -> None:
    apigw = deployment.client("apigateway")
    resources = apigw.get_resources(restApiId=deployment.outputs["api_id"], embed=["methods"])["items"]
    methods = {
        (r["path"], verb): m for r in resources for verb, m in (r.get("resourceMethods") or {}).items()
    }
    expected = {
        ("/transactions", "POST"): True,
        ("/validate", "POST"): True,
        ("/transactions/{id}", "GET"): True,
        ("/status/{id}", "GET"): True,
        ("/health", "GET"): False,
    }
    for route, key_required in expected.items():
        method = apigw.get_method(
            restApiId=deployment.outputs["api_id"],
            resourceId=next(r["id"] for r in resources if r["path"] == route[0]),
            httpMethod=route[1],
        )
        assert method.get("apiKeyRequired", False) is key_required, route
        assert route in methods, route


@pytest.mark.not_emulated(
    reason="WAFv2 exists only in LocalStack's paid edition (enable_waf = false)", backends=("localstack",)
)
def test_waf_acl_is_associated_and_logged_with_redaction(deployment: Deployment) -> None:
    waf = deployment.client("wafv2")
    acl_arn = deployment.outputs["web_acl_arn"]
    acls = waf.list_web_acls(Scope="REGIONAL")["WebACLs"]
    summary = next(a for a in acls if a["ARN"] == acl_arn)
    acl = waf.get_web_acl(Name=summary["Name"], Scope="REGIONAL", Id=summary["Id"])["WebACL"]
    rules = {r["Name"]: r for r in acl["Rules"]}
    rate = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    limits = {r["Name"]: r["Statement"]["RateBasedStatement"]["Limit"] for r in rate}
    # The API's per-IP limit and the tighter one on the unauthenticated /health (the module's defaults).
    assert limits == {"rate-limit-per-ip": 2000, "rate-limit-health": 100}, limits
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in rules.values()
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
    } <= managed
    api_id = deployment.outputs["api_id"]
    stage_arn = f"arn:aws:apigateway:{deployment.emulator.region}::/restapis/{api_id}/stages/prod"
    assert waf.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]["ARN"] == acl_arn
    logging = waf.get_logging_configuration(ResourceArn=acl_arn)["LoggingConfiguration"]
    assert logging["LogDestinationConfigs"][0].split(":log-group:")[1].startswith("aws-waf-logs-")
    redacted = {json.dumps(f).lower() for f in logging.get("RedactedFields", [])}
    assert any("authorization" in f for f in redacted) and any("x-api-key" in f for f in redacted)


# --------------------------------------------------------------------------- observability + schedules


def test_alarms_notify_the_alerts_topic_and_ignore_missing_data(deployment: Deployment) -> None:
    cw = deployment.client("cloudwatch")
    names = list(deployment.outputs["alarm_names"].values())
    assert len(names) >= len(ROLES) + 5
    alarms: list[dict[str, Any]] = []
    for start in range(0, len(names), 100):
        page = cw.describe_alarms(AlarmNames=names[start : start + 100])
        alarms += page["MetricAlarms"] + page.get("CompositeAlarms", [])
    assert len(alarms) == len(names)
    for alarm in alarms:
        assert alarm["AlarmActions"] == [deployment.outputs["alerts_topic_arn"]], alarm["AlarmName"]
        assert alarm["TreatMissingData"] == "notBreaching", alarm["AlarmName"]
        assert alarm["AlarmName"].endswith(deployment.suffix), alarm["AlarmName"]
    assert cw.get_dashboard(DashboardName=deployment.outputs["dashboard_name"])["DashboardBody"]


def test_schedules_run_the_jobs_at_two_and_three_utc(deployment: Deployment) -> None:
    scheduler = deployment.client("scheduler")
    out = deployment.outputs
    expected = {
        "report": ("cron(0 2 * * ? *)", {"date": "yesterday", "upload": True}),
        "cleanup": (
            "cron(0 3 * * ? *)",
            {"older_than_days": 90, "archive": True, "dry_run": False, "backfill_ttl": False},
        ),
    }
    for job, (expression, payload) in expected.items():
        groups = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
        schedule = None
        for group in groups:
            try:
                schedule = scheduler.get_schedule(Name=out["schedule_names"][job], GroupName=group)
                break
            except scheduler.exceptions.ResourceNotFoundException:
                continue
        assert schedule is not None, job
        assert schedule["ScheduleExpression"] == expression
        assert schedule.get("ScheduleExpressionTimezone", "UTC") == "UTC"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        target = schedule["Target"]
        assert target["Arn"] == out["function_arns"][job]
        assert json.loads(target["Input"]) == payload
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert target["DeadLetterConfig"]["Arn"] == out["scheduler_dlq_arn"]


@pytest.mark.not_emulated(
    reason="the X-Ray control plane exists only in LocalStack's paid edition (enable_xray_resources = false)",
    backends=("localstack",),
)
def test_xray_sampling_group_and_encryption(deployment: Deployment) -> None:
    xray = deployment.client("xray")
    rules = [
        r["SamplingRule"]
        for r in xray.get_sampling_rules()["SamplingRuleRecords"]
        if deployment.suffix in r["SamplingRule"]["RuleName"]
    ]
    assert len(rules) == 1 and rules[0]["FixedRate"] == 0.1 and rules[0]["ReservoirSize"] == 1
    groups = [g for g in xray.get_groups()["Groups"] if deployment.suffix in g["GroupName"]]
    assert len(groups) == 1 and groups[0]["FilterExpression"]
    # The account-wide encryption setting is left to the account (manage_xray_encryption = false).
    logs_key = deployment.outputs["kms_key_arns"]["logs"]
    config = xray.get_encryption_config()["EncryptionConfig"]
    assert config.get("KeyId") != logs_key


def test_parameters_are_under_the_platform_path(deployment: Deployment) -> None:
    ssm = deployment.client("ssm")
    names = deployment.outputs["ssm_parameter_names"]
    assert set(names) == {"processor_endpoint", "processor_credentials", "fraud_rules"}
    for name in names.values():
        assert name.startswith(f"/payment-{deployment.suffix}/")
    creds = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [names["processor_credentials"]]}]
    )["Parameters"][0]
    assert creds["Type"] == "SecureString" and creds.get("KeyId")
    rules = json.loads(ssm.get_parameter(Name=names["fraud_rules"])["Parameter"]["Value"])
    assert rules["reject_score"] == 70 and "default" in rules["amount_thresholds"]


# --------------------------------------------------------------------------- re-plan + destroy


def test_second_plan_reports_no_changes(deployment: Deployment) -> None:
    started = time.monotonic()
    allowed = PLAN_DRIFT[selected_backend()]
    if allowed:
        # Only the attributes this backend does not return may show (tests/emulator_gaps.py).
        unexpected = unexpected_changes(deployment.tf.plan_json(deployment.tf_vars), allowed)
        deployment.timings["second_plan"] = time.monotonic() - started
        assert not unexpected, "second plan is not clean:\n" + "\n".join(unexpected[:80])
        return
    result = deployment.tf.plan_exitcode(deployment.tf_vars)
    deployment.timings["second_plan"] = time.monotonic() - started
    if result.retcode != 0:
        changes = [
            line
            for line in result.out.splitlines()
            if re.search(r"^\s*# .* (will be|must be)|^\s*[~+-] |^Plan:", line)
        ]
        pytest.fail("second plan is not clean:\n" + "\n".join(changes[:80]), pytrace=False)
