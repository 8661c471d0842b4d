"""Least privilege: every IAM policy document in the plan, and each function's role against
the AWS calls its code makes (derived from the source, see code_calls.py)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest

from .code_calls import CodeModel
from .plan_model import (
    UNKNOWN,
    Plan,
    PolicyDocument,
    as_list,
    parse_address,
    policy_documents,
    principals,
    statement_actions,
    statement_resources,
)

pytestmark = pytest.mark.plan

# Actions AWS cannot scope to a resource: "Resource": "*" is the only valid value.
UNSCOPABLE_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
        # Lambda VPC networking (AWSLambdaVPCAccessExecutionRole): the ENI does not exist yet.
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "ec2:DescribeSubnets",
        # Log delivery for Step Functions / API Gateway vended logs.
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        # /health reads alarm state with AlarmNamePrefix; CloudWatch authorises DescribeAlarms
        # against alarm:* whatever the prefix, so a scoped grant (alarm:payment-*) is denied and
        # the check always degrades. Read-only: it reveals alarm names and states, no data.
        "cloudwatch:DescribeAlarms",
    }
)
# "*" is acceptable for these only with the condition that scopes them.
CONDITIONAL_UNSCOPABLE = {"cloudwatch:PutMetricData": "cloudwatch:namespace"}

# Granted because of how the function is deployed, not because its code calls AWS.
RUNTIME_ACTIONS = frozenset(
    {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "ec2:DescribeSubnets",
    }
)
# What the Lambda service calls with the function's role to poll an SQS event source.
SQS_EVENT_SOURCE_ACTIONS = {
    "required": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "allowed": {"sqs:ChangeMessageVisibility"},
}
# What a function's role must allow for Lambda to deliver to an event-invoke destination.
DESTINATION_ACTIONS: dict[str, set[str]] = {
    "aws_sns_topic": {"sns:Publish"},
    "aws_sqs_queue": {"sqs:SendMessage"},
    "aws_lambda_function": {"lambda:InvokeFunction"},
    "aws_cloudwatch_event_bus": {"events:PutEvents"},
}
# KMS use implied by data-plane calls on CMK-encrypted resources (the keys' policies delegate
# to IAM, so the role must grant it): action -> (required kms actions, also allowed).
KMS_IMPLIED: dict[str, tuple[set[str], set[str]]] = {
    "sqs:SendMessage": ({"kms:GenerateDataKey", "kms:Decrypt"}, set()),
    "sqs:ReceiveMessage": ({"kms:Decrypt"}, set()),
    "sns:Publish": ({"kms:GenerateDataKey", "kms:Decrypt"}, set()),
    "s3:PutObject": ({"kms:GenerateDataKey"}, {"kms:Decrypt"}),
    "s3:GetObject": ({"kms:Decrypt"}, set()),
    # SecureString reads need Decrypt; String reads need nothing, so it is allowed, not required.
    "ssm:GetParameter": (set(), {"kms:Decrypt"}),
    "ssm:GetParameters": (set(), {"kms:Decrypt"}),
    "ssm:GetParametersByPath": (set(), {"kms:Decrypt"}),
    # StartExecution on a CMK-encrypted state machine encrypts the input with the key.
    "states:StartExecution": (set(), {"kms:GenerateDataKey", "kms:Decrypt"}),
}
DYNAMODB_KMS = {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:Encrypt"}

IDENTITY_POLICY_TYPES = (
    "aws_iam_role_policy",
    "aws_iam_policy",
    "aws_iam_user_policy",
    "aws_iam_group_policy",
)


def _identity(doc: PolicyDocument) -> bool:
    return parse_address(doc.owner).type in IDENTITY_POLICY_TYPES


def _documents(plan: Plan) -> list[PolicyDocument]:
    documents, _ = policy_documents(plan)
    return documents


def _where(doc: PolicyDocument, statement: dict[str, Any]) -> str:
    return f"{doc.owner} [{statement.get('Sid', '-')}]"


def test_every_policy_document_is_readable_at_plan_time(plan: Plan) -> None:
    """A policy the gate cannot read is a policy nobody reviewed: build it with
    aws_iam_policy_document (whose arguments the plan records) or from known values."""
    documents, unreadable = policy_documents(plan)
    assert documents, "no policy document found in the plan"
    assert not unreadable, "policy documents unknown at plan time:\n" + "\n".join(unreadable)


def test_no_action_wildcards(plan: Plan) -> None:
    bad = []
    for doc in _documents(plan):
        for statement in doc.statements():
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement:
                bad.append(f"{_where(doc, statement)}: Allow with NotAction")
            for action in statement_actions(statement):
                if action == "*" or action.endswith(":*"):
                    if _is_key_policy_root_admin(doc, statement):
                        continue  # the documented default key policy: delegates the key to IAM
                    bad.append(f"{_where(doc, statement)}: {action}")
    assert not bad, "wildcard actions granted:\n" + "\n".join(bad)


def _is_key_policy_root_admin(doc: PolicyDocument, statement: dict[str, Any]) -> bool:
    if parse_address(doc.owner).type != "aws_kms_key":
        return False
    aws = principals(statement)
    return set(aws) == {"AWS"} and all(re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:root", p) for p in aws["AWS"])


def test_resource_wildcard_only_for_actions_aws_cannot_scope(plan: Plan) -> None:
    bad = []
    for doc in filter(_identity, _documents(plan)):
        for statement in doc.statements():
            if statement.get("Effect") != "Allow":
                continue
            resources = statement_resources(statement)
            if not any(r == "*" or re.fullmatch(r"arn:[^:]+:[^:]+:\*?:\*?:\*", r) for r in resources):
                continue
            for action in statement_actions(statement):
                if action in UNSCOPABLE_ACTIONS:
                    continue
                condition_key = CONDITIONAL_UNSCOPABLE.get(action)
                conditions = {
                    variable for test in statement.get("Condition", {}).values() for variable in test
                }
                if condition_key and condition_key in conditions:
                    continue
                bad.append(f"{_where(doc, statement)}: {action} on {resources}")
    assert not bad, 'actions granted on "*" that AWS can scope to a resource:\n' + "\n".join(bad)


def test_resource_policies_never_allow_anonymous_access(plan: Plan) -> None:
    bad = []
    for doc in _documents(plan):
        if _identity(doc) or doc.attribute == "assume_role_policy":
            continue
        for statement in doc.statements():
            if statement.get("Effect") != "Allow":
                continue
            for kind, identifiers in principals(statement).items():
                if "*" in identifiers and not statement.get("Condition"):
                    bad.append(f"{_where(doc, statement)}: Allow {kind}:* without a condition")
    assert not bad, "\n".join(bad)


def test_roles_are_assumable_only_by_their_service(plan: Plan) -> None:
    bad = []
    trust = [d for d in _documents(plan) if d.attribute == "assume_role_policy"]
    assert trust, "no role in the plan"
    for doc in trust:
        for statement in doc.statements():
            if statement.get("Effect") != "Allow":
                continue
            who = principals(statement)
            if set(who) != {"Service"} or any("*" in p for p in who["Service"]):
                bad.append(f"{_where(doc, statement)}: trusted principals {who}")
            if set(statement_actions(statement)) - {"sts:AssumeRole"}:
                bad.append(f"{_where(doc, statement)}: {statement_actions(statement)}")
            # Confused deputy: a service acting for another account must not get this role.
            # Lambda is exempt: its execution role is passed explicitly at function creation.
            # So is API Gateway's account CloudWatch role: AWS documents its trust policy without
            # conditions and API Gateway is reported not to send aws:SourceAccount for it (a
            # condition can make aws_api_gateway_account fail); the role only writes logs.
            conditions = {v for test in statement.get("Condition", {}).values() for v in test}
            services = set(who.get("Service", [])) - {"lambda.amazonaws.com", "apigateway.amazonaws.com"}
            if services and not conditions & {"aws:SourceAccount", "aws:SourceArn"}:
                bad.append(
                    f"{_where(doc, statement)}: {sorted(services)} without aws:SourceAccount/SourceArn"
                )
    assert not bad, "\n".join(bad)


# ------------------------------------------------------------------------------------------
# Function roles against the code


def _function_roles(plan: Plan) -> dict[str, dict[str, Any]]:
    """function name -> {handler, role, documents, attachments, event_source}."""
    documents = _documents(plan)
    by_role: dict[str, list[PolicyDocument]] = defaultdict(list)
    for doc in documents:
        if parse_address(doc.owner).type == "aws_iam_role_policy":
            for origin in plan.origins(doc.owner, ("role",)):
                by_role[origin].append(doc)
    attachments: dict[str, list[str]] = defaultdict(list)
    for address, values in plan.resources("aws_iam_role_policy_attachment"):
        for origin in plan.origins(address, ("role",)):
            attachments[origin].append(str(values.get("policy_arn")))
    sources: dict[str, list[str]] = defaultdict(list)
    for address, values in plan.resources("aws_lambda_event_source_mapping"):
        for origin in plan.origins(address, ("function_name",)):
            sources[origin].append(str(values.get("event_source_arn") or address))
    # Lambda delivers to an asynchronous invocation's destination with the function's own role.
    destinations: dict[str, set[str]] = defaultdict(set)
    for address, _values in plan.resources("aws_lambda_function_event_invoke_config"):
        targets = plan.origins(address, ("destination_config", "on_failure", "destination"))
        targets |= plan.origins(address, ("destination_config", "on_success", "destination"))
        for origin in plan.origins(address, ("function_name",)):
            for target in targets:
                kind = parse_address(target).type if not target.startswith("const:") else ""
                destinations[origin] |= DESTINATION_ACTIONS.get(kind, set())
    functions = {}
    for address, values in plan.resources("aws_lambda_function"):
        roles = plan.origins(address, ("role",))
        assert len(roles) == 1, f"{address}: role comes from {roles}"
        role = next(iter(roles))
        functions[values["function_name"]] = {
            "address": address,
            "handler": values["handler"],
            "role": role,
            "documents": by_role.get(role, []),
            "attachments": attachments.get(role, []),
            "event_sources": sources.get(address, []),
            "destinations": destinations.get(address, set()),
            "vpc": bool(values.get("vpc_config")),
        }
    return functions


def _granted(documents: list[PolicyDocument]) -> dict[str, list[dict[str, Any]]]:
    granted: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for doc in documents:
        for statement in doc.statements():
            if statement.get("Effect") == "Allow":
                for action in statement_actions(statement):
                    granted[action].append(statement)
    return granted


def _entry(handler: str) -> str:
    module, _, function = handler.rpartition(".")
    return f"{module}:{function}"


def _role_mismatches(function: dict[str, Any], code: dict[str, list[str]]) -> list[str]:
    granted = _granted(function["documents"])
    granted_actions = set(granted)
    required = set(code)
    allowed = set(code)
    required |= function["destinations"]
    allowed |= function["destinations"]
    if function["event_sources"]:
        required |= SQS_EVENT_SOURCE_ACTIONS["required"]
        allowed |= SQS_EVENT_SOURCE_ACTIONS["allowed"] | SQS_EVENT_SOURCE_ACTIONS["required"]
    kms_required: set[str] = set()
    kms_allowed: set[str] = set()
    for action in required | allowed:
        needs, may = KMS_IMPLIED.get(action, (set(), set()))
        kms_required |= needs
        kms_allowed |= needs | may
        if action.startswith("dynamodb:"):
            kms_allowed |= DYNAMODB_KMS
    problems = []
    for action in sorted(required - granted_actions):
        where = ", ".join(sorted(set(code.get(action, ["event source mapping or invoke destination"]))))
        problems.append(f"missing {action} (called at {where})")
    for action in sorted(kms_required - granted_actions):
        problems.append(f"missing {action} (implied by its calls on CMK-encrypted resources)")
    for action in sorted(granted_actions - allowed - kms_allowed - RUNTIME_ACTIONS):
        problems.append(f"grants {action}, which its code never calls")
    if function["vpc"] and "ec2:CreateNetworkInterface" not in granted_actions:
        problems.append("missing ec2:CreateNetworkInterface (function runs in a VPC)")
    problems += [f"managed policy attached: {arn}" for arn in function["attachments"]]
    return problems


def test_each_function_role_grants_exactly_what_its_code_calls(plan: Plan, code_model: CodeModel) -> None:
    functions = _function_roles(plan)
    assert len(functions) == 12, sorted(functions)
    report = []
    for name, function in sorted(functions.items()):
        if _entry(function["handler"]) not in code_model.functions:
            report.append(f"{name}: handler {function['handler']} is not defined in lambda/")
            continue
        code = code_model.actions(_entry(function["handler"]))
        problems = _role_mismatches(function, code)
        report += [f"{name} ({function['handler']}): {p}" for p in problems]
    assert not report, "function roles and code disagree:\n" + "\n".join(report)


def test_function_data_plane_grants_name_their_resources(plan: Plan) -> None:
    """Data-plane statements are scoped to ARNs (never "*" or a whole service/account)."""
    bad = []
    for name, function in sorted(_function_roles(plan).items()):
        for action, statements in _granted(function["documents"]).items():
            if action in RUNTIME_ACTIONS or action in CONDITIONAL_UNSCOPABLE or action in UNSCOPABLE_ACTIONS:
                continue
            for statement in statements:
                for resource in statement_resources(statement):
                    if resource == UNKNOWN:
                        continue  # an ARN of a resource created in the same apply
                    if "*" in resource.split("/")[0] or resource.endswith(":*"):
                        bad.append(f"{name}: {action} on {resource}")
    assert not bad, "\n".join(bad)


def test_health_reads_alarm_state_on_every_alarm(plan: Plan) -> None:
    """DescribeAlarms is authorised against alarm:* (see UNSCOPABLE_ACTIONS): the health role
    grants it on "*", else /health is always "degraded"."""
    functions = _function_roles(plan)
    [health] = [f for name, f in functions.items() if name.startswith("payment-health-")]
    statements = _granted(health["documents"]).get("cloudwatch:DescribeAlarms", [])
    assert statements, "the health role cannot read alarm state"
    for statement in statements:
        assert statement_resources(statement) == ["*"], statement


def test_kms_grants_are_pinned_to_the_calling_service(plan: Plan) -> None:
    """A role's kms:* grants carry kms:ViaService so the key is only usable through the service
    the function calls (S0 granted kms:Decrypt on "*")."""
    bad = []
    for name, function in sorted(_function_roles(plan).items()):
        for action, statements in _granted(function["documents"]).items():
            if not action.startswith("kms:"):
                continue
            for statement in statements:
                conditions = {v for test in statement.get("Condition", {}).values() for v in test}
                if "kms:ViaService" not in conditions:
                    bad.append(f"{name}: {action} in [{statement.get('Sid')}] without kms:ViaService")
                if any(r == "*" for r in as_list(statement.get("Resource"))):
                    bad.append(f"{name}: {action} on *")
    assert not bad, "\n".join(bad)


def test_lambda_permissions_are_scoped_to_their_source(plan: Plan) -> None:
    """Resource-based invoke permissions name one service and one source ARN (no "*" principal,
    no permission usable from another API or account)."""
    permissions = list(plan.resources("aws_lambda_permission"))
    bad = []
    for address, values in permissions:
        principal = str(values.get("principal"))
        if principal == "*" or not principal.endswith(".amazonaws.com"):
            bad.append(f"{address}: principal {principal}")
        if values.get("action") != "lambda:InvokeFunction":
            bad.append(f"{address}: action {values.get('action')}")
        source = values.get("source_arn")
        if source in (None, "") or (source != UNKNOWN and re.search(r":\*$|^\*$", str(source))):
            bad.append(f"{address}: source_arn {source}")
        elif source == UNKNOWN and not plan.origins(address, ("source_arn",)):
            bad.append(f"{address}: source_arn not configured")
    assert not bad, "\n".join(bad)
