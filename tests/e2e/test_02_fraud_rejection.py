"""Flow 2: an amount over the fraud threshold is rejected, announced on the failed topic, never archived."""

from __future__ import annotations

from typing import Any

from devkit.demo import Platform
from tests.e2e.flows import AuditStream, Ledger, TopicTap


def test_amount_over_threshold_is_rejected(
    platform: Platform,
    ledger: Ledger,
    taps: dict[str, TopicTap],
    audit_stream: AuditStream,
    outputs: dict[str, Any],
) -> None:
    response = platform.create(Platform.payment("25000.00", "USD"))
    assert response.status == 202, response.body
    transaction_id = ledger.add(response.json["transaction_id"], "REJECTED")

    final = platform.wait_for_status(transaction_id)
    assert final["status"] == "REJECTED", final
    assert final["fraud"]["decision"] == "REJECT" and final["fraud"]["score"] >= 70
    assert any("amount" in str(reason).lower() for reason in final["fraud"]["reasons"]), final["fraud"]
    # A rejection is a business outcome: the workflow itself succeeded.
    assert platform.wait_for_execution(transaction_id)["status"] == "SUCCEEDED"

    failed = taps["failed"].messages(transaction_id)
    assert len(failed) == 1 and failed[0]["message"]["status"] == "REJECTED", failed
    assert failed[0]["attributes"]["status"] == "REJECTED"
    assert taps["events"].messages(transaction_id) == []

    listing = platform.client("s3").list_objects_v2(
        Bucket=outputs["archive_bucket_name"], Prefix="transactions/"
    )
    assert not [o["Key"] for o in listing.get("Contents", []) if transaction_id in o["Key"]]

    audit = [entry["to_status"] for entry in platform.audit(transaction_id)]
    assert audit[-2:] == ["VALIDATING", "REJECTED"] and "SETTLING" not in audit, audit
    assert [m["to_status"] for m in audit_stream.transitions(transaction_id)] == audit
