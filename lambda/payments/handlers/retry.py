"""Retry consumer of failed-transactions: resumes each transaction from its current status.

Two producers write to the queue: RecordFailure / the sweeper (``{"transaction_id", "timestamp",
"error", ...}``) and the Step Functions safety net, an EventBridge rule on execution status changes
(``{"transaction_id", "source": "workflow-safety-net", "execution_status": "TIMED_OUT"|"ABORTED"|
"FAILED", ...}``, no timestamp). For the latter the workflow is known to be gone, so its unfinished
attempt is failed first (docs/interfaces.md "Settlement protocol").

Reports partial batch failures (``batchItemFailures``): only the messages whose transaction could
not be finished are retried by SQS, and after 3 receives land in the DLQ. Each message gets a time
budget: when the function's remaining time cannot cover one more worst-case message (two processor
calls at their time-out plus DynamoDB), the rest of the batch is handed back unprocessed instead of
being cut off by the Lambda time-out mid-settlement (which would count a receive against all of
them and strand the one in flight). Powertools' ``BatchProcessor`` would fit (a per-record time check
and ``raise_on_entire_batch_failure=False``), but importing it costs ~21 ms of cold start (asyncio and
every event class), which alone takes this function over the 1.25x budget of ``bench/handlers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payments import ids
from payments.handlers._runtime import count, entrypoint, logger, remaining_seconds, services
from payments.processor import TIMEOUT_SECONDS
from payments.recovery import resume
from payments.states import UNSUCCESSFUL_EXECUTIONS, ExecutionStatus

SAFETY_NET_SOURCE = "workflow-safety-net"
# Worst case of one message: a charge and a lookup at their time-out, plus DynamoDB/SQS/SNS calls.
PER_MESSAGE_BUDGET_S = 2 * TIMEOUT_SECONDS + 10


def _reference(record: Mapping[str, Any]) -> tuple[str, int | None, str | None]:
    body = json.loads(str(record.get("body") or ""))
    if not isinstance(body, Mapping):
        raise ValueError("message body is not a JSON object")
    transaction_id = body.get("transaction_id")
    if not isinstance(transaction_id, str) or not ids.is_transaction_id(transaction_id):
        raise ValueError("message has no valid transaction_id")
    raw_ts = body.get("timestamp")
    timestamp = int(raw_ts) if isinstance(raw_ts, (int, str)) and str(raw_ts).isdigit() else None
    abandoned = None
    if body.get("source") == SAFETY_NET_SOURCE:
        status = str(body.get("execution_status") or "")
        abandoned = status if status in UNSUCCESSFUL_EXECUTIONS else ExecutionStatus.FAILED.value
    return transaction_id, timestamp, abandoned


@entrypoint("retry")
def handler(event: Any, context: Any) -> dict[str, Any]:
    records = event.get("Records", []) if isinstance(event, Mapping) else []
    failures: list[dict[str, str]] = []
    for index, record in enumerate(records):
        message_id = str(record.get("messageId", ""))
        remaining = remaining_seconds(context)
        if remaining is not None and remaining < PER_MESSAGE_BUDGET_S:
            left = [str(r.get("messageId", "")) for r in records[index:]]
            logger.warning("time budget spent; handing back the rest of the batch", extra={"left": len(left)})
            failures.extend({"itemIdentifier": m} for m in left)
            count("RetryDeferred", len(left))
            break
        try:
            transaction_id, timestamp, abandoned = _reference(record)
        except (ValueError, TypeError):
            # Unusable message: let SQS retry it into the DLQ where a human will look.
            logger.error("malformed retry message", extra={"message_id": message_id})
            failures.append({"itemIdentifier": message_id})
            continue
        logger.append_keys(transaction_id=transaction_id)
        logger.set_correlation_id(transaction_id)
        try:
            result = resume(services(), transaction_id, timestamp, abandoned=abandoned)
        except Exception as exc:
            logger.warning(
                "retry attempt failed", extra={"message_id": message_id, "error": type(exc).__name__}
            )
            failures.append({"itemIdentifier": message_id})
            count("RetryFailed")
            continue
        logger.info(
            "retry finished",
            extra={"message_id": message_id, "status": result.get("status"), "abandoned": abandoned},
        )
        if result.get("status") == "PARKED":
            count("PaymentParked")
        count("RetrySucceeded")
    logger.remove_keys(["transaction_id"])
    return {"batchItemFailures": failures}
