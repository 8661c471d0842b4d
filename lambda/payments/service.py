"""Use cases: create a payment, and the workflow steps that carry it to a final status.

The Step Functions tasks and the retry consumer call the same functions here, so a
transaction resumed from the failed-transactions queue goes through exactly the code it
would have gone through in the workflow. Every step is safe to run twice.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from payments import audit, fraud, idempotency, ids, notify, pan, settlement, validation
from payments.clock import iso_from_ms, now_ms
from payments.config import Settings
from payments.errors import Conflict, DomainError, TransactionNotFound, TransitionConflict
from payments.processor import Processor, ProcessorResult
from payments.repository import IdempotencyCollision, Repository, day_shard
from payments.states import FAILABLE, Status, is_terminal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sfn import SFNClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

RULES_MAX_AGE = 60
# A concurrent duplicate that lost the race waits this long (in total) for the winner's record.
_REPLAY_WAITS = (0.02, 0.05, 0.1, 0.2)
_MAX_TRANSITION_ATTEMPTS = 4
_CAUSE_LIMIT = 500


@dataclass
class Services:
    """Everything a use case touches, built once per container (see ``handlers._runtime``)."""

    settings: Settings
    repo: Repository
    sqs: SQSClient
    sns: SNSClient
    s3: S3Client
    sfn: SFNClient
    get_parameter: Callable[..., Any]

    @property
    def processor(self) -> Processor:
        return Processor(
            self.get_parameter,
            self.settings.processor_endpoint_param,
            self.settings.processor_credentials_param,
        )

    def fraud_rules(self) -> fraud.FraudRules:
        raw = self.get_parameter(self.settings.fraud_rules_param, max_age=RULES_MAX_AGE, transform="json")
        return fraud.FraudRules.from_mapping(raw if isinstance(raw, Mapping) else None)


@dataclass(frozen=True)
class CreateResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False


# ---------------------------------------------------------------------------- intake


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
    }


def accepted_body(transaction_id: str) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "status": Status.PENDING.value,
        "links": {"self": f"/transactions/{transaction_id}"},
    }


def workflow_input(transaction_id: str, timestamp: int) -> str:
    # Deterministic: StartExecution with the same name and input is idempotent while running.
    return json.dumps(
        {"timestamp": int(timestamp), "transaction_id": transaction_id}, sort_keys=True, separators=(",", ":")
    )


def start_workflow(services: Services, transaction_id: str, timestamp: int) -> None:
    try:
        services.sfn.start_execution(
            stateMachineArn=services.settings.state_machine_arn,
            name=transaction_id,
            input=workflow_input(transaction_id, timestamp),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise


def create_transaction(
    services: Services,
    request: validation.PaymentRequest,
    idempotency_key: str,
    scope: str | None,
) -> CreateResult:
    """PENDING transaction + idempotency record + audit entry in one write, then the workflow.

    Two AWS calls on the happy path. The PENDING audit-stream (FIFO) message is sent by the
    Validate step together with VALIDATING, which keeps the create at two calls.
    """
    at = now_ms()
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
    )
    try:
        services.repo.create(item, record, entry)
    except IdempotencyCollision:
        return replay(services, scoped, request.request_hash)
    start_workflow(services, transaction_id, at)
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
        # Heals a crash between the write and StartExecution.
        start_workflow(services, transaction_id, timestamp)
    return CreateResult(status_code, body, replayed=True)


# ---------------------------------------------------------------------------- workflow steps


Transition = tuple[str | None, str, str, str | None]  # from, to, actor, at (None = updated_at)


def _emit(services: Services, item: Mapping[str, Any], transitions: list[Transition]) -> None:
    attempt = int(item.get("attempts") or 1)
    default_at = str(item.get("updated_at") or iso_from_ms(now_ms()))
    entries = [
        audit.fifo_entry(str(item["transaction_id"]), f, t, at or default_at, actor, attempt)
        for f, t, actor, at in transitions
    ]
    audit.publish(services.sqs, services.settings.audit_queue_url, entries)


def _opening(item: Mapping[str, Any]) -> list[Transition]:
    """Stream entries for creation (sent late, with VALIDATING: keeps the create at 2 calls)."""
    return [
        (None, Status.PENDING.value, "intake", str(item.get("created_at") or "") or None),
        (Status.PENDING.value, Status.VALIDATING.value, "validator", None),
    ]


def _previous(item: Mapping[str, Any]) -> str:
    return str(item.get("previous_status") or Status.VALIDATING.value)


def _transition(
    services: Services,
    item: dict[str, Any],
    to_status: Status,
    actor: str,
    **kwargs: Any,
) -> dict[str, Any]:
    updated = services.repo.transition(item, to_status.value, actor, **kwargs)
    _emit(services, updated, [(str(item["status"]), to_status.value, actor, None)])
    return updated


def validate_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow Validate: PENDING → VALIDATING, re-check the stored record."""
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        reasons = validation.revalidate_stored(item)
        result = {"valid": not reasons, "reasons": reasons}
        status = item["status"]
        if status == Status.PENDING:
            try:
                updated = services.repo.transition(
                    item,
                    Status.VALIDATING.value,
                    "validator",
                    set_fields={"validation": result},
                    detail={"valid": str(not reasons)},
                )
            except TransitionConflict:
                item = services.repo.require(transaction_id, timestamp)
                continue
            _emit(services, updated, _opening(updated))
            return result
        if status == Status.VALIDATING:
            # Re-run after a timeout: the transition happened; make sure the stream has it.
            _emit(services, item, _opening(item))
        stored = item.get("validation")
        return dict(stored) if isinstance(stored, Mapping) else result
    raise TransitionConflict(f"{transaction_id}: could not enter VALIDATING")


