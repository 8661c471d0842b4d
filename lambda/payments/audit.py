"""Audit trail: one audit-table item and one FIFO message per state transition.

The item is written in the same DynamoDB transaction as the status change, so the table
holds an entry exactly when the transition happened. The FIFO message (the audit stream)
follows; a step that re-runs re-sends it and SQS de-duplicates on
``<transaction_id>#<to_status>`` (plus ``#<attempt>`` for retry attempts, so a second
attempt's transitions are not swallowed by the 5-minute de-duplication window).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from payments.clock import iso_from_ms

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

INITIAL = "NONE"


def event_id(at_ms: int, to_status: str) -> str:
    return f"{at_ms:013d}#{to_status}"


def audit_item(
    transaction_id: str,
    from_status: str | None,
    to_status: str,
    at_ms: int,
    actor: str,
    ttl_days: int,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "event_id": event_id(at_ms, to_status),
        "from_status": from_status or INITIAL,
        "to_status": to_status,
        "at": iso_from_ms(at_ms),
        "actor": actor,
        "detail": detail or {},
        "expires_at": at_ms // 1000 + ttl_days * 86400,
    }


def dedup_id(transaction_id: str, to_status: str, attempt: int) -> str:
    base = f"{transaction_id}#{to_status}"
    return base if attempt <= 1 else f"{base}#{attempt}"


def fifo_entry(
    transaction_id: str,
    from_status: str | None,
    to_status: str,
    at: str,
    actor: str,
    attempt: int = 1,
) -> SendMessageBatchRequestEntryTypeDef:
    body = {
        "transaction_id": transaction_id,
        "from_status": from_status,
        "to_status": to_status,
        "at": at,
        "actor": actor,
    }
    return {
        "Id": to_status,
        "MessageBody": json.dumps(body, separators=(",", ":")),
        "MessageGroupId": transaction_id,
        "MessageDeduplicationId": dedup_id(transaction_id, to_status, attempt),
    }


class AuditStreamError(RuntimeError):
    """SQS refused part of an audit batch; the step fails and its retry re-sends."""


def publish(sqs: SQSClient, queue_url: str, entries: list[SendMessageBatchRequestEntryTypeDef]) -> None:
    if not entries:
        return
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    failed = response.get("Failed") or []
    if failed:
        codes = ",".join(sorted({str(f.get("Code")) for f in failed}))
        raise AuditStreamError(f"{len(failed)} audit message(s) rejected: {codes}")
