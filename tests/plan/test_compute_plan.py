"""Plan-level settings of the compute and edge modules (functions, workflow, api, edge,
observability, schedules): timeouts, memory, log retention, throttling, WAF rules, alarms and
schedules, read from a plan of the root module with environment_suffix="plantest". Nothing here
needs a deployed platform: these are the settings no emulator enforces (throttling, WAF, scheduler
firing, alarm evaluation)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

SUFFIX = "plantest"

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
TIMEOUTS = {
    "intake": 10,
    "status": 10,
    "validator": 15,
    "fraud-check": 15,
    "settlement": 20,
    "notification": 15,
    "retry": 60,
    "health": 15,
    "report": 300,
    "cleanup": 900,
    "sweeper": 120,
    "authorizer": 5,
}
HANDLER_MODULES = {role: role.replace("-", "_") for role in ROLES}

Pick = Callable[[str], list[dict[str, Any]]]


# ------------------------------------------------------------------------------------------
# helpers


def in_module(resources: list[dict[str, Any]], module: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["address"].startswith(f"module.{module}.")]


def one(resources: list[dict[str, Any]], address: str) -> dict[str, Any]:
    found = [r for r in resources if r["address"] == address]
    assert len(found) == 1, f"{address} is not planned exactly once"
    return found[0]["values"]


def change(plan_json: dict[str, Any], address: str) -> dict[str, Any]:
    for rc in plan_json["resource_changes"]:
        if rc["address"] == address:
            after: dict[str, Any] = rc["change"]["after"] or {}
            unknown: dict[str, Any] = rc["change"].get("after_unknown") or {}
            return {"after": after, "unknown": unknown}
    raise AssertionError(f"{address} is not in the plan")


def is_set(plan_json: dict[str, Any], address: str, attribute: str) -> bool:
    """True when the attribute has a value now or will get one at apply (an ARN of a new key)."""
    c = change(plan_json, address)
    return bool(c["after"].get(attribute)) or c["unknown"].get(attribute) is True


def by_key(resources: list[dict[str, Any]], address_prefix: str) -> dict[str, dict[str, Any]]:
    """``module.x.type.name["key"]`` -> values, for every instance of a for_each resource."""
    out = {}
    for r in resources:
        if r["address"].startswith(address_prefix + "["):
            key = json.loads(r["address"][len(address_prefix) + 1 : -1])
            out[key] = r["values"]
    return out


# ------------------------------------------------------------------------------------------
# functions


@pytest.fixture(scope="module")
def functions(planned_resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = by_key(planned_resources, "module.functions.aws_lambda_function.this")
    assert sorted(found) == sorted(ROLES)
    return found


def test_functions_are_named_with_the_suffix(functions: dict[str, dict[str, Any]]) -> None:
    assert {role: f["function_name"] for role, f in functions.items()} == {
        role: f"payment-{role}-{SUFFIX}" for role in ROLES
    }


def test_functions_runtime_handler_memory_and_timeout(functions: dict[str, dict[str, Any]]) -> None:
    for role, f in functions.items():
        assert f["runtime"] == "python3.12", role
        assert f["handler"] == f"payments.handlers.{HANDLER_MODULES[role]}.handler", role
        assert f["memory_size"] >= 512, role
        assert f["timeout"] == TIMEOUTS[role], role
        assert f["architectures"] in (["arm64"], ["x86_64"]), role
        assert f["source_code_hash"], role


def test_functions_reserve_no_concurrency_by_default(functions: dict[str, dict[str, Any]]) -> None:
    # A new account's quota is small and AWS keeps 100 unreserved: the default reserves nothing
    # (-1 = unreserved); the production values are checked in test_real_aws_plan.py.
    assert {role: f["reserved_concurrent_executions"] for role, f in functions.items()} == dict.fromkeys(
        ROLES, -1
    )


def test_functions_trace_actively_and_log_json_to_their_own_group(
    functions: dict[str, dict[str, Any]],
) -> None:
    for role, f in functions.items():
        assert f["tracing_config"] == [{"mode": "Active"}], role
        logging = f["logging_config"][0]
        assert logging["log_format"] == "JSON", role
        assert logging["log_group"] == f"/aws/lambda/payment-{role}-{SUFFIX}", role


def test_functions_run_in_private_subnets_with_a_security_group(plan_json: dict[str, Any]) -> None:
    for role in ROLES:
        c = change(plan_json, f'module.functions.aws_lambda_function.this["{role}"]')
        vpc_after = c["after"]["vpc_config"]
        vpc_unknown = (c["unknown"].get("vpc_config") or [{}])[0]
        assert len(vpc_after) == 1, role
        for attribute in ("subnet_ids", "security_group_ids"):
            value = vpc_after[0].get(attribute)
            assert value or vpc_unknown.get(attribute), f"{role}: vpc_config.{attribute} is empty"


def test_function_environment_is_encrypted_and_holds_no_secret(plan_json: dict[str, Any]) -> None:
    for role in ROLES:
        address = f'module.functions.aws_lambda_function.this["{role}"]'
        c = change(plan_json, address)
        environment = c["after"]["environment"]
        assert len(environment) == 1, role
        # Names of resources created in the same apply make the map unknown on a first plan.
        variables = environment[0].get("variables")
        if variables is None:
            assert (c["unknown"].get("environment") or [{}])[0].get("variables") is True, role
        else:
            assert variables["POWERTOOLS_SERVICE_NAME"] == f"payment-{role}", role
            assert variables["ENVIRONMENT_SUFFIX"] == SUFFIX, role
            assert not any("SECRET" in k or "PASSWORD" in k for k in variables), role
        assert is_set(plan_json, address, "kms_key_arn"), f"{role}: environment not encrypted with the CMK"


def test_function_log_groups_keep_30_days_encrypted(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]]
) -> None:
    groups = by_key(planned_resources, "module.functions.aws_cloudwatch_log_group.this")
    assert {role: g["name"] for role, g in groups.items()} == {
        role: f"/aws/lambda/payment-{role}-{SUFFIX}" for role in ROLES
    }
    for role, group in groups.items():
        assert group["retention_in_days"] == 30, role
        address = f'module.functions.aws_cloudwatch_log_group.this["{role}"]'
        assert is_set(plan_json, address, "kms_key_id"), f"{role}: log group not KMS-encrypted"


def test_one_role_per_function_with_inline_policies_only(planned_resources: list[dict[str, Any]]) -> None:
    roles = by_key(planned_resources, "module.functions.aws_iam_role.this")
    assert {k: r["name"] for k, r in roles.items()} == {role: f"payment-{role}-{SUFFIX}" for role in ROLES}
    assert not [
        r for r in in_module(planned_resources, "functions") if r["type"].endswith("policy_attachment")
    ]
    for name in ("this", "vpc_access"):
        assert sorted(by_key(planned_resources, f"module.functions.aws_iam_role_policy.{name}")) == sorted(
            ROLES
        )


def test_failed_queue_feeds_retry_with_partial_batch_responses(
    planned_resources: list[dict[str, Any]],
) -> None:
    mapping = one(planned_resources, "module.functions.aws_lambda_event_source_mapping.retry")
    assert mapping["batch_size"] == 10
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["enabled"] is True


# ------------------------------------------------------------------------------------------
# workflow


@pytest.fixture(scope="module")
def state_machine(planned_resources: list[dict[str, Any]]) -> dict[str, Any]:
    return one(planned_resources, "module.workflow.aws_sfn_state_machine.this")


@pytest.fixture(scope="module")
def definition(state_machine: dict[str, Any]) -> dict[str, Any]:
    assert state_machine.get("definition"), "the definition must be known at plan time"
    parsed: dict[str, Any] = json.loads(state_machine["definition"])
    return parsed


def _tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
    return found


def test_state_machine_type_logging_and_tracing(state_machine: dict[str, Any]) -> None:
    assert state_machine["name"] == f"payment-workflow-{SUFFIX}"
    assert state_machine["type"] in ("STANDARD", "EXPRESS")
    assert state_machine["tracing_configuration"] == [{"enabled": True}]
    logging = state_machine["logging_configuration"][0]
    assert logging["level"] == "ALL"
    # PCI: execution input/output (customer data) stays out of the logs.
    assert logging["include_execution_data"] is False


def test_state_machine_is_encrypted_with_the_cmk(plan_json: dict[str, Any]) -> None:
    c = change(plan_json, "module.workflow.aws_sfn_state_machine.this")
    config = c["after"]["encryption_configuration"]
    assert len(config) == 1
    assert config[0]["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert config[0].get("kms_key_id") or c["unknown"]["encryption_configuration"][0].get("kms_key_id")


def test_workflow_timeout_is_the_computed_budget_within_express_limits(definition: dict[str, Any]) -> None:
    # The execution budget covers every task's worst case (test_real_aws_plan.py proves it route
    # by route) and stays within EXPRESS's 300 s so the workflow type can be switched.
    assert 60 <= definition["TimeoutSeconds"] <= 300


def test_every_task_retries_three_times_2s_backoff_2(definition: dict[str, Any]) -> None:
    tasks = _tasks(definition["States"])
    assert set(tasks) == {"Validate", "FraudCheck", "Reject", "Settle", "Notify", "RecordFailure"}
    for name, task in tasks.items():
        assert task["Resource"].endswith(":states:::lambda:invoke"), name
        retries = task["Retry"]
        assert retries, f"{name} has no Retry"
        for retry in retries:
            assert retry["IntervalSeconds"] == 2, name
            assert retry["MaxAttempts"] == 3, name
            assert retry["BackoffRate"] == 2.0, name
        errors = {e for r in retries for e in r["ErrorEquals"]}
        assert "States.ALL" in errors or "States.TaskFailed" in errors, name


def test_workflow_shape_matches_the_contract(definition: dict[str, Any]) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "Checks"
    checks = states["Checks"]
    assert checks["Type"] == "Parallel"
    assert [b["StartAt"] for b in checks["Branches"]] == ["Validate", "FraudCheck"]
    assert states["Decide"]["Type"] == "Choice"
    assert {c["Next"] for c in states["Decide"]["Choices"]} == {"Reject"}
    assert states["Decide"]["Default"] == "Settle"
    assert states["Settle"]["Next"] == "Notify"
    assert states["RecordFailure"]["Next"] == "WorkflowFailed"
    assert states["WorkflowFailed"]["Type"] == "Fail"
    for name in ("Checks", "Settle", "Reject"):
        assert [c["Next"] for c in states[name]["Catch"]] == ["RecordFailure"], name
        assert states[name]["Catch"][0]["ErrorEquals"] == ["States.ALL"], name
    # Notify runs once the transaction is final: its failure ends the execution directly.
    assert [c["Next"] for c in states["Notify"]["Catch"]] == ["NotificationFailed"]
    assert states["NotificationFailed"]["Type"] == "Fail"
    targets = {name: t["Parameters"]["FunctionName"] for name, t in _tasks(states).items()}
    assert targets["Validate"].endswith(f":function:payment-validator-{SUFFIX}")
    assert targets["FraudCheck"].endswith(f":function:payment-fraud-check-{SUFFIX}")
    assert targets["Settle"].endswith(f":function:payment-settlement-{SUFFIX}")
    for name in ("Reject", "Notify", "RecordFailure"):
        assert targets[name].endswith(f":function:payment-notification-{SUFFIX}"), name
    actions = {name: states[name]["Parameters"]["Payload"]["action"] for name in ("Reject", "Notify")}
    assert actions == {"Reject": "reject", "Notify": "outcome"}
    assert states["RecordFailure"]["Parameters"]["Payload"]["action"] == "failure"


def test_workflow_role_invokes_only_the_four_step_functions(plan_json: dict[str, Any]) -> None:
    # The document waits for the key ARN, so read its arguments (the planned data source read).
    document = change(plan_json, "module.workflow.data.aws_iam_policy_document.this")["after"]
    invoke = [s for s in document["statement"] if "lambda:InvokeFunction" in s["actions"]]
    assert len(invoke) == 1
    assert invoke[0]["actions"] == ["lambda:InvokeFunction"]
    resources = invoke[0]["resources"]
    names = {r.split(":function:")[1].split(":")[0] for r in resources}
    steps = ("validator", "fraud-check", "settlement", "notification")
    assert names == {f"payment-{r}-{SUFFIX}" for r in steps}
    assert len(resources) == 8, "each function and its qualified versions (:*), nothing else"


# ------------------------------------------------------------------------------------------
# security-relevant log groups (a year: PCI DSS 10.5.1)


@pytest.mark.parametrize(
    "address",
    [
        "module.workflow.aws_cloudwatch_log_group.this",
        "module.api.aws_cloudwatch_log_group.access",
        "module.edge[0].aws_cloudwatch_log_group.this",
    ],
)
def test_security_log_groups_keep_365_days_encrypted(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]], address: str
) -> None:
    assert one(planned_resources, address)["retention_in_days"] == 365
    assert is_set(plan_json, address, "kms_key_id")


def test_log_group_names(planned_resources: list[dict[str, Any]]) -> None:
    assert (
        one(planned_resources, "module.workflow.aws_cloudwatch_log_group.this")["name"]
        == f"/aws/vendedlogs/states/payment-workflow-{SUFFIX}"
    )
    assert one(planned_resources, "module.edge[0].aws_cloudwatch_log_group.this")["name"] == (
        f"aws-waf-logs-payment-{SUFFIX}"
    )


# ------------------------------------------------------------------------------------------
# api


def test_rest_api_is_regional_with_header_api_keys(planned_resources: list[dict[str, Any]]) -> None:
    api = one(planned_resources, "module.api.aws_api_gateway_rest_api.this")
    assert api["name"] == f"payment-api-{SUFFIX}"
    assert api["api_key_source"] == "HEADER"
    assert api["endpoint_configuration"][0]["types"] == ["REGIONAL"]
    assert not api.get("body"), "explicit resources, not an OpenAPI body"


def test_routes_keys_and_validation(planned_resources: list[dict[str, Any]]) -> None:
    methods = by_key(planned_resources, "module.api.aws_api_gateway_method.route")
    summary = {k: (m["http_method"], m["api_key_required"]) for k, m in methods.items()}
    assert summary == {
        "create-transaction": ("POST", True),
        "validate": ("POST", True),
        "get-transaction": ("GET", True),
        "get-status": ("GET", True),
        "health": ("GET", False),
    }
    for key in ("create-transaction", "validate"):
        assert methods[key]["request_models"] == {"application/json": "CreateTransaction"}, key
    for key in ("get-transaction", "get-status"):
        assert methods[key]["request_parameters"] == {"method.request.path.id": True}, key
    integrations = by_key(planned_resources, "module.api.aws_api_gateway_integration.route")
    for key, integration in integrations.items():
        assert integration["type"] == "AWS_PROXY", key
        assert integration["integration_http_method"] == "POST", key
    model = one(planned_resources, "module.api.aws_api_gateway_model.create_transaction")
    assert model["content_type"] == "application/json"
    assert json.loads(model["schema"])["type"] == "object"


def test_cors_origin_is_the_same_on_method_integration_and_gateway_responses(
    planned_resources: list[dict[str, Any]],
) -> None:
    method_responses = by_key(planned_resources, "module.api.aws_api_gateway_method_response.options")
    integration_responses = by_key(
        planned_resources, "module.api.aws_api_gateway_integration_response.options"
    )
    assert method_responses
    assert sorted(method_responses) == sorted(integration_responses)
    origins = set()
    for key, integration in integration_responses.items():
        declared = {h for h, on in method_responses[key]["response_parameters"].items() if on}
        assert declared == set(integration["response_parameters"]), key
        params = integration["response_parameters"]
        origins.add(params["method.response.header.Access-Control-Allow-Origin"])
        headers = params["method.response.header.Access-Control-Allow-Headers"].strip("'").split(",")
        for header in ("Content-Type", "X-Api-Key", "Idempotency-Key", "Authorization"):
            assert header in headers, (key, header)
        assert "OPTIONS" in params["method.response.header.Access-Control-Allow-Methods"], key
    for response in by_key(planned_resources, "module.api.aws_api_gateway_gateway_response.this").values():
        origins.add(response["response_parameters"]["gatewayresponse.header.Access-Control-Allow-Origin"])
    assert origins == {"'*'"}, "default cors_allowed_origins is [*], one value everywhere"


def test_gateway_responses_use_the_platform_error_shape(planned_resources: list[dict[str, Any]]) -> None:
    responses = by_key(planned_resources, "module.api.aws_api_gateway_gateway_response.this")
    expected_status = {
        "BAD_REQUEST_BODY": "400",
        "INVALID_API_KEY": "403",
        "WAF_FILTERED": "403",
        "ACCESS_DENIED": "403",
        "MISSING_AUTHENTICATION_TOKEN": "404",
        "THROTTLED": "429",
    }
    for response_type, status in expected_status.items():
        assert responses[response_type]["status_code"] == status, response_type
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for response_type, response in responses.items():
        # $context.error.messageString is rendered by API Gateway as a quoted JSON string.
        template = response["response_templates"]["application/json"]
        body = json.loads(template.replace("$context.error.messageString", '"message"'))
        assert set(body) == {"error"}, response_type
        assert set(body["error"]) == {"type", "code", "message", "param"}, response_type
    assert "messageString" in responses["BAD_REQUEST_BODY"]["response_templates"]["application/json"]


def test_stage_prod_traces_without_cache_and_logs_metadata_only(
    planned_resources: list[dict[str, Any]],
) -> None:
    stage = one(planned_resources, "module.api.aws_api_gateway_stage.this")
    assert stage["stage_name"] == "prod"
    assert stage["xray_tracing_enabled"] is True
    assert stage["cache_cluster_enabled"] is False
    assert stage["variables"]["environment"] == SUFFIX
    access_format = json.loads(stage["access_log_settings"][0]["format"])
    for field in (
        "requestId",
        "ip",
        "httpMethod",
        "resourcePath",
        "status",
        "integrationLatency",
        "apiKeyId",
    ):
        assert field in access_format, field
    assert not any("body" in v.lower() for v in access_format.values()), "never log the body"


def test_method_settings_metrics_info_no_data_trace_and_throttle(
    planned_resources: list[dict[str, Any]],
) -> None:
    settings = one(planned_resources, "module.api.aws_api_gateway_method_settings.all")
    assert settings["method_path"] == "*/*"
    s = settings["settings"][0]
    assert s["metrics_enabled"] is True
    assert s["logging_level"] == "INFO"
    assert s["data_trace_enabled"] is False  # PCI: data trace logs full bodies
    assert s["throttling_rate_limit"] == 10000
    assert s["throttling_burst_limit"] == 5000
    assert s["caching_enabled"] is False


def test_usage_plans_and_generated_keys(planned_resources: list[dict[str, Any]]) -> None:
    plans = by_key(planned_resources, "module.api.aws_api_gateway_usage_plan.this")
    assert plans["mobile"]["name"] == f"payment-mobile-{SUFFIX}"
    assert plans["mobile"]["throttle_settings"] == [{"rate_limit": 100, "burst_limit": 200}]
    assert plans["mobile"]["quota_settings"][0]["limit"] == 10000
    assert plans["mobile"]["quota_settings"][0]["period"] == "DAY"
    assert plans["partner"]["name"] == f"payment-partner-{SUFFIX}"
    assert plans["partner"]["throttle_settings"] == [{"rate_limit": 1000, "burst_limit": 2000}]
    assert plans["partner"]["quota_settings"] == []
    keys = by_key(planned_resources, "module.api.aws_api_gateway_api_key.this")
    assert {k: v["name"] for k, v in keys.items()} == {
        t: f"payment-{t}-{SUFFIX}" for t in ("mobile", "partner")
    }
    for tier, key in keys.items():
        assert not key.get("value"), f"{tier}: key value must be generated by AWS"


def test_lambda_permissions_are_scoped_to_their_route(plan_json: dict[str, Any]) -> None:
    expected = {
        "create-transaction": "/*/POST/transactions",
        "validate": "/*/POST/validate",
        "get-transaction": "/*/GET/transactions/*",
        "get-status": "/*/GET/status/*",
        "health": "/*/GET/health",
    }
    api = next(
        m
        for m in plan_json["configuration"]["root_module"]["module_calls"].values()
        if m["source"] == "./modules/api"
    )
    permission = next(r for r in api["module"]["resources"] if r["address"] == "aws_lambda_permission.route")
    assert permission["expressions"]["principal"]["constant_value"] == "apigateway.amazonaws.com"
    for key, suffix in expected.items():
        after = change(plan_json, f'module.api.aws_lambda_permission.route["{key}"]')
        source = after["after"].get("source_arn")
        assert source is None or source.endswith(suffix), (key, source)
        assert source is not None or after["unknown"].get("source_arn") is True, key


# ------------------------------------------------------------------------------------------
# edge


@pytest.fixture(scope="module")
def waf_rules(planned_resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    acl = one(planned_resources, "module.edge[0].aws_wafv2_web_acl.this")
    assert acl["scope"] == "REGIONAL"
    assert acl["default_action"][0]["allow"]
    return {rule["name"]: rule for rule in acl["rule"]}


def test_waf_rate_rule_2000_per_5_min_skips_health(waf_rules: dict[str, dict[str, Any]]) -> None:
    rule = waf_rules["rate-limit-per-ip"]
    rate = rule["statement"][0]["rate_based_statement"][0]
    assert rate["limit"] == 2000
    assert rate["evaluation_window_sec"] == 300
    assert rate["aggregate_key_type"] == "IP"
    negated = rate["scope_down_statement"][0]["not_statement"][0]["statement"][0]
    matches = [s["byte_match_statement"][0] for s in negated["or_statement"][0]["statement"]]
    assert {m["search_string"] for m in matches} == {"/health", "/prod/health"}
    assert all(m["positional_constraint"] == "STARTS_WITH" for m in matches)
    assert all(m["field_to_match"][0]["uri_path"] for m in matches)
    block = rule["action"][0]["block"][0]["custom_response"][0]
    assert block["response_code"] == 429


def test_waf_geo_block_answers_json_403(
    waf_rules: dict[str, dict[str, Any]], planned_resources: list[dict[str, Any]]
) -> None:
    rule = waf_rules["geo-block"]
    assert rule["statement"][0]["geo_match_statement"][0]["country_codes"] == ["CN", "RU", "KP", "IR"]
    response = rule["action"][0]["block"][0]["custom_response"][0]
    assert response["response_code"] == 403
    acl = one(planned_resources, "module.edge[0].aws_wafv2_web_acl.this")
    bodies = {b["key"]: b for b in acl["custom_response_body"]}
    body = bodies[response["custom_response_body_key"]]
    assert body["content_type"] == "APPLICATION_JSON"
    assert set(json.loads(body["content"])["error"]) == {"type", "code", "message", "param"}


def test_waf_managed_rule_groups_and_no_bot_control_by_default(waf_rules: dict[str, dict[str, Any]]) -> None:
    managed = {
        name: rule for name, rule in waf_rules.items() if rule["statement"][0]["managed_rule_group_statement"]
    }
    assert set(managed) == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
    }
    for name, rule in managed.items():
        assert rule["override_action"][0]["none"], name
        assert rule["statement"][0]["managed_rule_group_statement"][0]["vendor_name"] == "AWS"
    for name, rule in waf_rules.items():
        assert rule["visibility_config"][0]["cloudwatch_metrics_enabled"] is True, name


def test_waf_logging_redacts_credentials(planned_resources: list[dict[str, Any]]) -> None:
    logging = one(planned_resources, "module.edge[0].aws_wafv2_web_acl_logging_configuration.this")
    redacted = {f["single_header"][0]["name"] for f in logging["redacted_fields"] if f["single_header"]}
    assert redacted == {"authorization", "x-api-key"}


# ------------------------------------------------------------------------------------------
# observability


@pytest.fixture(scope="module")
def alarms(planned_resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for kind in ("metric", "math"):
        found.update(by_key(planned_resources, f"module.observability.aws_cloudwatch_metric_alarm.{kind}"))
    return found


def test_every_alarm_notifies_and_ignores_missing_data(alarms: dict[str, dict[str, Any]]) -> None:
    assert alarms
    for key, alarm in alarms.items():
        assert alarm["alarm_name"] == f"payment-{key}-{SUFFIX}"
        assert alarm["treat_missing_data"] == "notBreaching", key
        assert alarm["evaluation_periods"] == 1, key


def test_per_function_error_alarms(alarms: dict[str, dict[str, Any]]) -> None:
    for role in ROLES:
        alarm = alarms[f"{role}-errors"]
        assert alarm["metric_name"] == "Errors"
        assert alarm["dimensions"] == {"FunctionName": f"payment-{role}-{SUFFIX}"}
        assert alarm["statistic"] == "Sum"
        assert alarm["period"] == 300
        assert alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["threshold"] == 1


def _expression(alarm: dict[str, Any]) -> str:
    returned = [q for q in alarm["metric_query"] if q["return_data"]]
    assert len(returned) == 1
    return str(returned[0]["expression"])


def test_rate_alarms_use_metric_math(alarms: dict[str, dict[str, Any]]) -> None:
    for role in ROLES:
        alarm = alarms[f"{role}-error-rate"]
        assert _expression(alarm) == "100 * errors / invocations"
        assert alarm["threshold"] == 1
        assert alarm["comparison_operator"] == "GreaterThanThreshold"
    path = alarms["lambda-error-rate"]
    path_metrics = [q["metric"][0] for q in path["metric_query"] if q["metric"]]
    assert len(path_metrics) == 10, "errors and invocations of the five payment-path functions"
    assert {m["dimensions"]["FunctionName"] for m in path_metrics} == {
        f"payment-{r}-{SUFFIX}" for r in ("intake", "validator", "fraud-check", "settlement", "notification")
    }
    assert _expression(path).startswith("100 * (")
    assert path["threshold"] == 1
    api_4xx = alarms["api-4xx-rate"]
    assert _expression(api_4xx) == "100 * client_errors / requests"
    assert api_4xx["threshold"] == 5
    metrics = {q["id"]: q["metric"][0] for q in api_4xx["metric_query"] if q["metric"]}
    assert metrics["client_errors"]["metric_name"] == "4XXError"
    assert metrics["requests"]["metric_name"] == "Count"
    for alarm in alarms.values():
        for query in alarm.get("metric_query") or []:
            assert "SEARCH" not in (query.get("expression") or "")
        assert len([q for q in alarm.get("metric_query") or [] if q["metric"]]) <= 10


def test_api_dynamodb_queue_and_workflow_alarm_thresholds(alarms: dict[str, dict[str, Any]]) -> None:
    expect = {
        "api-5xx": ("5XXError", "GreaterThanOrEqualToThreshold", 1),
        "api-latency": ("Latency", "GreaterThanThreshold", 1000),
        "dlq-messages": ("ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1),
        "dlq-age": ("ApproximateAgeOfOldestMessage", "GreaterThanThreshold", 3600),
        "scheduler-dlq-messages": ("ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1),
        "workflow-failed": ("ExecutionsFailed", "GreaterThanOrEqualToThreshold", 1),
        "workflow-timed-out": ("ExecutionsTimedOut", "GreaterThanOrEqualToThreshold", 1),
        "payment-parked": ("PaymentParked", "GreaterThanOrEqualToThreshold", 1),
    }
    for key, (metric, comparison, threshold) in expect.items():
        alarm = alarms[key]
        assert (alarm["metric_name"], alarm["comparison_operator"], alarm["threshold"]) == (
            metric,
            comparison,
            threshold,
        ), key
        assert alarm["period"] == 300, key
    assert alarms["api-latency"]["statistic"] == "Average"
    # The retry consumer's own metric (payments/handlers/retry.py counts PaymentParked): Powertools
    # writes it in the functions' namespace with the function's service name as its one dimension.
    parked = alarms["payment-parked"]
    assert (parked["namespace"], parked["statistic"]) == ("PaymentPlatform", "Sum")
    assert parked["dimensions"] == {"service": "payment-retry"}
    assert alarms["dlq-messages"]["dimensions"] == {"QueueName": f"failed-transactions-dlq-{SUFFIX}"}
    assert alarms["scheduler-dlq-messages"]["dimensions"] == {"QueueName": f"payment-scheduler-dlq-{SUFFIX}"}
    for table in ("transactions", "audit", "idempotency"):
        alarm = alarms[f"{table}-throttles"]
        assert alarm["threshold"] == 10
        assert alarm["comparison_operator"] == "GreaterThanThreshold"
        metrics = {q["metric"][0]["metric_name"] for q in alarm["metric_query"] if q["metric"]}
        assert metrics == {"ReadThrottleEvents", "WriteThrottleEvents"}


def test_xray_sampling_10_percent_reservoir_1(planned_resources: list[dict[str, Any]]) -> None:
    rule = one(planned_resources, "module.observability.aws_xray_sampling_rule.this[0]")
    assert rule["fixed_rate"] == 0.1
    assert rule["reservoir_size"] == 1
    assert rule["service_name"] == "payment-*"
    # The X-Ray encryption setting is account-wide: left to the account unless asked for.
    assert not [r for r in planned_resources if r["type"] == "aws_xray_encryption_config"]


def test_dashboard_and_xray_group(plan_json: dict[str, Any]) -> None:
    dashboard = change(plan_json, "module.observability.aws_cloudwatch_dashboard.this")["after"]
    assert dashboard["dashboard_name"] == f"payment-platform-{SUFFIX}"
    group = change(plan_json, "module.observability.aws_xray_group.this[0]")["after"]
    assert group["group_name"] == f"payment-{SUFFIX}"
    if group.get("filter_expression"):
        assert f'service("payment-intake-{SUFFIX}")' in group["filter_expression"]


# ------------------------------------------------------------------------------------------
# schedules


def test_schedules_expressions_window_retry_and_dlq(
    plan_json: dict[str, Any], resources_of_type: Pick
) -> None:
    schedules = {s["values"]["name"]: s["values"] for s in resources_of_type("aws_scheduler_schedule")}
    assert set(schedules) == {
        f"payment-daily-report-{SUFFIX}",
        f"payment-cleanup-{SUFFIX}",
        f"payment-sweeper-{SUFFIX}",
    }
    report = schedules[f"payment-daily-report-{SUFFIX}"]
    cleanup = schedules[f"payment-cleanup-{SUFFIX}"]
    assert report["schedule_expression"] == "cron(0 2 * * ? *)"
    assert cleanup["schedule_expression"] == "cron(0 3 * * ? *)"
    sweeper = schedules[f"payment-sweeper-{SUFFIX}"]
    assert sweeper["schedule_expression"] == "rate(5 minutes)"
    assert json.loads(sweeper["target"][0]["input"]) == {}
    for name, schedule in schedules.items():
        assert schedule["group_name"] == f"payment-{SUFFIX}", name
        assert schedule["schedule_expression_timezone"] == "UTC", name
        assert schedule["flexible_time_window"] == [{"mode": "OFF", "maximum_window_in_minutes": None}], name
        assert schedule["state"] == "ENABLED", name
        retry = schedule["target"][0]["retry_policy"][0]
        assert retry == {"maximum_retry_attempts": 3, "maximum_event_age_in_seconds": 3600}, name
        address = next(
            rc["address"]
            for rc in plan_json["resource_changes"]
            if rc["type"] == "aws_scheduler_schedule" and rc["change"]["after"]["name"] == name
        )
        target_unknown = (change(plan_json, address)["unknown"].get("target") or [{}])[0]
        assert schedule["target"][0].get("dead_letter_config") or target_unknown.get("dead_letter_config"), (
            name
        )
        assert is_set(plan_json, address, "kms_key_arn"), name
    assert json.loads(report["target"][0]["input"]) == {"date": "yesterday", "upload": True}
    assert json.loads(cleanup["target"][0]["input"]) == {
        "older_than_days": 90,
        "archive": True,
        "dry_run": False,
        "backfill_ttl": False,
    }


def test_scheduler_dlq_keeps_14_days_encrypted(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]]
) -> None:
    dlq = one(planned_resources, "module.schedules.aws_sqs_queue.dlq")
    assert dlq["name"] == f"payment-scheduler-dlq-{SUFFIX}"
    assert dlq["message_retention_seconds"] == 1209600
    assert is_set(plan_json, "module.schedules.aws_sqs_queue.dlq", "kms_master_key_id")


def test_one_scheduler_role_per_schedule_trusting_scheduler_in_this_account(
    planned_resources: list[dict[str, Any]],
) -> None:
    roles = by_key(planned_resources, "module.schedules.aws_iam_role.this")
    assert sorted(roles) == ["cleanup", "report", "sweeper"]
    for key, role in roles.items():
        trust = json.loads(role["assume_role_policy"]) if role.get("assume_role_policy") else None
        if trust is None:
            continue  # built from the group ARN, known after apply; covered by tests/security
        statement = trust["Statement"][0]
        assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}, key
        assert "aws:SourceAccount" in statement["Condition"]["StringEquals"], key


def test_the_lease_outlasts_the_work_it_guards_and_the_sweeper_waits_out_the_workflow(
    plan_json: dict[str, Any], functions: dict[str, dict[str, Any]], definition: dict[str, Any]
) -> None:
    # The values the plan was made with; outputs.tf's preconditions refuse a plan that breaks these.
    variables = {name: v.get("value") for name, v in plan_json["variables"].items()}
    lease, stuck = variables["settlement_lease_seconds"], variables["stuck_after_seconds"]
    assert lease > max(functions["settlement"]["timeout"], functions["retry"]["timeout"])
    assert stuck > definition["TimeoutSeconds"] + lease


def test_every_route_but_health_goes_through_the_client_authorizer(
    planned_resources: list[dict[str, Any]],
) -> None:
    """API Gateway developer guide, "Use API Gateway Lambda authorizers": a REQUEST authorizer on a
    method, its identity source, and the result cache TTL. API keys identify callers for usage plans
    and are no authorization on their own, so every route with a key also has the authorizer."""
    [authorizer] = [r["values"] for r in planned_resources if r["type"] == "aws_api_gateway_authorizer"]
    assert authorizer["type"] == "REQUEST"
    assert authorizer["identity_source"] == "method.request.header.Authorization"
    assert authorizer["authorizer_result_ttl_in_seconds"] == 120
    assert authorizer["name"] == f"payment-clients-{SUFFIX}"
    methods = {
        r["address"].split("[", 1)[1].strip('"]'): r["values"]
        for r in planned_resources
        if r["address"].startswith("module.api.aws_api_gateway_method.route[")
    }
    assert len(methods) >= 5, sorted(methods)
    for route, method in methods.items():
        open_route = route.startswith("health")
        assert method["authorization"] == ("NONE" if open_route else "CUSTOM"), route
        assert method["api_key_required"] is not open_route, route
    assert [route for route in methods if route.startswith("health")], "GET /health stays open"
