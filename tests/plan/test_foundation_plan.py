"""Plan-level settings of the foundation modules (kms, network, data, messaging, storage) and the
root module's variable validation, read from a plan of the root module with
environment_suffix="plantest"; names, keys and settings as docs/interfaces.md defines them.

Values only known after apply (key ARNs, resource ids) do not appear in ``planned_values``. For
those the tests prove the wiring instead: the attribute is planned as a computed value, the
module's resource takes it from the module variable, and the root passes the right module output
into that variable. That is the chain a reviewer would otherwise follow by hand.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devkit.terraform import OVERRIDE_FILENAME, Terraform, TerraformError
from devkit.terraform import planned_resources as flatten
from tests.plan.conftest import shared_plan

SUFFIX = "plantest"
ACCOUNT = "123456789012"  # the emulator's account
REGION = "us-east-1"
FOURTEEN_DAYS = 14 * 24 * 3600
RETRY_FUNCTION = 'module.functions.aws_lambda_function.this["retry"]'
# What the functions' code calls (tests/security/test_network_endpoints.py derives it from the code).
INTERFACE_SERVICES = {"sqs", "sns", "states", "ssm", "monitoring"}

Pick = Callable[[str], list[dict[str, Any]]]


# ------------------------------------------------------------------------------------------
# helpers


def change(plan_json: dict[str, Any], address: str) -> dict[str, Any]:
    """The ``change`` of one managed resource: ``after`` and ``after_unknown``."""
    for rc in plan_json["resource_changes"]:
        if rc["address"] == address and rc["mode"] == "managed":
            return dict(rc["change"])
    raise AssertionError(f"{address} is not in the plan")


def after(plan_json: dict[str, Any], address: str) -> dict[str, Any]:
    return dict(change(plan_json, address)["after"])


def computed(plan_json: dict[str, Any], address: str, *path: str | int) -> bool:
    """True if the attribute at ``path`` is planned as a value known only after apply."""
    node: Any = change(plan_json, address)["after_unknown"]
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    return node is True


def module_call(plan_json: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(plan_json["configuration"]["root_module"]["module_calls"][name])


def refs(expression: dict[str, Any] | None) -> list[str]:
    return list((expression or {}).get("references", []))


def passes(plan_json: dict[str, Any], module: str, variable: str) -> list[str]:
    """What the root wires into ``module.<module>``'s ``variable`` (its references)."""
    return refs(module_call(plan_json, module)["expressions"].get(variable))


def resource_config(plan_json: dict[str, Any], module: str, address: str) -> dict[str, Any]:
    for res in module_call(plan_json, module)["module"]["resources"]:
        if res["address"] == address:
            return dict(res["expressions"])
    raise AssertionError(f"{address} is not declared in module {module}")


def block_refs(expressions: dict[str, Any], block: str, attribute: str) -> list[str]:
    """References of ``attribute`` inside the first nested ``block`` of a resource's config."""
    blocks = expressions.get(block) or [{}]
    return refs(blocks[0].get(attribute))


