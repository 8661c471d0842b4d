"""PCI DSS-minded settings: no request bodies or execution data in logs, no secrets in Lambda
environments, a year of security-relevant logs (10.5.1), audit and archive retention, API keys
on every business route, and sensitive headers redacted from WAF logs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .plan_model import UNKNOWN, Plan, as_list, first_block, lambda_environment_source, parse_address

pytestmark = pytest.mark.plan

REPO_ROOT = Path(__file__).resolve().parents[2]

SECURITY_LOG_DAYS = 365
AUDIT_TTL_DAYS = 90
ARCHIVE_MIN_DAYS = 365

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL|PRIVATE", re.I)
# Values that are references to a secret, not the secret: SSM names, ARNs, URLs without
# userinfo, numbers, booleans, short identifiers.
REFERENCE_VALUE = re.compile(r"^(/[\w./-]+|arn:aws[\w-]*:[\w-]+:.*|https?://[^@\s]+|\d+|true|false|)$", re.I)
# An expression that yields the name/ARN/URL of where a secret lives, not the secret.
REFERENCE_EXPRESSION = re.compile(r"(_names?|_arns?|_urls?|_ids?|\.name|\.arn|\.id)\b")
SECRET_VALUE = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(sk|rk)_(live|test)_[0-9A-Za-z]{8,}"),  # processor secret keys
    re.compile(r"eyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}"),  # JWT
    re.compile(r"(password|passwd|secret|token)\s*[=:]\s*\S+", re.I),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # credentials in a URL
]


def _functions(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    functions = list(plan.resources("aws_lambda_function"))
    assert functions, "no Lambda function in the plan"
    return functions


def _log_group_for(plan: Plan, address: str, path: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    groups = []
    for origin in plan.origins(address, path):
        if parse_address(origin).type == "aws_cloudwatch_log_group" and origin in plan.values:
            groups.append((origin, plan.values[origin]))
    return groups


def test_api_stage_never_logs_request_bodies(plan: Plan) -> None:
    settings = list(plan.resources("aws_api_gateway_method_settings"))
    assert settings, "no method settings: logging level and data trace are not pinned"
    bad = []
    covers_all = False
    for address, values in settings:
        for s in values.get("settings") or []:
            if s.get("data_trace_enabled") is not False:
                trace = s.get("data_trace_enabled")
                bad.append(f"{address} ({values.get('method_path')}): data_trace_enabled {trace}")
            if s.get("logging_level") not in ("INFO", "ERROR"):
                bad.append(f"{address}: logging_level {s.get('logging_level')}")
            if s.get("caching_enabled") is True:
                bad.append(f"{address}: caching enabled (cached responses hold transaction data)")
        covers_all |= values.get("method_path") == "*/*"
    if not covers_all:
        bad.append("no method settings for */*: some methods keep the account default")
    for address, values in plan.resources("aws_api_gateway_stage"):
        for access in values.get("access_log_settings") or []:
            if re.search(r"\$input|\$context\.requestOverride|body", str(access.get("format")), re.I):
                bad.append(f"{address}: access log format logs request content")
        if values.get("cache_cluster_enabled") is True:
            bad.append(f"{address}: cache cluster enabled")
    assert not bad, "\n".join(bad)


def test_workflow_logs_exclude_execution_data(plan: Plan) -> None:
    machines = list(plan.resources("aws_sfn_state_machine"))
    assert machines, "no state machine in the plan"
    bad = []
    for address, values in machines:
        logging = first_block(values, "logging_configuration")
        if logging.get("include_execution_data") is not False:
            bad.append(f"{address}: include_execution_data {logging.get('include_execution_data')}")
        if logging.get("level") != "ALL":
            bad.append(f"{address}: logging level {logging.get('level')} (ALL keeps every state transition)")
        tracing = first_block(values, "tracing_configuration")
        if tracing.get("enabled") is not True:
            bad.append(f"{address}: tracing off")
    assert not bad, "\n".join(bad)


def _sensitive_root_variables(plan: Plan) -> set[str]:
    variables = plan.raw.get("configuration", {}).get("root_module", {}).get("variables", {})
    return {name for name, spec in variables.items() if spec.get("sensitive")}


def _environments(plan: Plan) -> dict[str, dict[str, tuple[str, Any]]]:
    """function address -> NAME -> (expression, value). Known values come from the plan; when
    the map is unknown (it holds queue URLs and topic ARNs) from the root's map literal."""
    source = lambda_environment_source(plan, REPO_ROOT)
    environments = {}
    for address, values in _functions(plan):
        variables = first_block(values, "environment").get("variables")
        if isinstance(variables, dict):
            environments[address] = {k: ("", v) for k, v in variables.items()}
        else:
            assert source, f"{address}: environment unknown and its source map not found"
            environments[address] = dict(source)
    return environments


