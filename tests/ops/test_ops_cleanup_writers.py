"""Every writer is versioned, so the cleanup's guards cover every writer (issue 22, items 3 and 4).

Each write path of ``payments.store.repository`` that can change a finished row is run against
a row *between its archive PUT and its delete* (or TTL write): the guarded write is refused, the
row is archived again in its new version and deleted under it. The writers that need an
unfinished status (transitions out of a terminal status do not exist, lease take-over and the
charge mark need SETTLING) are refused on a finished row and so leave it as archived.

TTL rule: ``--backfill-ttl`` sets a TTL only under the version it archived, and every repository
write removes a backfilled TTL, so DynamoDB's TTL never removes a row whose last version is not
archived; the next backfill archives the new version and sets it again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from ops_testkit import BUCKET, TABLE, Platform, txn_item
from payments.config import get_settings
from payments.dynamo import from_attributes
from payments.store.repository import Repository
from test_ops_cleanup_safety import (
    CUTOFF_MS,
    KEYS,
    _apply,
    _clients,
    archived_versions,
    assert_invariant,
    kid,
)

Writer = Callable[[Repository, dict[str, Any]], Any]

# The repository's write paths that a finished row accepts.
WRITERS: dict[str, Writer] = {
    "record_outcome": lambda repo, item: repo.record_outcome(item, {"processor_outcome": "approved"}),
    "set_once": lambda repo, item: repo.set_once(item, "receipt_sent_at", "now", frozenset({"COMPLETED"})),
    "clear_outbox": lambda repo, item: repo.clear_outbox(item, "notify"),
    "prune_stream": lambda repo, item: repo.prune_stream(item, 1, 1),
    "release_lease": lambda repo, item: repo.release_lease(item, "worker-1"),
}
# The ones that refuse a finished row (their status condition): nothing to guard against.
REFUSING: dict[str, Writer] = {
    "take_over_lease": lambda repo, item: repo.take_over_lease(item, "worker-2", 10**13, 10**13),
    "mark_charge_sent": lambda repo, item: repo.mark_charge_sent(item, "worker-1", 1),
}


def _row(n: int) -> dict[str, Any]:
    return txn_item(
        n,
        CUTOFF_MS - 1 - n * 60_000,
        extra={
            "outbox": {"SS": ["notify"]},
            "stream_outbox": {"L": [{"M": {"version": {"N": "1"}}}]},
            "lease_owner": {"S": "worker-1"},
            "lease_until": {"N": "5"},
        },
    )


def _repo(platform: Platform) -> Repository:
    return Repository(dataclasses.replace(get_settings(), transactions_table=TABLE), platform.dynamodb)


def _current(platform: Platform, row: dict[str, Any]) -> dict[str, Any]:
    return platform.dynamodb.get_item(
        TableName=TABLE, Key={k: row[k] for k in KEYS}, ConsistentRead=True
    ).get("Item", {})


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_writer_of_each_kind_between_archive_and_delete_is_refused_by_the_guard(
    platform: Platform, writer: str
) -> None:
    rows = [_row(n) for n in range(3)]
    platform.put(rows)
    target = rows[1]
    last = {kid(r): r for r in rows}
    dynamodb, s3 = _clients()
    repo = _repo(platform)

    def write_between(**_: Any) -> None:  # after the archive PUT, before the guarded deletes
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", write_between)
        written = WRITERS[writer](repo, from_attributes(target))
        assert written, f"{writer} did not write"
        last[kid(target)] = _current(platform, target)

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", write_between)
    result = _apply(dynamodb, s3)
    assert last[kid(target)]["version"]["N"] == "2", f"{writer} did not bump version"
    assert result.rearchived == 1 and result.deleted == 3
    assert archived_versions(platform)[kid(target)] == "2"
    assert_invariant(platform, last)


@pytest.mark.parametrize("writer", sorted(REFUSING))
def test_writers_that_need_an_unfinished_row_leave_a_finished_one_alone(
    platform: Platform, writer: str
) -> None:
    row = _row(0)
    platform.put([row])
    assert not REFUSING[writer](_repo(platform), from_attributes(row))
    assert _current(platform, row) == row


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_any_write_after_a_ttl_backfill_removes_the_ttl_and_the_next_backfill_archives_it_again(
    platform: Platform, writer: str
) -> None:
    rows = [_row(n) for n in range(2)]
    platform.put(rows)
    marked = _apply(platform.dynamodb, platform.s3, backfill_ttl=True)
    assert marked.ttl_set == 2
    target = rows[0]
    assert "expires_at" in _current(platform, target)
    assert WRITERS[writer](_repo(platform), from_attributes(_current(platform, target)))
    now = _current(platform, target)
    assert "expires_at" not in now and "ttl_backfill" not in now, "a later write kept the TTL"
    again = _apply(platform.dynamodb, platform.s3, backfill_ttl=True)
    assert again.ttl_set == 1
    assert "expires_at" in _current(platform, target)
    versions = [v for k, v in _archived_all_versions(platform) if k == kid(target)]
    assert now["version"]["N"] in versions  # the version TTL will remove is archived


def test_a_writer_between_archive_and_ttl_write_is_refused_and_the_new_version_archived(
    platform: Platform,
) -> None:
    rows = [_row(n) for n in range(2)]
    platform.put(rows)
    dynamodb, s3 = _clients()
    repo = _repo(platform)
    seen: list[dict[str, Any]] = []

    def write_between(**_: Any) -> None:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", write_between)
        assert repo.record_outcome(from_attributes(rows[0]), {"processor_outcome": "approved"})
        seen.append(_current(platform, rows[0]))

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", write_between)
    result = _apply(dynamodb, s3, backfill_ttl=True)
    assert result.ttl_set == 2 and result.rearchived == 1
    assert "expires_at" in _current(platform, rows[0])
    assert archived_versions(platform)[kid(rows[0])] == seen[0]["version"]["N"] == "2"


def _archived_all_versions(platform: Platform) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key in platform.s3_keys("cleanup/"):
        if key.endswith(".jsonl"):
            body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    item = json.loads(line)["Item"]
                    out.append((kid(item), item["version"]["N"]))
    return out
