"""Retry consumer of failed-transactions: resumes each transaction from its current status.

Reports partial batch failures (``batchItemFailures``): only the messages whose
transaction could not be finished are retried by SQS, and after 3 receives land in the DLQ.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payments import ids
from payments.service import resume

from handlers._runtime import count, entrypoint, logger, services


def _reference(record: Mapping[str, Any]) -> tuple[str, int | None]:
    body = json.loads(str(record.get("body") or ""))
    if not isinstance(body, Mapping):
        raise ValueError("message body is not a JSON object")
    transaction_id = body.get("transaction_id")
    if not isinstance(transaction_id, str) or not ids.is_transaction_id(transaction_id):
        raise ValueError("message has no valid transaction_id")
    raw_ts = body.get("timestamp")
    return transaction_id, int(raw_ts) if isinstance(raw_ts, (int, str)) and str(raw_ts).isdigit() else None


@entrypoint("retry")
def handler(event: Any, context: Any) -> dict[str, Any]:
    records = event.get("Records", []) if isinstance(event, Mapping) else []
    failures: list[dict[str, str]] = []
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            transaction_id, timestamp = _reference(record)
        except (ValueError, TypeError):
            # Unusable message: let SQS retry it into the DLQ where a human will look.
            logger.error("malformed retry message", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})
            continue
        logger.append_keys(transaction_id=transaction_id)
        logger.set_correlation_id(transaction_id)
        try:
            result = resume(services(), transaction_id, timestamp)
        except Exception as exc:
            logger.warning(
                "retry attempt failed", extra={"message_id": message_id, "error": type(exc).__name__}
            )
            failures.append({"itemIdentifier": message_id})
            count("RetryFailed")
            continue
        logger.info("retry finished", extra={"message_id": message_id, "status": result.get("status")})
        count("RetrySucceeded")
    logger.remove_keys(["transaction_id"])
    return {"batchItemFailures": failures}
