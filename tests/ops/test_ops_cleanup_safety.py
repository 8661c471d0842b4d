"""Cleanup under concurrency, change and interruption: the regression tests of the cleanup's
data-safety defects (overlapping runs, unguarded deletes, Ctrl-C, unverifiable archives,
destructive options from the environment) and the archive invariant after any mix of them.

The invariant: every row missing from the table is in exactly one current archive object, with
its last version, and ``ops cleanup --verify`` agrees.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from ops_testkit import BUCKET, REGION, TABLE, Interrupt, Platform, fail_after, txn_item
from payments.jobs import JobError
from payments.jobs import cleanup as cleanup_job
from payments.jobs.archive import ArchiveStore, item_line, verify_archive
from payments.jobs.cleanup import run_cleanup
from payments.jobs.lock import CleanupLock, LockHeld, LockLost
from payments.jobs.retention import cutoff_for
from payments.layout import cleanup_prefix
from payments.store import write
from payments.store.keys import LOCK_ID, key_id

from ops.cli import cleanup as cleanup_cli

# slow (the concurrency and interruption schedules): `make test` runs it, `make check` leaves it out.
pytestmark = pytest.mark.slow

CUTOFF = cutoff_for(90)
CUTOFF_MS = int(CUTOFF.timestamp() * 1000)
KEYS = ["transaction_id", "timestamp"]
STATUSES = ("COMPLETED", "REJECTED", "PENDING", "VALIDATING", "SETTLING", "FAILED")


def kid(item: dict[str, Any]) -> str:
    return key_id(KEYS, item)


def old_rows(n: int, start: int = 0, status: str = "COMPLETED") -> list[dict[str, Any]]:
    return [txn_item(start + i, CUTOFF_MS - 1 - i * 60_000, status=status) for i in range(n)]


def archive_lines(platform: Platform) -> Counter[str]:
    """Row key id -> number of current archive objects holding it; plus their versions."""
    owners: Counter[str] = Counter()
    for key in platform.s3_keys("cleanup/"):
        if key.endswith(".jsonl"):
            body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
            owners.update(kid(json.loads(line)["Item"]) for line in body.splitlines() if line.strip())
    return owners


def archived_versions(platform: Platform) -> dict[str, str]:
    versions: dict[str, str] = {}
    for key in platform.s3_keys("cleanup/"):
        if key.endswith(".jsonl"):
            body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
            for line in body.splitlines():
                if line.strip():
                    item = json.loads(line)["Item"]
                    versions[kid(item)] = item["version"]["N"]
    return versions


def assert_invariant(platform: Platform, last: dict[str, dict[str, Any]]) -> None:
    """``last``: every row ever written, in its last version, by key id."""
    present = {kid(i) for i in platform.all_items() if i["transaction_id"]["S"] != LOCK_ID}
    missing = set(last) - present
    owners = archive_lines(platform)
    versions = archived_versions(platform)
    assert [k for k in missing if owners[k] != 1] == [], "a deleted row is not in exactly one object"
    assert {k: versions[k] for k in missing} == {k: last[k]["version"]["N"] for k in missing}
    for k in missing:  # only finished rows are ever deleted
        assert last[k]["status"]["S"] in ("COMPLETED", "REJECTED")
    checked = verify_archive(platform.dynamodb, TABLE, platform.s3, BUCKET, CUTOFF.date())
    assert checked.ok, checked.problems
    # Manifests record deleted rows only; an interrupted chunk's object may also hold rows that
    # are still in the table (the next run reconciles it).
    assert checked.rows <= len(missing) <= checked.rows + checked.pending_rows
    if not checked.pending:
        assert checked.rows == len(missing)


class _Context:
    function_name = "payment-cleanup-test"
    aws_request_id = "req-1"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:payment-cleanup-test"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _clients() -> tuple[Any, Any]:
    return boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION)


def _apply(dynamodb: Any, s3: Any, **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "older_than_days": 90,
        "s3_client": s3,
        "bucket": BUCKET,
        "dry_run": False,
        "segments": 1,
        "chunk_items": 10,
    }
    args.update(kwargs)
    return run_cleanup(dynamodb, TABLE, **args)


# -- defect 1: overlapping runs ---------------------------------------------------------------
def test_a_second_run_is_refused_while_the_first_holds_the_lock(platform: Platform) -> None:
    rows = old_rows(40)
    platform.put(rows)
    first_d, first_s = _clients()
    refused: list[LockHeld] = []

    def overlap(**_: Any) -> None:  # the 03:00 job is mid-run when the operator starts one
        first_d.meta.events.unregister("before-call.dynamodb.TransactWriteItems", overlap)
        second_d, second_s = _clients()
        with pytest.raises(LockHeld) as caught:
            _apply(second_d, second_s, lock_owner="operator")
        refused.append(caught.value)

    first_d.meta.events.register("before-call.dynamodb.TransactWriteItems", overlap)
    result = _apply(first_d, first_s, lock_owner="job")
    assert refused and refused[0].owner == "job"
    assert result.deleted == 40
    assert_invariant(platform, {kid(r): r for r in rows})
    # The lock is released: the next run gets it.
    assert _apply(platform.dynamodb, platform.s3).deleted == 0


def test_cli_and_handler_respect_a_held_lock(run: Any, platform: Platform, monkeypatch: Any) -> None:
    rows = old_rows(5)
    platform.put(rows)
    lock = CleanupLock(platform.dynamodb, TABLE, KEYS, owner="someone-else", heartbeat=False)
    lock.acquire()
    result = run("cleanup", "--yes", "--json")
    assert result.exit_code == 1
    assert "another cleanup is running" in result.stderr and "someone-else" in result.stderr
    assert len(platform.all_items()) == 6  # five rows and the lock item

    from payments.handlers import cleanup as job
    from payments.jobs import runtime as jobs

    for name, value in (
        ("TRANSACTIONS_TABLE", TABLE),
        ("ARCHIVE_BUCKET", BUCKET),
        ("DAY_SHARDS", "16"),
        ("POWERTOOLS_TRACE_DISABLED", "true"),
        ("POWERTOOLS_SERVICE_NAME", "payment-test"),
    ):
        monkeypatch.setenv(name, value)
    jobs.reset()
    summary = job.handler({"older_than_days": 90, "archive": True, "dry_run": False}, _Context())
    jobs.reset()
    assert summary["skipped"] == "locked" and summary["lock_owner"] == "someone-else"
    lock.release()
    assert run("cleanup", "--yes", "--json").exit_code == 0
    assert [i["transaction_id"]["S"] for i in platform.all_items()] == []


def test_a_stale_lock_is_taken_over_only_after_its_lease_expired(platform: Platform) -> None:
    platform.put(old_rows(3))
    now = [1_000_000.0]
    crashed = CleanupLock(
        platform.dynamodb, TABLE, KEYS, owner="crashed", lease_s=100, clock=lambda: now[0], heartbeat=False
    )
    crashed.acquire()  # and never released
    now[0] += 99
    with pytest.raises(LockHeld):
        _apply(platform.dynamodb, platform.s3, clock=lambda: now[0])
    now[0] += 2
    assert _apply(platform.dynamodb, platform.s3, clock=lambda: now[0]).deleted == 3


def test_two_real_threads_never_lose_an_archived_row(platform: Platform) -> None:
    rows = old_rows(120)
    platform.put(rows)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        dynamodb, s3 = _clients()
        for _ in range(3):
            try:
                results.append(_apply(dynamodb, s3, lock_owner=name, chunk_items=7, segments=2))
            except LockHeld:
                continue
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(r.deleted for r in results) == 120
    assert_invariant(platform, {kid(r): r for r in rows})


class _NoLock(CleanupLock):
    """A lock that always grants and keeps no journal: two runs "bypass the lock"."""

    def acquire(self) -> dict[str, str]:
        return {}

    def ensure(self) -> None:
        return None

    def add_pending(self, object_key: str, mode: str) -> None:
        return None

    def remove_pending(self, object_key: str) -> None:
        return None

    def release(self) -> None:
        return None

    def fence_check(self) -> Any:  # the lock item never exists: the check always holds
        return write.transact_condition_check(
            self.table, self.key, condition="attribute_not_exists(#o)", names={"#o": "owner"}
        )


def test_without_the_lock_guarded_deletes_and_conditional_writes_still_keep_one_copy(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: even two runs that bypass the lock (a lock that always grants) and interleave on
    every row archive each deleted row exactly once: the loser's delete fails its condition and
    it takes the row back out of its own object."""
    rows = old_rows(30)
    platform.put(rows)
    a_dynamodb, a_s3 = _clients()
    done = threading.Event()

    def b_runs_between_a_archive_and_delete(**_: Any) -> None:
        a_dynamodb.meta.events.unregister(
            "before-call.dynamodb.TransactWriteItems", b_runs_between_a_archive_and_delete
        )
        b_dynamodb, b_s3 = _clients()
        _apply(b_dynamodb, b_s3, chunk_items=30)
        done.set()

    a_dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", b_runs_between_a_archive_and_delete
    )
    monkeypatch.setattr(cleanup_job, "CleanupLock", _NoLock)
    a = _apply(a_dynamodb, a_s3, chunk_items=30)
    assert done.is_set()
    assert a.deleted == 0 and a.vanished == 30
    assert_invariant(platform, {kid(r): r for r in rows})


