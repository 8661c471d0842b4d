"""POST /transactions and POST /validate through the intake handler."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers import intake
from payments import idempotency
from tests.unit.awsenv import API_KEY_ID, AwsEnv, api_event, body_of, payment


def create(ctx: Any, body: Any = None, key: str | None = "key-1", **kwargs: Any) -> dict[str, Any]:
    return intake.handler(api_event("POST", "/transactions", payment() if body is None else body, idempotency_key=key, **kwargs), ctx)


def assert_error(response: dict[str, Any], status: int, code: str, param: str | None) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    error = body_of(response)["error"]
    assert error["code"] == code
    assert error["param"] == param
    assert set(error) == {"type", "code", "message", "param"}
    return error


def assert_nothing_stored(aws: AwsEnv) -> None:
    assert aws.count("TRANSACTIONS_TABLE") == 0
    assert aws.count("IDEMPOTENCY_TABLE") == 0
    assert aws.count("AUDIT_TABLE") == 0
    assert aws.executions() == []


def test_create_stores_pending_transaction_and_starts_workflow(aws: AwsEnv, ctx: Any) -> None:
    response = create(ctx)

    assert response["statusCode"] == 202
    body = body_of(response)
    txn_id = body["transaction_id"]
    assert body == {"transaction_id": txn_id, "status": "PENDING", "links": {"self": f"/transactions/{txn_id}"}}
    assert response["headers"]["Location"] == f"/transactions/{txn_id}"
    assert response["headers"]["X-Request-Id"].startswith("req-")
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"

    [item] = aws.transactions()
    assert item["transaction_id"] == txn_id
    assert item["status"] == "PENDING"
    assert item["amount_minor"] == 10050 and isinstance(item["amount_minor"], int)
    assert item["currency"] == "USD"
    assert item["payment_method_token"] == "tok_visa_4242"
    assert item["day_shard"].startswith(item["created_at"][:10] + "#")
    assert 0 <= int(item["day_shard"].split("#")[1]) < 16
    assert item["metadata"] == {"order_id": "1001"}
    assert item["attempts"] == 1

    [record] = aws.scan("IDEMPOTENCY_TABLE")
    assert record["idempotency_key"] == idempotency.scoped_key(API_KEY_ID, "key-1")
    assert record["transaction_id"] == txn_id
    assert record["response_status"] == 202
    assert json.loads(record["response_body"]) == body
    assert record["expires_at"] - item["timestamp"] // 1000 >= 24 * 3600

    [entry] = aws.audit(txn_id)
    assert (entry["from_status"], entry["to_status"], entry["actor"]) == ("NONE", "PENDING", "intake")
    assert entry["expires_at"] - item["timestamp"] // 1000 == 90 * 86400

    [execution] = aws.executions()
    assert execution["name"] == txn_id
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"transaction_id": txn_id, "timestamp": item["timestamp"]}
