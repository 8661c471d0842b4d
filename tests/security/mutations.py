"""Mutation checks for the security gate: does each test fail when its property is broken?

``python -m tests.security.mutations [--only NAME ...] [--markdown PATH]``

For each mutation: copy the repository to a scratch directory, apply one small edit (HCL, Lambda
code or a root variable), plan the copy against the embedded emulator when the edit touches
Terraform, run ``tests/security`` on the copy, and check that the expected test fails with the
expected message — a message the unmutated baseline does not produce. The working tree is never
modified. A mutation whose anchor text is gone (the code moved on) is reported as stale, not as
caught.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTEST = REPO_ROOT / ".venv" / "bin" / "pytest"
# Each run's test output, for reading why a mutation was (not) caught.
LOG_DIR = REPO_ROOT / ".local" / "security-mutations"
COPY_IGNORE = shutil.ignore_patterns(
    ".venv*",
    ".git",
    ".terraform",
    ".local",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    "*.tfstate*",
)


@dataclass(frozen=True)
class Mutation:
    name: str
    breaks: str  # the property, in words
    test: str  # nodeid fragment of the test expected to catch it
    expect: str  # regex the failure output must contain
    edits: tuple[tuple[str, str, str], ...] = ()  # (path, old, new)
    tf_vars: dict[str, Any] = field(default_factory=dict)

    @property
    def touches_terraform(self) -> bool:
        return bool(self.tf_vars) or any(p.endswith((".tf", ".tftpl")) for p, _, _ in self.edits)


M = Mutation
MUTATIONS: tuple[Mutation, ...] = (
    M(
        "role-missing-action",
        "status role loses its read of the transactions table",
        "test_iam.py::test_each_function_role_grants_exactly_what_its_code_calls",
        r"payment-status-\w+ \(payments.handlers.status.handler\): missing dynamodb:GetItem",
        (
            (
                "modules/functions/iam.tf",
                "      TransactionsRead = local.tx_read\n      DataKey          = local.data_key_read",
                "      DataKey          = local.data_key_read",
            ),
        ),
    ),
    M(
        "code-new-call",
        "the status code starts deleting items (a call its role does not grant)",
        "test_iam.py::test_each_function_role_grants_exactly_what_its_code_calls",
        r"payment-status-\w+ \(payments.handlers.status.handler\): "
        r"missing dynamodb:DeleteItem \(called at .*reposit",
        (
            (
                "lambda/payments/store/repository.py",
                '        item = response.get("Item")\n'
                "        return from_attributes(item) if item else None\n\n    def require",
                '        item = response.get("Item")\n'
                "        self.ddb.delete_item(TableName=self.settings.transactions_table, Key={})\n"
                "        return from_attributes(item) if item else None\n\n    def require",
            ),
        ),
    ),
    M(
        "action-wildcard",
        "X-Ray statement widened to xray:*",
        "test_iam.py::test_no_action_wildcards",
        r"XRayWrite\]: xray:\*",
        (
            (
                "modules/functions/iam.tf",
                'actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]',
                'actions   = ["xray:*"]',
            ),
        ),
    ),
    M(
        "resource-wildcard",
        "log statement of the function roles on Resource *",
        "test_iam.py::test_resource_wildcard_only_for_actions_aws_cannot_scope",
        r"OwnLogGroup\]: logs:CreateLogStream on \['\*'\]",
        (
            (
                "modules/functions/iam.tf",
                'resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]',
                'resources = ["*"]',
            ),
        ),
    ),
    M(
        "data-plane-wildcard",
        "intake may start any state machine",
        "test_iam.py::test_function_data_plane_grants_name_their_resources",
        r"payment-intake-\w+: states:StartExecution on \*",
        (("modules/functions/iam.tf", "resources = [local.r.state_machine_arn]", 'resources = ["*"]'),),
    ),
    M(
        "kms-without-viaservice",
        "data-key grants lose their kms:ViaService condition",
        "test_iam.py::test_kms_grants_are_pinned_to_the_calling_service",
        r"kms:Decrypt in \[DataKey\] without kms:ViaService",
        (
            (
                "modules/functions/iam.tf",
                "    resources  = [local.data_key]\n"
                '    conditions = [{ test = "StringEquals", variable = "kms:ViaService", '
                "values = local.via.data }]\n"
                "  }\n  data_key_read",
                "    resources  = [local.data_key]\n  }\n  data_key_read",
            ),
        ),
    ),
    M(
        "trust-without-source",
        "Step Functions role trusts states.amazonaws.com without aws:SourceAccount",
        "test_iam.py::test_roles_are_assumable_only_by_their_service",
        r"states.amazonaws.com'\] without aws:SourceAccount/SourceArn",
        (
            (
                "modules/workflow/iam.tf",
                '      variable = "aws:SourceAccount"',
                '      variable = "aws:PrincipalTag/unused"',
            ),
        ),
    ),
    M(
        "lambda-permission-any-source",
        "API Gateway invoke permissions without source_arn",
        "test_iam.py::test_lambda_permissions_are_scoped_to_their_source",
        r"aws_lambda_permission.route\[.*\]: source_arn None",
        (
            (
                "modules/api/main.tf",
                '  source_arn = "${aws_api_gateway_rest_api.this.execution_arn}',
                '  # source_arn = "${aws_api_gateway_rest_api.this.execution_arn}',
            ),
        ),
    ),
    M(
        "unreadable-policy",
        "a role policy written as jsonencode() around an ARN unknown at plan time",
        "test_iam.py::test_every_policy_document_is_readable_at_plan_time",
        r"aws_iam_role_policy.vpc_access\[.*\]\.policy \(built from",
        (
            (
                "modules/functions/iam.tf",
                "  policy = data.aws_iam_policy_document.vpc_access.json\n",
                '  policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", '
                'Action = "logs:PutLogEvents", '
                "Resource = aws_cloudwatch_log_group.this[each.key].arn }] })\n",
            ),
        ),
    ),
    M(
        "anonymous-publish",
        "topic policies let any AWS principal publish",
        "test_iam.py::test_resource_policies_never_allow_anonymous_access",
        r"\[AllowPlatformRoles\]: Allow AWS:\* without a condition",
        (
            (
                "modules/messaging/main.tf",
                '        type        = "AWS"\n        identifiers = var.publisher_role_arns',
                '        type        = "AWS"\n        identifiers = ["*"]',
            ),
        ),
    ),
    M(
        "table-aws-owned-key",
        "DynamoDB tables fall back to the AWS-owned key",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_dynamodb_table]",
        r"aws_dynamodb_table.this\[\"audit\"\]: key from nowhere",
        (("modules/data/main.tf", "    kms_key_arn = var.kms_key_arn", "    kms_key_arn = null"),),
    ),
    M(
        "queue-wrong-key",
        "queues and topics encrypted with the data key instead of the messaging key",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_sqs_queue]",
        r"aws_sqs_queue.audit: key from \['module.kms.aws_kms_key.this\[\"data\"\]'\]",
        (
            (
                "main.tf",
                '  kms_key_arn         = module.kms.key_arns["messaging"]\n  publisher_role_arns',
                '  kms_key_arn         = module.kms.key_arns["data"]\n  publisher_role_arns',
            ),
        ),
    ),
    M(
        "bucket-sse-s3",
        "archive encrypted with SSE-S3 instead of the CMK",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_s3_bucket_server_side_encryption_configuration]",
        r"sse_algorithm AES256",
        (("modules/storage/main.tf", 'sse_algorithm     = "aws:kms"', 'sse_algorithm     = "AES256"'),),
    ),
    M(
        "securestring-default-key",
        "processor credentials encrypted with alias/aws/ssm",
        "test_encryption.py::test_secure_strings_use_the_data_key_and_nothing_secret_is_a_plain_string",
        r"processor_credentials: SecureString key from alias/aws/ssm",
        (("modules/storage/main.tf", "  key_id      = var.kms_key_arn\n", ""),),
    ),
    M(
        "lambda-env-default-key",
        "Lambda environments encrypted with the AWS-managed key",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_lambda_function]",
        r"aws_lambda_function.this\[\"intake\"\]: key from nowhere",
        (
            (
                "modules/functions/main.tf",
                "  kms_key_arn      = var.env_kms_key_arn",
                "  kms_key_arn      = null",
            ),
        ),
    ),
    M(
        "log-group-unencrypted",
        "function log groups without the logs CMK",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_cloudwatch_log_group]",
        r"aws_cloudwatch_log_group.this\[\"intake\"\]: key from nowhere",
        (
            (
                "modules/functions/main.tf",
                "  kms_key_id        = var.logs_kms_key_arn",
                "  kms_key_id        = null",
            ),
        ),
    ),
    M(
        "workflow-aws-owned-key",
        "state machine falls back to the AWS-owned key",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_sfn_state_machine]",
        r"aws_sfn_state_machine.this: encryption type None",
        (
            (
                "modules/workflow/variables.tf",
                "  type        = bool\n  default     = true\n\n"
                "  validation {\n    condition     = !var.kms_encryption_enabled",
                "  type        = bool\n  default     = false\n\n"
                "  validation {\n    condition     = !var.kms_encryption_enabled",
            ),
        ),
    ),
    M(
        "xray-default-encryption",
        "X-Ray traces encrypted with the AWS default key",
        "test_encryption.py::test_resources_use_the_platform_cmk[aws_xray_encryption_config]",
        r"aws_xray_encryption_config.this\[0\]: type NONE",
        (
            # The setting is account-wide and off by default: turn it on to mutate it.
            (
                "variables.tf",
                '  default     = false\n}\n\nvariable "xray_sampling_rate"',
                '  default     = true\n}\n\nvariable "xray_sampling_rate"',
            ),
            (
                "modules/observability/main.tf",
                '  type   = "KMS"\n  key_id = var.xray_kms_key_arn',
                '  type   = "NONE"',
            ),
        ),
    ),
    M(
        "bucket-without-sse",
        "the SSE-KMS configuration applies to another bucket than the archive",
        "test_encryption.py::test_every_bucket_has_cmk_encryption",
        r"buckets without an SSE-KMS configuration",
        (
            (
                "modules/storage/main.tf",
                '"aws_s3_bucket_server_side_encryption_configuration" "archive" {\n'
                "  bucket = aws_s3_bucket.archive.id",
                '"aws_s3_bucket_server_side_encryption_configuration" "archive" {\n'
                '  bucket = "some-other-bucket"',
            ),
        ),
    ),
    M(
        "rotation-off",
        "KMS key rotation disabled",
        "test_encryption.py::test_keys_rotate",
        r"keys without rotation",
        (("modules/kms/main.tf", "enable_key_rotation     = true", "enable_key_rotation     = false"),),
    ),
    M(
        "key-policy-extra-service",
        "logs key lets SNS use it (kms:ViaService) though SNS encrypts nothing with it",
        "test_encryption.py::test_key_policies_admit_only_the_services_that_use_the_key",
        r"this\[\"logs\"\] \[AllowUseThroughIntegratedServices\]: kms:ViaService sns\.",
        (
            (
                "modules/kms/main.tf",
                'via_services       = var.xray_encryption ? ["xray"] : []',
                'via_services       = ["sns"]',
            ),
        ),
    ),
    M(
        "bucket-allows-http",
        "archive bucket policy no longer denies plain HTTP",
        "test_transport.py::test_archive_bucket_policy_denies_plain_http_on_bucket_and_objects",
        r"no Deny s3:\* when aws:SecureTransport is false",
        (("modules/storage/main.tf", 'variable = "aws:SecureTransport"', 'variable = "aws:ViaAWSService"'),),
    ),
    M(
        "bucket-public",
        "public access block stops restricting public buckets",
        "test_transport.py::test_archive_bucket_blocks_public_access",
        r"buckets without a full public access block",
        (("modules/storage/main.tf", "restrict_public_buckets = true", "restrict_public_buckets = false"),),
    ),
    M(
        "topic-allows-http",
        "topic policies lose the TLS deny",
        "test_transport.py::test_topics_and_queues_deny_plain_http[aws_sns_topic",
        r"aws_sns_topic.this\[\"alerts\"\]: policy has no Deny for aws:SecureTransport=false",
        (
            (
                "modules/messaging/main.tf",
                'actions   = ["sns:Publish", "sns:Subscribe"]',
                'actions   = ["sns:Subscribe"]',
            ),
        ),
    ),
    M(
        "queue-allows-http",
        "queue policies lose the TLS deny",
        "test_transport.py::test_topics_and_queues_deny_plain_http[aws_sqs_queue",
        r"aws_sqs_queue.\w+: policy has no Deny for aws:SecureTransport=false",
        (
            (
                "modules/messaging/main.tf",
                '    effect    = "Deny"\n    actions   = ["sqs:*"]',
                '    effect    = "Allow"\n    actions   = ["sqs:*"]',
            ),
        ),
    ),
    M(
        "endpoint-any-account",
        "S3/DynamoDB gateway endpoints reach any account's resources",
        "test_transport.py::test_gateway_endpoints_only_reach_this_accounts_resources",
        r"Allow without a resource-account condition",
        (("modules/network/main.tf", '"aws:ResourceAccount"', '"aws:PrincipalAccount"'),),
    ),
    M(
        "edge-api",
        "API endpoint switched to EDGE",
        "test_transport.py::test_api_is_regional_and_custom_domains_require_tls12",
        r"endpoint types \['EDGE'\]",
        (("modules/api/main.tf", 'types = ["REGIONAL"]', 'types = ["EDGE"]'),),
    ),
    M(
        "egress-port-80",
        "function security group allows port 80 to the endpoints",
        "test_transport.py::test_function_egress_is_https_only",
        r"lambda_endpoints: egress tcp 80-80",
        (
            (
                "modules/network/main.tf",
                "  from_port         = 443\n  to_port           = 443\n  cidr_ipv4         = var.vpc_cidr",
                "  from_port         = 80\n  to_port           = 80\n  cidr_ipv4         = var.vpc_cidr",
            ),
        ),
    ),
    M(
        "http-subscription",
        "topic subscriptions over plain HTTP",
        "test_transport.py::test_no_plain_http_endpoint_in_configuration",
        r"aws_sns_topic_subscription.email\[.*\]: http subscription",
        (("modules/messaging/main.tf", '  protocol  = "email"', '  protocol  = "http"'),),
    ),
    M(
        "data-trace-on",
        "API Gateway data trace (full request bodies in logs) turned on",
        "test_pci.py::test_api_stage_never_logs_request_bodies",
        r"data_trace_enabled True",
        (("modules/api/main.tf", "data_trace_enabled     = false", "data_trace_enabled     = true"),),
    ),
    M(
        "execution-data-logged",
        "Step Functions logs include execution data",
        "test_pci.py::test_workflow_logs_exclude_execution_data",
        r"include_execution_data True",
        (("modules/workflow/main.tf", "include_execution_data = false", "include_execution_data = true"),),
    ),
    M(
        "secret-in-environment",
        "processor credentials passed as a Lambda environment variable",
        "test_pci.py::test_no_secret_in_lambda_environment",
        r"PROCESSOR_SECRET = var.processor_credentials \(sensitive input\)",
        (
            (
                "main.tf",
                "  lambda_environment = {\n",
                "  lambda_environment = {\n    PROCESSOR_SECRET             = var.processor_credentials\n",
            ),
        ),
    ),
    M(
        "short-security-logs",
        "API access logs kept 30 days",
        "test_pci.py::test_security_relevant_logs_are_kept_a_year",
        r"module.api.aws_cloudwatch_log_group.access: 30 days",
        (
            (
                "main.tf",
                "  access_log_retention_days      = var.security_log_retention_days",
                "  access_log_retention_days      = 30",
            ),
        ),
    ),
    M(
        "log-group-forever",
        "function log groups never expire",
        "test_pci.py::test_every_log_group_has_a_retention",
        r"log groups that never expire",
        (("modules/functions/main.tf", "  retention_in_days = var.log_retention_days\n", ""),),
    ),
    M(
        "audit-ttl-30",
        "audit records expire after 30 days",
        "test_pci.py::test_audit_records_live_90_days_and_are_swept_at_90_days",
        r"AUDIT_TTL_DAYS=30",
        tf_vars={"audit_ttl_days": 30},
    ),
    M(
        "archive-expires",
        "archive versions expire after 30 days",
        "test_pci.py::test_archive_keeps_at_least_a_year",
        r"noncurrent versions expire",
        tf_vars={"noncurrent_version_expiration_days": 30},
    ),
    M(
        "route-without-key",
        "POST /validate no longer needs an API key",
        "test_pci.py::test_every_business_route_requires_an_api_key",
        r"route\[\"validate\"\] POST .*: no API key",
        (
            (
                "modules/api/main.tf",
                'resource = "validate", method = "POST", function = "intake", api_key = true',
                'resource = "validate", method = "POST", function = "intake", api_key = false',
            ),
        ),
    ),
    M(
        "waf-logs-api-key",
        "WAF logs keep the x-api-key header",
        "test_pci.py::test_waf_logs_redact_credentials",
        r"redacts only \['authorization', 'x-request-id'\]",
        (("modules/edge/main.tf", 'name = "x-api-key"', 'name = "x-request-id"'),),
    ),
    M(
        "derived-api-key",
        "API key value set in configuration",
        "test_pci.py::test_api_keys_are_generated_by_aws_and_output_only_as_sensitive",
        r"value set in configuration",
        (
            (
                "modules/api/main.tf",
                '  description = "${each.key} tier key"\n',
                '  description = "${each.key} tier key"\n'
                '  value       = "key-${each.key}-${var.suffix}-0123456789"\n',
            ),
        ),
    ),
    M(
        "audit-service-wildcard",
        "flow-logs role writes widened to logs:*",
        "test_policy_audit.py::test_no_finding_above_low_outside_the_allow_list",
        r"ACTION_WILDCARD module\.network\.aws_iam_role_policy\.flow \[[^\]]*\]: logs:\* allows",
        (
            (
                "modules/network/main.tf",
                '      "logs:CreateLogStream",\n'
                '      "logs:PutLogEvents",\n'
                '      "logs:DescribeLogStreams",\n',
                '      "logs:*",\n',
            ),
        ),
    ),
    M(
        "audit-scoped-list-call",
        "flow-logs role's DescribeLogGroups scoped to its log group again",
        "test_policy_audit.py::test_no_finding_above_low_outside_the_allow_list",
        r"RESOURCE_MISMATCH module\.network\.aws_iam_role_policy\.flow \[[^\]]*\]: "
        r"logs:DescribeLogGroups needs \*",
        (
            (
                "modules/network/main.tf",
                '    actions   = ["logs:DescribeLogGroups"]\n    resources = ["*"]',
                '    actions   = ["logs:DescribeLogGroups"]\n'
                '    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]',
            ),
        ),
    ),
)


def _copy_repo(dest: Path, source: Path = REPO_ROOT) -> Path:
    shutil.copytree(source, dest, ignore=COPY_IGNORE, symlinks=True)
    return dest


def _apply(root: Path, mutation: Mutation) -> str | None:
    """Apply the edits; the reason when an anchor no longer exists (stale mutation)."""
    for path, old, new in mutation.edits:
        target = root / path
        text = target.read_text(encoding="utf-8")
        if old not in text:
            return f"anchor not found in {path}: {old[:60]!r}"
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
    return None


def check_anchors() -> list[str]:
    """Names of mutations whose anchor text no longer exists in the working tree."""
    stale = []
    for mutation in MUTATIONS:
        for path, old, _ in mutation.edits:
            if old not in (REPO_ROOT / path).read_text(encoding="utf-8"):
                stale.append(f"{mutation.name}: {path}")
    return stale


def _plan(root: Path, workdir: Path, endpoint_url: str, tf_vars: dict[str, Any], name: str) -> Path:
    from devkit.terraform import Terraform, prepare_workdir

    prepare_workdir(workdir, endpoint_url, source=root)
    terraform = Terraform(workdir, timeout=900)
    if not (workdir / ".terraform").is_dir():
        terraform.init_dir()
    plan = terraform.plan_json({"environment_suffix": "plantest", **tf_vars})
    out = workdir.parent / f"{name}.plan.json"
    out.write_text(json.dumps(plan), encoding="utf-8")
    return out


def _run_tests(root: Path, plan: Path) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv, our own venv
        [
            str(PYTEST),
            str(root / "tests" / "security"),
            "-q",
            "-p",
            "no:cacheprovider",
            "--tb=short",
            "-c",
            str(root / "pyproject.toml"),
            "--rootdir",
            str(root),
        ],
        env={**os.environ, "PAYMENT_PLAN_JSON": str(plan)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return result.stdout + result.stderr


def _failed(output: str) -> set[str]:
    """Failed test ids relative to tests/security (the copies live in different directories)."""
    return {m.split("tests/security/")[-1] for m in re.findall(r"^FAILED (\S+)", output, re.M)}


def run(selected: list[str]) -> list[dict[str, str]]:
    from devkit.emulator.server import Emulator

    results = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="security-mutations-") as tmp, Emulator() as emulator:
        base = _copy_repo(Path(tmp) / "base")
        workdir = Path(tmp) / "plan"
        baseline_plan = _plan(base, workdir, emulator.endpoint_url, {}, "baseline")
        baseline_out = _run_tests(base, baseline_plan)
        (LOG_DIR / "baseline.out").write_text(baseline_out, encoding="utf-8")
        print(json.dumps({"baseline_failures": sorted(_failed(baseline_out))}), flush=True)
        baseline_lines = set(baseline_out.splitlines())
        for mutation in MUTATIONS:
            if selected and mutation.name not in selected:
                continue
            started = time.monotonic()
            # From the snapshot, not the live tree: others may be editing it while this runs.
            root = _copy_repo(Path(tmp) / mutation.name, base)
            stale = _apply(root, mutation)
            if stale:
                results.append(
                    {"name": mutation.name, "breaks": mutation.breaks, "caught": "stale", "by": stale}
                )
                continue
            plan = (
                _plan(root, workdir, emulator.endpoint_url, mutation.tf_vars, mutation.name)
                if mutation.touches_terraform
                else baseline_plan
            )
            output = _run_tests(root, plan)
            (LOG_DIR / f"{mutation.name}.out").write_text(output, encoding="utf-8")
            new_lines = [line for line in output.splitlines() if line not in baseline_lines]
            caught_by = sorted(f for f in _failed(output) if mutation.test in f)
            # Lines that also appear in the baseline (same message, other directory) do not count.
            new_lines = [line.replace(str(root), "") for line in new_lines]
            baseline_text = baseline_out.replace(str(base), "")
            new_lines = [line for line in new_lines if line not in baseline_text]
            matched = any(re.search(mutation.expect, line) for line in new_lines)
            results.append(
                {
                    "name": mutation.name,
                    "breaks": mutation.breaks,
                    "caught": "yes" if caught_by and matched else "NO",
                    "by": ", ".join(caught_by) or mutation.test,
                    "also": ", ".join(
                        sorted(
                            t.split("tests/security/")[-1]
                            for t in _failed(output) - _failed(baseline_out)
                            if mutation.test not in t
                        )
                    ),
                    "seconds": f"{time.monotonic() - started:.0f}",
                }
            )
            print(json.dumps(results[-1]), flush=True)
            shutil.rmtree(root, ignore_errors=True)
    return results


def markdown(results: list[dict[str, str]]) -> str:
    lines = ["| mutation (temporary change) | caught | by |", "|---|---|---|"]
    for r in results:
        by = f"`{r['by']}`" + (f" (also `{r['also']}`)" if r.get("also") else "")
        lines.append(f"| {r['breaks']} | {r['caught']} | {by} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", nargs="*", default=[], help="mutation names to run (default: all)")
    parser.add_argument("--markdown", type=Path, help="write the results table here")
    parser.add_argument("--check", action="store_true", help="only report mutations whose anchor is gone")
    args = parser.parse_args(argv)
    if args.check:
        stale = check_anchors()
        sys.stdout.write("\n".join(stale) + ("\n" if stale else "all anchors present\n"))
        return 1 if stale else 0
    results = run(args.only)
    table = markdown(results)
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")
    sys.stdout.write(table)
    return 0 if all(r["caught"] == "yes" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