def test_a_paused_run_that_lost_its_lease_stops_and_the_next_run_reconciles(platform: Platform) -> None:
    rows = old_rows(25)
    platform.put(rows)
    now = [2_000_000.0]
    a_dynamodb, a_s3 = _clients()

    def pause(**_: Any) -> None:  # e.g. a laptop suspended right after the archive write
        a_s3.meta.events.unregister("after-call.s3.PutObject", pause)
        now[0] += 1000

    a_s3.meta.events.register("after-call.s3.PutObject", pause)
    with pytest.raises(LockLost):
        _apply(a_dynamodb, a_s3, clock=lambda: now[0], lock_lease_s=100, chunk_items=25)
    assert len(platform.all_items()) == 26  # nothing deleted after the lease ran out
    b = _apply(platform.dynamodb, platform.s3, clock=lambda: now[0], lock_lease_s=100)
    assert b.recovered_objects == 1 and b.recovered_rows == 25
    assert_invariant(platform, {kid(r): r for r in rows})
    assert platform.all_items() == []


# -- defect 2: only finished rows, guarded by version -----------------------------------------
def test_only_finished_rows_go_and_unfinished_ones_are_counted_and_listed(
    run: Any, platform: Platform
) -> None:
    rows = [r for n, status in enumerate(STATUSES) for r in old_rows(3, start=100 * n, status=status)]
    platform.put(rows)
    result = run("cleanup", "--yes", "--show-unfinished", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["deleted"] == 6
    assert summary["unfinished"] == 12
    assert summary["unfinished_statuses"] == {"FAILED": 3, "PENDING": 3, "SETTLING": 3, "VALIDATING": 3}
    assert {r["status"] for r in summary["unfinished_rows"]} == {
        "FAILED",
        "PENDING",
        "SETTLING",
        "VALIDATING",
    }
    left = Counter(i["status"]["S"] for i in platform.all_items())
    assert left == {"FAILED": 3, "PENDING": 3, "SETTLING": 3, "VALIDATING": 3}
    table = run("cleanup", "--dry-run", "--show-unfinished")
    assert "12 rows older than the cutoff are not finished" in table.stderr
    assert "SETTLING" in table.stdout and "Unfinished rows" in table.stdout


def _between_archive_and_delete(platform: Platform, dynamodb: Any, change: Any) -> None:
    def hook(**_: Any) -> None:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", hook)
        change()

    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)


