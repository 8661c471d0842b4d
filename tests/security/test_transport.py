"""Encryption in transit: TLS-only resource policies on the bucket, topics and queues, the API's
TLS settings, and HTTPS-only egress from the functions."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

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

# The calls that carry data: a TLS deny must cover at least these (or the whole service).
DATA_ACTIONS = {
    "s3": {"s3:GetObject", "s3:PutObject"},
    "sns": {"sns:Publish"},
    "sqs": {"sqs:SendMessage", "sqs:ReceiveMessage"},
}


def _denies_insecure_transport(statement: dict[str, Any], service: str) -> bool:
    if statement.get("Effect") != "Deny" or principals(statement) not in ({"*": ["*"]}, {"AWS": ["*"]}):
        return False
    secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    if [str(v).lower() for v in as_list(secure)] != ["false"]:
        return False
    actions = set(statement_actions(statement))
    return bool({"*", f"{service}:*"} & actions) or DATA_ACTIONS[service] <= actions


def _policies_of(
    plan: Plan, owner_types: tuple[str, ...], target_arg: str
) -> dict[str, list[PolicyDocument]]:
    """resource address -> policy documents attached to it (inline or by a *_policy resource)."""
    documents, _ = policy_documents(plan)
    attached: dict[str, list[PolicyDocument]] = {}
    for doc in documents:
        owner = parse_address(doc.owner)
        if owner.type not in owner_types:
            continue
        if owner.type.endswith("_policy"):
            for origin in plan.origins(doc.owner, (target_arg,)):
                attached.setdefault(origin, []).append(doc)
        else:
            attached.setdefault(doc.owner, []).append(doc)
    return attached


def test_archive_bucket_policy_denies_plain_http_on_bucket_and_objects(plan: Plan) -> None:
    buckets = dict(plan.resources("aws_s3_bucket"))
    assert buckets, "no bucket in the plan"
    policies = _policies_of(plan, ("aws_s3_bucket_policy",), "bucket")
    bad = []
    for address, values in buckets.items():
        arn = f"arn:aws:s3:::{values.get('bucket')}" if values.get("bucket") not in (None, UNKNOWN) else None
        tls = [
            s
            for doc in policies.get(address, [])
            for s in doc.statements()
            if _denies_insecure_transport(s, "s3") and "s3:*" in statement_actions(s)
        ]
        if not tls:
            bad.append(f"{address}: no Deny s3:* when aws:SecureTransport is false")
            continue
        resources = {r for s in tls for r in statement_resources(s)}
        expected = {arn, f"{arn}/*"} if arn else set()
        known = resources - {UNKNOWN}
        # ARNs unknown at plan time are checked by shape: one for the bucket, one for its objects.
        if known and expected and not expected <= known:
            bad.append(f"{address}: TLS deny covers {sorted(known)}, not {sorted(expected)}")
        if not known and len([r for s in tls for r in statement_resources(s)]) < 2:
            bad.append(f"{address}: TLS deny must name the bucket and bucket/*")
    assert not bad, "\n".join(bad)


def test_archive_bucket_blocks_public_access(plan: Plan) -> None:
    buckets = {address for address, _ in plan.resources("aws_s3_bucket")}
    blocked = set()
    for address, values in plan.resources("aws_s3_bucket_public_access_block"):
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        if all(values.get(flag) is True for flag in flags):
            blocked |= plan.origins(address, ("bucket",))
    assert buckets <= blocked, f"buckets without a full public access block: {sorted(buckets - blocked)}"


@pytest.mark.parametrize(
    ("resource_type", "policy_types", "target_arg", "service"),
    [
        ("aws_sns_topic", ("aws_sns_topic", "aws_sns_topic_policy"), "arn", "sns"),
        ("aws_sqs_queue", ("aws_sqs_queue", "aws_sqs_queue_policy"), "queue_url", "sqs"),
    ],
)
def test_topics_and_queues_deny_plain_http(
    plan: Plan, resource_type: str, policy_types: tuple[str, ...], target_arg: str, service: str
) -> None:
    resources = [address for address, _ in plan.resources(resource_type)]
    assert resources, f"no {resource_type} in the plan"
    policies = _policies_of(plan, policy_types, target_arg)
    bad = []
    for address in resources:
        docs = policies.get(address, [])
        if not docs:
            bad.append(f"{address}: no resource policy (nothing denies non-TLS requests)")
        elif not any(_denies_insecure_transport(s, service) for d in docs for s in d.statements()):
            bad.append(f"{address}: policy has no Deny for aws:SecureTransport=false")
    assert not bad, "\n".join(bad)


def test_api_is_regional_and_custom_domains_require_tls12(plan: Plan) -> None:
    """Provider 5.100 has no security_policy on aws_api_gateway_rest_api (only on custom domain
    names; checked with `terraform providers schema -json`); the default execute-api endpoint
    uses AWS's own policy. Any custom domain must pin TLS 1.2."""
    apis = list(plan.resources("aws_api_gateway_rest_api"))
    assert apis, "no REST API in the plan"
    bad = []
    for address, values in apis:
        types = [t for c in values.get("endpoint_configuration") or [] for t in as_list(c.get("types"))]
        if types != ["REGIONAL"]:
            bad.append(f"{address}: endpoint types {types} (WAF protects the regional stage)")
    for address, values in plan.resources("aws_api_gateway_domain_name"):
        if values.get("security_policy") != "TLS_1_2":
            bad.append(f"{address}: security_policy {values.get('security_policy')}")
    assert not bad, "\n".join(bad)


