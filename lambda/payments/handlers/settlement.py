"""Workflow task Settle: VALIDATING → SETTLING → COMPLETED (archived) | REJECTED (declined)."""

from __future__ import annotations

from typing import Any

from payments.handlers._runtime import count, entrypoint, logger, services
from payments.handlers._workflow import transaction_ref
from payments.settle import settle_step


@entrypoint("settlement")
def handler(event: Any, context: Any) -> dict[str, Any]:
    transaction_id, timestamp = transaction_ref(event)
    result = settle_step(services(), transaction_id, timestamp)
    logger.info("settlement finished", extra={"status": result["status"]})
    count("SettlementCompleted" if result["status"] == "COMPLETED" else "SettlementDeclined")
    return result
