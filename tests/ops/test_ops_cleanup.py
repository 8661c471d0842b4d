"""``ops cleanup`` and ``payments.jobs.cleanup``: archive-before-delete, batching, retries, resumability."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from ops_testkit import BUCKET, TABLE, Interrupt, Platform, fail_after, shuffled, txn_item
from payments.jobs import JobError
from payments.jobs.archive import archived_items
from payments.jobs.backoff import Backoff
from payments.jobs.cleanup import choose_segments, run_cleanup
from payments.jobs.retention import cutoff_for, parse_duration_days

TODAY = dt.datetime.now(dt.UTC).date()
CUTOFF = cutoff_for(90)
CUTOFF_MS = int(CUTOFF.timestamp() * 1000)


def _seed(platform: Platform, old: int = 60, new: int = 15, padding: int = 0) -> tuple[set[str], set[str]]:
    extra = {"description": {"S": "x" * padding}} if padding else None
    old_items = [txn_item(i, CUTOFF_MS - 1 - i * 3_600_000, extra=extra) for i in range(old)]
    new_items = [txn_item(10_000 + i, CUTOFF_MS + i * 60_000, extra=extra) for i in range(new)]
    platform.put(shuffled(old_items + new_items))
    return (
        {i["transaction_id"]["S"] for i in old_items},
        {i["transaction_id"]["S"] for i in new_items},
    )


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["transaction_id"]["S"] for i in items]


def test_cutoff_is_midnight_utc_and_durations_parse() -> None:
    now = dt.datetime(2026, 6, 30, 17, 45, tzinfo=dt.UTC)
    assert cutoff_for(90, now) == dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    assert parse_duration_days("90d") == 90
    assert parse_duration_days("12w") == 84
    assert parse_duration_days("7") == 7
    for bad in ("", "d", "-3d", "0d", "3h", "ninety"):
        with pytest.raises(JobError):
            parse_duration_days(bad)


def test_default_is_a_dry_run_that_changes_nothing(run: Any, platform: Platform) -> None:
    old, _new = _seed(platform)
    before = sorted(json.dumps(i, sort_keys=True) for i in platform.all_items())
    for args in ((), ("--dry-run", "--yes"), ("--backfill-ttl",), ("--no-archive", "--confirm-no-archive")):
        result = run("cleanup", "--older-than", "90d", *args, "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["dry_run"] is True
        assert summary["matched"] == len(old)
        assert summary["deleted"] == summary["ttl_set"] == summary["archived"] == 0
        assert summary["requests"].get("transact_write_items", 0) == 0
    assert sorted(json.dumps(i, sort_keys=True) for i in platform.all_items()) == before
    assert platform.s3_keys() == []
    table_output = run("cleanup").stdout
    assert "DRY RUN" in table_output
    assert f"{len(old)}" in table_output


def test_yes_archives_then_deletes_exactly_the_old_items(run: Any, platform: Platform) -> None:
    old, new = _seed(platform)
    original = {i["transaction_id"]["S"]: i for i in platform.all_items()}
    result = run("cleanup", "--older-than", "90d", "--yes", "--segments", "3", "--chunk-size", "7", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is False
    assert summary["deleted"] == summary["archived"] == len(old)
    assert summary["complete"] is True
    assert set(_ids(platform.all_items())) == new
    archived = archived_items(platform.s3, BUCKET, f"cleanup/{CUTOFF.date().isoformat()}/")
    assert sorted(_ids(archived)) == sorted(old)  # each old item exactly once
    for item in archived:  # lossless: the DynamoDB JSON of the item as it was
        assert item == original[item["transaction_id"]["S"]]
    run_prefix = f"cleanup/{CUTOFF.date().isoformat()}/{summary['run_id']}/"
    assert all(k.startswith(run_prefix) for k in platform.s3_keys())
    # Up to 100 guarded deletes per TransactWriteItems; a chunk of 7 is one request.
    chunks = summary["archive_objects"]
    assert summary["requests"]["transact_write_items"] == chunks
    manifests = [k for k in platform.s3_keys() if k.endswith(".manifest.json")]
    assert len(manifests) == chunks
    assert sum(platform.s3_json(k)["count"] for k in manifests) == len(old)
    assert platform.s3_json(run_prefix + "summary.json")["deleted"] == len(old)


def test_boundary_item_at_the_cutoff_is_kept(run: Any, platform: Platform) -> None:
    platform.put([txn_item(1, CUTOFF_MS), txn_item(2, CUTOFF_MS - 1)])
    result = run("cleanup", "--yes", "--json")
    assert json.loads(result.stdout)["deleted"] == 1
    assert _ids(platform.all_items()) == [txn_item(1, CUTOFF_MS)["transaction_id"]["S"]]


def test_no_archive_deletes_without_touching_s3(run: Any, platform: Platform) -> None:
    old, new = _seed(platform)
    result = run("cleanup", "--no-archive", "--confirm-no-archive", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["deleted"] == len(old)
    assert set(_ids(platform.all_items())) == new
    assert platform.s3_keys() == []


def test_backfill_ttl_sets_expiry_only_where_missing_and_keeps_items(run: Any, platform: Platform) -> None:
    old, new = _seed(platform, old=20, new=5)
    keep_ttl = txn_item(999, CUTOFF_MS - 5, extra={"expires_at": {"N": "123"}})
    platform.put([keep_ttl])
    result = run("cleanup", "--backfill-ttl", "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ttl_set"] == len(old)
    assert summary["deleted"] == 0
    items = {i["transaction_id"]["S"]: i for i in platform.all_items()}
    assert len(items) == len(old) + len(new) + 1
    for tid in old:
        item = items[tid]
        assert int(item["expires_at"]["N"]) == int(item["timestamp"]["N"]) // 1000 + 90 * 86_400
    for tid in new:
        assert "expires_at" not in items[tid]
    assert items[keep_ttl["transaction_id"]["S"]]["expires_at"] == {"N": "123"}
    # Archived before TTL can remove them; a rerun finds nothing left to do.
    assert len(archived_items(platform.s3, BUCKET)) == len(old)
    again = json.loads(run("cleanup", "--backfill-ttl", "--yes", "--json").stdout)
    assert again["matched"] == again["ttl_set"] == 0


def test_backfill_condition_protects_items_that_gain_a_ttl_meanwhile(platform: Platform) -> None:
    item = txn_item(1, CUTOFF_MS - 10)
    platform.put([item])

    def race(params: dict[str, Any], **_: Any) -> None:  # another writer sets the TTL first
        if item["transaction_id"]["S"].encode() not in params["body"]:
            return  # the cleanup lock's own UpdateItem
        platform.dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", race)
        platform.dynamodb.update_item(
            TableName=TABLE,
            Key={"transaction_id": item["transaction_id"], "timestamp": item["timestamp"]},
            UpdateExpression="SET expires_at = :e",
            ExpressionAttributeValues={":e": {"N": "42"}},
        )

    platform.dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", race)
    result = run_cleanup(
        platform.dynamodb, TABLE, older_than_days=90, archive=False, backfill_ttl=True, dry_run=False
    )
    assert (result.ttl_set, result.ttl_skipped) == (0, 1)
    assert platform.all_items()[0]["expires_at"] == {"N": "42"}


def test_paginates_every_segment_to_the_end(platform: Platform) -> None:
    old, new = _seed(platform, old=150, new=10, padding=20_000)  # ~3 MB: several pages
    result = run_cleanup(
        platform.dynamodb,
        TABLE,
        older_than_days=90,
        s3_client=platform.s3,
        bucket=BUCKET,
        segments=2,
        dry_run=False,
    )
    assert result.requests["scan"] > 2
    assert result.deleted == len(old)
    assert set(_ids(platform.all_items())) == new


class _Throttle:
    """DynamoDB cancelling a transaction for throttling: the first ``times`` TransactWriteItems
    calls are answered with TransactionCanceledException (reason ThrottlingError) and not run."""

    def __init__(self, client: Any, times: int) -> None:
        self.remaining = times
        client.meta.events.register("before-call.dynamodb.TransactWriteItems", self.before)

    def before(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        items = json.loads(params["body"])["TransactItems"]
        parsed = {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": "ThrottlingError"} for _ in items],
        }
        return AWSResponse("https://dynamodb", 400, HTTPHeaders(), None), parsed


def test_cancelled_transactions_are_retried_with_full_jitter_backoff(platform: Platform) -> None:
    old, new = _seed(platform, old=60, new=5)
    _Throttle(platform.dynamodb, times=3)
    delays: list[float] = []
    backoff = Backoff(base_s=0.1, cap_s=0.3, sleep=delays.append, rng=lambda: 1.0)
    result = run_cleanup(
        platform.dynamodb,
        TABLE,
        older_than_days=90,
        archive=False,
        segments=1,
        dry_run=False,
        backoff=backoff,
    )
    assert result.deleted == len(old)
    assert result.retries == 3
    assert set(_ids(platform.all_items())) == new
    assert all(0 < d <= 0.3 for d in delays)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=lambda: 1.0)
    assert [backoff.delay(a) for a in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert Backoff(base_s=0.1, rng=lambda: 0.25).delay(2) == pytest.approx(0.1)


def test_persistent_throttling_fails_loudly_after_bounded_attempts(platform: Platform) -> None:
    _seed(platform, old=30, new=0)
    _Throttle(platform.dynamodb, times=1000)
    backoff = Backoff(max_attempts=4, sleep=lambda _s: None)
    with pytest.raises(JobError, match="cancelled after 4 attempts"):
        run_cleanup(
            platform.dynamodb,
            TABLE,
            older_than_days=90,
            archive=False,
            segments=1,
            dry_run=False,
            backoff=backoff,
        )


@pytest.mark.parametrize(
    ("operation", "calls"),
    [
        ("TransactWriteItems", 0),
        ("TransactWriteItems", 1),
        ("TransactWriteItems", 5),
        ("PutObject", 2),
        ("PutObject", 3),
        ("Scan", 2),
    ],
)
def test_interrupted_cleanup_loses_nothing_and_a_rerun_finishes_without_duplicates(
    run: Any, platform: Platform, client_hooks: Any, operation: str, calls: int
) -> None:
    old, new = _seed(platform, old=120, new=10)
    args = ("cleanup", "--yes", "--chunk-size", "9", "--json")
    client_hooks(fail_after(operation, calls))
    with pytest.raises(Interrupt):
        run(*args, "--segments", "3")

    # Invariant after the crash: every item is still in the table or in the archive.
    remaining = set(_ids(platform.all_items()))
    archived_after_crash = _ids(archived_items(platform.s3, BUCKET))
    assert old <= remaining | set(archived_after_crash)
    assert new <= remaining

    client_hooks.clear()
    rerun = run(*args)  # another segment count: archive names no longer depend on it
    assert rerun.exit_code == 0, rerun.output
    if operation == "TransactWriteItems":
        # The crash hit between archive and delete: the rerun finished that chunk from the
        # lock's journal, deleting its rows under the archived object.
        assert json.loads(rerun.stdout)["recovered_objects"] >= 1
    assert set(_ids(platform.all_items())) == new
    archived = _ids(archived_items(platform.s3, BUCKET))
    duplicates = [tid for tid, n in Counter(archived).items() if n > 1]
    assert duplicates == []
    assert set(archived) == old


def test_time_budget_stops_early_and_reports_incomplete(platform: Platform) -> None:
    _seed(platform, old=10, new=0)
    result = run_cleanup(
        platform.dynamodb, TABLE, older_than_days=90, archive=False, dry_run=False, time_budget_s=0
    )
    assert result.complete is False
    assert result.deleted == 0


def test_segments_default_to_one_per_gib_of_table() -> None:
    assert choose_segments({"TableSizeBytes": 0}) == 1
    assert choose_segments({"TableSizeBytes": 3 * 2**30 + 1}) == 4
    assert choose_segments({"TableSizeBytes": 10**15}) == 16


def test_archive_requires_a_bucket(platform: Platform) -> None:
    with pytest.raises(JobError, match="archive bucket"):
        run_cleanup(platform.dynamodb, TABLE, older_than_days=90, dry_run=False)
