"""SNS notifications: transaction outcomes and platform alerts.

The message is a JSON summary of the transaction — never the payment token. Message
attributes let subscribers filter without parsing: event_type, status, currency, merchant_id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from payments import money
from payments.config import Settings
from payments.states import Status

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

SUMMARY_FIELDS = (
    "transaction_id",
    "status",
    "merchant_id",
    "customer_id",
    "amount_minor",
    "currency",
    "payment_method_type",
    "country",
    "reference",
    "created_at",
    "updated_at",
    "attempts",
)

EVENT_TYPES = {
    Status.COMPLETED: "transaction.completed",
    Status.REJECTED: "transaction.rejected",
    Status.FAILED: "transaction.failed",
}


def summary(item: Mapping[str, Any]) -> dict[str, Any]:
    """The public view of a transaction (API status answers, SNS, archive)."""
    out: dict[str, Any] = {k: item[k] for k in SUMMARY_FIELDS if item.get(k) is not None}
    if isinstance(item.get("amount_minor"), int) and item.get("currency"):
        out["amount"] = money.format_minor(int(item["amount_minor"]), str(item["currency"]))
    if item.get("metadata"):
        out["metadata"] = dict(item["metadata"])
    if item.get("description") is not None:
        out["description"] = item["description"]
    fraud = item.get("fraud")
    if isinstance(fraud, Mapping):
        out["fraud"] = {
            "score": fraud.get("score"),
            "decision": fraud.get("decision"),
            "reasons": fraud.get("reasons", []),
        }
    rejection = item.get("rejection")
    if isinstance(rejection, Mapping):
        out["rejection"] = {"source": rejection.get("source"), "reasons": rejection.get("reasons", [])}
    failure = item.get("failure")
    if isinstance(failure, Mapping):
        out["failure"] = {"error": failure.get("error"), "at": failure.get("at")}
    if item.get("processor_reference"):
        out["processor_reference"] = item["processor_reference"]
    if item.get("settled_at"):
        out["settled_at"] = item["settled_at"]
    return out


def notification_id(transaction_id: str, event_type: str) -> str:
    """Stable per payment and event: a re-sent notification carries the same id (dedupe on it)."""
    return f"{transaction_id}#{event_type}"


def _attributes(event_type: str, item: Mapping[str, Any]) -> dict[str, Any]:
    values = {
        "event_type": event_type,
        "notification_id": notification_id(str(item.get("transaction_id", "")), event_type),
        "status": str(item.get("status", "")),
        "currency": str(item.get("currency", "")),
        "merchant_id": str(item.get("merchant_id", "")),
    }
    # SNS rejects empty String attribute values.
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items() if v}


def topic_for(settings: Settings, status: str) -> str:
    if status == Status.COMPLETED:
        return settings.events_topic_arn
    if status in (Status.REJECTED, Status.FAILED):
        return settings.failed_topic_arn
    raise ValueError(f"no notification for status {status}")


def publish_outcome(sns: SNSClient, settings: Settings, item: Mapping[str, Any]) -> str:
    """Publish the transaction's status to events (COMPLETED) or failed (REJECTED/FAILED).

    Called from the outbox (service): once per payment and event type, re-sent only when an
    acknowledgement was lost, with the same ``notification_id`` attribute.
    """
    status = Status(str(item["status"]))
    topic = topic_for(settings, status)
    event_type = EVENT_TYPES[status]
    sns.publish(
        TopicArn=topic,
        Subject=f"Payment {status.value.lower()}"[:100],
        Message=json.dumps(summary(item), separators=(",", ":"), sort_keys=True, default=str),
        MessageAttributes=_attributes(event_type, item),
    )
    return topic


def publish_alert(
    sns: SNSClient, topic_arn: str, subject: str, message: Mapping[str, Any], event_type: str
) -> None:
    sns.publish(
        TopicArn=topic_arn,
        Subject=subject[:100],
        Message=json.dumps(message, separators=(",", ":"), sort_keys=True, default=str),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": event_type}},
    )
