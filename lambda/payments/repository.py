"""DynamoDB access for transactions, their audit entries and idempotency records.

Writes that change a transaction's status are TransactWriteItems of two operations: the
conditional update (``status = :expected``) and the audit entry (``attribute_not_exists``).
Either both land or neither does; a losing writer gets TransitionConflict and re-reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from payments import audit, ids
from payments.clock import day_from_ms, iso_from_ms, now_ms
from payments.config import Settings
from payments.dynamo import from_attributes, serialize, to_attributes
from payments.errors import TransactionNotFound, TransitionConflict
from payments.states import check_transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# CancellationReasons codes that mean "throttled / try later" rather than "condition failed".
_THROTTLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})

__all__ = ["IdempotencyCollision", "Repository", "Throttled", "day_shard", "from_attributes", "to_attributes"]


def day_shard(transaction_id: str, timestamp_ms: int, shards: int) -> str:
    """``YYYY-MM-DD#NN``: spreads one day's writes over ``shards`` index partitions."""
    shard = int(hashlib.sha256(transaction_id.encode("ascii")).hexdigest(), 16) % shards
    return f"{day_from_ms(timestamp_ms)}#{shard:02d}"


class IdempotencyCollision(Exception):
    """The idempotency record already exists (or is being written by a concurrent request)."""

    def __init__(self, in_flight: bool) -> None:
        super().__init__("idempotency key already used")
        self.in_flight = in_flight


class Throttled(Exception):
    """DynamoDB cancelled a transaction because of throttling: retry later."""


