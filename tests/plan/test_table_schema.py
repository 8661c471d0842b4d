"""The tables the tests and benchmarks create in moto (``tests/support/tables.py``) are the tables
the data module plans: the same hash and range keys, attribute types, global secondary indexes (keys
and projection) and TTL attribute, read from the CreateTable request the shared module sends."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import tables

Pick = Callable[[str], list[dict[str, Any]]]
_INSTANCE_KEY = re.compile(r'\["([^"]+)"\]$')


def _planned_tables(resources_of_type: Pick) -> dict[str, dict[str, Any]]:
    """Planned ``aws_dynamodb_table`` values by instance key (``transactions``, ``audit``, ...)."""
    found: dict[str, dict[str, Any]] = {}
    for resource in resources_of_type("aws_dynamodb_table"):
        match = _INSTANCE_KEY.search(resource["address"])
        assert match, f"{resource['address']}: expected an instance keyed by the table's role"
        found[match.group(1)] = resource["values"]
    return found


def _requested(schema: tables.TableSchema) -> dict[str, Any]:
    """What the shared module asks moto for, in the plan's terms."""
    request = schema.create_request("any-name")
    keys = {k["KeyType"]: k["AttributeName"] for k in request["KeySchema"]}
    indexes = {}
    for index in request.get("GlobalSecondaryIndexes", []):
        index_keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        projection = index["Projection"]
        indexes[index["IndexName"]] = {
            "hash_key": index_keys["HASH"],
            "range_key": index_keys.get("RANGE"),
            "projection_type": projection["ProjectionType"],
            "non_key_attributes": sorted(projection.get("NonKeyAttributes", [])),
        }
    return {
        "hash_key": keys["HASH"],
        "range_key": keys.get("RANGE"),
        "attributes": {a["AttributeName"]: a["AttributeType"] for a in request["AttributeDefinitions"]},
        "indexes": indexes,
        "ttl": [{"attribute_name": tables.TTL_ATTRIBUTE, "enabled": True}],
    }


def _planned(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "hash_key": values["hash_key"],
        "range_key": values.get("range_key"),
        "attributes": {a["name"]: a["type"] for a in values["attribute"]},
        "indexes": {
            index["name"]: {
                "hash_key": index["hash_key"],
                "range_key": index.get("range_key"),
                "projection_type": index["projection_type"],
                "non_key_attributes": sorted(index.get("non_key_attributes") or []),
            }
            for index in values.get("global_secondary_index") or []
        },
        "ttl": [{"attribute_name": t["attribute_name"], "enabled": t["enabled"]} for t in values["ttl"]],
    }


def test_the_shared_module_describes_every_planned_table(resources_of_type: Pick) -> None:
    assert set(_planned_tables(resources_of_type)) == set(tables.TABLES)


@pytest.mark.parametrize("role", sorted(tables.TABLES))
def test_the_shared_schema_is_the_planned_one(role: str, resources_of_type: Pick) -> None:
    planned = _planned_tables(resources_of_type).get(role)
    assert planned is not None, f"no planned table {role!r}"
    assert _requested(tables.TABLES[role]) == _planned(planned)