def test_a_row_that_changed_after_archiving_is_archived_again_in_its_new_version(platform: Platform) -> None:
    rows = old_rows(5)
    platform.put(rows)
    target = rows[2]
    dynamodb, s3 = _clients()

    def change() -> None:
        platform.dynamodb.update_item(
            TableName=TABLE,
            Key={k: target[k] for k in KEYS},
            UpdateExpression="SET version = :v, note = :n",
            ExpressionAttributeValues={":v": {"N": "2"}, ":n": {"S": "refund flag"}},
        )

    _between_archive_and_delete(platform, dynamodb, change)
    result = _apply(dynamodb, s3)
    assert (result.deleted, result.rearchived) == (5, 1)
    changed = dict(target, version={"N": "2"}, note={"S": "refund flag"})
    assert archived_versions(platform)[kid(target)] == "2"
    assert_invariant(platform, {kid(r): r for r in rows} | {kid(target): changed})


def reopen(platform: Platform, row: dict[str, Any]) -> None:
    """Another writer moves a finished row back to SETTLING (version 2): it is no longer eligible."""
    platform.dynamodb.update_item(
        TableName=TABLE,
        Key={k: row[k] for k in KEYS},
        UpdateExpression="SET #s = :s, version = :v",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "SETTLING"}, ":v": {"N": "2"}},
    )