def _contains_sensitive(mark: Any) -> bool:
    if mark is True:
        return True
    if isinstance(mark, dict):
        return any(_contains_sensitive(v) for v in mark.values())
    if isinstance(mark, list):
        return any(_contains_sensitive(v) for v in mark)
    return False


def test_no_secret_in_lambda_environment(plan: Plan) -> None:
    """Parameter NAMES are fine (PROCESSOR_CREDENTIALS_PARAM=/payment-x/processor/credentials);
    a value that is, or is derived from, a secret is not."""
    sensitive = _sensitive_root_variables(plan)
    bad = []
    for address, environment in _environments(plan).items():
        # Terraform propagates sensitivity through expressions, even into unknown values.
        mark = first_block(plan.sensitive.get(address, {}), "environment")
        if _contains_sensitive(mark):
            bad.append(f"{address}: environment derived from a sensitive value")
        for name, (expression, value) in sorted(environment.items()):
            text = "" if value in (None, UNKNOWN) else str(value)
            if any(p.search(text) for p in SECRET_VALUE):
                bad.append(f"{address}: {name} holds a secret-looking value")
            referenced = set(re.findall(r"\bvar\.(\w+)", expression)) & sensitive
            if referenced or "nonsensitive(" in expression:
                bad.append(f"{address}: {name} = {expression} (sensitive input)")
            if not SECRET_NAME.search(name):
                continue
            if value not in (None, UNKNOWN) and not REFERENCE_VALUE.match(text):
                bad.append(f"{address}: {name}={text[:4]}... looks like a secret, not a reference")
            if value == UNKNOWN and not REFERENCE_EXPRESSION.search(expression):
                bad.append(f"{address}: {name} = {expression} is not a name/ARN reference")
    assert not bad, "\n".join(bad)


def _security_log_groups(plan: Plan) -> dict[str, dict[str, Any]]:
    """API access + execution logs, WAF logs, workflow logs and VPC flow logs."""
    groups: dict[str, dict[str, Any]] = {}
    for address, _ in plan.resources("aws_api_gateway_stage"):
        groups.update(_log_group_for(plan, address, ("access_log_settings", "destination_arn")))
    for address, _ in plan.resources("aws_sfn_state_machine"):
        groups.update(_log_group_for(plan, address, ("logging_configuration", "log_destination")))
    for address, _ in plan.resources("aws_wafv2_web_acl_logging_configuration"):
        groups.update(_log_group_for(plan, address, ("log_destination_configs",)))
    for address, _ in plan.resources("aws_flow_log"):
        groups.update(_log_group_for(plan, address, ("log_destination",)))
    for address, values in plan.resources("aws_cloudwatch_log_group"):
        name = str(values.get("name") or "")
        if name.startswith("aws-waf-logs-") or "API-Gateway-Execution-Logs" in name:
            groups[address] = values
        if parse_address(address).module.endswith(("module.api", "module.edge", "module.workflow")):
            groups[address] = values
    return groups


def test_security_relevant_logs_are_kept_a_year(plan: Plan) -> None:
    groups = _security_log_groups(plan)
    kinds = " ".join(groups)
    for module in ("module.api", "module.edge", "module.workflow"):
        assert module in kinds, f"no security log group found in {module}"
    bad = [
        f"{address}: {values.get('retention_in_days')} days"
        for address, values in groups.items()
        if not isinstance(values.get("retention_in_days"), int)
        or (values["retention_in_days"] != 0 and values["retention_in_days"] < SECURITY_LOG_DAYS)
    ]
    assert not bad, f"security logs kept less than {SECURITY_LOG_DAYS} days:\n" + "\n".join(bad)


def test_every_log_group_has_a_retention(plan: Plan) -> None:
    bad = [
        address
        for address, values in plan.resources("aws_cloudwatch_log_group")
        if not values.get("retention_in_days")
    ]
    assert not bad, f"log groups that never expire (cost, and data kept beyond need): {bad}"


