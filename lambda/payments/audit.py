"""Audit trail: one audit-table item and one FIFO message per state transition.

The item is written in the same DynamoDB transaction as the status change, so the table
holds an entry exactly when the transition happened. The FIFO message (the audit stream) is
outboxed: the same write appends it to the transaction's ``stream_outbox`` list, and whoever
touches the transaction next (the step itself, a re-run, the retry consumer, the sweeper) sends
the whole list in order, then prunes what it sent. Every transition has its own number (the
row's ``transitions``, kept apart from ``version``, which every write increments; the entries call
it ``version``), so the de-duplication id ``<transaction_id>#v<number>`` swallows re-sends (within
SQS's 5-minute window; consumers de-duplicate on the same pair beyond it) and never a later
transition.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from payments.clock import iso_from_ms

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

INITIAL = "NONE"


def event_id(at_ms: int, to_status: str, version: int | None = None) -> str:
    """The audit entry's sort key: the transition number when known (``v<number>#<status>``, so a
    query returns entries in transition order and two transitions in one millisecond never share a
    key), else the writer's clock (entries written before transitions were numbered). The clock is
    shown (``at``), never trusted for order: actors' clocks disagree."""
    if version is not None:
        return f"v{version:010d}#{to_status}"
    return f"{at_ms:013d}#{to_status}"


def ordered(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit entries in transition order (``version``); unnumbered old entries first, by key."""
    return sorted(entries, key=lambda e: (int(e.get("version") or 0), str(e.get("event_id", ""))))


def audit_item(
    transaction_id: str,
    from_status: str | None,
    to_status: str,
    at_ms: int,
    actor: str,
    ttl_days: int,
    detail: dict[str, Any] | None = None,
    version: int | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "transaction_id": transaction_id,
        "event_id": event_id(at_ms, to_status, version),
        "from_status": from_status or INITIAL,
        "to_status": to_status,
        "at": iso_from_ms(at_ms),
        "actor": actor,
        "detail": detail or {},
        "expires_at": at_ms // 1000 + ttl_days * 86400,
    }
    if version is not None:
        item["version"] = version
    if attempt is not None:
        item["attempt"] = attempt
    return item


def stream_entry(
    from_status: str | None, to_status: str, at: str, actor: str, version: int, attempt: int
) -> dict[str, Any]:
    """What the transition write appends to ``stream_outbox`` (sent later by :func:`fifo_entry`)."""
    return {
        "from_status": from_status or INITIAL,
        "to_status": to_status,
        "at": at,
        "actor": actor,
        "version": version,
        "attempt": attempt,
    }


def dedup_id(transaction_id: str, version: int) -> str:
    return f"{transaction_id}#v{version}"


def fifo_entry(transaction_id: str, entry: dict[str, Any]) -> SendMessageBatchRequestEntryTypeDef:
    version = int(entry["version"])
    from_status = entry.get("from_status")
    body = {
        "transaction_id": transaction_id,
        "from_status": None if from_status in (None, INITIAL) else from_status,
        "to_status": entry["to_status"],
        "at": entry["at"],
        "actor": entry["actor"],
        "version": version,
        "attempt": int(entry.get("attempt") or 1),
    }
    return {
        "Id": f"v{version}",
        "MessageBody": json.dumps(body, separators=(",", ":")),
        "MessageGroupId": transaction_id,
        "MessageDeduplicationId": dedup_id(transaction_id, version),
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