def test_a_row_that_left_a_finished_status_or_vanished_is_kept_out_of_the_archive(platform: Platform) -> None:
    rows = old_rows(6)
    platform.put(rows)
    reopened, gone = rows[1], rows[4]
    dynamodb, s3 = _clients()

    def change() -> None:
        reopen(platform, reopened)
        platform.dynamodb.delete_item(TableName=TABLE, Key={k: gone[k] for k in KEYS})

    _between_archive_and_delete(platform, dynamodb, change)
    result = _apply(dynamodb, s3)
    assert (result.deleted, result.changed_skipped, result.vanished) == (4, 1, 1)
    owners = archive_lines(platform)
    assert owners[kid(reopened)] == 0 and owners[kid(gone)] == 0
    assert [i["status"]["S"] for i in platform.all_items()] == ["SETTLING"]


def test_deletes_are_conditioned_on_the_archived_version(platform: Platform) -> None:
    platform.put(old_rows(3))
    sent: list[dict[str, Any]] = []
    dynamodb, s3 = _clients()
    dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems",
        lambda params, **_: sent.extend(json.loads(params["body"])["TransactItems"]),
    )
    _apply(dynamodb, s3)
    assert len(sent) == 4  # three deletes and the lock's fencing check
    fence = sent.pop()["ConditionCheck"]
    assert fence["Key"]["transaction_id"] == {"S": LOCK_ID}
    assert "#fence = :fence" in fence["ConditionExpression"]
    for entry in sent:
        delete = entry["Delete"]
        assert "#v = :v" in delete["ConditionExpression"]
        assert delete["ExpressionAttributeValues"][":v"] == {"N": "1"}
        assert "#st IN (:t0, :t1)" in delete["ConditionExpression"]
        values = delete["ExpressionAttributeValues"]
        assert {values[":t0"]["S"], values[":t1"]["S"]} == {"COMPLETED", "REJECTED"}


