"""``ops clients add|rotate|revoke|list`` against moto: one secret printed once, hashes stored."""

from __future__ import annotations

import json
from typing import Any

import boto3
from click.testing import CliRunner
from ops_testkit import REGION, SUFFIX, Platform
from payments import authorizer as auth

from ops.cli.main import cli
from tests.support import tables

CLIENTS = f"payment-clients-{SUFFIX}"
AUDIT = f"payment-audit-{SUFFIX}"


def _tables() -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    tables.create_table(ddb, tables.CLIENTS, CLIENTS)
    tables.create_table(ddb, tables.AUDIT, AUDIT)


def _ops(*argv: str) -> Any:
    result = CliRunner().invoke(cli, ["clients", *argv, "--suffix", SUFFIX, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _stored() -> str:
    return json.dumps(boto3.client("dynamodb", region_name=REGION).scan(TableName=CLIENTS)["Items"])


def test_add_prints_the_secret_once_and_stores_only_its_hash(platform: Platform) -> None:
    _tables()
    added = _ops("add", "partner-one", "--merchant", "m1", "--merchant", "m2", "--kind", "partner")
    key_id, secret = added["token"].split(".", 1)

    assert auth.KEY_ID_PATTERN.match(key_id) and auth.SECRET_PATTERN.match(secret)
    assert added["merchants"] == ["m1", "m2"] and added["status"] == "active"
    assert secret not in _stored()
    listed = CliRunner().invoke(cli, ["clients", "list", "--suffix", SUFFIX])
    assert listed.exit_code == 0 and key_id in listed.stdout and secret not in listed.stdout
    assert "hash" not in json.dumps(_ops("list"))


def test_rotate_keeps_two_secrets_and_revoke_removes_every_hash_with_an_audit_entry_each(
    platform: Platform,
) -> None:
    _tables()
    added = _ops("add", "shop", "--merchant", "m1")
    key_id = added["key_id"]
    rotated = _ops("rotate", key_id)
    assert rotated["secret_ids"] == ["s1", "s2"] and rotated["token"] != added["token"]
    assert _ops("rotate", key_id)["secret_ids"] == ["s2", "s3"]

    revoked = _ops("revoke", key_id, "--yes")

    assert revoked["status"] == "revoked" and revoked["secret_ids"] == []
    assert '"hash"' not in _stored()
    audit = boto3.client("dynamodb", region_name=REGION).scan(TableName=AUDIT)["Items"]
    assert sorted(i["action"]["S"] for i in audit) == ["add", "revoke", "rotate", "rotate"]
    assert all(i["transaction_id"]["S"] == key_id for i in audit)


def test_revoke_asks_for_confirmation_and_a_merchant_client_has_one_merchant(platform: Platform) -> None:
    _tables()
    key_id = _ops("add", "shop", "--merchant", "m1")["key_id"]
    declined = CliRunner().invoke(cli, ["clients", "revoke", key_id, "--suffix", SUFFIX], input="n\n")
    assert declined.exit_code == 1
    two = CliRunner().invoke(
        cli, ["clients", "add", "x", "--merchant", "a", "--merchant", "b", "--suffix", SUFFIX]
    )
    assert two.exit_code == 1 and "partner" in two.output
