"""The platform's DynamoDB tables as ``modules/data`` declares them, created in moto for the tests
and benchmarks (``tests/unit/awsenv.py``, the ``tests/ops`` fixtures, ``bench/ops_bench.py``).

One description per table: hash and range key, attribute types, global secondary indexes and the
TTL attribute. ``tests/plan/test_table_schema.py`` compares it with the data module's plan, so a
change to the module that is not made here too fails there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Every table expires items through this attribute (not `TTL`: emulators mishandle that name).
TTL_ATTRIBUTE = "expires_at"
# Every GSI sorts by `timestamp`, so the newest items of a customer, merchant or day come first,
# and projects every attribute.
INDEX_RANGE_KEY = "timestamp"
INDEX_PROJECTION = "ALL"


@dataclass(frozen=True)
class TableSchema:
    hash_key: str
    range_key: str | None
    attributes: Mapping[str, str]  # attribute name -> DynamoDB type ("S", "N")
    indexes: Mapping[str, str] = field(default_factory=dict)  # GSI name -> its hash key

    def create_request(self, name: str, indexes: Iterable[str] | None = None) -> dict[str, Any]:
        """The on-demand CreateTable request; ``indexes`` keeps only the GSIs named (default: all)."""
        chosen = list(self.indexes) if indexes is None else list(indexes)
        unknown = set(chosen) - set(self.indexes)
        if unknown:
            raise ValueError(f"no such index: {sorted(unknown)}")
        key_schema = [{"AttributeName": self.hash_key, "KeyType": "HASH"}]
        if self.range_key:
            key_schema.append({"AttributeName": self.range_key, "KeyType": "RANGE"})
        gsis = [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": self.indexes[index], "KeyType": "HASH"},
                    {"AttributeName": INDEX_RANGE_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": INDEX_PROJECTION},
            }
            for index in chosen
        ]
        # DynamoDB accepts definitions only for attributes some key schema uses.
        schemas = [key_schema, *(g["KeySchema"] for g in gsis)]
        used = {key["AttributeName"] for schema in schemas for key in schema}
        request: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": t} for a, t in self.attributes.items() if a in used
            ],
            "KeySchema": key_schema,
        }
        if gsis:
            request["GlobalSecondaryIndexes"] = gsis
        return request


TRANSACTIONS = TableSchema(
    hash_key="transaction_id",
    range_key="timestamp",
    attributes=MappingProxyType(
        {"transaction_id": "S", "timestamp": "N", "customer_id": "S", "merchant_id": "S", "day_shard": "S"}
    ),
    indexes=MappingProxyType(
        {
            "by-customer": "customer_id",
            "by-merchant": "merchant_id",
            # `YYYY-MM-DD#NN` (payments.shards): one day spread over DAY_SHARDS partitions.
            "by-day": "day_shard",
        }
    ),
)
AUDIT = TableSchema(
    hash_key="transaction_id",
    range_key="event_id",
    attributes=MappingProxyType({"transaction_id": "S", "event_id": "S"}),
)
IDEMPOTENCY = TableSchema(
    hash_key="idempotency_key",
    range_key=None,
    attributes=MappingProxyType({"idempotency_key": "S"}),
)
CLIENTS = TableSchema(
    hash_key="key_id",
    range_key=None,
    attributes=MappingProxyType({"key_id": "S"}),
)
# Keyed as the data module's `aws_dynamodb_table.this` instances.
TABLES: Mapping[str, TableSchema] = MappingProxyType(
    {"transactions": TRANSACTIONS, "audit": AUDIT, "idempotency": IDEMPOTENCY, "clients": CLIENTS}
)


def create_table(
    dynamodb: Any, schema: TableSchema, name: str, *, indexes: Iterable[str] | None = None
) -> None:
    """Create ``name`` with ``schema`` (``indexes``: only those GSIs) and its TTL attribute."""
    dynamodb.create_table(**schema.create_request(name, indexes))
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
