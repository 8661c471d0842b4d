"""Flow 7: GET /health reflects the platform; settings no emulator enforces, asserted as configured."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from devkit.demo import Platform, wait_for
from tests.emulator_gaps import supports


def _health(platform: Platform) -> tuple[int, dict[str, Any]]:
    response = platform.api.get("/health")
    assert response.json is not None, response.body
    return response.status, dict(response.json)


def test_health_is_healthy_then_degraded_with_dlq_messages(platform: Platform) -> None:
    status, body = _health(platform)
    assert status == 200 and body["checks"]["dlq"]["status"] == "ok", body
    if supports("cloudwatch:describe-alarms-combined-filters"):
        assert body["status"] == "healthy", body
    sqs = platform.client("sqs")
    dlq = platform.outputs["dlq_url"]
    marker = f"txn_health_probe_{uuid.uuid4().hex[:8]}"
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"transaction_id": marker, "error": "probe"}))
    try:
        status, body = _health(platform)
        assert status == 200 and body["status"] == "degraded", body
        assert body["checks"]["dlq"]["status"] == "warn", body
    finally:

        def removed() -> bool:
            for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
                if marker in message["Body"]:
                    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                    return True
            return False

        wait_for(removed, timeout=30, what="the probe message to be removed from the DLQ")
    body = _health(platform)[1]
    assert body["checks"]["dlq"]["status"] == "ok", body
    if supports("cloudwatch:describe-alarms-combined-filters"):
        assert body["status"] == "healthy", body


@pytest.mark.not_emulated(
    reason="WAF rules are stored but never evaluated by moto; WAFv2 needs LocalStack's paid edition",
    backends=("localstack",),
)
def test_waf_protects_the_stage(platform: Platform) -> None:
    waf = platform.client("wafv2")
    acl_arn = platform.outputs["web_acl_arn"]
    name, acl_id = acl_arn.split("/")[-2:]
    acl = waf.get_web_acl(Name=name, Scope="REGIONAL", Id=acl_id)["WebACL"]
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    rate = sorted(
        (r for r in rules.values() if "RateBasedStatement" in r["Statement"]),
        key=lambda r: -r["Statement"]["RateBasedStatement"]["Limit"],
    )
    # The API's 2,000 per IP (not /health), and /health's own lower rule (100 per IP).
    assert [r["Statement"]["RateBasedStatement"]["Limit"] for r in rate] == [2000, 100]
    scope_down = json.dumps(
        rate[0]["Statement"]["RateBasedStatement"].get("ScopeDownStatement", {}), default=str
    )
    assert "/health" in scope_down
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
    stage_arn = (
        f"arn:aws:apigateway:{platform.region}::/restapis/{platform.outputs['api_id']}"
        f"/stages/{platform.outputs['api_stage_name']}"
    )
    assert waf.get_web_acl_for_resource(ResourceArn=stage_arn)["WebACL"]["ARN"] == acl_arn


@pytest.mark.not_emulated(reason="usage-plan and stage throttling are not enforced by moto or LocalStack")
def test_usage_plans_and_stage_throttling(platform: Platform) -> None:
    gateway = platform.client("apigateway")
    plans = {p["name"]: p for p in gateway.get_usage_plans()["items"]}
    suffix = platform.outputs["environment_suffix"]
    mobile, partner = plans[f"payment-mobile-{suffix}"], plans[f"payment-partner-{suffix}"]
    assert mobile["throttle"] == {"rateLimit": 100.0, "burstLimit": 200}
    assert mobile["quota"]["limit"] == 10000 and mobile["quota"]["period"] == "DAY"
    assert partner["throttle"] == {"rateLimit": 1000.0, "burstLimit": 2000}
    for plan in (mobile, partner):
        assert {"apiId": platform.outputs["api_id"], "stage": platform.outputs["api_stage_name"]} in [
            {"apiId": s["apiId"], "stage": s["stage"]} for s in plan["apiStages"]
        ]
    stage = gateway.get_stage(
        restApiId=platform.outputs["api_id"], stageName=platform.outputs["api_stage_name"]
    )
    settings = stage["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == 10000 and settings["throttlingBurstLimit"] == 5000
    assert settings["dataTraceEnabled"] is False and settings["metricsEnabled"] is True


@pytest.mark.not_emulated(
    reason="moto never evaluates alarm metrics, so alarms do not transition by themselves"
)
def test_alarms_notify_the_alerts_topic(platform: Platform) -> None:
    cloudwatch = platform.client("cloudwatch")
    names = list(platform.outputs["alarm_names"].values())
    described = []
    for start in range(0, len(names), 100):
        page = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
        described += page["MetricAlarms"] + page.get("CompositeAlarms", [])
    assert len(described) == len(names)
    for alarm in described:
        assert platform.outputs["alerts_topic_arn"] in alarm["AlarmActions"], alarm["AlarmName"]
        if "TreatMissingData" in alarm:
            assert alarm["TreatMissingData"] == "notBreaching", alarm["AlarmName"]
