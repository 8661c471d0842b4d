"""The API's Lambda REQUEST authorizer and the merchant scope the application enforces."""

from __future__ import annotations

import hmac
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from payments import authorizer as auth
from payments import config, principals
from payments.handlers import _runtime, intake, status
from payments.handlers import authorizer as handler_module

from ops.core.clients import ClientStore
from tests.unit.awsenv import AwsEnv, api_event, body_of, names, payment

CLIENT_A = "cli_00000000000000aa"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/POST/transactions"


def store(aws: AwsEnv) -> ClientStore:
    n = names()
    return ClientStore(aws.ddb, n["CLIENTS_TABLE"], n["AUDIT_TABLE"])


def authorizer_event(authorization: str | None, method_arn: str = METHOD_ARN) -> dict[str, Any]:
    headers = {"x-api-key": "k"} if authorization is None else {"Authorization": authorization}
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": headers,
        "requestContext": {"requestId": "req-auth-1"},
    }


def effect(response: dict[str, Any]) -> str:
    [statement] = response["policyDocument"]["Statement"]
    return str(statement["Effect"])


@pytest.fixture(autouse=True)
def _fresh_table() -> None:
    handler_module._table = None


# ---------------------------------------------------------------------------- credentials and hashes


def test_stored_client_holds_only_a_salted_hash_of_its_secret(aws: AwsEnv) -> None:
    issued = store(aws).add("shop", ["merch_123"], "merchant", "tester")
    secret = issued.token.split(".", 1)[1]

    raw = aws.ddb.scan(TableName=names()["CLIENTS_TABLE"])["Items"]
    assert secret not in json.dumps(raw)
    [record] = store(aws).fetch(issued.client["key_id"])["secrets"]
    assert record["hash"] == auth.hash_secret(secret, record["salt"])
    # The audit entry names the change, never the secret.
    audit = aws.ddb.scan(TableName=names()["AUDIT_TABLE"])["Items"]
    assert len(audit) == 1 and secret not in json.dumps(audit)


def test_two_equal_secrets_get_different_hashes() -> None:
    a = auth.secret_record("same-secret", "s1", "t")
    b = auth.secret_record("same-secret", "s2", "t")
    assert a["salt"] != b["salt"] and a["hash"] != b["hash"]


def test_hash_comparison_is_constant_time_over_every_stored_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    first, second = auth.secret_record("one", "s1", "t"), auth.secret_record("two", "s2", "t")
    # A match on the first secret still compares the second: no early exit reveals which one matched.
    assert auth.secret_matches([first, second], "one") is True
    assert len(calls) == 2
    calls.clear()
    assert auth.secret_matches([first, second], "three") is False
    assert len(calls) == 2


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer cli_0123456789abcdef",
        "Bearer cli_0123456789abcdef.short",
        "Bearer not-a-key-id." + "a" * 43,
        "Bearer cli_0123456789ABCDEF." + "a" * 43,
        "Bearer cli_0123456789abcdef." + "a" * 300,
    ],
)
def test_missing_or_malformed_credentials_are_unauthorized_401(header: str | None) -> None:
    with pytest.raises(auth.Unauthorized) as raised:
        auth.authorize(authorizer_event(header), lambda _k: pytest.fail("no lookup for malformed input"))
    # API Gateway turns exactly this message into 401.
    assert str(raised.value) == "Unauthorized"


# ---------------------------------------------------------------------------- decisions through the handler


def test_valid_secret_allows_the_whole_stage_with_principal_and_scope(aws: AwsEnv, ctx: Any) -> None:
    issued = store(aws).add("partner", ["merch_a", "merch_b"], "partner", "tester")

    response = handler_module.handler(authorizer_event(f"Bearer {issued.token}"), ctx)

    assert effect(response) == "Allow"
    assert response["principalId"] == issued.client["key_id"]
    assert response["context"] == {
        "client_id": issued.client["key_id"],
        "kind": "partner",
        "merchants": "merch_a merch_b",
    }


def test_decision_does_not_depend_on_the_route_so_the_cache_key_is_the_header_alone(
    aws: AwsEnv, ctx: Any
) -> None:
    # API Gateway caches by the identity source (the Authorization header) only; a decision
    # cached on one route is reused on another, so it must be valid for every route.
    issued = store(aws).add("shop", ["merch_123"], "merchant", "tester")
    other_route = METHOD_ARN.replace("POST/transactions", "GET/transactions/txn_1")

    a = handler_module.handler(authorizer_event(f"Bearer {issued.token}"), ctx)
    b = handler_module.handler(authorizer_event(f"Bearer {issued.token}", other_route), ctx)

    assert a == b
    assert (
        a["policyDocument"]["Statement"][0]["Resource"]
        == "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/*"
    )


