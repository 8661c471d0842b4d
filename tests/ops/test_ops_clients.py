"""``ops clients add|rotate|revoke|list`` against moto: one secret printed once, hashes stored."""

from __future__ import annotations

import json
from typing import Any

import boto3
from click.testing import CliRunner
from ops_testkit import REGION, SUFFIX, Platform
from payments import authorizer as auth
from payments.dynamo import from_attributes

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


def test_drop_secret_retires_the_old_secret_after_rotation_and_never_the_last_one(platform: Platform) -> None:
    _tables()
    added = _ops("add", "shop", "--merchant", "m1")
    key_id, old_token = added["key_id"], added["token"]
    new_token = _ops("rotate", key_id)["token"]

    dropped = _ops("drop-secret", key_id, "s1", "--yes")

    assert dropped["secret_ids"] == ["s2"]
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=CLIENTS, Key={"key_id": {"S": key_id}}
    )["Item"]
    client = from_attributes(item)
    for token, allowed in ((old_token, False), (new_token, True)):
        decision = auth.decide(client, auth.parse_authorization(f"Bearer {token}"))
        assert decision.allowed is allowed, (token[:12], decision)
    last = CliRunner().invoke(cli, ["clients", "drop-secret", key_id, "s2", "--yes", "--suffix", SUFFIX])
    assert last.exit_code == 1 and "revoke the client instead" in last.output
    unknown = CliRunner().invoke(cli, ["clients", "drop-secret", key_id, "s9", "--yes", "--suffix", SUFFIX])
    assert unknown.exit_code == 1 and "has no secret s9" in unknown.output
    audit = boto3.client("dynamodb", region_name=REGION).scan(TableName=AUDIT)["Items"]
    assert sorted(i["action"]["S"] for i in audit) == ["add", "drop-secret s1", "rotate"]
