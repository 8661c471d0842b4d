"""The data-access layer (``payments.store``): the only code that writes DynamoDB, and every write
increments ``version`` — so the cleanup's guarded delete refuses a row any writer changed after it
was archived."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from payments.config import get_settings
from payments.jobs.cleanup import guarded_delete
from payments.jobs.lock import CleanupLock
from payments.store import write
from payments.store.keys import KEY_NAMES, key_of, lock_key
from payments.store.repository import Repository

from tests.support.inprocess import in_process_aws
from tests.unit.awsenv import AwsEnv
from tests.unit.flows import create

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "lambda" / "payments", ROOT / "ops")
LAYER = ROOT / "lambda" / "payments" / "store" / "write.py"
# Client and resource (Table, batch_writer) style alike, and PartiQL: a statement can write
# (INSERT, UPDATE, DELETE), so none is run outside the layer either.
WRITE_CALLS = frozenset(
    {
        "put_item",
        "update_item",
        "delete_item",
        "transact_write_items",
        "batch_write_item",
        "batch_writer",
        "execute_statement",
        "batch_execute_statement",
        "execute_transaction",
    }
)


def _write_calls(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr in WRITE_CALLS:
            yield node.lineno, node.func.attr
        # getattr(client, "put_item") is a write call too.
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in WRITE_CALLS
        ):
            yield node.lineno, str(node.args[1].value)


def test_every_dynamodb_write_in_payments_and_ops_goes_through_the_store() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for source in SOURCES
        for path in sorted(source.rglob("*.py"))
        if path != LAYER
        for line, name in _write_calls(path)
    ]
    assert outside == [], "DynamoDB writes outside payments.store.write:\n" + "\n".join(outside)
    assert {name for _, name in _write_calls(LAYER)} == {
        "put_item",
        "update_item",
        "delete_item",
        "transact_write_items",
    }


def test_the_enumeration_sees_client_and_resource_style_writes(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "def f(client, table):\n"
        "    client.put_item(TableName='t', Item={})\n"
        "    table.put_item(Item={})\n"
        "    with table.batch_writer() as batch:\n"
        "        batch.delete_item(Key={})\n"
        "    getattr(client, 'transact_write_items')(TransactItems=[])\n"
        "    client.execute_statement(Statement='DELETE FROM t WHERE k = ?')\n"
        "    client.batch_execute_statement(Statements=[])\n"
        "    getattr(client, 'execute_transaction')(TransactStatements=[])\n",
        encoding="utf-8",
    )
    assert sorted(name for _, name in _write_calls(planted)) == [
        "batch_execute_statement",
        "batch_writer",
        "delete_item",
        "execute_statement",
        "execute_transaction",
        "put_item",
        "put_item",
        "transact_write_items",
    ]


# ---------------------------------------------------------------------------- the version rule


@pytest.fixture
def repo(aws: AwsEnv) -> Repository:
    return Repository(get_settings(), aws.ddb)


@pytest.fixture
def stored(aws: AwsEnv, repo: Repository) -> dict[str, Any]:
    """A created transaction (PENDING, version 1) with its stream message still owed."""
    txn = create()["transaction_id"]
    return repo.require(txn)


def _raw(aws: AwsEnv, item: dict[str, Any]) -> dict[str, Any]:
    """The row as the cleanup reads it (attribute values), e.g. to archive it."""
    found: dict[str, Any] = aws.ddb.get_item(
        TableName=get_settings().transactions_table, Key=key_of(item), ConsistentRead=True
    )["Item"]
    return found


def _settling(repo: Repository, item: dict[str, Any], owner: str = "me") -> dict[str, Any]:
    item = repo.transition(item, "VALIDATING", "test")
    return repo.transition(item, "SETTLING", "test", set_fields={"lease_owner": owner, "lease_until": 0})


def _finished(repo: Repository, item: dict[str, Any]) -> dict[str, Any]:
    """COMPLETED, with a notification owed: a row the cleanup may delete."""
    item = _settling(repo, item)
    return repo.transition(item, "COMPLETED", "test", outbox=frozenset({"outcome"}), lease_owner="me")


Writer = Callable[[Repository, dict[str, Any]], write.Written]

WRITERS: dict[str, tuple[Callable[[Repository, dict[str, Any]], dict[str, Any]], Writer]] = {
    # name: (the state the writer needs, the write)
    "take_over_lease": (_settling, lambda r, i: r.take_over_lease(i, "other", 10**13, 1)),
    "release_lease": (_settling, lambda r, i: r.release_lease(i, "me")),
    "mark_charge_sent": (_settling, lambda r, i: r.mark_charge_sent(i, "me", 1)),
    "record_outcome": (
        _finished,
        lambda r, i: r.record_outcome(i, {"processor_outcome": "approved", "processor_reference": "ch_1"}),
    ),
    "clear_outbox": (_finished, lambda r, i: r.clear_outbox(i, "outcome")),
    "prune_stream": (
        _finished,
        lambda r, i: r.prune_stream(i, len(i["stream_outbox"]), int(i["stream_outbox"][-1]["version"])),
    ),
    "set_once": (_finished, lambda r, i: r.set_once(i, "note", "x", frozenset({"COMPLETED"}))),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_repository_write_increments_the_version(
    repo: Repository, stored: dict[str, Any], name: str
) -> None:
    prepare, writer = WRITERS[name]
    before = prepare(repo, stored)

    written = writer(repo, before)

    assert written.ok
    assert written.item["version"] == before["version"] + 1
    assert repo.require(before["transaction_id"])["version"] == before["version"] + 1


@pytest.mark.parametrize("name", [n for n, (prepare, _) in sorted(WRITERS.items()) if prepare is _finished])
def test_the_cleanup_refuses_to_delete_a_row_a_writer_changed_after_it_was_archived(
    aws: AwsEnv, repo: Repository, stored: dict[str, Any], name: str
) -> None:
    prepare, writer = WRITERS[name]
    item = prepare(repo, stored)
    archived = _raw(aws, item)  # what the cleanup archived, at this version

    assert writer(repo, item).ok

    table = get_settings().transactions_table
    with pytest.raises(ClientError) as caught:
        write.transact(aws.ddb, [guarded_delete(table, list(KEY_NAMES), archived)])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert repo.get(item["transaction_id"]) is not None
    # Under the version it has now, the same delete goes through.
    write.transact(aws.ddb, [guarded_delete(table, list(KEY_NAMES), _raw(aws, item))])
    assert repo.get(item["transaction_id"]) is None


@pytest.mark.parametrize("name", [n for n, (prepare, _) in sorted(WRITERS.items()) if prepare is _settling])
def test_a_lease_write_moves_the_version_a_transition_was_read_at(
    repo: Repository, stored: dict[str, Any], name: str
) -> None:
    from payments.errors import TransitionConflict

    prepare, writer = WRITERS[name]
    item = prepare(repo, stored)
    assert writer(repo, item).ok

    with pytest.raises(TransitionConflict):
        repo.transition(item, "FAILED", "test")


def test_transitions_keep_their_own_numbers_for_the_audit_stream(
    repo: Repository, stored: dict[str, Any]
) -> None:
    item = _settling(repo, stored)
    item = repo.mark_charge_sent(item, "me", 1).item
    item = repo.transition(item, "COMPLETED", "test", lease_owner="me")

    assert item["transitions"] == 4
    assert item["version"] == 5  # 4 transitions and the charge mark (the create claims the start)
    assert [e["version"] for e in item["stream_outbox"]] == [1, 2, 3, 4]


def test_the_ttl_mark_increments_the_version(aws: AwsEnv, repo: Repository, stored: dict[str, Any]) -> None:
    item = _finished(repo, stored)
    table = get_settings().transactions_table

    marked = write.update(
        aws.ddb,
        table,
        key_of(item),
        sets=["expires_at = :e"],
        condition="attribute_not_exists(expires_at)",
        read_version=int(item["version"]),
        values={":e": {"N": "1"}},
    )

    assert marked.ok
    assert repo.require(item["transaction_id"])["version"] == item["version"] + 1


def test_every_lock_write_increments_the_lock_items_version(aws: AwsEnv) -> None:
    table = get_settings().transactions_table
    lock = CleanupLock(aws.ddb, table, list(KEY_NAMES), owner="run-1", heartbeat=False)

    def version() -> int:
        item = aws.ddb.get_item(TableName=table, Key=lock_key(KEY_NAMES), ConsistentRead=True)["Item"]
        return int(item["version"]["N"])

    lock.acquire()
    assert version() == 1
    lock.renew()
    lock.add_pending("cleanup/x.jsonl", "delete")
    lock.remove_pending("cleanup/x.jsonl")
    assert version() == 4
    lock.release()
    assert "Item" not in aws.ddb.get_item(TableName=table, Key=lock_key(KEY_NAMES), ConsistentRead=True)


def test_a_replacing_put_must_carry_the_next_version_and_is_refused_on_another() -> None:
    import boto3
    from payments.store import write

    with in_process_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        row = {"k": {"S": "a"}, "version": {"N": "1"}}
        assert write.put(ddb, "t", row, condition="attribute_not_exists(k)", read_version=write.ANY_VERSION)
        assert not write.put(
            ddb, "t", row, condition="attribute_not_exists(k)", read_version=write.ANY_VERSION
        )
        with pytest.raises(ValueError, match="must be written at 2"):
            write.put(ddb, "t", row, condition=None, read_version=1)
        assert write.put(ddb, "t", {**row, "version": {"N": "2"}}, condition=None, read_version=1)
        assert not write.put(ddb, "t", {**row, "version": {"N": "2"}}, condition=None, read_version=1)
        assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["version"] == {"N": "2"}
