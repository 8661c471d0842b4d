"""Intake: create a payment (``POST /transactions``) and answer a repeated Idempotency-Key.

One write creates the PENDING transaction (with the claim on its one workflow start), its
idempotency record and its audit entry; then the workflow is started under the transaction's id.
A crash between the two is the sweeper's (a PENDING transaction past its budget is failed and
retried); a replay restarts only a start that was refused and released.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from payments import audit, idempotency, ids, validation
from payments.clock import iso_from_ms
from payments.config import Settings
from payments.errors import Conflict
from payments.service import Services
from payments.shards import day_shard
from payments.states import Status
from payments.store.repository import IdempotencyCollision

# A concurrent duplicate that lost the race waits this long (in total) for the winner's record.
_REPLAY_WAITS = (0.02, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class CreateResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


def new_transaction_item(
    request: validation.PaymentRequest, settings: Settings, at_ms: int, scope: str | None
) -> dict[str, Any]:
    transaction_id = ids.new_transaction_id(at_ms)
    at = iso_from_ms(at_ms)
    return {
        "transaction_id": transaction_id,
        "timestamp": at_ms,
        "day_shard": day_shard(transaction_id, at_ms, settings.day_shards),
        "created_at": at,
        "updated_at": at,
        "status": Status.PENDING.value,
        "merchant_id": request.merchant_id,
        "customer_id": request.customer_id,
        "amount_minor": request.amount_minor,
        "currency": request.currency,
        "payment_method_type": request.payment_method_type,
        "payment_method_token": request.payment_method_token,
        "country": request.country,
        "description": request.description,
        "reference": request.reference,
        "metadata": request.metadata or None,
        "api_key_id": scope,
        "attempts": 1,
        "version": 1,
        "transitions": 1,
        # The creation's audit-stream message, sent by the first step that runs (keeps the create
        # at two AWS calls); see payments.outbox.publish_stream.
        "stream_outbox": [audit.stream_entry(None, Status.PENDING.value, at, "intake", 1, 1)],
        # The creating request claims the one StartExecution in the same write (see start_workflow):
        # a replay or a concurrent request with the same key never starts a second workflow.
        "workflow_claimed_at": at,
    }


def accepted_body(transaction_id: str) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "status": Status.PENDING.value,
        "links": {"self": f"/transactions/{transaction_id}"},
    }


def workflow_input(transaction_id: str, timestamp: int) -> str:
    # Deterministic, but not a de-duplication: EXPRESS state machines start a second execution with
    # the same name. ``start_workflow`` claims the start on the item first.
    return json.dumps(
        {"timestamp": int(timestamp), "transaction_id": transaction_id}, sort_keys=True, separators=(",", ":")
    )


def start_workflow(services: Services, transaction_id: str, timestamp: int) -> None:
    """Start the workflow of a PENDING transaction whose start is unclaimed (a replay after a
    refused start): a conditional claim on the item (``workflow_claimed_at``) comes first, so a
    replay or a concurrent request never starts a second one."""
    if not services.repo.claim_workflow_start(transaction_id, timestamp, services.clock.now_ms()):
        return  # started (or being started) by another request, or no longer PENDING
    start_claimed_workflow(services, transaction_id, timestamp)


def start_claimed_workflow(services: Services, transaction_id: str, timestamp: int) -> None:
    """StartExecution under a claim this request holds. A refused start releases the claim (the
    next replay claims it again); a caller that crashed before the start leaves the claim to the
    sweeper (a PENDING transaction past the budget is failed and retried)."""
    try:
        services.sfn.start_execution(
            stateMachineArn=services.settings.state_machine_arn,
            name=transaction_id,
            input=workflow_input(transaction_id, timestamp),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return
        services.repo.release_workflow_claim(transaction_id, timestamp)
        raise


def create_transaction(
    services: Services,
    request: validation.PaymentRequest,
    idempotency_key: str,
    scope: str | None,
) -> CreateResult:
    """PENDING transaction + idempotency record + audit entry in one write, then the workflow.

    Two AWS calls on the happy path: the write (which also claims the workflow start) and
    StartExecution. The PENDING audit-stream (FIFO) message is sent by the Validate step together
    with VALIDATING, which keeps the create at two calls.
    """
    at = services.clock.now_ms()
    item = new_transaction_item(request, services.settings, at, scope)
    transaction_id = item["transaction_id"]
    body = accepted_body(transaction_id)
    scoped = idempotency.scoped_key(scope, idempotency_key)
    record = idempotency.record(
        scoped,
        request.request_hash,
        transaction_id,
        at,
        202,
        body,
        at,
        services.settings.idempotency_ttl_hours,
    )
    entry = audit.audit_item(
        transaction_id,
        None,
        Status.PENDING.value,
        at,
        "intake",
        services.settings.audit_ttl_days,
        {"source": "api"},
        version=1,
        attempt=1,
    )
    try:
        services.repo.create(item, record, entry)
    except IdempotencyCollision:
        return replay(services, scoped, request.request_hash)
    start_claimed_workflow(services, transaction_id, at)
    return CreateResult(202, body)


def replay(services: Services, scoped: str, request_hash: str) -> CreateResult:
    """Answer a repeated Idempotency-Key with the original response (or 409)."""
    record = services.repo.get_idempotency(scoped)
    for wait in _REPLAY_WAITS:
        if record is not None:
            break
        time.sleep(wait)
        record = services.repo.get_idempotency(scoped)
    if record is None:
        raise Conflict(
            "idempotency_in_flight",
            "A request with this Idempotency-Key is still being processed. Retry shortly.",
            idempotency.HEADER,
        )
    if record.get("request_hash") != request_hash:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
            idempotency.HEADER,
        )
    status_code, body = idempotency.stored_response(record)
    transaction_id = str(record["transaction_id"])
    timestamp = int(record.get("timestamp") or ids.timestamp_of(transaction_id))
    current = services.repo.get(transaction_id, timestamp)
    if current is not None and current.get("status") == Status.PENDING:
        # Restarts a start that was refused and released (the claim makes it start once).
        start_workflow(services, transaction_id, timestamp)
    return CreateResult(status_code, body, replayed=True)
