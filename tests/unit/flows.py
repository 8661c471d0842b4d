"""Drive a transaction through the workflow the way Step Functions does, calling the handlers."""

from __future__ import annotations

from typing import Any

from payments.handlers import fraud_check, intake, notification, settlement, validator

from tests.unit.awsenv import FakeContext, api_event, body_of, payment

CTX = FakeContext()


def create(body: dict[str, Any] | None = None, key: str = "k-1") -> dict[str, Any]:
    response = intake.handler(api_event("POST", "/transactions", body or payment(), idempotency_key=key), CTX)
    assert response["statusCode"] == 202, response["body"]
    created: dict[str, Any] = body_of(response)
    return created


def run_workflow(transaction_id: str, timestamp: int | None = None) -> dict[str, Any]:
    """Checks → Decide → Reject | Settle → Notify, with Catch → RecordFailure (as in interfaces.md)."""
    state: dict[str, Any] = {"transaction_id": transaction_id}
    if timestamp is not None:
        state["timestamp"] = timestamp
    try:
        checks = [validator.handler(dict(state), CTX), fraud_check.handler(dict(state), CTX)]
        state["checks"] = checks
        if not checks[0]["valid"] or checks[1]["decision"] == "REJECT":
            notification.handler({"action": "reject", **state}, CTX)
            state["path"] = "reject"
            return state
        state["settlement"] = settlement.handler(dict(state), CTX)
        state["notified"] = notification.handler({"action": "outcome", **state}, CTX)
        state["path"] = "settle"
    except Exception as exc:
        state["error"] = {"Error": type(exc).__name__, "Cause": str(exc)}
        state["failure"] = notification.handler({"action": "failure", **state}, CTX)
        state["path"] = "failure"
    return state
