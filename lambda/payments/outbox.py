"""The outbox: what a transition owes after it commits, and the one ``drain`` that sends it.

A transition records what must follow it in the same write (``Repository.transition``): the
audit-stream message in ``stream_outbox`` and the effects in ``outbox`` (``enqueue`` the retry,
``failed_notice``, ``outcome``). Every actor that touches the transaction afterwards drains what
its role may send; the effect leaves the outbox only after it was acknowledged. Nothing that
must happen depends on one process surviving between the commit and the send.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payments import audit, notify
from payments.service import Services
from payments.states import is_final
from payments.store.write import Written

OUTBOX_ENQUEUE = "enqueue"
OUTBOX_FAILED_NOTICE = "failed_notice"
OUTBOX_OUTCOME = "outcome"
_STREAM_BATCH = 10


def publish_stream(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    """Send the transaction's pending audit-stream messages in transition order, then prune them.

    Returns the item as stored after the prune (a new version)."""
    pending = sorted(item.get("stream_outbox") or [], key=lambda e: int(e.get("version") or 0))
    if not pending:
        return dict(item)
    transaction_id = str(item["transaction_id"])
    for start in range(0, len(pending), _STREAM_BATCH):
        chunk = pending[start : start + _STREAM_BATCH]
        audit.publish(
            services.sqs,
            services.settings.audit_queue_url,
            [audit.fifo_entry(transaction_id, e) for e in chunk],
        )
    return _stored(item, services.repo.prune_stream(dict(item), len(pending), int(pending[-1]["version"])))


def _stored(item: Mapping[str, Any], written: Written) -> dict[str, Any]:
    """The row a bookkeeping write left (or found), else ``item`` as the caller had it."""
    return written.item or dict(item)


def retry_message(item: Mapping[str, Any]) -> str:
    stored = item.get("failure")
    failure: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
    return json.dumps(
        {
            "transaction_id": str(item["transaction_id"]),
            "timestamp": int(item["timestamp"]),
            "error": str(failure.get("error") or ""),
            "cause": str(failure.get("cause") or ""),
            "failed_at": str(failure.get("at") or ""),
        },
        separators=(",", ":"),
    )


def publish_retry(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    """The retry enqueue a FAILED transition owes (duplicates are harmless: the consumer is idempotent)."""
    if OUTBOX_ENQUEUE not in (item.get("outbox") or ()):
        return dict(item)
    if not is_final(item):  # finished meanwhile: nothing left to retry
        services.sqs.send_message(
            QueueUrl=services.settings.failed_queue_url, MessageBody=retry_message(item)
        )
    return _stored(item, services.repo.clear_outbox(dict(item), OUTBOX_ENQUEUE))


def publish_notifications(services: Services, item: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome notification a transition owes (docs/interfaces.md, "Outcome events").

    Only the transition that commits a final status writes ``outcome`` into the outbox, in the same
    write: the event is decided by that committed transition, never by a status a caller holds in
    memory. A final status never changes, so the item that carries ``outcome`` carries it too.
    """
    pending = set(item.get("outbox") or ())
    current = dict(item)
    if OUTBOX_FAILED_NOTICE in pending:
        # Written by releases that announced a retried failure: dropped unsent (it would contradict
        # the outcome that follows).
        current = _stored(current, services.repo.clear_outbox(current, OUTBOX_FAILED_NOTICE))
    if OUTBOX_OUTCOME in pending and is_final(item):
        notify.publish_outcome(services.sns, services.settings, item)
        current = _stored(current, services.repo.clear_outbox(current, OUTBOX_OUTCOME))
    return current


def drain(services: Services, item: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
    """Send what ``item`` owes, in order: its audit-stream messages, the retry enqueue (unless
    ``retry=False``: the paths that finish a transaction never owe one), its notifications.
    Returns the item as stored after the acknowledgements."""
    current = publish_stream(services, item)
    if retry:
        current = publish_retry(services, current)
    return publish_notifications(services, current)
