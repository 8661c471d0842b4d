"""Settlement: the charge request, the recorded outcome, and the archive.

The protocol (who may call the processor, leases, reconciliation) lives in ``workflow``; this
module holds its pure parts. The charge request is derived from the stored transaction only,
so every attempt sends the same body under the same idempotency key (the transaction id).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from payments.clock import iso_from_ms, now_ms
from payments.notify import summary
from payments.processor import ChargeRequest, ProcessorResult

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ArchiveNotEncrypted(RuntimeError):
    """S3 stored the archive without SSE-KMS: the bucket's default encryption is wrong."""


def archive_key(item: Mapping[str, Any]) -> str:
    created = datetime.fromtimestamp(int(item["timestamp"]) / 1000, tz=UTC)
    return f"transactions/{created:%Y/%m/%d}/{item['transaction_id']}.json"


def archive(s3: S3Client, bucket: str, item: Mapping[str, Any]) -> str:
    """Write the settled transaction to the archive bucket; returns the object key.

    Encryption comes from the bucket's default (SSE-KMS with the data CMK and a bucket
    key): naming ``aws:kms`` here without the key id would select the AWS-managed key
    instead. The answer is checked so a misconfigured bucket fails loudly.
    """
    key = archive_key(item)
    body = json.dumps(summary(item), separators=(",", ":"), sort_keys=True, default=str).encode()
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    if response.get("ServerSideEncryption") not in ("aws:kms", "aws:kms:dsse"):
        raise ArchiveNotEncrypted(f"s3://{bucket}/{key} is not SSE-KMS encrypted")
    return key


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


def completed_fields(result: ProcessorResult) -> dict[str, Any]:
    return {"processor_reference": result.reference, "settled_at": iso_from_ms(now_ms())}


def declined_fields(result: ProcessorResult) -> dict[str, Any]:
    return {
        "processor_reference": result.reference,
        "rejection": {"source": "processor", "reasons": [result.decline_code or "card_declined"]},
    }