def test_function_egress_is_https_only(plan: Plan) -> None:
    lambda_groups: set[str] = set()
    for address, _ in plan.resources("aws_lambda_function"):
        lambda_groups |= plan.origins(address, ("vpc_config", "security_group_ids"))
    assert lambda_groups, "functions are not attached to a security group"
    bad = []
    for address, values in plan.resources("aws_vpc_security_group_egress_rule", "aws_security_group_rule"):
        if parse_address(address).type == "aws_security_group_rule" and values.get("type") != "egress":
            continue
        group = plan.origins(address, ("security_group_id",))
        if not group & lambda_groups:
            continue
        protocol = str(values.get("ip_protocol") or values.get("protocol"))
        if protocol != "tcp" or values.get("from_port") != 443 or values.get("to_port") != 443:
            bad.append(f"{address}: egress {protocol} {values.get('from_port')}-{values.get('to_port')}")
    for address, values in plan.resources("aws_security_group"):
        if address in lambda_groups:
            for rule in as_list(values.get("egress")) if values.get("egress") != UNKNOWN else []:
                if rule.get("from_port") != 443 or rule.get("to_port") != 443:
                    bad.append(f"{address}: inline egress {rule}")
            for rule in as_list(values.get("ingress")) if values.get("ingress") != UNKNOWN else []:
                bad.append(f"{address}: inline ingress {rule}")
    assert not bad, "\n".join(bad)


def test_no_plain_http_endpoint_in_configuration(plan: Plan) -> None:
    """Subscriptions and integrations use HTTPS (email subscriptions carry no payload secrets)."""
    bad = []
    for address, values in plan.resources("aws_sns_topic_subscription"):
        if values.get("protocol") == "http":
            bad.append(f"{address}: http subscription")
    for address, values in plan.resources("aws_api_gateway_integration"):
        uri = str(values.get("uri") or "")
        if re.match(r"http://", uri):
            bad.append(f"{address}: integration {uri}")
    assert not bad, "\n".join(bad)


def test_gateway_endpoints_only_reach_this_accounts_resources(plan: Plan) -> None:
    """Data perimeter: through the S3/DynamoDB gateway endpoints a compromised function cannot
    copy data to a bucket or table of another account."""
    endpoints = [
        (a, v) for a, v in plan.resources("aws_vpc_endpoint") if v.get("vpc_endpoint_type") == "Gateway"
    ]
    assert {str(v.get("service_name")).rsplit(".", 1)[-1] for _, v in endpoints} >= {"s3", "dynamodb"}
    bad = []
    for address, values in endpoints:
        policy = values.get("policy")
        if policy in (None, "", UNKNOWN):
            bad.append(f"{address}: no endpoint policy (full access to every account's resources)")
            continue
        statements = as_list(json.loads(str(policy)).get("Statement"))
        for statement in statements:
            if statement.get("Effect") != "Allow":
                continue
            keys = {k for test in statement.get("Condition", {}).values() for k in test}
            if not keys & {"aws:ResourceAccount", "aws:ResourceOrgID", "aws:ResourceOrgPaths"}:
                bad.append(
                    f"{address} [{statement.get('Sid', '-')}]: Allow without a resource-account condition"
                )
    assert not bad, "\n".join(bad)
