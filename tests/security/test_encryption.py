"""Encryption at rest: everything that can use a customer-managed key uses one of module.kms's
keys (the right one for its blast radius), the keys rotate, and each key policy admits only
the services that use that key.

Key ARNs are unknown in a plan of a fresh deployment, so "which key" is answered from the
configuration: each encryption argument is followed through variables, module calls and
module outputs to the resource it comes from (plan_model.Plan.origins).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from .plan_model import (
    UNKNOWN,
    Plan,
    as_list,
    dynamic_block_origins,
    first_block,
    parse_address,
    policy_documents,
    principals,
    statement_actions,
)

pytestmark = pytest.mark.plan

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = 'module.kms.aws_kms_key.this["{use}"]'

# resource type -> (path of the key argument, key use per docs/interfaces.md / modules/kms)
ENCRYPTED: dict[str, tuple[tuple[str, ...], str]] = {
    "aws_dynamodb_table": (("server_side_encryption", "kms_key_arn"), "data"),
    "aws_s3_bucket_server_side_encryption_configuration": (
        ("rule", "apply_server_side_encryption_by_default", "kms_master_key_id"),
        "data",
    ),
    "aws_lambda_function": (("kms_key_arn",), "data"),
    "aws_sfn_state_machine": (("encryption_configuration", "kms_key_id"), "data"),
    "aws_sqs_queue": (("kms_master_key_id",), "messaging"),
    "aws_sns_topic": (("kms_master_key_id",), "messaging"),
    "aws_cloudwatch_log_group": (("kms_key_id",), "logs"),
    "aws_xray_encryption_config": (("key_id",), "logs"),
}

# Service principals a key policy may name, by what the key encrypts: CloudWatch Logs writes
# encrypted log groups as itself; alarms (cloudwatch) and EventBridge rules deliver to
# encrypted topics/queues as themselves; vended logs (WAF) are delivered by delivery.logs.
# Not EventBridge Scheduler: it delivers to its DLQ with the schedule's execution role
# (Scheduler user guide, "Configuring a schedule's dead-letter queue"), whose IAM policy
# grants the key use.
SERVICE_PRINCIPALS_FOR: dict[str, set[str]] = {
    "aws_cloudwatch_log_group": {"logs.{region}.amazonaws.com", "delivery.logs.amazonaws.com"},
    "aws_sns_topic": {"cloudwatch.amazonaws.com", "events.amazonaws.com"},
    # SNS delivers payment-events/payment-failed to the encrypted events queue as itself.
    "aws_sqs_queue": {"events.amazonaws.com", "sns.amazonaws.com"},
    "aws_xray_encryption_config": {"xray.amazonaws.com"},
    # A CMK-encrypted state machine's log records are decrypted by the vended-logs delivery
    # service before CloudWatch Logs stores them (Step Functions "Data at rest encryption").
    "aws_sfn_state_machine": {"states.amazonaws.com", "delivery.logs.amazonaws.com"},
}
# ...and only when the plan has the thing that makes the service act as itself.
PRINCIPAL_NEEDS: dict[str, tuple[str, ...]] = {
    "cloudwatch.amazonaws.com": ("aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm"),
    "events.amazonaws.com": ("aws_cloudwatch_event_target",),
    "sns.amazonaws.com": ("aws_sns_topic_subscription",),
    "delivery.logs.amazonaws.com": ("aws_wafv2_web_acl_logging_configuration", "aws_sfn_state_machine"),
    "xray.amazonaws.com": ("aws_xray_encryption_config",),
    "states.amazonaws.com": ("aws_sfn_state_machine",),
}
# kms:ViaService values a key policy may name, by what the key encrypts.
VIA_SERVICES_FOR: dict[str, set[str]] = {
    "aws_dynamodb_table": {"dynamodb"},
    "aws_s3_bucket_server_side_encryption_configuration": {"s3"},
    "aws_ssm_parameter": {"ssm"},
    "aws_lambda_function": {"lambda"},
    "aws_sfn_state_machine": {"states"},
    "aws_sqs_queue": {"sqs"},
    "aws_sns_topic": {"sns"},
    "aws_xray_encryption_config": {"xray"},
    "aws_cloudwatch_log_group": {"logs"},
}
# What a service principal may do with a key: use it, never manage it.
KEY_USE_ACTIONS = re.compile(
    r"kms:(Encrypt\*?|Decrypt\*?|ReEncrypt\*|GenerateDataKey\*?|Describe\*|DescribeKey)"
)


def _key_origins(plan: Plan, address: str, path: tuple[str, ...]) -> set[str]:
    origins = plan.origins(address, path)
    if not origins and len(path) > 1:
        # dynamic "<block>": the plan's configuration omits it; read the module source.
        origins = dynamic_block_origins(plan, address, path[0], REPO_ROOT)
    return {o for o in origins if not o.startswith("const:null")}


def _usage(plan: Plan) -> dict[str, set[str]]:
    """key address -> resource types it encrypts."""
    usage: dict[str, set[str]] = defaultdict(set)
    for type_, (path, _) in ENCRYPTED.items():
        for address, _values in plan.resources(type_):
            for origin in _key_origins(plan, address, path):
                usage[origin].add(type_)
    for address, values in plan.resources("aws_ssm_parameter"):
        if values.get("type") == "SecureString":
            for origin in _key_origins(plan, address, ("key_id",)):
                usage[origin].add("aws_ssm_parameter")
    return usage


@pytest.mark.parametrize("resource_type", sorted(ENCRYPTED))
def test_resources_use_the_platform_cmk(plan: Plan, resource_type: str) -> None:
    path, use = ENCRYPTED[resource_type]
    found = list(plan.resources(resource_type))
    if resource_type in {"aws_dynamodb_table", "aws_sqs_queue", "aws_sns_topic", "aws_cloudwatch_log_group"}:
        assert found, f"no {resource_type} in the plan"
    bad = []
    for address, values in found:
        origins = _key_origins(plan, address, path)
        if origins != {KEY.format(use=use)}:
            bad.append(f"{address}: key from {sorted(origins) or 'nowhere (AWS-owned/managed key)'}")
        if resource_type == "aws_dynamodb_table":
            sse = first_block(values, "server_side_encryption")
            if sse.get("enabled") is not True:
                bad.append(f"{address}: server_side_encryption not enabled")
        if resource_type == "aws_sqs_queue" and values.get("sqs_managed_sse_enabled") is True:
            bad.append(f"{address}: SQS-managed SSE instead of the CMK")
        if resource_type == "aws_s3_bucket_server_side_encryption_configuration":
            rule = first_block(values, "rule")
            default = first_block(rule, "apply_server_side_encryption_by_default")
            if default.get("sse_algorithm") != "aws:kms":
                bad.append(f"{address}: sse_algorithm {default.get('sse_algorithm')}")
            if rule.get("bucket_key_enabled") is not True:
                bad.append(f"{address}: bucket key off (one KMS call per object)")
        if resource_type == "aws_sfn_state_machine":
            # Computed when not configured: unknown at plan means AWS picks (AWS-owned key).
            config = first_block(values, "encryption_configuration")
            if config.get("type") != "CUSTOMER_MANAGED_KMS_KEY":
                bad.append(f"{address}: encryption type {config.get('type')}")
        if resource_type == "aws_xray_encryption_config" and values.get("type") != "KMS":
            bad.append(f"{address}: type {values.get('type')}")
    assert not bad, "\n".join(bad)


def test_every_bucket_has_cmk_encryption(plan: Plan) -> None:
    buckets = {address for address, _ in plan.resources("aws_s3_bucket")}
    assert buckets, "no S3 bucket in the plan"
    configured = set()
    for address, _ in plan.resources("aws_s3_bucket_server_side_encryption_configuration"):
        configured |= plan.origins(address, ("bucket",))
    assert buckets <= configured, f"buckets without an SSE-KMS configuration: {sorted(buckets - configured)}"


def test_secure_strings_use_the_data_key_and_nothing_secret_is_a_plain_string(plan: Plan) -> None:
    parameters = list(plan.resources("aws_ssm_parameter"))
    assert parameters, "no SSM parameter in the plan"
    bad = []
    secure = 0
    for address, values in parameters:
        name = str(values.get("name", ""))
        if values.get("type") == "SecureString":
            secure += 1
            origins = _key_origins(plan, address, ("key_id",))
            if origins != {KEY.format(use="data")}:
                bad.append(f"{address}: SecureString key from {sorted(origins) or 'alias/aws/ssm'}")
        elif re.search(r"credential|secret|password|token|private", name, re.I):
            bad.append(f"{address}: {name} holds a secret but is a {values.get('type')}")
    assert secure, "no SecureString parameter (processor credentials)"
    assert not bad, "\n".join(bad)


def test_keys_rotate(plan: Plan) -> None:
    keys = list(plan.resources("aws_kms_key"))
    assert {parse_address(a).key for a, _ in keys} >= {"data", "messaging", "logs"}
    bad = [a for a, v in keys if v.get("enable_key_rotation") is not True]
    bad += [a for a, v in keys if v.get("is_enabled") is False]
    assert not bad, f"keys without rotation: {bad}"


def _statement_problems(
    address: str, statement: dict[str, object], allowed_principals: set[str], allowed_via: set[str]
) -> list[str]:
    sid = statement.get("Sid", "-")
    who = principals(statement)
    bad = []
    for service in who.get("Service", []):
        if service not in allowed_principals:
            bad.append(f"{address} [{sid}]: {service} is granted but uses nothing this key encrypts")
        for action in statement_actions(statement):
            if not KEY_USE_ACTIONS.fullmatch(action):
                bad.append(f"{address} [{sid}]: {service} may {action}")
    for arn in who.get("AWS", []):
        if arn == UNKNOWN or not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:root", arn):
            bad.append(f"{address} [{sid}]: names principal {arn} (roles get key use from IAM)")
    if "*" in who:
        bad.append(f"{address} [{sid}]: Principal *")
    conditions = statement.get("Condition") or {}
    assert isinstance(conditions, dict)
    for test in conditions.values():
        for service in as_list(test.get("kms:ViaService")):
            if service not in allowed_via:
                bad.append(
                    f"{address} [{sid}]: kms:ViaService {service}, a service that uses nothing it encrypts"
                )
    return bad


def test_key_policies_admit_only_the_services_that_use_the_key(plan: Plan, region: str) -> None:
    usage = _usage(plan)
    documents, _ = policy_documents(plan)
    key_policies = {d.owner: d for d in documents if parse_address(d.owner).type == "aws_kms_key"}
    assert key_policies, "no key policy in the plan"
    bad = []
    for address, document in sorted(key_policies.items()):
        uses = usage.get(address, set())
        if not uses:
            bad.append(f"{address}: encrypts nothing in the plan")
        allowed_principals = {
            p.format(region=region)
            for use in uses
            for p in SERVICE_PRINCIPALS_FOR.get(use, set())
            if any(True for _ in plan.resources(*PRINCIPAL_NEEDS.get(p, ()))) or p not in PRINCIPAL_NEEDS
        }
        allowed_via = {
            f"{s}.{region}.amazonaws.com" for use in uses for s in VIA_SERVICES_FOR.get(use, set())
        }
        for statement in document.statements():
            if statement.get("Effect") == "Allow":
                bad += _statement_problems(address, statement, allowed_principals, allowed_via)
    assert not bad, "\n".join(bad)
