"""Workflow task Validate: PENDING → VALIDATING; returns ``{"valid", "reasons"}``."""

from __future__ import annotations

from typing import Any

from payments.handlers._runtime import count, entrypoint, logger, services
from payments.handlers._workflow import transaction_ref
from payments.steps import validate_step


@entrypoint("validator")
def handler(event: Any, context: Any) -> dict[str, Any]:
    transaction_id, timestamp = transaction_ref(event)
    result = validate_step(services(), transaction_id, timestamp)
    logger.info("validated", extra={"valid": result["valid"], "reasons": result["reasons"]})
    count("ValidationPassed" if result["valid"] else "ValidationFailed")
    return {"valid": bool(result["valid"]), "reasons": list(result["reasons"])}