def policy(document: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(document)["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statement(statements: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    found = [s for s in statements if s.get("Sid") == sid]
    assert len(found) == 1, f"no single statement {sid!r} in {statements}"
    return found[0]


def denies_insecure_transport(statements: list[dict[str, Any]], resources: set[str]) -> bool:
    for s in statements:
        if (
            s["Effect"] == "Deny"
            and s.get("Principal") in ("*", {"AWS": "*"})
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            and resources <= set(as_list(s["Resource"]))
        ):
            return True
    return False


def in_module(resources: list[dict[str, Any]], module: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["address"].startswith(f"module.{module}.")]


def single(resources: list[dict[str, Any]], address: str) -> dict[str, Any]:
    found = [r for r in resources if r["address"] == address]
    assert len(found) == 1, f"{address} is not planned exactly once"
    return dict(found[0]["values"])


def normalise(text: str) -> str:
    """Terraform wraps diagnostics in box-drawing frames and at ~80 columns."""
    return " ".join(text.replace("│", " ").replace("╷", " ").replace("╵", " ").split())


# ------------------------------------------------------------------------------------------
# KMS


def test_three_cmks_with_rotation_and_suffixed_aliases(plan_json: dict[str, Any]) -> None:
    for use in ("data", "messaging", "logs"):
        key = after(plan_json, f'module.kms.aws_kms_key.this["{use}"]')
        assert key["enable_key_rotation"] is True
        assert key["key_usage"] == "ENCRYPT_DECRYPT"
        assert key["customer_master_key_spec"] == "SYMMETRIC_DEFAULT"
        # Root default: 7 days, so a test stack's keys do not linger for a month.
        assert key["deletion_window_in_days"] == 7
        alias = after(plan_json, f'module.kms.aws_kms_alias.this["{use}"]')
        assert alias["name"] == f"alias/payment-{use}-{SUFFIX}"


def test_key_policies_delegate_to_the_account_and_name_no_roles(plan_json: dict[str, Any]) -> None:
    for use in ("data", "messaging", "logs"):
        document = after(plan_json, f'module.kms.aws_kms_key.this["{use}"]')["policy"]
        statements = policy(document)
        admin = statement(statements, "EnableIAMPolicies")
        assert admin["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        assert admin["Effect"] == "Allow"
        # Roles are created after the keys; IAM policies grant their use, not the key policy.
        assert ":role/" not in document
        for s in statements:
            assert s.get("Principal") != "*", f"{use} key policy has a public statement: {s}"


def test_key_policies_scope_service_use(plan_json: dict[str, Any]) -> None:
    def via_services(use: str) -> set[str]:
        document = after(plan_json, f'module.kms.aws_kms_key.this["{use}"]')["policy"]
        through = statement(policy(document), "AllowUseThroughIntegratedServices")
        assert through["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT
        return set(as_list(through["Condition"]["StringEquals"]["kms:ViaService"]))

    assert {f"{s}.{REGION}.amazonaws.com" for s in ("dynamodb", "s3", "ssm")} <= via_services("data")
    assert {f"{s}.{REGION}.amazonaws.com" for s in ("sqs", "sns")} <= via_services("messaging")

    logs_policy = policy(after(plan_json, 'module.kms.aws_kms_key.this["logs"]')["policy"])
    logs = statement(logs_policy, "AllowCloudWatchLogs")
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:*"
    )

    # Alarms publish to the encrypted alerts topic as CloudWatch itself.
    messaging_policy = policy(after(plan_json, 'module.kms.aws_kms_key.this["messaging"]')["policy"])
    services = statement(messaging_policy, "AllowServicePrincipals")
    assert "cloudwatch.amazonaws.com" in as_list(services["Principal"]["Service"])
    assert set(as_list(services["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}


# ------------------------------------------------------------------------------------------
# DynamoDB


def test_tables_are_named_on_demand_with_pitr_and_ttl(plan_json: dict[str, Any]) -> None:
    for key in ("transactions", "audit", "idempotency", "clients"):
        table = after(plan_json, f'module.data.aws_dynamodb_table.this["{key}"]')
        assert table["name"] == f"payment-{key}-{SUFFIX}"
        assert table["billing_mode"] == "PAY_PER_REQUEST"
        assert table["point_in_time_recovery"][0]["enabled"] is True
        # `expires_at`, not `TTL`: emulators mishandle an attribute called TTL.
        assert table["ttl"] == [{"attribute_name": "expires_at", "enabled": True}]
        # Destroyable by default; production turns protection on by variable.
        assert table["deletion_protection_enabled"] is False


def test_tables_are_encrypted_with_the_data_cmk(plan_json: dict[str, Any]) -> None:
    for key in ("transactions", "audit", "idempotency", "clients"):
        address = f'module.data.aws_dynamodb_table.this["{key}"]'
        assert after(plan_json, address)["server_side_encryption"][0]["enabled"] is True
        assert computed(plan_json, address, "server_side_encryption", 0, "kms_key_arn")
    table_config = resource_config(plan_json, "data", "aws_dynamodb_table.this")
    assert "var.kms_key_arn" in block_refs(table_config, "server_side_encryption", "kms_key_arn")
    assert 'module.kms.key_arns["data"]' in passes(plan_json, "data", "kms_key_arn")


def test_transactions_table_keys_and_indexes(plan_json: dict[str, Any]) -> None:
    table = after(plan_json, 'module.data.aws_dynamodb_table.this["transactions"]')
    assert (table["hash_key"], table["range_key"]) == ("transaction_id", "timestamp")
    attributes = {a["name"]: a["type"] for a in table["attribute"]}
    assert attributes == {
        "transaction_id": "S",
        "timestamp": "N",
        "customer_id": "S",
        "merchant_id": "S",
        "day_shard": "S",
    }
    indexes = {i["name"]: i for i in table["global_secondary_index"]}
    assert set(indexes) == {"by-customer", "by-merchant", "by-day"}
    expected_hash = {"by-customer": "customer_id", "by-merchant": "merchant_id", "by-day": "day_shard"}
    for name, index in indexes.items():
        assert index["hash_key"] == expected_hash[name]
        assert index["range_key"] == "timestamp"
        assert index["projection_type"] == "ALL"


def test_audit_and_idempotency_table_keys(plan_json: dict[str, Any]) -> None:
    audit = after(plan_json, 'module.data.aws_dynamodb_table.this["audit"]')
    assert (audit["hash_key"], audit["range_key"]) == ("transaction_id", "event_id")
    assert {a["name"]: a["type"] for a in audit["attribute"]} == {"transaction_id": "S", "event_id": "S"}
    idempotency = after(plan_json, 'module.data.aws_dynamodb_table.this["idempotency"]')
    assert idempotency["hash_key"] == "idempotency_key"
    assert idempotency["range_key"] is None
    assert {a["name"]: a["type"] for a in idempotency["attribute"]} == {"idempotency_key": "S"}


# ------------------------------------------------------------------------------------------
# SQS


def test_audit_stream_is_a_high_throughput_fifo_queue(plan_json: dict[str, Any]) -> None:
    queue = after(plan_json, "module.messaging.aws_sqs_queue.audit")
    assert queue["name"] == f"transaction-queue-{SUFFIX}.fifo"
    assert queue["fifo_queue"] is True
    assert queue["content_based_deduplication"] is True
    assert queue["deduplication_scope"] == "messageGroup"
    assert queue["fifo_throughput_limit"] == "perMessageGroupId"
    assert queue["message_retention_seconds"] == FOURTEEN_DAYS


def test_failed_queue_and_dlq_names_and_retention(plan_json: dict[str, Any]) -> None:
    failed = after(plan_json, "module.messaging.aws_sqs_queue.failed")
    dlq = after(plan_json, "module.messaging.aws_sqs_queue.dlq")
    assert failed["name"] == f"failed-transactions-{SUFFIX}"
    assert dlq["name"] == f"failed-transactions-dlq-{SUFFIX}"
    # A dead-lettered message keeps its original enqueue time: the DLQ keeps longer.
    assert failed["message_retention_seconds"] == 7 * 24 * 3600
    assert dlq["message_retention_seconds"] == FOURTEEN_DAYS
    for queue in (failed, dlq):
        assert queue["fifo_queue"] is False
    # Derived from the retry function's timeout, never set apart from it (AWS's rule for Lambda event
    # sources, 6 x: test_real_aws_plan.py::test_the_failed_queue_hides_a_message_six_retry_timeouts).
    assert failed["visibility_timeout_seconds"] == 6 * after(plan_json, RETRY_FUNCTION)["timeout"]


def test_failed_queue_redrives_to_the_dlq_after_five_receives(plan_json: dict[str, Any]) -> None:
    address = "module.messaging.aws_sqs_queue.failed"
    # The DLQ's ARN is only known after apply, so the document is computed ...
    assert computed(plan_json, address, "redrive_policy")
    # ... from the DLQ's ARN and max_receive_count, which the root leaves at its default of 5.
    config = resource_config(plan_json, "messaging", "aws_sqs_queue.failed")
    assert {"aws_sqs_queue.dlq.arn", "var.max_receive_count"} <= set(refs(config["redrive_policy"]))
    assert "max_receive_count" not in module_call(plan_json, "messaging")["expressions"]
    variables = module_call(plan_json, "messaging")["module"]["variables"]
    assert variables["max_receive_count"]["default"] == 5


def test_dlq_allows_redrive_only_from_the_failed_queue(plan_json: dict[str, Any]) -> None:
    dlq = after(plan_json, "module.messaging.aws_sqs_queue.dlq")
    allow = json.loads(dlq["redrive_allow_policy"])
    assert allow == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"arn:aws:sqs:{REGION}:{ACCOUNT}:failed-transactions-{SUFFIX}"],
    }


def test_queues_use_the_messaging_cmk_and_deny_plain_http(plan_json: dict[str, Any]) -> None:
    for name in ("audit", "failed", "dlq"):
        address = f"module.messaging.aws_sqs_queue.{name}"
        queue = after(plan_json, address)
        assert computed(plan_json, address, "kms_master_key_id")
        assert "var.kms_key_arn" in refs(
            resource_config(plan_json, "messaging", f"aws_sqs_queue.{name}")["kms_master_key_id"]
        )
        assert queue["kms_data_key_reuse_period_seconds"] == 300
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue['name']}"
        assert denies_insecure_transport(policy(queue["policy"]), {arn})
    assert 'module.kms.key_arns["messaging"]' in passes(plan_json, "messaging", "kms_key_arn")


# ------------------------------------------------------------------------------------------
# SNS


def test_topics_are_named_encrypted_and_subscribed(plan_json: dict[str, Any]) -> None:
    for key in ("alerts", "events", "failed"):
        address = f'module.messaging.aws_sns_topic.this["{key}"]'
        assert after(plan_json, address)["name"] == f"payment-{key}-{SUFFIX}"
        assert computed(plan_json, address, "kms_master_key_id")
        assert computed(plan_json, f'module.messaging.aws_sns_topic_policy.this["{key}"]', "arn")
    # Payment events and failures go to the events queue, never to e-mail by default.
    for key in ("events", "failed"):
        subscription = after(plan_json, f'module.messaging.aws_sns_topic_subscription.events_queue["{key}"]')
        assert subscription["protocol"] == "sqs"
    planned = {r["address"] for r in flatten(plan_json)}
    assert not any(".event_email[" in a or ".email[" in a for a in planned)
    topic_config = resource_config(plan_json, "messaging", "aws_sns_topic.this")
    assert "var.kms_key_arn" in refs(topic_config["kms_master_key_id"])
    assert passes(plan_json, "messaging", "alert_subscriptions") == ["var.alert_subscriptions"]
    email_opt_in = passes(plan_json, "messaging", "event_email_subscriptions")
    assert email_opt_in == ["var.payment_event_email_subscriptions"]


def test_every_function_role_may_publish(plan_json: dict[str, Any]) -> None:
    # The topic policies' allow-list is exactly the platform's function roles.
    assert "module.functions.role_arns" in passes(plan_json, "messaging", "publisher_role_arns")


# ------------------------------------------------------------------------------------------
# S3 and SSM


def test_archive_bucket_name_and_protection(plan_json: dict[str, Any]) -> None:
    bucket = after(plan_json, "module.storage.aws_s3_bucket.archive")
    assert bucket["bucket"] == f"payment-archive-{SUFFIX}-{ACCOUNT}"
    assert bucket["force_destroy"] is True  # root default; production sets archive_force_destroy=false
    block = after(plan_json, "module.storage.aws_s3_bucket_public_access_block.archive")
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[setting] is True, setting
    ownership = after(plan_json, "module.storage.aws_s3_bucket_ownership_controls.archive")
    assert ownership["rule"] == [{"object_ownership": "BucketOwnerEnforced"}]
    versioning = after(plan_json, "module.storage.aws_s3_bucket_versioning.archive")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"


def test_archive_bucket_encrypts_with_the_data_cmk_and_a_bucket_key(plan_json: dict[str, Any]) -> None:
    address = "module.storage.aws_s3_bucket_server_side_encryption_configuration.archive"
    rule = after(plan_json, address)["rule"][0]
    assert rule["bucket_key_enabled"] is True
    assert rule["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert computed(
        plan_json, address, "rule", 0, "apply_server_side_encryption_by_default", 0, "kms_master_key_id"
    )
    assert 'module.kms.key_arns["data"]' in passes(plan_json, "storage", "kms_key_arn")


def test_archive_bucket_policy_requires_tls_and_kms(plan_json: dict[str, Any]) -> None:
    bucket_arn = f"arn:aws:s3:::payment-archive-{SUFFIX}-{ACCOUNT}"
    statements = policy(after(plan_json, "module.storage.aws_s3_bucket_policy.archive")["policy"])
    assert denies_insecure_transport(statements, {bucket_arn, f"{bucket_arn}/*"})
    kms_only = statement(statements, "DenyNonKmsEncryption")
    assert kms_only["Effect"] == "Deny"
    assert kms_only["Condition"]["StringNotEquals"]["s3:x-amz-server-side-encryption"] == [
        "aws:kms",
        "aws:kms:dsse",
    ]
    # Writers rely on the bucket's default CMK encryption and send no header: the deny must
    # only fire when a (wrong) header is present, or settlement/report/cleanup writes get 403.
    assert kms_only["Condition"]["Null"]["s3:x-amz-server-side-encryption"] == "false"
    assert "StringNotEqualsIfExists" not in kms_only["Condition"]
    assert all(s["Effect"] == "Deny" for s in statements), "the bucket policy must grant nothing"


def test_archive_lifecycle_moves_cleanup_batches_to_glacier_after_30_days(plan_json: dict[str, Any]) -> None:
    rules = {
        r["id"]: r
        for r in after(plan_json, "module.storage.aws_s3_bucket_lifecycle_configuration.archive")["rule"]
    }
    assert set(rules) == {"cleanup-batches-to-glacier", "expire-noncurrent-versions"}
    assert all(r["status"] == "Enabled" for r in rules.values())
    moving = rules["cleanup-batches-to-glacier"]
    # Glacier's ~40 KB per-object overhead: only the cleanup batches are worth moving.
    assert moving["filter"][0]["prefix"] == "cleanup/"
    assert moving["transition"] == [{"date": None, "days": 30, "storage_class": "GLACIER"}]
    expiring = rules["expire-noncurrent-versions"]
    assert expiring["filter"][0].get("prefix") in ("", None), "the rule must cover the whole bucket"
    assert expiring["noncurrent_version_expiration"][0]["noncurrent_days"] == 365
    assert expiring["abort_incomplete_multipart_upload"][0]["days_after_initiation"] == 7


def test_ssm_parameters(plan_json: dict[str, Any]) -> None:
    prefix = f"/payment-{SUFFIX}"
    endpoint = after(plan_json, "module.storage.aws_ssm_parameter.processor_endpoint")
    assert (endpoint["name"], endpoint["type"], endpoint["value"]) == (
        f"{prefix}/processor/endpoint",
        "String",
        "sim://approve",
    )
    credentials_address = "module.storage.aws_ssm_parameter.processor_credentials"
    credentials = after(plan_json, credentials_address)
    assert credentials["name"] == f"{prefix}/processor/credentials"
    assert credentials["type"] == "SecureString"
    assert computed(plan_json, credentials_address, "key_id")
    assert "var.kms_key_arn" in refs(
        resource_config(plan_json, "storage", "aws_ssm_parameter.processor_credentials")["key_id"]
    )
    # No real-looking default secret, and the value is marked sensitive in the plan.
    assert credentials["value"] == "unset-configure-out-of-band"
    assert change(plan_json, credentials_address)["after_sensitive"]["value"] is True

    rules = after(plan_json, "module.storage.aws_ssm_parameter.fraud_rules")
    assert (rules["name"], rules["type"]) == (f"{prefix}/fraud/rules", "String")
    assert json.loads(rules["value"]) == {
        "amount_thresholds": {"default": "10000"},
        "velocity_window_minutes": 60,
        "velocity_max": 10,
        "blocked_countries": ["CN", "RU", "KP", "IR"],
        "blocked_merchants": [],
        "reject_score": 70,
    }


# ------------------------------------------------------------------------------------------
# Network


def test_private_subnets_span_two_azs_inside_the_vpc(planned_resources: list[dict[str, Any]]) -> None:
    vpc = single(planned_resources, "module.network.aws_vpc.this")
    assert vpc["cidr_block"] == "10.40.0.0/16"
    assert vpc["enable_dns_support"] is True and vpc["enable_dns_hostnames"] is True
    assert vpc["tags"]["Name"] == f"payment-vpc-{SUFFIX}"
    network = ipaddress.IPv4Network(vpc["cidr_block"])
    subnets = [r["values"] for r in planned_resources if r["type"] == "aws_subnet"]
    assert len(subnets) == 2
    assert len({s["availability_zone"] for s in subnets}) == 2
    cidrs = [ipaddress.IPv4Network(s["cidr_block"]) for s in subnets]
    assert all(c.subnet_of(network) for c in cidrs)
    assert not cidrs[0].overlaps(cidrs[1])
    assert all(s["map_public_ip_on_launch"] is False for s in subnets)
    # No internet path unless enable_nat_gateway is set.
    for absent in ("aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_route"):
        assert not [r for r in planned_resources if r["type"] == absent], absent
    assert len([r for r in planned_resources if r["type"] == "aws_route_table"]) == 2


def test_gateway_endpoints_sit_on_the_private_route_tables(plan_json: dict[str, Any]) -> None:
    for service in ("s3", "dynamodb"):
        endpoint = after(plan_json, f'module.network.aws_vpc_endpoint.gateway["{service}"]')
        assert endpoint["vpc_endpoint_type"] == "Gateway"
        assert endpoint["service_name"] == f"com.amazonaws.{REGION}.{service}"
        only_own = statement(policy(endpoint["policy"]), "OwnAccountResourcesOnly")
        assert only_own["Condition"]["StringEquals"]["aws:ResourceAccount"] == ACCOUNT
    config = resource_config(plan_json, "network", "aws_vpc_endpoint.gateway")
    route_tables = [r for r in refs(config["route_table_ids"]) if r.startswith("aws_route_table.")]
    assert route_tables == ["aws_route_table.private"]


def test_interface_endpoints_for_every_aws_api_the_functions_call(
    planned_resources: list[dict[str, Any]],
) -> None:
    endpoints = {
        r["values"]["service_name"].rsplit(".", 1)[-1]: r["values"]
        for r in in_module(planned_resources, "network")
        if r["type"] == "aws_vpc_endpoint" and r["values"]["vpc_endpoint_type"] == "Interface"
    }
    assert set(endpoints) == INTERFACE_SERVICES
    assert all(e["private_dns_enabled"] is True for e in endpoints.values())


def test_lambda_security_group_allows_https_egress_only(
    plan_json: dict[str, Any], resources_of_type: Pick
) -> None:
    group = after(plan_json, "module.network.aws_security_group.lambda")
    # name_prefix: a create_before_destroy replacement must not collide with the old name.
    assert group["name_prefix"] == f"payment-lambda-{SUFFIX}-"
    # No inline rules: AWS's default allow-all egress is revoked on create, the rules below are all.
    inline = resource_config(plan_json, "network", "aws_security_group.lambda")
    assert "ingress" not in inline and "egress" not in inline

    egress = [
        r for r in resources_of_type("aws_vpc_security_group_egress_rule") if ".lambda_" in r["address"]
    ]
    assert len(egress) == 3  # the VPC CIDR (interface endpoints) + the S3 and DynamoDB prefix lists
    for rule in egress:
        values = rule["values"]
        assert (values["ip_protocol"], values["from_port"], values["to_port"]) == ("tcp", 443, 443)
        assert values["cidr_ipv4"] in ("10.40.0.0/16", None), "no 0.0.0.0/0 without NAT"
        if values["cidr_ipv4"] is None:
            assert computed(plan_json, rule["address"], "prefix_list_id")
    gateway_config = resource_config(
        plan_json, "network", "aws_vpc_security_group_egress_rule.lambda_gateway"
    )
    assert "aws_vpc_endpoint.gateway" in refs(gateway_config["prefix_list_id"])

    ingress = resources_of_type("aws_vpc_security_group_ingress_rule")
    assert [r["address"] for r in ingress] == [
        "module.network.aws_vpc_security_group_ingress_rule.endpoints_from_lambda"
    ]
    assert (ingress[0]["values"]["from_port"], ingress[0]["values"]["to_port"]) == (443, 443)


def test_default_security_group_is_adopted_without_rules(plan_json: dict[str, Any]) -> None:
    # Adopting the default group with no rule blocks makes the provider revoke all of its rules.
    config = resource_config(plan_json, "network", "aws_default_security_group.this")
    assert "aws_vpc.this.id" in refs(config["vpc_id"])
    assert "ingress" not in config and "egress" not in config


def test_vpc_flow_logs_go_to_an_encrypted_year_long_log_group(plan_json: dict[str, Any]) -> None:
    flow = after(plan_json, "module.network.aws_flow_log.this")
    assert (flow["traffic_type"], flow["log_destination_type"]) == ("ALL", "cloud-watch-logs")
    group_address = "module.network.aws_cloudwatch_log_group.flow"
    group = after(plan_json, group_address)
    assert group["name"] == f"/aws/vpc/payment-flow-logs-{SUFFIX}"
    assert group["retention_in_days"] == 365
    assert computed(plan_json, group_address, "kms_key_id")
    assert 'module.kms.key_arns["logs"]' in passes(plan_json, "network", "logs_kms_key_arn")
    role = after(plan_json, "module.network.aws_iam_role.flow")
    assert role["name"] == f"payment-vpc-flow-logs-{SUFFIX}"
    trust = policy(role["assume_role_policy"])[0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}


# ------------------------------------------------------------------------------------------
# Names and tags across the foundation


FOUNDATION = ("kms", "network", "data", "messaging", "storage")
NAME_ATTRIBUTES = ("name", "name_prefix", "bucket")


def test_every_named_foundation_resource_carries_the_suffix(planned_resources: list[dict[str, Any]]) -> None:
    checked = 0
    for module in FOUNDATION:
        for res in in_module(planned_resources, module):
            if res["type"] == "aws_iam_role_policy":
                continue  # inline policy names are scoped to their (suffixed) role
            for attribute in NAME_ATTRIBUTES:
                value = res["values"].get(attribute)
                if isinstance(value, str) and value:
                    assert SUFFIX in value, f"{res['address']}.{attribute} = {value!r}"
                    checked += 1
            name_tag = (res["values"].get("tags") or {}).get("Name")
            if name_tag:
                assert SUFFIX in name_tag, f"{res['address']} Name tag {name_tag!r}"
    assert checked >= 20


def test_default_tags_reach_every_taggable_foundation_resource(
    planned_resources: list[dict[str, Any]],
) -> None:
    for module in FOUNDATION:
        for res in in_module(planned_resources, module):
            tags_all = res["values"].get("tags_all")
            if tags_all is None:
                continue
            assert tags_all.get("Environment") == SUFFIX, res["address"]
            assert tags_all.get("ManagedBy") == "terraform", res["address"]
            assert tags_all.get("Project") == "payment-platform", res["address"]


def test_glue_outputs(plan_json: dict[str, Any]) -> None:
    outputs = plan_json["planned_values"]["outputs"]
    assert outputs["region"]["value"] == REGION
    assert outputs["environment_suffix"]["value"] == SUFFIX
    assert outputs["account_id"]["value"] == ACCOUNT
    assert outputs["by_day_index_name"]["value"] == "by-day"
    assert outputs["day_shard_count"]["value"] == 16
    assert outputs["api_key_values"]["sensitive"] is True
    declared = plan_json["configuration"]["root_module"]["outputs"]
    assert all(o.get("description") for o in declared.values()), "every output needs a description"


# ------------------------------------------------------------------------------------------
# Variant plan: the protection and egress switches


VARIANT = {
    "environment_suffix": "planvar",
    "aws_region": "",
    "enable_nat_gateway": True,
    "table_deletion_protection": True,
    "archive_force_destroy": False,
    "vpc_cidr": "10.8.0.0/24",
    "availability_zone_count": 3,
    "tags": {"Environment": "disguised", "Owner": "payments"},
    "fraud_amount_thresholds": {"JPY": 1500000},
    "transactions_table_override": "payment-transactions-variant-r20260314",
    "audit_table_override": "payment-audit-variant-r20260314",
    "idempotency_table_override": "payment-idempotency-variant-r20260314",
    "interface_endpoint_services": ["sqs", "sns", "states", "ssm", "monitoring", "kms"],
}


@pytest.fixture(scope="module")
def variant_plan(request: pytest.FixtureRequest) -> dict[str, Any]:
    return shared_plan(request, VARIANT, "terraform plan of the variant")


def test_empty_region_falls_back_to_eu_central_1(variant_plan: dict[str, Any]) -> None:
    assert variant_plan["planned_values"]["outputs"]["region"]["value"] == "eu-central-1"
    endpoint = after(variant_plan, 'module.network.aws_vpc_endpoint.gateway["s3"]')
    assert endpoint["service_name"] == "com.amazonaws.eu-central-1.s3"


def test_restored_table_override_reaches_functions_iam_and_outputs(variant_plan: dict[str, Any]) -> None:
    restored = VARIANT["transactions_table_override"]
    outputs = variant_plan["planned_values"]["outputs"]
    assert outputs["transactions_table_name"]["value"] == restored
    assert outputs["transactions_table_arn"]["value"].endswith(f":table/{restored}")
    # Function environments and policy documents are unknown at plan time (they hold queue URLs and
    # table ARNs): prove the wiring through the configuration and a resource whose values are known.
    calls = variant_plan["configuration"]["root_module"]["module_calls"]
    resources = calls["functions"]["expressions"]["resources"]
    assert "local.transactions_table_arn" in json.dumps(resources)
    assert "module.data.transactions_table_arn" not in json.dumps(resources)
    alarm = after(
        variant_plan, 'module.observability.aws_cloudwatch_metric_alarm.math["transactions-throttles"]'
    )
    tables = {q["metric"][0]["dimensions"]["TableName"] for q in alarm["metric_query"] if q.get("metric")}
    assert tables == {restored}
    # The managed table stays (it is the evidence); only the pointers move.
    assert after(variant_plan, 'module.data.aws_dynamodb_table.this["transactions"]')["name"].startswith(
        "payment-transactions-"
    )


@pytest.mark.parametrize("key", ["audit", "idempotency"])
def test_restored_audit_and_idempotency_overrides_reach_iam_alarms_and_outputs(
    variant_plan: dict[str, Any], key: str
) -> None:
    restored = VARIANT[f"{key}_table_override"]
    outputs = variant_plan["planned_values"]["outputs"]
    assert outputs[f"{key}_table_name"]["value"] == restored
    assert outputs[f"{key}_table_arn"]["value"].endswith(f":table/{restored}")
    calls = variant_plan["configuration"]["root_module"]["module_calls"]
    resources = json.dumps(calls["functions"]["expressions"]["resources"])
    assert f"module.data.{key}_table_arn" not in resources
    alarm = after(variant_plan, f'module.observability.aws_cloudwatch_metric_alarm.math["{key}-throttles"]')
    tables = {q["metric"][0]["dimensions"]["TableName"] for q in alarm["metric_query"] if q.get("metric")}
    assert tables == {restored}
    managed = after(variant_plan, f'module.data.aws_dynamodb_table.this["{key}"]')
    assert managed["name"] == f"payment-{key}-planvar"


def test_an_added_kms_endpoint_reaches_only_this_accounts_keys(variant_plan: dict[str, Any]) -> None:
    """AWS PrivateLink guide, "Control access to VPC endpoints using endpoint policies": an endpoint
    without a policy allows any account's resources. KMS is not in the default list; added, its
    endpoint carries the same own-account policy (``aws:ResourceAccount``) as the SQS one."""
    policies = {}
    for key in ("kms", "sqs"):
        endpoint = after(variant_plan, f'module.network.aws_vpc_endpoint.interface["{key}"]')
        assert endpoint["service_name"] == f"com.amazonaws.eu-central-1.{key}"
        policies[key] = json.loads(endpoint["policy"])
    [statement] = policies["kms"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert set(statement["Condition"]["StringEquals"]) == {"aws:ResourceAccount"}
    assert policies["kms"] == policies["sqs"]


def test_protection_switches_reach_the_resources(variant_plan: dict[str, Any]) -> None:
    for key in ("transactions", "audit", "idempotency", "clients"):
        table = after(variant_plan, f'module.data.aws_dynamodb_table.this["{key}"]')
        assert table["deletion_protection_enabled"] is True
    assert after(variant_plan, "module.storage.aws_s3_bucket.archive")["force_destroy"] is False


def test_nat_gateway_opens_https_to_the_internet_only(variant_plan: dict[str, Any]) -> None:
    resources = flatten(variant_plan)
    nat = [r for r in resources if r["type"] == "aws_nat_gateway"]
    assert len(nat) == 1
    routes = [r["values"] for r in resources if r["type"] == "aws_route"]
    # One default route on the public table, one per private table (three AZs).
    assert sorted(r["destination_cidr_block"] for r in routes) == ["0.0.0.0/0"] * 4
    internet = single(resources, "module.network.aws_vpc_security_group_egress_rule.lambda_internet[0]")
    assert (internet["cidr_ipv4"], internet["from_port"], internet["to_port"]) == ("0.0.0.0/0", 443, 443)
    public = [
        r["values"]
        for r in resources
        if r["type"] == "aws_subnet" and r["values"]["tags"]["Tier"] == "public"
    ]
    assert len(public) == 3 and all(s["map_public_ip_on_launch"] is False for s in public)


def test_small_vpc_cidr_is_split_into_disjoint_subnets(variant_plan: dict[str, Any]) -> None:
    subnets = [
        ipaddress.IPv4Network(r["values"]["cidr_block"])
        for r in flatten(variant_plan)
        if r["type"] == "aws_subnet"
    ]
    assert len(subnets) == 6  # three AZs, private and public
    assert all(s.subnet_of(ipaddress.IPv4Network("10.8.0.0/24")) for s in subnets)
    assert all(not a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :])


def test_extra_tags_cannot_override_environment_or_managed_by(variant_plan: dict[str, Any]) -> None:
    tags = after(variant_plan, "module.network.aws_vpc.this")["tags_all"]
    assert tags["Environment"] == "planvar"
    assert tags["ManagedBy"] == "terraform"
    assert tags["Owner"] == "payments"


def test_subnets_follow_availability_zone_count(variant_plan: dict[str, Any]) -> None:
    private = [
        r["values"]["availability_zone"]
        for r in flatten(variant_plan)
        if r["type"] == "aws_subnet" and r["values"]["tags"]["Tier"] == "private"
    ]
    assert len(set(private)) == len(private) == 3


def test_per_currency_fraud_thresholds_are_stored(variant_plan: dict[str, Any]) -> None:
    rules = json.loads(after(variant_plan, "module.storage.aws_ssm_parameter.fraud_rules")["value"])
    assert rules["amount_thresholds"] == {"default": "10000", "JPY": "1500000"}


# ------------------------------------------------------------------------------------------
# Topic policies, planned through the messaging module on its own: in the root plan the role
# ARNs are unknown, so the document is only computed at apply.


PUBLISHERS = [f"arn:aws:iam::{ACCOUNT}:role/payment-notification-{SUFFIX}"]


@pytest.fixture(scope="module")
def messaging_plan(tf_workdir: Terraform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("messaging-only")
    shutil.copytree(Path(tf_workdir.tfdir) / "modules" / "messaging", workdir / "messaging")
    # The root's emulator override, without its output overrides (the root's api_invoke_url: this
    # configuration declares no output to override).
    override = (Path(tf_workdir.tfdir) / OVERRIDE_FILENAME).read_text()
    (workdir / OVERRIDE_FILENAME).write_text(
        re.sub(r'\noutput "[^"]+" \{\n.*?^\}\n', "\n", override, flags=re.S | re.M)
    )
    (workdir / "main.tf").write_text(
        f"""
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = ">= 5.100, < 6.0" }}
  }}
}}
provider "aws" {{
  region = "{REGION}"
}}
module "messaging" {{
  source              = "./messaging"
  suffix              = "{SUFFIX}"
  kms_key_arn         = "arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"
  publisher_role_arns = {json.dumps(PUBLISHERS)}
  max_payment_rate    = 1
  # 6 x a 60 s consumer (the root derives it from the retry function's timeout).
  failed_visibility_timeout_seconds = 360
  alert_subscriptions = [
    {{ protocol = "https", endpoint = "https://hooks.example.com/sns" }},
    {{ protocol = "email", endpoint = "oncall@example.com" }},
  ]
  event_email_subscriptions = ["payments@example.com"]
}}
"""
    )
    tf = Terraform(workdir, env=tf_workdir.env, timeout=600)
    try:
        tf.init_dir()
        plan: dict[str, Any] = tf.plan_json()
    except TerraformError as exc:
        pytest.fail(f"terraform plan of the messaging module failed:\n{exc}", pytrace=False)
    return plan


def topic_policy(plan: dict[str, Any], key: str) -> list[dict[str, Any]]:
    # The topic policy's document is the module's data source, read at plan time here.
    for rc in plan["resource_changes"]:
        if rc["address"] == f'module.messaging.aws_sns_topic_policy.this["{key}"]':
            return policy(rc["change"]["after"]["policy"])
    raise AssertionError(f"no topic policy for {key}")


def test_alerts_topic_accepts_cloudwatch_alarms_of_this_account(messaging_plan: dict[str, Any]) -> None:
    statements = topic_policy(messaging_plan, "alerts")
    alarms = statement(statements, "AllowCloudWatchAlarms")
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == "sns:Publish"
    assert alarms["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*"
    deny = statement(statements, "DenyOtherPublishers")
    assert (
        deny["Condition"]["StringNotEqualsIfExists"]["aws:PrincipalServiceName"] == "cloudwatch.amazonaws.com"
    )


@pytest.mark.parametrize("key", ["alerts", "events", "failed"])
def test_only_platform_roles_publish_and_only_over_tls(messaging_plan: dict[str, Any], key: str) -> None:
    statements = topic_policy(messaging_plan, key)
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:payment-{key}-{SUFFIX}"
    allow = statement(statements, "AllowPlatformRoles")
    assert allow["Principal"] == {"AWS": PUBLISHERS[0]}
    assert allow["Resource"] == topic_arn
    deny = statement(statements, "DenyOtherPublishers")
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "sns:Publish"
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == PUBLISHERS[0]
    if key != "alerts":
        assert "AllowCloudWatchAlarms" not in {s.get("Sid") for s in statements}
        assert "StringNotEqualsIfExists" not in deny["Condition"]
    assert denies_insecure_transport(statements, {topic_arn})
    publishers = {
        json.dumps(s["Principal"], sort_keys=True)
        for s in statements
        if s["Effect"] == "Allow" and "sns:Publish" in as_list(s["Action"])
    }
    expected = {json.dumps({"AWS": PUBLISHERS[0]})}
    if key == "alerts":
        expected.add(json.dumps({"Service": "cloudwatch.amazonaws.com"}))
    assert publishers == expected


def test_subscriptions_follow_their_variables(messaging_plan: dict[str, Any]) -> None:
    endpoints = {
        (rc["name"], rc["index"]): rc["change"]["after"].get("endpoint")
        for rc in messaging_plan["resource_changes"]
        if rc["type"] == "aws_sns_topic_subscription"
    }
    assert endpoints == {
        ("alerts", "https:https://hooks.example.com/sns"): "https://hooks.example.com/sns",
        ("alerts", "email:oncall@example.com"): "oncall@example.com",
        # The opt-in e-mail per payment (allowed here: max_payment_rate 1/s).
        ("event_email", "events:payments@example.com"): "payments@example.com",
        ("event_email", "failed:payments@example.com"): "payments@example.com",
        # The events queue: its ARN is known only after apply.
        ("events_queue", "events"): None,
        ("events_queue", "failed"): None,
    }


# ------------------------------------------------------------------------------------------
# Variable validation: each bad value must fail the plan with the variable's own message.

BAD_VALUES: list[tuple[str, Any, str]] = [
    ("environment_suffix", "Prod_1", "environment_suffix must be 2-20 characters"),
    ("environment_suffix", "1dev", "environment_suffix must be 2-20 characters"),
    ("aws_region", "Mars", "aws_region must be an AWS region name"),
    ("lambda_architecture", "arm", "lambda_architecture must be arm64 or x86_64"),
    ("lambda_memory_size", 256, "lambda_memory_size must be a whole number of MB between 512 and 10240"),
    ("lambda_package_path", "build/app.tar", "lambda_package_path must point to a .zip file"),
    ("reserved_concurrency", {"payments": 10}, "reserved_concurrency keys must be function roles"),
    (
        "reserved_concurrency",
        {"intake": -5},
        "reserved_concurrency values must be non-negative whole numbers",
    ),
    ("log_retention_days", 10, "log_retention_days must be a value CloudWatch Logs accepts"),
    ("security_log_retention_days", 90, "security_log_retention_days must be at least 365"),
    ("security_log_retention_days", 500, "security_log_retention_days must be at least 365"),
    (
        "alert_subscriptions",
        [{"protocol": "https", "endpoint": "http://hooks.example.com/sns"}],
        "alert_subscriptions endpoint must match its protocol",
    ),
    (
        "alert_subscriptions",
        [{"protocol": "email", "endpoint": "oncall@example.com"}],
        "e-mail only beside a machine-confirmed channel",
    ),
    ("payment_event_email_subscriptions", ["ops@localhost"], "must contain e-mail addresses"),
    ("cors_allowed_origins", ["https://app.example.com/path"], "cors_allowed_origins must be"),
    ("api_throttle_rate_limit", 0, "api_throttle_rate_limit must be positive"),
    ("api_throttle_burst_limit", -1, "api_throttle_burst_limit must be a positive whole number"),
    (
        "usage_plans",
        {"mobile": {"rate_limit": 100, "burst_limit": 200, "quota_limit": 10}},
        "usage_plans quota_limit and quota_period go together",
    ),
    ("waf_rate_limit", 5, "waf_rate_limit must be a whole number between 10 and 2000000000"),
    (
        "geo_block_countries",
        ["usa"],
        "geo_block_countries must contain two-letter uppercase ISO country codes",
    ),
    ("workflow_type", "FAST", "workflow_type must be STANDARD or EXPRESS"),
    ("availability_zone_count", 1, "availability_zone_count must be a whole number between 2 and 4"),
    ("vpc_cidr", "10.0.0.0/8", "vpc_cidr must be an IPv4 network address with a prefix between /16 and /24"),
    ("vpc_cidr", "10.0.0.1/16", "vpc_cidr must be an IPv4 network address"),
    ("vpc_cidr", "not-a-cidr", "vpc_cidr must be an IPv4 network address"),
    ("interface_endpoint_services", ["s3"], "interface_endpoint_services must be short service names"),
    ("kms_deletion_window_in_days", 3, "kms_deletion_window_in_days must be a whole number between 7 and 30"),
    ("idempotency_ttl_hours", 12, "idempotency_ttl_hours must be a whole number of hours, at least 24"),
    ("day_shard_count", 0, "day_shard_count must be a whole number between 1 and 100"),
    ("day_shard_count", 101, "day_shard_count must be a whole number between 1 and 100"),
    ("fraud_amount_thresholds", {"usd": 5}, "fraud_amount_thresholds keys must be ISO 4217 codes"),
    ("fraud_reject_score", 101, "fraud_reject_score must be a whole number between 1 and 100"),
    (
        "processor_endpoint",
        "ftp://processor",
        "processor_endpoint must be sim://<mode> or an https:// URL on port 443",
    ),
    (
        "report_schedule_expression",
        "every day",
        "report_schedule_expression must be cron(...) or rate(N unit)",
    ),
    ("cleanup_retention_days", 0, "cleanup_retention_days must be a whole number of days, at least 1"),
    ("xray_sampling_rate", 1.5, "xray_sampling_rate must be between 0 and 1"),
    # A budget the DLQ spends in one round leaves a redrive nothing to settle with.
    ("max_settlement_attempts", 6, "max_settlement_attempts must be a whole number between 16"),
    ("settlement_lease_seconds", 0, "settlement_lease_seconds must be a whole number of seconds, at least 1"),
    ("stuck_after_seconds", 30, "stuck_after_seconds must be a whole number of seconds, at least 60"),
]


def batches(cases: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
    """Group bad values so each plan sets every variable at most once (Terraform reports every
    failing variable of one plan, so a handful of plans covers all cases)."""
    groups: list[dict[str, Any]] = []
    for name, value, _ in cases:
        for group in groups:
            if name not in group:
                group[name] = value
                break
        else:
            groups.append({name: value})
    return groups


@pytest.fixture(scope="module")
def validation_errors(tf_workdir: Terraform) -> dict[str, str]:
    """Normalised diagnostics of each batch plan, keyed by the JSON of the batch."""
    results: dict[str, str] = {}
    for group in batches(BAD_VALUES):
        outcome = tf_workdir.run(
            "plan",
            "-input=false",
            "-no-color",
            "-refresh=false",
            *Terraform.var_args(group),
            ok_codes=(0, 1, 2),
        )
        assert outcome.retcode == 1, f"plan with invalid values {group} did not fail"
        results[json.dumps(group, sort_keys=True)] = normalise(outcome.err + outcome.out)
    return results


def diagnostic_for(errors: dict[str, str], variable: str, value: Any) -> str:
    for group in batches(BAD_VALUES):
        if group.get(variable) == value:
            return errors[json.dumps(group, sort_keys=True)]
    raise AssertionError(f"{variable}={value!r} is in no batch")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    BAD_VALUES,
    ids=[f"{name}={json.dumps(value)}" for name, value, _ in BAD_VALUES],
)
def test_invalid_variable_is_rejected_with_its_message(
    validation_errors: dict[str, str], variable: str, value: Any, message: str
) -> None:
    diagnostics = diagnostic_for(validation_errors, variable, value)
    assert "Invalid value for variable" in diagnostics
    assert normalise(message) in diagnostics, f"no {message!r} for {variable}={value!r}"
