"""Settling a payment: who may call the processor (the attempt's lease), the call itself (charge
once, or reconcile by lookup), the mapping of its answer onto the transaction, and the archive.

The charge request is derived from the stored transaction only, so every attempt sends the same
body under the same idempotency key (the transaction id).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments import ids
from payments.clock import iso_from_ms
from payments.errors import DomainError, TransitionConflict
from payments.layout import settled_key
from payments.notify import summary
from payments.outbox import OUTBOX_OUTCOME, publish_stream
from payments.processor import ChargeRequest, OutcomeUnknown, ProcessorResult
from payments.service import Services
from payments.states import Status, is_terminal
from payments.steps import MAX_TRANSITION_ATTEMPTS, checks_passed, reload, transition_or_reload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_log = logging.getLogger(__name__)


class SettlementInProgress(DomainError):
    """Another actor holds the live lease of this attempt: try again after it expires."""


class SettlementNotOwned(DomainError):
    """The transaction is not this actor's to settle (another attempt, or FAILED for the retry path)."""


# ---------------------------------------------------------------------------- leases


def _lease_fields(services: Services, owner: str, at_ms: int) -> dict[str, Any]:
    return {"lease_owner": owner, "lease_until": at_ms + services.settings.settlement_lease_seconds * 1000}


def lease_live(item: Mapping[str, Any], at_ms: int) -> bool:
    """Whether the lease ``item`` carries still runs at ``at_ms``."""
    return int(item.get("lease_until") or 0) >= at_ms


def acquire(services: Services, item: dict[str, Any], owner: str) -> dict[str, Any]:
    """Own the SETTLING attempt of ``item``: keep our lease, or take over an expired one."""
    if item.get("lease_owner") == owner:
        return item
    at = services.clock.now_ms()
    if lease_live(item, at):
        raise SettlementInProgress(
            f"{item['transaction_id']}: attempt {item.get('attempts')} is being settled"
        )
    fields = _lease_fields(services, owner, at)
    taken = services.repo.take_over_lease(item, owner, int(fields["lease_until"]), at)
    if not taken:
        raise SettlementInProgress(f"{item['transaction_id']}: lost the lease race")
    return taken.item


def settle_step(
    services: Services, transaction_id: str, timestamp: int | None, actor: str = "settlement"
) -> dict[str, Any]:
    """Workflow Settle (attempt 1 only): VALIDATING → SETTLING → COMPLETED | REJECTED.

    Never leaves FAILED (a new attempt is the retry consumer's), never touches another attempt.
    """
    owner = ids.new_owner_token()
    item = services.repo.require(transaction_id, timestamp)
    for _ in range(MAX_TRANSITION_ATTEMPTS):
        status = item["status"]
        if is_terminal(status):
            item = publish_stream(services, item)
            return _settle_answer(item)
        if status == Status.FAILED or int(item.get("attempts") or 1) != 1:
            raise SettlementNotOwned(
                f"{transaction_id}: {status} attempt {item.get('attempts')} is the retry path's"
            )
        if status == Status.VALIDATING:
            if not checks_passed(item)[0]:
                raise DomainError(f"{transaction_id}: checks did not pass; not settling")
            item, moved = transition_or_reload(
                services,
                item,
                Status.SETTLING,
                actor,
                set_fields=_lease_fields(services, owner, services.clock.now_ms()),
                expected_attempt=1,
            )
            if not moved:
                continue
        elif status == Status.SETTLING:
            # A re-run of the same attempt: only once the first invocation's lease expired.
            item = acquire(services, item, owner)
        else:
            raise DomainError(f"{transaction_id}: cannot settle from {status}")
        item = publish_stream(services, item)
        try:
            return settle_owned(services, item, owner, actor)
        except Exception:
            release(services, item, owner)
            raise
    raise TransitionConflict(f"{transaction_id}: could not enter SETTLING")


def release(services: Services, item: Mapping[str, Any], owner: str) -> None:
    """Our processor call is over (it raised): the next actor need not wait for the lease to expire.

    Best effort: a lease that could not be released expires on its own."""
    try:
        services.repo.release_lease(dict(item), owner)
    except Exception:
        _log.warning(
            "%s: lease not released; it expires on its own", item.get("transaction_id"), exc_info=True
        )


def start_attempt(services: Services, item: dict[str, Any], owner: str, actor: str) -> dict[str, Any]:
    """Retry consumer: FAILED → SETTLING as a new attempt, once the last attempt's lease expired."""
    at = services.clock.now_ms()
    try:
        return services.repo.transition(
            item,
            Status.SETTLING,
            actor,
            new_attempt=True,
            set_fields=_lease_fields(services, owner, at),
            lease_free_at=at,
        )
    except TransitionConflict:
        again = reload(services, item)
        if again["status"] == Status.FAILED and lease_live(again, at):
            raise SettlementInProgress(
                f"{item['transaction_id']}: the previous attempt may still be running"
            ) from None
        raise


