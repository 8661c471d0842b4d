"""Flow 3: requests the platform must refuse, and card numbers it must never keep."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from devkit.demo import Platform
from devkit.emulator.lambda_runtime import LambdaRuntime
from tests.e2e.flows import Ledger
from tests.emulator_gaps import supports

# A Luhn-valid test card number, sent once with separators and once without.
PAN = "4111111111111111"
PAN_SPACED = "4111 1111 1111 1111"


def _error(response: Any) -> dict[str, Any]:
    body = response.json
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), response.body
    return dict(body["error"])


def test_missing_and_unknown_api_key_are_403(platform: Platform) -> None:
    body = Platform.payment()
    # Valid client credentials: the authorizer allows, so the API key check is what answers.
    bearer = {"Authorization": f"Bearer {platform.token()}"}
    for headers in (
        {"Idempotency-Key": "no-key", **bearer},
        {"Idempotency-Key": "bad-key", "x-api-key": "not-a-key-0000", **bearer},
    ):
        response = platform.api.post("/transactions", body, headers)
        assert response.status == 403, response.body
        if supports("apigateway:gateway-response-templates"):
            assert _error(response)["type"] == "authentication_error"
            assert response.header("Access-Control-Allow-Origin")


def test_health_needs_no_key_but_transactions_do(platform: Platform) -> None:
    assert platform.api.get("/health").status in (200, 503)
    # No credentials: 401 from the authorizer's identity source (403 where the authorizer does not
    # run and the missing API key answers first).
    unauthenticated = 401 if supports("apigateway:lambda-authorizers") else 403
    assert platform.api.get("/transactions/txn_01ARZ3NDEKTSV4RRFFQ69G5FAV").status == unauthenticated


def test_body_failing_the_model_is_400_from_the_validator(
    platform: Platform, runtime: LambdaRuntime | None
) -> None:
    intake = platform.outputs["function_names"]["intake"]
    calls_before = len(runtime.history(intake)) if runtime else 0
    body = Platform.payment()
    del body["amount"]
    response = platform.create(body)
    assert response.status == 400
    # The gateway's BAD_REQUEST_BODY response is valid JSON in the platform's error shape; its
    # message is $context.error.messageString (the validation string cannot be embedded safely).
    if supports("apigateway:gateway-response-templates"):
        error = _error(response)
        assert error["code"] == "invalid_body" and error["type"] == "invalid_request_error", response.body
        assert isinstance(error["message"], str) and error["message"], response.body
    if runtime is not None:
        assert len(runtime.history(intake)) == calls_before, "the validator must stop it before the Lambda"


def test_unknown_route_is_answered_by_the_gateway(platform: Platform) -> None:
    response = platform.api.get("/nowhere", {"x-api-key": platform.api_key()})
    assert response.status in (403, 404)


@pytest.mark.parametrize("where", ["description", "token", "metadata"])
def test_raw_card_number_is_refused(platform: Platform, where: str) -> None:
    body = Platform.payment()
    if where == "description":
        body["description"] = f"card {PAN_SPACED} please"
    elif where == "token":
        body["payment_method"]["token"] = PAN
    else:
        body["metadata"] = {"note": PAN}
    response = platform.create(body, idempotency_key=f"pan-{where}")
    assert response.status == 400, response.body
    if where != "token":  # the model's token pattern refuses it at the gateway already
        error = _error(response)
        assert error["type"] == "invalid_request_error"
        assert PAN not in response.body and PAN_SPACED not in response.body


def test_replayed_key_returns_the_original_and_mismatch_is_409(platform: Platform, ledger: Ledger) -> None:
    body = Platform.payment("12.34", "EUR")
    first = platform.create(body, idempotency_key="e2e-replay-1")
    assert first.status == 202, first.body
    transaction_id = ledger.add(first.json["transaction_id"], "COMPLETED")
    replay = platform.create(body, idempotency_key="e2e-replay-1")
    assert replay.status == 202 and replay.json == first.json
    assert (replay.header("Idempotent-Replayed") or "").lower() == "true"
    changed = dict(body, amount="99.99")
    conflict = platform.create(changed, idempotency_key="e2e-replay-1")
    assert conflict.status == 409, conflict.body
    assert _error(conflict)["type"] == "idempotency_error" or "idempot" in conflict.body.lower()
    # The same key from another client (and API key) is another scope: a new transaction. Keys are
    # scoped to the authenticated client, or to the API key where no authorizer runs (LocalStack).
    other_client = platform.clients().add("e2e-replay-other", ["m_demo_store"], "merchant", "e2e")
    other_auth = {"Authorization": f"Bearer {other_client.token}"}
    other = platform.create(body, idempotency_key="e2e-replay-1", tier="mobile", headers=other_auth)
    assert other.status == 202 and other.json["transaction_id"] != transaction_id
    ledger.add(other.json["transaction_id"], "COMPLETED", tier="mobile")
    assert platform.wait_for_status(transaction_id)["status"] == "COMPLETED"
    assert platform.wait_for_status(other.json["transaction_id"], tier="mobile")["status"] == "COMPLETED"
    if supports("apigateway:lambda-authorizers"):
        # Reads follow the merchant scope: a client without the merchant does not see it.
        outsider = platform.clients().add("e2e-replay-outsider", ["m_other"], "merchant", "e2e")
        headers = {"x-api-key": platform.api_key(), "Authorization": f"Bearer {outsider.token}"}
        assert platform.api.get(f"/transactions/{other.json['transaction_id']}", headers).status == 404
    else:
        # Without an authorizer, status reads are scoped to the API key.
        assert platform.get_transaction(other.json["transaction_id"]).status == 404


def _everything_stored(platform: Platform, runtime: LambdaRuntime | None) -> dict[str, str]:
    """Every table item, queue message, archive object and log line the platform holds, as text."""
    outputs = platform.outputs
    stored: dict[str, str] = {}
    for key in ("transactions", "audit", "idempotency"):
        table = platform.table(key)
        items, page = [], table.scan()
        items += page["Items"]
        while "LastEvaluatedKey" in page:
            page = table.scan(ExclusiveStartKey=page["LastEvaluatedKey"])
            items += page["Items"]
        stored[f"table {key}"] = json.dumps(items, default=str)
    sqs = platform.client("sqs")
    for name in ("audit_queue_url", "failed_queue_url", "dlq_url", "scheduler_dlq_url"):
        bodies = []
        for _ in range(20):
            batch = sqs.receive_message(
                QueueUrl=outputs[name], MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            if not batch:
                break
            bodies += [m["Body"] for m in batch]
        stored[f"queue {name}"] = "\n".join(bodies)
    s3 = platform.client("s3")
    bucket = outputs["archive_bucket_name"]
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        stored[f"s3 {obj['Key']}"] = (
            s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("utf-8", "replace")
        )
    logs = platform.client("logs")
    # Every page of groups and of events: a leak on a later page is still a leak.
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page["logGroups"]:
            name = group["logGroupName"]
            events = [
                e
                for events_page in logs.get_paginator("filter_log_events").paginate(logGroupName=name)
                for e in events_page.get("events", [])
            ]
            stored[f"log {name}"] = "\n".join(e["message"] for e in events)
    if runtime is not None:
        stored["lambda stdout/stderr"] = runtime.captured_output()
    return stored


def test_card_numbers_are_stored_nowhere(platform: Platform, runtime: LambdaRuntime | None) -> None:
    stored = _everything_stored(platform, runtime)
    assert any(text for where, text in stored.items() if where.startswith("log /aws/lambda/")), (
        "no Lambda logs?"
    )
    pattern = re.compile(r"4111[ -]?1111[ -]?1111[ -]?1111")
    leaks = {where: pattern.search(text).group(0) for where, text in stored.items() if pattern.search(text)}  # type: ignore[union-attr]
    assert not leaks, f"card number found in: {sorted(leaks)}"