def test_wrong_unknown_and_other_clients_secret_are_denied_alike(aws: AwsEnv, ctx: Any) -> None:
    mine = store(aws).add("shop", ["merch_123"], "merchant", "tester")
    theirs = store(aws).add("other", ["merch_999"], "merchant", "tester")
    key_id = mine.client["key_id"]
    wrong = f"Bearer {key_id}." + "x" * 43
    crossed = f"Bearer {key_id}." + theirs.token.split(".", 1)[1]
    unknown = "Bearer cli_00000000000000ff." + mine.token.split(".", 1)[1]

    answers = [handler_module.handler(authorizer_event(h), ctx) for h in (wrong, crossed, unknown)]

    assert [effect(a) for a in answers] == ["Deny", "Deny", "Deny"]
    assert all("context" not in a for a in answers)


def test_rotation_keeps_the_previous_secret_valid_until_the_next(aws: AwsEnv, ctx: Any) -> None:
    clients = store(aws)
    first = clients.add("shop", ["merch_123"], "merchant", "tester")
    key_id = first.client["key_id"]
    second = clients.rotate(key_id, "tester")
    third = clients.rotate(key_id, "tester")

    def allowed(issued: Any) -> bool:
        return effect(handler_module.handler(authorizer_event(f"Bearer {issued.token}"), ctx)) == "Allow"

    assert [allowed(first), allowed(second), allowed(third)] == [False, True, True]
    clients.drop_secret(key_id, second.secret_id, "tester")
    assert [allowed(second), allowed(third)] == [False, True]


def test_revoked_client_is_denied_and_keeps_no_hash(aws: AwsEnv, ctx: Any) -> None:
    clients = store(aws)
    issued = clients.add("shop", ["merch_123"], "merchant", "tester")
    clients.revoke(issued.client["key_id"], "tester")

    response = handler_module.handler(authorizer_event(f"Bearer {issued.token}"), ctx)

    assert effect(response) == "Deny"
    assert clients.fetch(issued.client["key_id"])["secrets"] == []
    audit = aws.ddb.scan(TableName=names()["AUDIT_TABLE"])["Items"]
    assert sorted(i["action"]["S"] for i in audit) == ["add", "revoke"]


