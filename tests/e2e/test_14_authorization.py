"""Flow 14: callers are bound to their merchants — the authorizer and the merchant scope through the API.

On moto the emulated API Gateway runs the deployed authorizer (devkit/emulator/apigw_authorizer.py).
LocalStack 4.14's free edition has no authorizer step in its REST execute-api handler chain, so
requests reach the integration unauthenticated there: those tests are ``not_emulated`` on LocalStack;
the application's scope checks are covered on every backend by tests/unit/test_authorizer.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from devkit.demo import Platform
from devkit.emulator.lambda_runtime import LambdaRuntime
from tests.support.stack import Deployment

AUTHORIZER_NOT_RUN = pytest.mark.not_emulated(
    reason="LocalStack 4.14's free edition does not execute Lambda authorizers on REST APIs "
    "(no authorizer handler in its execute-api chain)",
    backends=("localstack",),
)


def _error(response: Any) -> dict[str, Any]:
    body = response.json
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), response.body
    return dict(body["error"])


def _send(platform: Platform, authorization: str | None, body: Any = None, key: str | None = None) -> Any:
    headers = {"x-api-key": platform.api_key(), "Idempotency-Key": key or uuid.uuid4().hex}
    if authorization is not None:
        headers["Authorization"] = authorization
    return platform.api.post("/transactions", body or Platform.payment(), headers)


def _secret(token: str) -> str:
    return token.split(".", 1)[1]


@AUTHORIZER_NOT_RUN
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer cli_0123456789abcdef.too-short"],
    ids=["missing", "empty", "basic", "no-token", "malformed"],
)
def test_missing_or_malformed_credentials_are_401(platform: Platform, authorization: str | None) -> None:
    response = _send(platform, authorization)
    assert response.status == 401, response.body
    error = _error(response)
    assert error["type"] == "authentication_error" and error["code"] == "unauthenticated"


@AUTHORIZER_NOT_RUN
def test_wrong_revoked_and_another_clients_secret_are_403_alike(platform: Platform) -> None:
    clients = platform.clients()
    mine = clients.add("e2e-mine", ["m_demo_store"], "merchant", "e2e")
    theirs = clients.add("e2e-theirs", ["m_other"], "merchant", "e2e")
    revoked = clients.add("e2e-revoked", ["m_demo_store"], "merchant", "e2e")
    clients.revoke(revoked.client["key_id"], "e2e")
    key_id = mine.client["key_id"]
    answers = {
        "wrong": _send(platform, f"Bearer {key_id}." + "A" * 43),
        "another client's secret": _send(platform, f"Bearer {key_id}.{_secret(theirs.token)}"),
        "revoked": _send(platform, f"Bearer {revoked.token}"),
        "unknown key id": _send(platform, f"Bearer cli_00000000000000ff.{_secret(mine.token)}"),
    }
    for what, response in answers.items():
        assert response.status == 403, (what, response.body)
        # The same answer for every cause: nothing tells a caller which clients exist.
        assert _error(response) == _error(answers["wrong"]), what
        assert _error(response)["code"] == "access_denied"
    assert _send(platform, f"Bearer {mine.token}").status == 202


@AUTHORIZER_NOT_RUN
def test_merchant_outside_scope_is_403_and_nothing_is_stored(platform: Platform) -> None:
    customer = f"c_scope_{uuid.uuid4().hex[:8]}"
    body = Platform.payment(merchant_id="m_not_mine", customer_id=customer)
    response = _send(platform, f"Bearer {platform.token()}", body)

    assert response.status == 403, response.body
    error = _error(response)
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error",
        "merchant_not_allowed",
        "merchant_id",
    )
    stored = platform.table("transactions").scan(
        FilterExpression="customer_id = :c", ExpressionAttributeValues={":c": customer}
    )["Items"]
    assert stored == []
    validate = platform.api.post("/validate", body, platform.credentials())
    assert validate.status == 403 and _error(validate)["code"] == "merchant_not_allowed"


@AUTHORIZER_NOT_RUN
def test_another_principals_idempotency_key_is_not_replayed(platform: Platform) -> None:
    other = platform.clients().add("e2e-other", ["m_demo_store"], "merchant", "e2e")
    key = f"shared-{uuid.uuid4().hex}"
    first = _send(platform, f"Bearer {platform.token()}", key=key)
    second = _send(platform, f"Bearer {other.token}", key=key)

    assert first.status == 202 and second.status == 202, (first.body, second.body)
    assert second.header("Idempotent-Replayed") is None
    assert first.json["transaction_id"] != second.json["transaction_id"]


@AUTHORIZER_NOT_RUN
def test_reads_follow_the_merchant_scope(platform: Platform) -> None:
    created = _send(platform, f"Bearer {platform.token()}")
    assert created.status == 202, created.body
    transaction_id = created.json["transaction_id"]
    outsider = platform.clients().add("e2e-outsider", ["m_other"], "merchant", "e2e")
    headers = {"x-api-key": platform.api_key(), "Authorization": f"Bearer {outsider.token}"}

    assert platform.get_transaction(transaction_id).status == 200
    assert platform.api.get(f"/transactions/{transaction_id}", headers).status == 404
    assert platform.api.get(f"/status/{transaction_id}", headers).status == 404


def test_no_secret_in_state_outputs_or_logs(
    deployment: Deployment, platform: Platform, runtime: LambdaRuntime | None
) -> None:
    issued = platform.clients().add("e2e-leak-check", ["m_demo_store"], "merchant", "e2e")
    secret = _secret(issued.token)
    _send(platform, f"Bearer {issued.token}")
    _send(platform, f"Bearer {issued.client['key_id']}." + "B" * 43)
    secrets = [secret, _secret(platform.token())]

    places: dict[str, str] = {"outputs": json.dumps(deployment.outputs, default=str)}
    for path in Path(deployment.workdir).rglob("*"):
        if path.is_file() and (path.suffix in {".tfstate", ".backup", ".log", ".json"}):
            places[str(path.name)] = path.read_text("utf-8", "replace")
    if runtime is not None:
        places["function logs"] = "\n".join(i.output for i in runtime.history())
        assert "authorized" in places["function logs"]
    for where, text in places.items():
        for value in secrets:
            assert value not in text, f"a client secret appears in {where}"
