"""Settlement: charge through the processor, archive, and finish the transaction.

The conditional transition into SETTLING is the lock: only a step that moved the
transaction there (or a re-run of the same attempt, after a timeout) calls the processor,
always with the transaction id as the processor's idempotency key, and SETTLING → COMPLETED is a
conditional write — a transaction is never settled twice. An approved charge is recorded on
the item (``processor_outcome``) before archiving, so a retry after a later failure finishes
the settlement without charging again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from payments.clock import iso_from_ms, now_ms
from payments.notify import summary
from payments.processor import ChargeRequest, Processor, ProcessorResult

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


def charge(processor: Processor, item: Mapping[str, Any]) -> ProcessorResult:
    return processor.charge(
        ChargeRequest(
            transaction_id=str(item["transaction_id"]),
            attempt=int(item.get("attempts") or 1),
            amount_minor=int(item["amount_minor"]),
            currency=str(item["currency"]),
            token=str(item["payment_method_token"]),
            merchant_id=str(item["merchant_id"]),
        )
    )


def completed_fields(result: ProcessorResult) -> dict[str, Any]:
    return {"processor_reference": result.reference, "settled_at": iso_from_ms(now_ms())}


def declined_fields(result: ProcessorResult) -> dict[str, Any]:
    return {
        "processor_reference": result.reference,
        "rejection": {"source": "processor", "reasons": [result.decline_code or "card_declined"]},
    }