def test_audit_records_live_90_days_and_are_swept_at_90_days(plan: Plan) -> None:
    bad = []
    tables = {v.get("name"): (a, v) for a, v in plan.resources("aws_dynamodb_table")}
    audit = next((t for n, t in tables.items() if str(n).startswith("payment-audit-")), None)
    assert audit, "no audit table"
    ttl = first_block(audit[1], "ttl")
    if ttl.get("enabled") is not True or ttl.get("attribute_name") != "expires_at":
        bad.append(f"{audit[0]}: TTL {ttl}")
    for address, values in tables.values():
        pitr = first_block(values, "point_in_time_recovery")
        if pitr.get("enabled") is not True:
            bad.append(f"{address}: point-in-time recovery off")
    for address, environment in _environments(plan).items():
        _, ttl_days = environment.get("AUDIT_TTL_DAYS", ("", None))
        if str(ttl_days) != str(AUDIT_TTL_DAYS):
            bad.append(f"{address}: AUDIT_TTL_DAYS={ttl_days}")
    cleanup = [v for a, v in plan.resources("aws_scheduler_schedule") if "cleanup" in str(v.get("name"))]
    assert cleanup, "no cleanup schedule"
    for schedule in cleanup:
        payload = json.loads(first_block(schedule, "target").get("input") or "{}")
        if payload.get("older_than_days") != AUDIT_TTL_DAYS or payload.get("archive") is not True:
            bad.append(f"{schedule.get('name')}: input {payload}")
    assert not bad, "\n".join(bad)


def test_archive_keeps_at_least_a_year(plan: Plan) -> None:
    lifecycles = list(plan.resources("aws_s3_bucket_lifecycle_configuration"))
    assert lifecycles, "no lifecycle on the archive"
    bad = []
    for address, values in lifecycles:
        for rule in values.get("rule") or []:
            if rule.get("status") != "Enabled":
                continue
            for expiration in rule.get("expiration") or []:
                days = expiration.get("days")
                if expiration.get("date") or (days is not None and days < ARCHIVE_MIN_DAYS):
                    bad.append(f"{address} [{rule.get('id')}]: current versions expire ({expiration})")
            for expiration in rule.get("noncurrent_version_expiration") or []:
                if (expiration.get("noncurrent_days") or 0) < ARCHIVE_MIN_DAYS:
                    bad.append(f"{address} [{rule.get('id')}]: noncurrent versions expire {expiration}")
    for address, values in plan.resources("aws_s3_bucket_versioning"):
        status = first_block(values, "versioning_configuration").get("status")
        if status != "Enabled":
            bad.append(f"{address}: versioning {status}")
    assert not bad, "\n".join(bad)


def test_every_business_route_requires_an_api_key(plan: Plan) -> None:
    bad = []
    methods = list(plan.resources("aws_api_gateway_method"))
    assert methods, "no API method in the plan"
    for address, values in methods:
        if values.get("http_method") == "OPTIONS":
            continue
        resource_paths = {
            str(plan.values[o].get("path_part"))
            for o in plan.origins(address, ("resource_id",))
            if parse_address(o).type == "aws_api_gateway_resource" and o in plan.values
        }
        # /health is the one route without a key; its method is keyed "health" when the
        # resource cannot be resolved at plan time (for_each over each.value).
        if resource_paths == {"health"} or (not resource_paths and parse_address(address).key == "health"):
            continue
        if values.get("api_key_required") is not True:
            bad.append(f"{address} {values.get('http_method')} {sorted(resource_paths)}: no API key")
    api = [v for _, v in plan.resources("aws_api_gateway_rest_api")]
    bad += [f"api_key_source {v.get('api_key_source')}" for v in api if v.get("api_key_source") != "HEADER"]
    assert not bad, "\n".join(bad)


def test_waf_logs_redact_credentials(plan: Plan) -> None:
    configurations = list(plan.resources("aws_wafv2_web_acl_logging_configuration"))
    assert configurations, "WAF logging is not configured"
    for address, values in configurations:
        redacted = {
            str(header.get("name")).lower()
            for field in as_list(values.get("redacted_fields"))
            for header in as_list(field.get("single_header"))
        }
        assert {"authorization", "x-api-key"} <= redacted, f"{address}: redacts only {sorted(redacted)}"


def test_api_keys_are_generated_by_aws_and_output_only_as_sensitive(plan: Plan) -> None:
    keys = list(plan.resources("aws_api_gateway_api_key"))
    assert keys, "no API key in the plan"
    bad = [
        f"{address}: value set in configuration (S2 derived keys from account ids)"
        for address, _ in keys
        if plan.expression(address, ("value",)) is not None
    ]
    outputs = plan.raw.get("configuration", {}).get("root_module", {}).get("outputs", {})
    for name, output in outputs.items():
        references = " ".join(output.get("expression", {}).get("references", []))
        secretish = re.search(r"api_key_values|\.value\b|processor_credentials", references)
        if secretish and not output.get("sensitive"):
            bad.append(f"output {name} exposes {secretish.group(0)} without sensitive = true")
    assert not bad, "\n".join(bad)
