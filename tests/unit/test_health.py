"""GET /health: healthy, degraded, unhealthy; cached per container, alerting on a change only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from payments.handlers import health

from tests.unit.awsenv import AwsEnv, api_event, body_of
from tests.unit.flows import CTX


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Each test starts with a container that has not checked yet."""
    health.CACHE.clear()
    yield
    health.CACHE.clear()


def check() -> tuple[int, dict[str, Any]]:
    response = health.handler(api_event("GET", "/health", api_key_id=None), CTX)
    return response["statusCode"], body_of(response)


def test_healthy_platform(aws: AwsEnv) -> None:
    code, body = check()

    assert code == 200
    assert body["status"] == "healthy"
    assert set(body["checks"]) == {"dynamodb", "queues", "dlq", "alarms"}
    assert all(c["status"] == "ok" for c in body["checks"].values())
    assert body["checks"]["dynamodb"]["tables"][aws.n["TRANSACTIONS_TABLE"]]["table_status"] == "ACTIVE"
    assert aws.notifications("alerts") == []


def test_messages_in_the_dlq_degrade(aws: AwsEnv) -> None:
    aws.sqs.send_message(QueueUrl=aws.n["DLQ_URL"], MessageBody="{}")

    code, body = check()

    assert code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["dlq"] == {"status": "warn", "messages": 1}


def test_own_alarms_in_alarm_state_degrade(aws: AwsEnv) -> None:
    for name in ("payment-intake-errors-test", "payment-intake-errors-prod"):
        aws.cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        aws.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")

    code, body = check()

    assert code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["alarms"] == {"status": "warn", "in_alarm": ["payment-intake-errors-test"]}


def test_failed_queue_backlog_degrades(aws: AwsEnv) -> None:
    for batch in range(10):
        aws.sqs.send_message_batch(
            QueueUrl=aws.n["FAILED_QUEUE_URL"],
            Entries=[{"Id": str(i), "MessageBody": f"{batch}-{i}"} for i in range(10)],
        )

    code, body = check()

    assert code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["queues"]["failed"]["visible"] == 100


def test_missing_table_is_unhealthy_503_and_alerts(aws: AwsEnv) -> None:
    aws.ddb.delete_table(TableName=aws.n["AUDIT_TABLE"])

    code, body = check()

    assert code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["dynamodb"]["tables"][aws.n["AUDIT_TABLE"]] == {
        "status": "fail",
        "error": "ResourceNotFoundException",
    }
    [alert] = aws.notifications("alerts")
    assert alert["MessageAttributes"]["event_type"]["Value"] == "health.unhealthy"
    assert json.loads(alert["Message"])["status"] == "unhealthy"


def _documented(code: int) -> dict[str, Any]:
    """docs/openapi.json's body schema for GET /health answering ``code``."""
    document = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    responses = document["paths"]["/health"]["get"]["responses"]
    return dict(responses[str(code)]["content"]["application/json"]["schema"])


def test_the_contract_documents_both_answers_as_the_report(aws: AwsEnv) -> None:
    # The 503 is the report saying unhealthy, not the error body (an outside client reads it).
    code, body = check()
    assert code == 200
    jsonschema.validate(body, _documented(200))
    aws.ddb.delete_table(TableName=aws.n["AUDIT_TABLE"])
    health.CACHE.clear()
    code, body = check()
    assert code == 503
    jsonschema.validate(body, _documented(503))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, _documented(200))


def test_missing_queue_is_unhealthy(aws: AwsEnv) -> None:
    aws.sqs.delete_queue(QueueUrl=aws.n["DLQ_URL"])

    code, body = check()

    assert code == 503
    assert body["checks"]["dlq"]["status"] == "fail"


def test_unreadable_alarms_only_degrade(aws: AwsEnv, monkeypatch: Any) -> None:
    from botocore.exceptions import ClientError
    from payments import clients

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeAlarms")

    monkeypatch.setattr(clients.cloudwatch(), "describe_alarms", denied)

    code, body = check()

    assert code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["alarms"] == {"status": "warn", "error": "AccessDenied"}


def test_repeated_requests_reuse_the_checked_result(aws: AwsEnv, monkeypatch: Any) -> None:
    """/health is public: within the cache period a flood costs one round of AWS calls."""
    from payments import clients

    calls = {"describe_table": 0}
    original = clients.dynamodb().describe_table

    def counting(**kwargs: Any) -> Any:
        calls["describe_table"] += 1
        return original(**kwargs)

    monkeypatch.setattr(clients.dynamodb(), "describe_table", counting)
    answers = [check() for _ in range(20)]

    assert calls["describe_table"] == 3, "one check (three tables) for twenty requests"
    assert [body["cached"] for _, body in answers] == [False] + [True] * 19
    assert {code for code, _ in answers} == {200}


def test_an_unhealthy_platform_alerts_once_per_change_not_per_request(aws: AwsEnv) -> None:
    aws.ddb.delete_table(TableName=aws.n["AUDIT_TABLE"])
    ttl = health.CACHE.ttl_ms
    health.CACHE.ttl_ms = 0  # every request checks again: only the state change may alert
    try:
        codes = [check()[0] for _ in range(5)]
    finally:
        health.CACHE.ttl_ms = ttl

    assert codes == [503] * 5
    assert len(aws.notifications("alerts")) == 1