def _settle_answer(item: Mapping[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"status": item["status"]}
    if item.get("processor_reference"):
        answer["processor_reference"] = item["processor_reference"]
    rejection = item.get("rejection")
    if isinstance(rejection, Mapping) and rejection.get("source") == "processor":
        answer["decline_code"] = (rejection.get("reasons") or ["card_declined"])[0]
    return answer


def _processor_result(
    services: Services, item: dict[str, Any], owner: str
) -> tuple[dict[str, Any], ProcessorResult]:
    """The processor's answer for ``item``: recorded, reconciled by lookup, or charged (once)."""
    recorded = recorded_result(item)
    if recorded is not None:
        return item, recorded
    request = charge_request(item)
    processor = services.processor
    result: ProcessorResult | None = None
    if item.get("charge_sent_at") is not None:
        # A charge may have been sent before (lost answer, crashed owner, expired key): ask first.
        result = processor.lookup(request)
    if result is None:
        if item.get("charge_sent_at") is None:
            marked = services.repo.mark_charge_sent(item, owner, services.clock.now_ms())
            if not marked:
                raise SettlementNotOwned(f"{item['transaction_id']}: lease lost before charging")
            item = marked.item
        try:
            result = processor.charge(request)
        except OutcomeUnknown:
            result = processor.lookup(request)
            if result is None:
                raise
    stored = services.repo.record_outcome(item, outcome_fields(result, services.clock.now_ms()))
    if not stored:
        # Another actor recorded the outcome first; it is the truth about the one charge.
        item = stored.item or reload(services, item)
        recorded = recorded_result(item)
        if recorded is None:
            raise DomainError(f"{item['transaction_id']}: processor outcome not recorded")
        return item, recorded
    return stored.item, result


def settle_owned(services: Services, item: dict[str, Any], owner: str, actor: str) -> dict[str, Any]:
    """Finish the attempt whose lease ``owner`` holds: charge or reconcile, then COMPLETED | REJECTED."""
    item, result = _processor_result(services, item, owner)
    for _ in range(MAX_TRANSITION_ATTEMPTS):
        try:
            item = _conclude(services, item, result, owner, actor)
            break
        except TransitionConflict:
            current = reload(services, item)
            if is_terminal(current["status"]):
                current = publish_stream(services, current)
                return _settle_answer(current)
            if (
                current["status"] == Status.SETTLING
                and current.get("lease_owner") == owner
                and current.get("attempts") == item.get("attempts")
            ):
                item = current  # another actor's bookkeeping write moved the version: still ours
                continue
            raise SettlementNotOwned(
                f"{item['transaction_id']}: attempt taken over ({current['status']}); the outcome is recorded"
            ) from None
    else:
        raise TransitionConflict(f"{item['transaction_id']}: could not conclude the attempt")
    item = publish_stream(services, item)
    return _settle_answer(item)


def _conclude(
    services: Services, item: dict[str, Any], result: ProcessorResult, owner: str, actor: str
) -> dict[str, Any]:
    """The owned attempt's final transition: archive and COMPLETED, or REJECTED (declined)."""
    if result.approved:
        fields = completed_fields(result, services.clock.now_ms())
        archive(
            services.s3,
            services.settings.archive_bucket,
            {**item, **fields, "status": Status.COMPLETED.value},
        )
        return services.repo.transition(
            item,
            Status.COMPLETED,
            actor,
            set_fields=fields,
            detail={"processor_reference": result.reference},
            outbox=frozenset({OUTBOX_OUTCOME}),
            lease_owner=owner,
        )
    return services.repo.transition(
        item,
        Status.REJECTED,
        actor,
        set_fields=declined_fields(result),
        detail={"decline_code": result.decline_code or ""},
        outbox=frozenset({OUTBOX_OUTCOME}),
        lease_owner=owner,
    )


# ---------------------------------------------------------------------------- archive


class ArchiveNotEncrypted(RuntimeError):
    """S3 stored the archive without SSE-KMS: the bucket's default encryption is wrong."""


def archive(s3: S3Client, bucket: str, item: Mapping[str, Any]) -> str:
    """Write the settled transaction to the archive bucket; returns the object key.

    Encryption comes from the bucket's default (SSE-KMS with the data CMK and a bucket
    key): naming ``aws:kms`` here without the key id would select the AWS-managed key
    instead. The answer is checked so a misconfigured bucket fails loudly.
    """
    key = settled_key(str(item["transaction_id"]), int(item["timestamp"]))
    body = json.dumps(summary(item), separators=(",", ":"), sort_keys=True, default=str).encode()
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    if response.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse"):
        raise ArchiveNotEncrypted(f"s3://{bucket}/{key} is not SSE-KMS encrypted")
    return key


# ---------------------------------------------------------------------------- processor request and answer


def charge_request(item: Mapping[str, Any]) -> ChargeRequest:
    """The charge for ``item``: a pure function of the transaction (same body on every attempt)."""
    return ChargeRequest(
        transaction_id=str(item["transaction_id"]),
        amount_minor=int(item["amount_minor"]),
        currency=str(item["currency"]),
        token=str(item["payment_method_token"]),
        merchant_id=str(item["merchant_id"]),
    )


def outcome_fields(result: ProcessorResult, at_ms: int) -> dict[str, Any]:
    """What ``record_outcome`` stores: the processor's answer, recorded once."""
    fields: dict[str, Any] = {
        "processor_outcome": result.outcome,
        "processor_reference": result.reference,
        "outcome_recorded_at": iso_from_ms(at_ms),
    }
    if result.decline_code:
        fields["decline_code"] = result.decline_code
    return fields


def recorded_result(item: Mapping[str, Any]) -> ProcessorResult | None:
    outcome = item.get("processor_outcome")
    if outcome not in ("approved", "declined"):
        return None
    return ProcessorResult(
        approved=outcome == "approved",
        reference=str(item.get("processor_reference") or ""),
        decline_code=None if outcome == "approved" else str(item.get("decline_code") or "card_declined"),
    )


def completed_fields(result: ProcessorResult, at_ms: int) -> dict[str, Any]:
    return {"processor_reference": result.reference, "settled_at": iso_from_ms(at_ms)}


def declined_fields(result: ProcessorResult) -> dict[str, Any]:
    return {
        "processor_reference": result.reference,
        "rejection": {"source": "processor", "reasons": [result.decline_code or "card_declined"]},
    }