# -- defect 3: Ctrl-C ---------------------------------------------------------------------------
def test_stop_request_ends_the_run_at_a_group_boundary_with_a_consistent_archive(platform: Platform) -> None:
    rows = old_rows(60)
    platform.put(rows)
    stop = threading.Event()
    dynamodb, s3 = _clients()
    calls = {"n": 0}

    def ctrl_c(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            stop.set()

    dynamodb.meta.events.register("after-call.dynamodb.TransactWriteItems", ctrl_c)
    result = _apply(dynamodb, s3, stop=stop)
    assert result.interrupted and not result.complete
    assert result.deleted == 20  # two chunks of 10, then it stopped
    assert_invariant(platform, {kid(r): r for r in rows})
    assert verify_archive(platform.dynamodb, TABLE, platform.s3, BUCKET, CUTOFF.date()).pending == []


# -- defect 6: destructive options only from the command line -----------------------------------
def test_destructive_options_are_never_read_from_the_environment(run: Any, platform: Platform) -> None:
    rows = old_rows(8)
    platform.put(rows)
    env = {
        "OPS_CLEANUP_YES": "1",
        "OPS_CLEANUP_Y": "1",
        "OPS_CLEANUP_NO_ARCHIVE": "1",
        "OPS_CLEANUP_CONFIRM_NO_ARCHIVE": "1",
        "OPS_CLEANUP_FORCE": "1",
        "OPS_CLEANUP_ARCHIVE": "false",
    }
    result = run("cleanup", "--json", env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True and summary["archive"] is True
    assert len(platform.all_items()) == 8
    too_short = run("cleanup", "--older-than", "9", "--json", env=env)
    assert too_short.exit_code == 2
    assert "below the deployed retention of 90 days" in too_short.output
    help_text = run("cleanup", "--help").stdout
    assert "OPS_CLEANUP_YES" not in help_text and "OPS_CLEANUP_NO_ARCHIVE" not in help_text


def test_no_archive_needs_a_second_flag_and_warns(run: Any, platform: Platform) -> None:
    platform.put(old_rows(4))
    refused = run("cleanup", "--no-archive", "--yes")
    assert refused.exit_code == 2 and "--confirm-no-archive" in refused.output
    assert len(platform.all_items()) == 4
    done = run("cleanup", "--no-archive", "--confirm-no-archive", "--yes", "--json")
    assert done.exit_code == 0
    assert "WARNING: --no-archive" in done.stderr
    assert json.loads(done.stdout)["deleted"] == 4


def test_retention_below_the_deployed_minimum_needs_force(run: Any, platform: Platform) -> None:
    recent = [txn_item(i, int((CUTOFF + dt.timedelta(days=30)).timestamp() * 1000)) for i in range(3)]
    platform.put(recent)
    assert run("cleanup", "--older-than", "30d", "--yes").exit_code == 2
    forced = run("cleanup", "--older-than", "30d", "--yes", "--force", "--json")
    assert forced.exit_code == 0, forced.output


def test_without_yes_it_shows_the_count_and_asks(run: Any, platform: Platform, monkeypatch: Any) -> None:
    platform.put(old_rows(7))
    monkeypatch.setattr(cleanup_cli, "interactive", lambda: True)
    no = run("cleanup", input="n\n")
    assert "Archive and delete 7 rows" in no.output and "nothing was changed" in no.output
    assert len(platform.all_items()) == 7
    yes = run("cleanup", input="y\n")
    assert yes.exit_code == 0, yes.output
    assert platform.all_items() == []


# -- defect 8: verifiable archives --------------------------------------------------------------
def test_verify_proves_every_deleted_row_is_archived_and_catches_tampering(
    run: Any, platform: Platform
) -> None:
    rows = old_rows(30)
    platform.put(rows)
    assert run("cleanup", "--yes", "--chunk-size", "10").exit_code == 0
    date = CUTOFF.date().isoformat()
    good = run("cleanup", "--verify", date, "--json")
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["deleted_rows_verified"] == 30
    # Drop one row from one archive object (a plain overwrite, as the old cleanup did).
    key = sorted(k for k in platform.s3_keys("cleanup/") if k.endswith(".jsonl"))[0]
    lines = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    platform.s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(lines[1:]) + "\n").encode())
    bad = run("cleanup", "--verify", date, "--json")
    assert bad.exit_code == 1
    problems = json.loads(bad.stdout)["problems"]
    assert any("SHA-256" in p for p in problems) and any("is not in the object" in p for p in problems)


def test_conditional_archive_writes_merge_with_a_concurrent_writer(platform: Platform) -> None:
    """moto 5.2.5 enforces If-Match / If-None-Match on PutObject (412), so this runs against it:
    another writer changes the object between our read and our write; we re-read and merge."""
    store = ArchiveStore(platform.s3, BUCKET, kid)
    a, b, c = old_rows(3)
    obj = store.create_object("cleanup/x/obj.jsonl", [a, b])
    with pytest.raises(JobError, match="already exists"):
        store.create_object("cleanup/x/obj.jsonl", [c])

    def concurrent(params: dict[str, Any], **_: Any) -> None:
        if params.get("headers", {}).get("If-Match"):
            platform.s3.meta.events.unregister("before-call.s3.PutObject", concurrent)
            other = ArchiveStore(platform.s3, BUCKET, kid)
            theirs = other.read(obj.key)
            assert theirs is not None
            other.patch(theirs, {kid(c): item_line(c)})

    platform.s3.meta.events.register("before-call.s3.PutObject", concurrent)
    store.patch(obj, {kid(a): None})
    assert store.merges == 1
    final = store.read(obj.key)
    assert final is not None and set(final.lines) == {kid(b), kid(c)}