def fraud_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow FraudCheck: score once, store the result with its reasons."""
    item = services.repo.require(transaction_id, timestamp)
    stored = item.get("fraud")
    if isinstance(stored, Mapping):
        return dict(stored)
    rules = services.fraud_rules()
    at = now_ms()
    result = fraud.assess(
        item,
        rules,
        lambda since, limit: services.repo.count_recent_for_customer(
            str(item["customer_id"]), since, transaction_id, limit
        ),
        at,
    ).as_dict()
    result["assessed_at"] = iso_from_ms(at)
    allowed = frozenset({Status.PENDING.value, Status.VALIDATING.value, Status.FAILED.value})
    if not services.repo.set_once(item, "fraud", result, allowed):
        again = services.repo.require(transaction_id, timestamp)
        if isinstance(again.get("fraud"), Mapping):
            return dict(again["fraud"])
        raise DomainError(f"{transaction_id}: fraud result not stored (status {again.get('status')})")
    return result


def checks_passed(item: Mapping[str, Any]) -> tuple[bool, list[str], str]:
    """(passed, reasons, source) from the stored validation and fraud results."""
    stored_validation = item.get("validation")
    if not isinstance(stored_validation, Mapping):
        reasons = validation.revalidate_stored(dict(item))
        stored_validation = {"valid": not reasons, "reasons": reasons}
    if not stored_validation.get("valid"):
        return False, list(stored_validation.get("reasons") or []), "validation"
    fraud_result = item.get("fraud")
    if not isinstance(fraud_result, Mapping):
        return False, ["fraud_check_missing"], "fraud"
    if fraud_result.get("decision") != "APPROVE":
        return False, list(fraud_result.get("reasons") or []), "fraud"
    return True, [], ""


def reject_step(
    services: Services, transaction_id: str, timestamp: int | None, actor: str = "notification"
) -> dict[str, Any]:
    """Workflow Reject: VALIDATING (or FAILED, on retry) → REJECTED, publish to payment-failed."""
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if status == Status.REJECTED:
            _emit(services, item, [(_previous(item), Status.REJECTED.value, actor, None)])
            notify.publish_outcome(services.sns, services.settings, item)
            return {"status": status}
        if status not in (Status.VALIDATING, Status.FAILED):
            raise DomainError(f"{transaction_id}: cannot reject from {status}")
        passed, reasons, source = checks_passed(item)
        if passed:
            raise DomainError(f"{transaction_id}: checks passed, refusing to reject")
        try:
            item = _transition(
                services,
                item,
                Status.REJECTED,
                actor,
                set_fields={"rejection": {"source": source, "reasons": reasons}},
                detail={"source": source, "reasons": reasons},
            )
        except TransitionConflict:
            item = services.repo.require(transaction_id, timestamp)
            continue
        notify.publish_outcome(services.sns, services.settings, item)
        return {"status": item["status"]}
    raise TransitionConflict(f"{transaction_id}: could not reject")


def settle_step(
    services: Services, transaction_id: str, timestamp: int | None, actor: str = "settlement"
) -> dict[str, Any]:
    """Workflow Settle: → SETTLING → COMPLETED (archived) | REJECTED (declined)."""
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if is_terminal(status):
            return _settle_answer(item)
        if status in (Status.VALIDATING, Status.FAILED):
            passed, _, _ = checks_passed(item)
            if not passed:
                raise DomainError(f"{transaction_id}: checks did not pass; not settling")
            try:
                item = _transition(
                    services, item, Status.SETTLING, actor, new_attempt=status == Status.FAILED
                )
            except TransitionConflict:
                item = services.repo.require(transaction_id, timestamp)
                continue
        elif status == Status.SETTLING:
            # A re-run of the same attempt (the first timed out): the processor's idempotency key
            # (the transaction id) makes the repeated charge return the first answer.
            _emit(services, item, [(_previous(item), Status.SETTLING.value, actor, None)])
        else:
            raise DomainError(f"{transaction_id}: cannot settle from {status}")
        return _finish_settlement(services, item, actor)
    raise TransitionConflict(f"{transaction_id}: could not enter SETTLING")


def _settle_answer(item: Mapping[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": item["status"]}
    if item.get("processor_reference"):
        answer["processor_reference"] = item["processor_reference"]
    rejection = item.get("rejection")
    if isinstance(rejection, Mapping) and rejection.get("source") == "processor":
        answer["decline_code"] = (rejection.get("reasons") or ["card_declined"])[0]
    return answer


def _finish_settlement(services: Services, item: dict[str, Any], actor: str) -> dict[str, Any]:
    if item.get("processor_outcome") == "approved":
        # Charged by an earlier attempt that failed afterwards (e.g. archiving): never charge twice.
        result = ProcessorResult(approved=True, reference=str(item.get("processor_reference") or ""))
    else:
        result = settlement.charge(services.processor, item)
        if result.approved:
            # Remember the charge before anything else can fail, so a retry finishes it instead.
            item = services.repo.record(
                item,
                {"processor_outcome": "approved", "processor_reference": result.reference},
                Status.SETTLING.value,
            )
    try:
        if result.approved:
            fields = settlement.completed_fields(result)
            settlement.archive(
                services.s3,
                services.settings.archive_bucket,
                {**item, **fields, "status": Status.COMPLETED.value},
            )
            item = _transition(
                services,
                item,
                Status.COMPLETED,
                actor,
                set_fields=fields,
                detail={"processor_reference": result.reference},
            )
        else:
            fields = settlement.declined_fields(result)
            item = _transition(
                services,
                item,
                Status.REJECTED,
                actor,
                set_fields=fields,
                detail={"decline_code": result.decline_code or ""},
            )
    except TransitionConflict:
        current = services.repo.require(str(item["transaction_id"]), int(item["timestamp"]))
        if is_terminal(current["status"]):
            return _settle_answer(current)
        raise
    return _settle_answer(item)


def outcome_step(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Workflow Notify: publish the final status (events for COMPLETED, failed otherwise)."""
    item = services.repo.require(transaction_id, timestamp)
    status = item["status"]
    if status not in (Status.COMPLETED, Status.REJECTED, Status.FAILED):
        raise DomainError(f"{transaction_id}: no outcome to notify in status {status}")
    topic = notify.publish_outcome(services.sns, services.settings, item)
    return {"status": status, "topic": topic.rsplit(":", 1)[-1]}


