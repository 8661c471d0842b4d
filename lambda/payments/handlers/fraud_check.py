"""Workflow task FraudCheck: returns ``{"decision": "APPROVE"|"REJECT", "score", "reasons"}``."""

from __future__ import annotations

from typing import Any

from payments.handlers._runtime import count, entrypoint, logger, services
from payments.handlers._workflow import transaction_ref
from payments.steps import fraud_step


@entrypoint("fraud-check")
def handler(event: Any, context: Any) -> dict[str, Any]:
    transaction_id, timestamp = transaction_ref(event)
    result = fraud_step(services(), transaction_id, timestamp)
    logger.info(
        "fraud assessed",
        extra={"decision": result["decision"], "score": result["score"], "reasons": result["reasons"]},
    )
    count("FraudRejected" if result["decision"] == "REJECT" else "FraudApproved")
    return {"decision": result["decision"], "score": int(result["score"]), "reasons": list(result["reasons"])}