# -- backfill ------------------------------------------------------------------------------------
def test_backfill_ttl_leaves_an_audit_entry(run: Any, platform: Platform) -> None:
    rows = old_rows(6)
    platform.put(rows)
    result = run("cleanup", "--backfill-ttl", "--yes", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    record = platform.s3_json(summary["summary"].split(f"{BUCKET}/", 1)[1])
    assert record["mode"] == "backfill-ttl" and record["ttl_set"] == 6 and record["owner"]
    for item in platform.all_items():
        audit = item["ttl_backfill"]["M"]
        assert audit["run_id"]["S"] == summary["run_id"]
        assert audit["archived_to"]["S"] in record["objects"]
    # Rows a backfill archived are TTL's to delete: a later delete run does not archive them again.
    again = json.loads(run("cleanup", "--yes", "--json").stdout)
    assert again["matched"] == 0 and again["deleted"] == 0


# -- the invariant under seeded random interleavings ---------------------------------------------
def _every_other(action: Any) -> Any:
    seen = {"n": 0}

    def hook(**_: Any) -> None:
        seen["n"] += 1
        if seen["n"] % 2 == 1:
            action()

    return hook


def _after_calls(limit: int, action: Any) -> Any:
    seen = {"n": 0}

    def hook(**_: Any) -> None:
        seen["n"] += 1
        if seen["n"] >= limit:
            action()

    return hook


@pytest.mark.parametrize("seed", range(8))
def test_invariant_after_any_mix_of_concurrent_changed_and_interrupted_runs(
    platform: Platform, client_hooks: Any, seed: int
) -> None:
    rng = random.Random(seed)
    rows = [
        txn_item(i, CUTOFF_MS - 1 - rng.randrange(0, 30) * 86_400_000 - i, status=rng.choice(STATUSES))
        for i in range(rng.randrange(40, 90))
    ] + [txn_item(1000 + i, CUTOFF_MS + i) for i in range(5)]
    platform.put(rows)
    last = {kid(r): r for r in rows}
    writer = boto3.client("dynamodb", region_name=REGION)

    def touch(n: int) -> None:
        """A concurrent writer: finish, bump or reopen random rows that still exist."""
        for item in rng.sample(list(last.values()), k=min(n, len(last))):
            status = rng.choice(STATUSES)
            version = str(int(item["version"]["N"]) + 1)
            try:
                writer.update_item(
                    TableName=TABLE,
                    Key={k: item[k] for k in KEYS},
                    UpdateExpression="SET #s = :s, version = :v",
                    ConditionExpression="attribute_exists(transaction_id)",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": status}, ":v": {"N": version}},
                )
            except writer.exceptions.ConditionalCheckFailedException:
                continue  # already deleted
            last[kid(item)] = dict(item, status={"S": status}, version={"N": version})

    for _step in range(4):
        dynamodb, s3 = _clients()
        action = rng.choice(["crash", "change", "stop", "plain"])
        kwargs: dict[str, Any] = {"chunk_items": rng.choice([3, 7, 20]), "segments": rng.choice([1, 2])}
        if action == "crash":
            operation = rng.choice(["TransactWriteItems", "PutObject", "UpdateItem", "Scan"])
            fail_after(operation, rng.randrange(1, 6))(s3 if operation == "PutObject" else dynamodb)
        elif action == "change":
            # One segment: the concurrent writer below must not race itself from two workers.
            kwargs["segments"] = 1
            dynamodb.meta.events.register(
                "before-call.dynamodb.TransactWriteItems", _every_other(lambda: touch(3))
            )
        elif action == "stop":
            stop = threading.Event()
            dynamodb.meta.events.register(
                "after-call.dynamodb.TransactWriteItems", _after_calls(rng.randrange(1, 4), stop.set)
            )
            kwargs["stop"] = stop
        with contextlib.suppress(Interrupt, LockHeld):
            _apply(dynamodb, s3, **kwargs)
        touch(2)
        assert_invariant(platform, last)
    # An injected crash may have hit the lock's own release: a later run takes over after the
    # lease (here: an hour later).
    final = _apply(platform.dynamodb, platform.s3, clock=lambda: time.time() + 3600)
    assert final.complete
    assert_invariant(platform, last)
    remaining = {kid(i): i for i in platform.all_items()}
    for item in remaining.values():  # what is left is new, unfinished, or changed too late
        assert int(item["timestamp"]["N"]) >= CUTOFF_MS or item["status"]["S"] not in (
            "COMPLETED",
            "REJECTED",
        )
    checked = verify_archive(platform.dynamodb, TABLE, platform.s3, BUCKET, CUTOFF.date())
    assert checked.pending == []
    assert cleanup_prefix(CUTOFF.date()) == checked.prefix
