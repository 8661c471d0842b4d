"""POST /transactions and POST /validate through the intake handler."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from payments import idempotency
from payments.handlers import intake

from tests.unit.awsenv import API_KEY_ID, AwsEnv, api_event, body_of, payment


def create(ctx: Any, body: Any = None, key: str | None = "key-1", **kwargs: Any) -> dict[str, Any]:
    return intake.handler(
        api_event(
            "POST", "/transactions", payment() if body is None else body, idempotency_key=key, **kwargs
        ),
        ctx,
    )


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
    assert body == {
        "transaction_id": txn_id,
        "status": "PENDING",
        "links": {"self": f"/transactions/{txn_id}"},
    }
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


def test_duplicate_idempotency_key_returns_original_response(aws: AwsEnv, ctx: Any) -> None:
    first = create(ctx, key="order-1001")
    again = create(ctx, key="order-1001")

    assert again["statusCode"] == 202
    assert body_of(again) == body_of(first)
    assert again["headers"]["Idempotent-Replayed"] == "true"
    # The original answer, headers included: a replayed 202 names the payment like the first one.
    assert again["headers"]["Location"] == first["headers"]["Location"]
    assert len(aws.transactions()) == 1
    assert len(aws.executions()) == 1


def test_idempotency_key_header_is_case_insensitive(aws: AwsEnv, ctx: Any) -> None:
    event = api_event("POST", "/transactions", payment(), headers={"IDEMPOTENCY-KEY": "k-upper"})
    first = intake.handler(event, ctx)
    again = intake.handler(
        api_event("POST", "/transactions", payment(), headers={"idempotency-key": "k-upper"}), ctx
    )

    assert first["statusCode"] == 202
    assert body_of(again) == body_of(first)


def test_same_key_with_reordered_json_is_the_same_request(aws: AwsEnv, ctx: Any) -> None:
    first = create(ctx, key="k")
    reordered = dict(reversed(list(payment().items())))
    again = create(ctx, body=reordered, key="k")

    assert body_of(again) == body_of(first)


def test_same_key_with_different_body_is_409(aws: AwsEnv, ctx: Any) -> None:
    create(ctx, key="k")
    response = create(ctx, body=payment(amount="200.00"), key="k")

    error = assert_error(response, 409, "idempotency_key_reused", "Idempotency-Key")
    assert error["type"] == "idempotency_error"
    assert len(aws.transactions()) == 1


def test_idempotency_keys_are_scoped_to_the_api_key(aws: AwsEnv, ctx: Any) -> None:
    first = create(ctx, key="shared", api_key_id="key-a")
    second = create(ctx, key="shared", api_key_id="key-b")

    assert body_of(first)["transaction_id"] != body_of(second)["transaction_id"]
    assert len(aws.transactions()) == 2


def test_replay_restarts_workflow_when_first_start_was_lost(
    aws: AwsEnv, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.handlers import _runtime

    services = _runtime.services()

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartExecution"
        )

    with monkeypatch.context() as patch:
        patch.setattr(services.sfn, "start_execution", throttled)
        failed = create(ctx, key="crash")

    assert_error(failed, 503, "service_unavailable", None)
    assert failed["headers"]["Retry-After"] == "1"
    [item] = aws.transactions()
    assert item["status"] == "PENDING"
    assert aws.executions() == []

    healed = create(ctx, key="crash")

    assert healed["statusCode"] == 202
    assert body_of(healed)["transaction_id"] == item["transaction_id"]
    [execution] = aws.executions()
    assert execution["name"] == item["transaction_id"]


def test_replay_does_not_restart_a_transaction_that_moved_on(aws: AwsEnv, ctx: Any) -> None:
    from payments.handlers import validator

    first = body_of(create(ctx, key="k"))
    validator.handler({"transaction_id": first["transaction_id"]}, ctx)
    aws.sfn.stop_execution(executionArn=aws.executions()[0]["executionArn"])

    again = create(ctx, key="k")

    assert again["statusCode"] == 202
    assert len(aws.executions()) == 1


def test_concurrent_duplicate_whose_record_is_unreadable_gets_409_in_flight(
    aws: AwsEnv, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.handlers import _runtime

    create(ctx, key="k")
    repo = _runtime.services().repo
    monkeypatch.setattr(repo, "get_idempotency", lambda _key: None)
    monkeypatch.setattr("payments.intake._REPLAY_WAITS", (0.0, 0.0))

    response = create(ctx, key="k")

    assert_error(response, 409, "idempotency_in_flight", "Idempotency-Key")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "idempotency_key_missing"),
        ({"Idempotency-Key": ""}, "idempotency_key_missing"),
        ({"Idempotency-Key": "x" * 256}, "idempotency_key_invalid"),
        ({"Idempotency-Key": "tab\tkey"}, "idempotency_key_invalid"),
        ({"Idempotency-Key": "clé"}, "idempotency_key_invalid"),
    ],
)
def test_create_requires_a_valid_idempotency_key(
    aws: AwsEnv, ctx: Any, headers: dict[str, str], code: str
) -> None:
    response = intake.handler(api_event("POST", "/transactions", payment(), headers=headers), ctx)

    assert_error(response, 400, code, "Idempotency-Key")
    assert_nothing_stored(aws)


def test_idempotency_key_of_255_printable_characters_is_accepted(aws: AwsEnv, ctx: Any) -> None:
    response = create(ctx, key="~" + "a" * 253 + " ")

    assert response["statusCode"] == 202


def test_card_number_anywhere_is_refused_and_never_stored(aws: AwsEnv, ctx: Any) -> None:
    body = payment(metadata={"note": "card 4111 1111 1111 1111 exp 12/29"})

    response = create(ctx, body=body)

    error = assert_error(response, 400, "card_data_not_allowed", "metadata.note")
    assert "4111" not in response["body"]
    assert error["message"]
    assert_nothing_stored(aws)


def test_card_number_as_payment_token_is_refused(aws: AwsEnv, ctx: Any) -> None:
    response = create(ctx, body=payment(payment_method={"type": "card", "token": "4242424242424242"}))

    assert_error(response, 400, "card_data_not_allowed", "payment_method.token")
    assert_nothing_stored(aws)


def test_card_number_in_invalid_json_is_reported_as_card_data(aws: AwsEnv, ctx: Any) -> None:
    response = intake.handler(
        api_event("POST", "/transactions", raw_body='{"pan": 5555-5555-5555-4444', idempotency_key="k"), ctx
    )

    assert_error(response, 400, "card_data_not_allowed", None)
    assert "5555" not in response["body"]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (payment(amount="-5.00"), "amount_too_small", "amount"),
        (payment(amount=0), "amount_too_small", "amount"),
        (payment(amount="10.001"), "invalid_amount_precision", "amount"),
        (payment(amount=1.5, currency="JPY"), "invalid_amount_precision", "amount"),
        (payment(amount="1e3"), "parameter_invalid", "amount"),
        (payment(amount=True), "parameter_invalid", "amount"),
        (payment(amount="99999999999999"), "amount_too_large", "amount"),
        (payment(currency="XYZ"), "invalid_currency", "currency"),
        (payment(currency="US"), "parameter_invalid", "currency"),
        (payment(merchant_id=None), "parameter_invalid", "merchant_id"),
        (payment(payment_method={"type": "card"}), "parameter_invalid", "payment_method.token"),
        (
            payment(payment_method={"type": "cash", "token": "tok_1"}),
            "parameter_invalid",
            "payment_method.type",
        ),
        (payment(country="usa"), "parameter_invalid", "country"),
        (payment(extra_field="x"), "parameter_invalid", "extra_field"),
        (payment(metadata={"k" * 41: "v"}), "parameter_invalid", "metadata"),
        (payment(metadata={str(i): "v" for i in range(21)}), "parameter_invalid", "metadata"),
        (payment(description="x" * 501), "parameter_invalid", "description"),
        (payment(customer_id="'; DROP TABLE payments;--"), "parameter_invalid", "customer_id"),
        ([1, 2, 3], "invalid_request", None),
    ],
)
def test_invalid_request_is_400_naming_the_field(
    aws: AwsEnv, ctx: Any, body: Any, code: str, param: str | None
) -> None:
    response = create(ctx, body=body)

    assert_error(response, 400, code, param)
    assert_nothing_stored(aws)


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ('{"amount": NaN}', "amount"),
        ('{"amount": Infinity}', "amount"),
    ],
)
def test_non_finite_amounts_are_refused(aws: AwsEnv, ctx: Any, raw: str, param: str) -> None:
    document = json.dumps(payment())[:-1] + ', "amount": 1}'
    document = json.dumps({k: v for k, v in payment().items() if k != "amount"})[:-1] + ", " + raw[1:]
    response = intake.handler(api_event("POST", "/transactions", raw_body=document, idempotency_key="k"), ctx)

    assert_error(response, 400, "invalid_amount", param)


def test_duplicated_json_keys_are_refused(aws: AwsEnv, ctx: Any) -> None:
    raw = '{"amount": "1.00", "amount": "1000000.00"}'
    response = intake.handler(api_event("POST", "/transactions", raw_body=raw, idempotency_key="k"), ctx)

    assert_error(response, 400, "duplicate_parameter", "amount")


@pytest.mark.parametrize("raw", ["{", "", "null", '"text"', "\ud800", "[" * 5000 + "]" * 5000])
def test_malformed_json_is_400_not_500(aws: AwsEnv, ctx: Any, raw: str) -> None:
    response = intake.handler(api_event("POST", "/transactions", raw_body=raw, idempotency_key="k"), ctx)

    assert response["statusCode"] == 400
    assert_nothing_stored(aws)


def test_base64_encoded_body_is_decoded(aws: AwsEnv, ctx: Any) -> None:
    response = intake.handler(
        api_event("POST", "/transactions", payment(), idempotency_key="k", base64=True), ctx
    )

    assert response["statusCode"] == 202


def test_broken_base64_body_is_400(aws: AwsEnv, ctx: Any) -> None:
    event = api_event("POST", "/transactions", raw_body="***not base64***", idempotency_key="k")
    event["isBase64Encoded"] = True

    assert_error(intake.handler(event, ctx), 400, "invalid_body", None)


def test_body_over_64_kib_is_413(aws: AwsEnv, ctx: Any) -> None:
    body = payment(description="x" * 70_000)

    assert_error(create(ctx, body=body), 413, "payload_too_large", None)
    assert_nothing_stored(aws)


def test_non_json_content_type_is_415(aws: AwsEnv, ctx: Any) -> None:
    response = create(ctx, headers={"Content-Type": "text/plain"})

    assert_error(response, 415, "unsupported_media_type", "Content-Type")
    assert_nothing_stored(aws)


def test_json_content_type_with_charset_is_accepted(aws: AwsEnv, ctx: Any) -> None:
    assert create(ctx, headers={"Content-Type": "application/json; charset=utf-8"})["statusCode"] == 202


def test_dynamodb_throttling_is_503_with_retry_after_and_nothing_written(
    aws: AwsEnv, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.handlers import _runtime

    repo = _runtime.services().repo

    def throttled(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}},
            "TransactWriteItems",
        )

    monkeypatch.setattr(repo.ddb, "transact_write_items", throttled)

    response = create(ctx)

    assert_error(response, 503, "service_unavailable", None)
    assert response["headers"]["Retry-After"] == "1"
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert_nothing_stored(aws)


def test_transaction_cancelled_by_throttling_is_503(
    aws: AwsEnv, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.handlers import _runtime

    repo = _runtime.services().repo

    def cancelled(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}, {"Code": "None"}],
            },
            "TransactWriteItems",
        )

    monkeypatch.setattr(repo.ddb, "transact_write_items", cancelled)

    assert_error(create(ctx), 503, "service_unavailable", None)


def test_unexpected_error_is_generic_500(aws: AwsEnv, ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from payments.handlers import _runtime

    repo = _runtime.services().repo

    def broken(**_: Any) -> None:
        raise RuntimeError("secret internals tok_visa_4242")

    monkeypatch.setattr(repo.ddb, "transact_write_items", broken)

    response = create(ctx)

    error = assert_error(response, 500, "internal_error", None)
    assert "internals" not in error["message"]
    assert "tok_" not in response["body"]


def test_validate_dry_run_stores_nothing(aws: AwsEnv, ctx: Any) -> None:
    response = intake.handler(api_event("POST", "/validate", payment(amount=12, currency="KWD")), ctx)

    assert response["statusCode"] == 200
    assert body_of(response) == {"valid": True, "amount_minor": 12000, "amount": "12.000", "currency": "KWD"}
    assert_nothing_stored(aws)


def test_validate_dry_run_reports_errors_like_create(aws: AwsEnv, ctx: Any) -> None:
    response = intake.handler(api_event("POST", "/validate", payment(amount="1.234")), ctx)

    assert_error(response, 400, "invalid_amount_precision", "amount")
    assert_nothing_stored(aws)


def test_cors_origin_not_allowed_gets_first_allowed_origin(aws: AwsEnv, ctx: Any) -> None:
    response = create(ctx, headers={"Origin": "https://evil.example"})

    assert response["headers"]["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response["headers"]["Vary"] == "Origin"


def test_cors_wildcard(aws: AwsEnv, ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from payments.handlers import _runtime

    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "*")
    _runtime.reset()

    response = create(ctx, body=[])

    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    assert "Idempotency-Key" in response["headers"]["Access-Control-Allow-Headers"]


def test_expired_idempotency_record_is_not_replayed(aws: AwsEnv, ctx: Any) -> None:
    first = body_of(create(ctx, key="old"))
    scoped = idempotency.scoped_key(API_KEY_ID, "old")
    # TTL deletion can lag expiry by days: the record is still there, but expired.
    aws.ddb.update_item(
        TableName=aws.n["IDEMPOTENCY_TABLE"],
        Key={"idempotency_key": {"S": scoped}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )

    again = create(ctx, key="old", body=payment(amount="5.00"))

    assert again["statusCode"] == 202
    assert "Idempotent-Replayed" not in again["headers"]
    assert body_of(again)["transaction_id"] != first["transaction_id"]
    assert len(aws.transactions()) == 2
