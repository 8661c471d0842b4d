"""What an emulator backend does not round-trip, so that the apply/e2e suites can say so per backend
instead of weakening the assertion for every backend. Each entry is a finding listed in
docs/emulators.md with the evidence and which emulator matches AWS.
"""

from __future__ import annotations

from typing import Any

from devkit.emulator.endpoints import selected_backend

# What a backend lacks although AWS has it: fields a describe call does not return although the
# resource was created with them, and behaviours it does not perform.
MISSING: dict[str, frozenset[str]] = {
    # moto never delivers Step Functions execution status-change events to EventBridge rules.
    "moto": frozenset({"events:stepfunctions-status-events"}),
    "localstack": frozenset(
        {
            # CreateFunction/GetFunctionConfiguration answer without KMSKeyArn (AWS returns it).
            "lambda:KMSKeyArn",
            # DescribeStateMachine answers without tracingConfiguration and encryptionConfiguration
            # (AWS returns both).
            "stepfunctions:tracingConfiguration",
            "stepfunctions:encryptionConfiguration",
            # Gateway responses: LocalStack applies their status code but not their response
            # templates or header parameters (a TODO in its execute-api exception handler), so the
            # body is its own {"message": ...} and the CORS headers are missing.
            "apigateway:gateway-response-templates",
            # Lambda authorizers on REST APIs are stored (CreateAuthorizer) but never run: 4.14's
            # execute-api handler chain has no authorizer step, so requests reach the integration
            # without credentials being checked and without requestContext.authorizer.
            "apigateway:lambda-authorizers",
            # A request body that is not UTF-8 (schemathesis' negative bodies) fails inside its REST
            # execute-api handler chain ("'utf-8' codec can't decode ...") and the gateway itself
            # answers 500; our moto front's request validator answers 400 invalid_body.
            "apigateway:non-utf8-request-body",
            # DescribeAlarms applies only the first of ActionPrefix, AlarmNamePrefix, AlarmNames and
            # StateValue (an elif chain in its CloudWatch provider): AlarmNamePrefix + StateValue=ALARM
            # returns every alarm of the prefix, so the health check sees them all "in alarm".
            "cloudwatch:describe-alarms-combined-filters",
            # GetMetricData with a percentile Stat (p99) over stored datapoints fails with
            # InternalError "'p99'": its CloudWatch provider computes only SampleCount, Average, Sum,
            # Minimum and Maximum (AWS answers percentiles for any metric put with values).
            "cloudwatch:percentile-statistics",
        }
    ),
}

# (resource type, attribute) that the second plan shows as changed on a backend, because the backend
# does not return what was applied. Nothing else may differ.
PLAN_DRIFT: dict[str, frozenset[tuple[str, str]]] = {
    "moto": frozenset(),
    "localstack": frozenset(
        {
            ("aws_lambda_function", "kms_key_arn"),  # the unreturned KMSKeyArn above
            ("aws_vpc_endpoint", "policy"),  # returned without its "Version"
            ("aws_vpc_security_group_egress_rule", "description"),  # prefix-list rules lose it
            ("aws_vpc_security_group_ingress_rule", "description"),  # security-group rules lose it
            ("aws_cloudwatch_metric_alarm", "tags_all"),  # metric-math alarms: tags not returned
            ("aws_sfn_state_machine", "tracing_configuration"),  # the unreturned tracingConfiguration
            ("aws_sfn_state_machine", "encryption_configuration"),  # encryptionConfiguration: same
        }
    ),
}


def supports(feature: str) -> bool:
    """Whether the selected backend returns/performs ``service:feature`` as AWS does."""
    return feature not in MISSING[selected_backend()]


def _differs(before: Any, after: Any, unknown: Any) -> bool:
    return bool(unknown) or before != after


def unexpected_changes(plan: dict[str, Any], allowed: frozenset[tuple[str, str]]) -> list[str]:
    """Changes in ``terraform show -json`` of a plan other than updates of ``allowed`` attributes."""
    found: list[str] = []
    for rc in plan.get("resource_changes", []):
        change = rc["change"]
        actions = change["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        if actions != ["update"]:
            found.append(f"{rc['address']}: {'/'.join(actions)}")
            continue
        before, after = change.get("before") or {}, change.get("after") or {}
        unknown = change.get("after_unknown") or {}
        for key in sorted(set(before) | set(after)):
            if _differs(before.get(key), after.get(key), unknown.get(key)) and (
                (rc["type"], key) not in allowed
            ):
                found.append(f"{rc['address']}.{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return found