def test_authorizer_logs_never_carry_the_secret(
    aws: AwsEnv, ctx: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.StringIO()
    stream = _runtime.logger.registered_handler
    assert isinstance(stream, logging.StreamHandler)
    previous = stream.setStream(buffer)
    try:
        issued = _three_outcomes(ctx, aws)
    finally:
        stream.setStream(previous)
    secret = issued.token.split(".", 1)[1]
    logs = buffer.getvalue() + capsys.readouterr().out
    assert "authorized" in logs and issued.client["key_id"] in logs
    assert secret not in logs and "y" * 43 not in logs and "Bearer" not in logs


def _three_outcomes(ctx: Any, aws: AwsEnv) -> Any:
    issued = store(aws).add("shop", ["merch_123"], "merchant", "tester")
    handler_module.handler(authorizer_event(f"Bearer {issued.token}"), ctx)
    handler_module.handler(authorizer_event(f"Bearer {issued.client['key_id']}." + "y" * 43), ctx)
    with pytest.raises(auth.Unauthorized):
        handler_module.handler(authorizer_event(f"Bearer {issued.token}x"), ctx)
    return issued


# ---------------------------------------------------------------------------- the merchant scope in the API


def with_principal(event: dict[str, Any], client_id: str, merchants: str) -> dict[str, Any]:
    event["requestContext"]["authorizer"] = {
        "client_id": client_id,
        "kind": "partner",
        "merchants": merchants,
    }
    return event


def test_intake_refuses_a_merchant_outside_scope_and_stores_nothing(aws: AwsEnv, ctx: Any) -> None:
    event = with_principal(
        api_event("POST", "/transactions", payment(merchant_id="merch_other"), idempotency_key="k-1"),
        CLIENT_A,
        "merch_123",
    )

    response = intake.handler(event, ctx)

    assert response["statusCode"] == 403
    assert body_of(response)["error"] == {
        "type": "permission_error",
        "code": "merchant_not_allowed",
        "message": "This client may not act for the merchant given.",
        "param": "merchant_id",
    }
    assert aws.count("TRANSACTIONS_TABLE") == 0 and aws.count("IDEMPOTENCY_TABLE") == 0
    assert aws.executions() == []


def test_validate_follows_the_merchant_scope(aws: AwsEnv, ctx: Any) -> None:
    allowed = with_principal(api_event("POST", "/validate", payment()), CLIENT_A, "merch_123")
    refused = with_principal(
        api_event("POST", "/validate", payment(merchant_id="merch_other")),
        CLIENT_A,
        "merch_123",
    )
    assert intake.handler(allowed, ctx)["statusCode"] == 200
    assert body_of(intake.handler(refused, ctx))["error"]["code"] == "merchant_not_allowed"


def test_idempotency_key_is_scoped_to_the_principal(aws: AwsEnv, ctx: Any) -> None:
    def create(client_id: str) -> dict[str, Any]:
        event = api_event(
            "POST", "/transactions", payment(), idempotency_key="shared-key", api_key_id="same-api-key"
        )
        return intake.handler(with_principal(event, client_id, "merch_123"), ctx)

    first = create(CLIENT_A)
    replay_by_other = create("cli_00000000000000bb")

    assert first["statusCode"] == 202 and replay_by_other["statusCode"] == 202
    # Another principal's key is a new request: no replay of someone else's response.
    assert "Idempotent-Replayed" not in replay_by_other["headers"]
    assert body_of(first)["transaction_id"] != body_of(replay_by_other)["transaction_id"]


def test_status_hides_transactions_of_merchants_outside_scope(aws: AwsEnv, ctx: Any) -> None:
    created = intake.handler(
        with_principal(
            api_event("POST", "/transactions", payment(), idempotency_key="k-2"),
            CLIENT_A,
            "merch_123",
        ),
        ctx,
    )
    txn_id = body_of(created)["transaction_id"]

    def read(merchants: str) -> int:
        event = api_event(
            "GET", "/transactions/{id}", path_parameters={"id": txn_id}, api_key_id="another-key"
        )
        return int(
            status.handler(with_principal(event, "cli_00000000000000cc", merchants), ctx)["statusCode"]
        )

    assert read("merch_123 merch_9") == 200  # a partner reads its merchants' transactions
    assert read("merch_9") == 404  # existence is not disclosed


def test_principal_context_round_trips_from_the_authorizer() -> None:
    decision = auth.Decision(True, CLIENT_A, "ok", ("m1", "m2"), "partner")
    context = auth.policy(decision, METHOD_ARN)["context"]
    principal = principals.from_event({"requestContext": {"authorizer": context}})
    assert principal == principals.Principal(CLIENT_A, "partner", frozenset({"m1", "m2"}))
    assert principals.from_event({"requestContext": {}}) is None


@pytest.fixture
def principal_required(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """REQUIRE_PRINCIPAL as deployed (Terraform's require_authorizer_principal defaults to true)."""
    monkeypatch.setenv("REQUIRE_PRINCIPAL", "true")
    _runtime.reset(keep_clients=True)
    yield
    monkeypatch.delenv("REQUIRE_PRINCIPAL")
    _runtime.reset(keep_clients=True)


@pytest.mark.parametrize(
    ("method", "resource", "body"),
    [
        ("POST", "/transactions", "create"),
        ("POST", "/validate", "validate"),
        ("GET", "/transactions/{id}", None),
    ],
)
def test_a_request_without_the_authorizers_principal_is_refused_when_required(
    aws: AwsEnv, ctx: Any, principal_required: None, method: str, resource: str, body: str | None
) -> None:
    """A route that skipped the authorizer (a bypassed or misconfigured gateway) serves nobody:
    401 unauthenticated, nothing stored, nothing started — not a request without a merchant scope."""
    assert _runtime.services().settings.require_principal is True
    if body is None:
        event = api_event(method, resource, path_parameters={"id": "txn_01M95C0NR17E9PQ6VANGZM4E1T"})
        response = status.handler(event, ctx)
    else:
        event = api_event(method, resource, payment(), idempotency_key=f"k-{body}")
        response = intake.handler(event, ctx)

    assert response["statusCode"] == 401
    assert body_of(response)["error"]["type"] == "authentication_error"
    assert body_of(response)["error"]["code"] == "unauthenticated"
    assert aws.count("TRANSACTIONS_TABLE") == 0 and aws.count("IDEMPOTENCY_TABLE") == 0
    assert aws.executions() == []
    # The same request with the authorizer's principal for its merchant is served.
    served = with_principal(event, CLIENT_A, "merch_123")
    handler = status.handler if body is None else intake.handler
    assert handler(served, ctx)["statusCode"] in (200, 202, 404)


def test_require_principal_is_on_unless_the_deployment_says_false(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in ((None, True), ("true", True), ("TRUE", True), ("false", False), ("False", False)):
        if value is None:
            monkeypatch.delenv("REQUIRE_PRINCIPAL", raising=False)
        else:
            monkeypatch.setenv("REQUIRE_PRINCIPAL", value)
        config.reset_settings()
        assert config.get_settings().require_principal is expected, value
    config.reset_settings()
