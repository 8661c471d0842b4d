"""GET /transactions/{id} and GET /status/{id}."""

from __future__ import annotations

from typing import Any

import pytest
from payments.handlers import status

from tests.unit.awsenv import AwsEnv, api_event, body_of
from tests.unit.flows import CTX, create, run_workflow


def get(resource: str, transaction_id: str, api_key_id: str | None = "key-mobile-1") -> dict[str, Any]:
    return status.handler(
        api_event("GET", resource, path_parameters={"id": transaction_id}, api_key_id=api_key_id), CTX
    )


@pytest.mark.parametrize("resource", ["/transactions/{id}", "/status/{id}"])
def test_status_returns_the_public_view(aws: AwsEnv, resource: str) -> None:
    txn = create()["transaction_id"]
    run_workflow(txn)

    response = get(resource, txn)

    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["transaction_id"] == txn
    assert body["status"] == "COMPLETED"
    assert body["amount"] == "100.50" and body["amount_minor"] == 10050
    assert body["fraud"] == {"score": 0, "decision": "APPROVE", "reasons": []}
    assert "payment_method_token" not in body and "tok_" not in response["body"]
    assert "api_key_id" not in body
    assert response["headers"]["X-Request-Id"]
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_unknown_transaction_is_404(aws: AwsEnv) -> None:
    response = get("/transactions/{id}", "txn_01JD0000000000000000000000")

    assert response["statusCode"] == 404
    assert body_of(response)["error"] == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "message": "No such transaction.",
        "param": "id",
    }


def test_another_api_keys_transaction_is_404(aws: AwsEnv) -> None:
    txn = create()["transaction_id"]

    assert get("/transactions/{id}", txn, api_key_id="key-partner-9")["statusCode"] == 404


@pytest.mark.parametrize(
    "bad", ["", "123", "txn_" + "I" * 26, "txn_01JD0000000000000000000000' OR 1=1", "../etc"]
)
def test_malformed_id_is_400(aws: AwsEnv, bad: str) -> None:
    response = get("/transactions/{id}", bad)

    assert response["statusCode"] == 400
    assert body_of(response)["error"]["param"] == "id"