def _cancellation_codes(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []
    return [str(r.get("Code") or "None") for r in reasons]


@dataclass
class Repository:
    settings: Settings
    ddb: DynamoDBClient

    # ------------------------------------------------------------------ create
    def create(
        self,
        transaction: dict[str, Any],
        idempotency_record: dict[str, Any] | None,
        audit_entry: dict[str, Any],
    ) -> None:
        """Write the PENDING transaction, its idempotency record and audit entry atomically."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.settings.transactions_table,
                    "Item": to_attributes(transaction),
                    "ConditionExpression": "attribute_not_exists(transaction_id)",
                }
            }
        ]
        if idempotency_record is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.settings.idempotency_table,
                        "Item": to_attributes(idempotency_record),
                        # TTL deletion lags expiry by up to days: an expired record is free to reuse.
                        "ConditionExpression": "attribute_not_exists(idempotency_key) OR expires_at < :now",
                        "ExpressionAttributeValues": {":now": {"N": str(now_ms() // 1000)}},
                    }
                }
            )
        items.append(
            {
                "Put": {
                    "TableName": self.settings.audit_table,
                    "Item": to_attributes(audit_entry),
                    "ConditionExpression": "attribute_not_exists(event_id)",
                }
            }
        )
        try:
            self.ddb.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(exc)
            if any(code in _THROTTLE_REASONS for code in codes):
                raise Throttled() from exc
            if idempotency_record is not None and len(codes) > 1:
                if codes[1] == "ConditionalCheckFailed":
                    raise IdempotencyCollision(in_flight=False) from exc
                if codes[1] == "TransactionConflict" or codes[0] == "TransactionConflict":
                    raise IdempotencyCollision(in_flight=True) from exc
            raise

    # ------------------------------------------------------------------ reads
    def get(self, transaction_id: str, timestamp: int | None = None) -> dict[str, Any] | None:
        ts = ids.timestamp_of(transaction_id) if timestamp is None else int(timestamp)
        response = self.ddb.get_item(
            TableName=self.settings.transactions_table,
            Key={"transaction_id": {"S": transaction_id}, "timestamp": {"N": str(ts)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_attributes(item) if item else None

    def require(self, transaction_id: str, timestamp: int | None = None) -> dict[str, Any]:
        item = self.get(transaction_id, timestamp)
        if item is None:
            raise TransactionNotFound(transaction_id)
        return item

    def get_idempotency(self, scoped_key: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=self.settings.idempotency_table,
            Key={"idempotency_key": {"S": scoped_key}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_attributes(item) if item else None

    def audit_entries(self, transaction_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.settings.audit_table,
            "KeyConditionExpression": "transaction_id = :t",
            "ExpressionAttributeValues": {":t": {"S": transaction_id}},
            "ConsistentRead": True,
        }
        for _ in range(100):
            response = self.ddb.query(**kwargs)
            items.extend(from_attributes(i) for i in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return items

    def count_recent_for_customer(self, customer_id: str, since_ms: int, exclude_id: str, limit: int) -> int:
        """Transactions of ``customer_id`` since ``since_ms`` (excluding one), counting up to ``limit``."""
        count = 0
        kwargs: dict[str, Any] = {
            "TableName": self.settings.transactions_table,
            "IndexName": self.settings.by_customer_index,
            "KeyConditionExpression": "customer_id = :c AND #ts >= :since",
            "ExpressionAttributeNames": {"#ts": "timestamp", "#id": "transaction_id"},
            "ExpressionAttributeValues": {":c": {"S": customer_id}, ":since": {"N": str(since_ms)}},
            "ProjectionExpression": "#id",
        }
        for _ in range(20):  # bounded: the rule only needs to know "at least limit"
            response = self.ddb.query(**kwargs)
            count += sum(1 for i in response.get("Items", []) if i["transaction_id"]["S"] != exclude_id)
            last = response.get("LastEvaluatedKey")
            if count >= limit or not last:
                break
            kwargs["ExclusiveStartKey"] = last
        return count

    # ------------------------------------------------------------------ writes
    def transition(
        self,
        item: dict[str, Any],
        to_status: str,
        actor: str,
        *,
        set_fields: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        new_attempt: bool = False,
    ) -> dict[str, Any]:
        """Move ``item`` from its current status to ``to_status``; returns the updated item.

        Raises TransitionConflict when the stored status is no longer ``item["status"]``.
        """
        from_status = str(item["status"])
        check_transition(from_status, to_status)
        at = now_ms()
        updated = dict(item)
        fields: dict[str, Any] = {"status": to_status, "updated_at": iso_from_ms(at), **(set_fields or {})}
        if new_attempt:
            fields["attempts"] = int(item.get("attempts") or 1) + 1
        fields["version"] = int(item.get("version") or 0) + 1
        fields["previous_status"] = from_status
        names: dict[str, str] = {}
        values: dict[str, Any] = {":expected": {"S": from_status}}
        assignments = []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":v{index}"] = serialize(value)
            assignments.append(f"#f{index} = :v{index}")
        names["#status"] = "status"
        entry = audit.audit_item(
            item["transaction_id"],
            from_status,
            to_status,
            at,
            actor,
            self.settings.audit_ttl_days,
            detail,
        )
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.settings.transactions_table,
                            "Key": {
                                "transaction_id": {"S": item["transaction_id"]},
                                "timestamp": {"N": str(item["timestamp"])},
                            },
                            "UpdateExpression": "SET " + ", ".join(assignments),
                            "ConditionExpression": "#status = :expected",
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.settings.audit_table,
                            "Item": to_attributes(entry),
                            "ConditionExpression": "attribute_not_exists(event_id)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(exc)
            if any(code in _THROTTLE_REASONS for code in codes):
                raise Throttled() from exc
            raise TransitionConflict(f"{item['transaction_id']}: {from_status} -> {to_status} lost") from exc
        updated.update(fields)
        return updated

    def record(self, item: dict[str, Any], fields: dict[str, Any], expected_status: str) -> dict[str, Any]:
        """Store ``fields`` on ``item`` while its status is still ``expected_status`` (no transition).

        Raises TransitionConflict when the status moved on.
        """
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": serialize(value) for i, value in enumerate(fields.values())}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        try:
            self.ddb.update_item(
                TableName=self.settings.transactions_table,
                Key={
                    "transaction_id": {"S": item["transaction_id"]},
                    "timestamp": {"N": str(item["timestamp"])},
                },
                UpdateExpression=f"SET {assignments}",
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={**values, ":expected": {"S": expected_status}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise TransitionConflict(f"{item['transaction_id']}: no longer {expected_status}") from exc
            raise
        return {**item, **fields}

    def set_once(
        self,
        item: dict[str, Any],
        attribute: str,
        value: Any,
        allowed_statuses: frozenset[str],
    ) -> bool:
        """Store ``attribute`` unless already present, while the status is one of ``allowed_statuses``.

        Returns False when the condition failed (already stored, or status moved on).
        """
        status_values = {f":s{i}": {"S": s} for i, s in enumerate(sorted(allowed_statuses))}
        try:
            self.ddb.update_item(
                TableName=self.settings.transactions_table,
                Key={
                    "transaction_id": {"S": item["transaction_id"]},
                    "timestamp": {"N": str(item["timestamp"])},
                },
                UpdateExpression="SET #a = :v, #u = :u",
                ConditionExpression=f"attribute_not_exists(#a) AND #status IN ({', '.join(status_values)})",
                ExpressionAttributeNames={"#a": attribute, "#u": "updated_at", "#status": "status"},
                ExpressionAttributeValues={
                    ":v": serialize(value),
                    ":u": {"S": iso_from_ms(now_ms())},
                    **status_values,
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