def sanitize_error(error: Mapping[str, Any] | None) -> tuple[str, str]:
    """(error, cause) from a Step Functions Catch payload, bounded and free of card numbers."""
    error = error or {}
    name = str(error.get("Error") or error.get("error") or "UnknownError")[:128]
    raw_cause = error.get("Cause") if "Cause" in error else error.get("cause")
    cause = ""
    if raw_cause:
        text = str(raw_cause)
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            # Lambda error causes carry a stack trace; the type and message are enough here.
            text = f"{parsed.get('errorType', '')}: {parsed.get('errorMessage', '')}".strip(": ")
        cause = text
    return pan.mask_pans(name), pan.mask_pans(cause)[:_CAUSE_LIMIT]


def failure_step(
    services: Services,
    transaction_id: str,
    timestamp: int | None,
    error: Mapping[str, Any] | None,
    actor: str = "notification",
    enqueue: bool = True,
) -> dict[str, Any]:
    """Workflow RecordFailure: → FAILED, queue for retry, publish to payment-failed.

    A failure after the transaction finished (e.g. the Notify step) leaves the final status
    alone. ``enqueue=False`` is used by the retry consumer: its own message is retried by SQS.
    """
    item = services.repo.require(transaction_id, timestamp)
    name, cause = sanitize_error(error)
    for _ in range(_MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if is_terminal(status):
            return {"status": status, "recorded": False}
        if status == Status.FAILED:
            return {"status": status, "recorded": False}
        if status not in FAILABLE:
            raise DomainError(f"{transaction_id}: cannot fail from {status}")
        at = now_ms()
        failure = {"error": name, "cause": cause, "at": iso_from_ms(at), "from_status": status}
        try:
            item = _transition(
                services, item, Status.FAILED, actor, set_fields={"failure": failure}, detail={"error": name}
            )
        except TransitionConflict:
            item = services.repo.require(transaction_id, timestamp)
            continue
        if enqueue:
            services.sqs.send_message(
                QueueUrl=services.settings.failed_queue_url,
                MessageBody=json.dumps(
                    {
                        "transaction_id": transaction_id,
                        "timestamp": int(item["timestamp"]),
                        "error": name,
                        "cause": cause,
                        "failed_at": failure["at"],
                    },
                    separators=(",", ":"),
                ),
            )
        notify.publish_outcome(services.sns, services.settings, item)
        return {"status": item["status"], "recorded": True}
    raise TransitionConflict(f"{transaction_id}: could not record failure")


# ---------------------------------------------------------------------------- retry consumer


def resume(services: Services, transaction_id: str, timestamp: int | None) -> dict[str, Any]:
    """Carry a transaction from wherever it stopped to a final status (retry consumer).

    Raises when the attempt fails; the transaction is then left FAILED (not re-queued: the
    SQS message itself is retried, and after 3 receives lands in the DLQ).
    """
    try:
        item = services.repo.require(transaction_id, timestamp)
    except TransactionNotFound:
        return {"status": "MISSING"}
    if is_terminal(item["status"]):
        return {"status": item["status"]}
    try:
        if item["status"] == Status.PENDING:
            validate_step(services, transaction_id, timestamp)
            item = services.repo.require(transaction_id, timestamp)
        if item["status"] in (Status.VALIDATING, Status.FAILED):
            if not isinstance(item.get("validation"), Mapping):
                # Failed before Validate ran: store its result so a rejection has reasons.
                reasons = validation.revalidate_stored(item)
                services.repo.set_once(
                    item,
                    "validation",
                    {"valid": not reasons, "reasons": reasons},
                    frozenset({Status.VALIDATING.value, Status.FAILED.value}),
                )
            fraud_step(services, transaction_id, timestamp)
            item = services.repo.require(transaction_id, timestamp)
            passed, _, _ = checks_passed(item)
            if not passed:
                reject_step(services, transaction_id, timestamp, actor="retry")
                return outcome_step(services, transaction_id, timestamp)
        settle_step(services, transaction_id, timestamp, actor="retry")
        return outcome_step(services, transaction_id, timestamp)
    except Exception as exc:
        # Leave the transaction FAILED (consistent state for ops); the original error is
        # what the caller reports, so a failure to record it must not replace it.
        with contextlib.suppress(Exception):
            failure_step(
                services,
                transaction_id,
                timestamp,
                {"Error": type(exc).__name__, "Cause": str(exc)},
                actor="retry",
                enqueue=False,
            )
        raise
