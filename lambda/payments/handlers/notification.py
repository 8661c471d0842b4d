"""Workflow tasks Reject, Notify and RecordFailure (``action`` = reject | outcome | failure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from payments.errors import DomainError
from payments.handlers._runtime import count, entrypoint, logger, services
from payments.handlers._workflow import transaction_ref
from payments.steps import failure_step, outcome_step, reject_step


class UnknownAction(DomainError):
    pass


@entrypoint("notification")
def handler(event: Any, context: Any) -> dict[str, Any]:
    action = event.get("action") if isinstance(event, Mapping) else None
    transaction_id, timestamp = transaction_ref(event)
    if action == "reject":
        result = reject_step(services(), transaction_id, timestamp)
        count("TransactionRejected")
    elif action == "outcome":
        result = outcome_step(services(), transaction_id, timestamp)
        count("OutcomeNotified")
    elif action == "failure":
        error = event.get("error") if isinstance(event.get("error"), Mapping) else None
        result = failure_step(services(), transaction_id, timestamp, error)
        if result.get("recorded"):
            count("TransactionFailed")
    else:
        raise UnknownAction("action must be reject, outcome or failure")
    logger.info("notification handled", extra={"action": action, "status": result.get("status")})
    return result
