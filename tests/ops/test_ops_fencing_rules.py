"""The fencing core one rule at a time: how the next run reconciles a chunk a paused run left
journalled (against the table as it is *now*), what a renewal writes, what a held lock says, and
the retention floor. They are the rules the mutation run (``make mutation TARGET=fencing``) showed
no other test held.

Run A archives a chunk and is then paused past its lease (its clock jumps; the next ``ensure``
stops it with ``LockLost`` before any delete). Between A and the next run B, other writers change
the table; B takes the lock, finds A's journal entry and reconciles the chunk.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from ops_testkit import BUCKET, TABLE, Platform
from payments.clock import iso_from_ms
from payments.jobs import JobError
from payments.jobs.lock import TTL_GRACE_S, CleanupLock, LockHeld, LockLost
from payments.jobs.reconcile import current_items
from payments.jobs.retention import RetentionTooShort, check_retention
from payments.store.keys import lock_key
from test_ops_cleanup_safety import (
    KEYS,
    _apply,
    _clients,
    archive_lines,
    archived_versions,
    assert_invariant,
    kid,
    old_rows,
    reopen,
)

LEASE_S = 100.0


def _paused_after_archive(platform: Platform, rows: list[dict[str, Any]], **kwargs: Any) -> list[float]:
    """Run A archives ``rows`` in one chunk, then its clock jumps past the lease: it stops with
    ``LockLost`` before deleting anything. Returns the shared clock (B runs on it afterwards)."""
    platform.put(rows)
    now = [2_000_000.0]
    a_dynamodb, a_s3 = _clients()

    def pause(**_: Any) -> None:
        a_s3.meta.events.unregister("after-call.s3.PutObject", pause)
        now[0] += 10 * LEASE_S

    a_s3.meta.events.register("after-call.s3.PutObject", pause)
    with pytest.raises(LockLost):
        _apply(a_dynamodb, a_s3, clock=lambda: now[0], lock_lease_s=LEASE_S, chunk_items=len(rows), **kwargs)
    assert len(platform.all_items()) == len(rows) + 1  # the rows and the lock item (its journal)
    return now


def _update(
    platform: Platform, row: dict[str, Any], expression: str, values: dict[str, Any] | None = None
) -> None:
    platform.dynamodb.update_item(
        TableName=TABLE,
        Key={k: row[k] for k in KEYS},
        UpdateExpression=expression,
        **({"ExpressionAttributeValues": values} if values else {}),
    )


def _objects(platform: Platform) -> list[str]:
    return [k for k in platform.s3_keys("cleanup/") if k.endswith(".jsonl")]


def test_a_run_fenced_out_between_archive_and_delete_deletes_nothing_and_says_why(platform: Platform) -> None:
    """Run A's clock stays inside its lease while run B (a host far ahead) takes the lock over after
    A archived its chunk: A's own checks pass, and the fencing token in its delete transaction stops
    it, with what to expect."""
    rows = old_rows(3)
    platform.put(rows)
    a_dynamodb, a_s3 = _clients()

    def take_over(**_: Any) -> None:
        a_s3.meta.events.unregister("after-call.s3.PutObject", take_over)
        later = 2_000_000.0 + 10 * LEASE_S
        b = CleanupLock(platform.dynamodb, TABLE, KEYS, owner="b", lease_s=LEASE_S, clock=lambda: later)
        b.heartbeat = False
        b.acquire()

    a_s3.meta.events.register("after-call.s3.PutObject", take_over)
    with pytest.raises(LockLost) as lost:
        _apply(a_dynamodb, a_s3, clock=lambda: 2_000_000.0, lock_lease_s=LEASE_S, chunk_items=len(rows))
    assert str(lost.value) == (
        "the cleanup lock was taken over by another run (fencing token); "
        "stopped before deleting — the run holding the lock reconciles"
    )
    assert len(platform.all_items()) == len(rows) + 1  # every row still there, and the lock item


def test_a_journalled_chunk_is_reconciled_against_the_table_as_it_is_now(platform: Platform) -> None:
    rows = old_rows(5)
    now = _paused_after_archive(platform, rows)
    changed, reopened, vanished, with_ttl = rows[0], rows[1], rows[2], rows[3]
    _update(platform, changed, "SET version = :v, note = :n", {":v": {"N": "2"}, ":n": {"S": "refund flag"}})
    reopen(platform, reopened)
    platform.dynamodb.delete_item(TableName=TABLE, Key={k: vanished[k] for k in KEYS})
    _update(platform, with_ttl, "SET expires_at = :t", {":t": {"N": "2000000000"}})

    b = _apply(platform.dynamodb, platform.s3, clock=lambda: now[0], lock_lease_s=LEASE_S)

    assert (b.recovered_objects, b.recovered_rows) == (1, 4)
    left = {kid(i) for i in platform.all_items()}
    assert left == {kid(reopened)}  # the row that left a finished status stays, every other row went
    assert archived_versions(platform)[kid(changed)] == "2"  # archived again in its new version
    assert archive_lines(platform)[kid(reopened)] == 0  # and the reopened row is out of the archive
    for key in _objects(platform):
        body = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        assert all(line.strip() for line in body.splitlines()), f"{key} holds a blank line"
    last = {kid(r): r for r in rows} | {
        kid(changed): dict(changed, version={"N": "2"}, note={"S": "refund flag"})
    }
    last[kid(with_ttl)] = dict(with_ttl, expires_at={"N": "2000000000"})
    del last[kid(reopened)]
    assert_invariant(platform, last)


def test_a_reconciled_chunk_is_stamped_with_the_new_holders_fence_even_unchanged(platform: Platform) -> None:
    """B writes the object it reconciles even when no row changed: the object then records B's
    fence, so the paused A's conditional writes to it are refused when it wakes."""
    rows = old_rows(3)
    now = _paused_after_archive(platform, rows)
    [key] = _objects(platform)
    before = platform.s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]

    b = _apply(platform.dynamodb, platform.s3, clock=lambda: now[0], lock_lease_s=LEASE_S)

    after = platform.s3.head_object(Bucket=BUCKET, Key=key)["Metadata"]
    assert (before["fence-token"], after["fence-token"]) == ("1", "2")
    assert after["fence-owner"] != before["fence-owner"]
    assert b.recovered_objects == 1 and platform.all_items() == []


def _manifest_mode(platform: Platform) -> list[str]:
    keys = [k for k in platform.s3_keys("cleanup/") if k.endswith(".manifest.json")]
    return [json.loads(platform.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())["mode"] for k in keys]


def test_a_journalled_ttl_backfill_is_finished_as_a_backfill_not_as_a_delete(platform: Platform) -> None:
    """A's TTL write of one row landed before it stopped: that row is done (it stays archived, its
    TTL will remove it); the others get their TTL now; nothing is deleted; the manifest says which
    mode the chunk was written in."""
    rows = old_rows(3)
    now = _paused_after_archive(platform, rows, backfill_ttl=True)
    _update(platform, rows[0], "SET expires_at = :t", {":t": {"N": "2000000000"}})

    b = _apply(platform.dynamodb, platform.s3, clock=lambda: now[0], lock_lease_s=LEASE_S, backfill_ttl=True)

    assert (b.recovered_objects, b.recovered_rows) == (1, 3)
    items = [i for i in platform.all_items() if kid(i) in {kid(r) for r in rows}]
    assert len(items) == 3 and all("expires_at" in i for i in items)  # nothing deleted: TTL's to remove
    assert archive_lines(platform) == {kid(r): 1 for r in rows}
    assert _manifest_mode(platform) == ["backfill-ttl"]


def test_a_reconciled_delete_chunks_manifest_says_delete(platform: Platform) -> None:
    rows = old_rows(2)
    now = _paused_after_archive(platform, rows)

    _apply(platform.dynamodb, platform.s3, clock=lambda: now[0], lock_lease_s=LEASE_S)

    assert _manifest_mode(platform) == ["delete"]


def test_a_chunk_the_paused_run_writes_just_as_it_is_reconciled_is_read_not_overwritten(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconciler saw no object, but the paused run's PUT lands before the reconciler's
    If-None-Match create: the create is refused and the reconciler reads what was written."""
    from payments.jobs import archive

    rows = old_rows(3)
    now = _paused_after_archive(platform, rows)
    monkeypatch.setattr(archive.ArchiveStore, "exists", lambda self, key: False)

    b = _apply(platform.dynamodb, platform.s3, clock=lambda: now[0], lock_lease_s=LEASE_S)

    assert (b.recovered_objects, b.recovered_rows) == (1, 3)
    assert platform.all_items() == []
    assert archive_lines(platform) == {kid(r): 1 for r in rows}


# ---------------------------------------------------------------------------- the lease


def _lock(platform: Platform, clock: list[float]) -> CleanupLock:
    return CleanupLock(
        platform.dynamodb, TABLE, KEYS, owner="me", lease_s=LEASE_S, clock=lambda: clock[0], heartbeat=False
    )


def _lock_item(platform: Platform) -> dict[str, Any]:
    return platform.dynamodb.get_item(TableName=TABLE, Key=lock_key(KEYS), ConsistentRead=True)["Item"]


def test_a_renewal_extends_the_lease_and_keeps_a_journal_from_ttl(platform: Platform) -> None:
    clock = [1_000.0]
    lock = _lock(platform, clock)
    lock.acquire()
    clock[0] += 30

    lock.renew()

    item = _lock_item(platform)
    until = clock[0] + LEASE_S
    assert item["lease_expires_at"]["N"] == str(int(until * 1000)) and lock.lease_until == until
    assert item["expires_at"]["N"] == str(int(until) + TTL_GRACE_S)
    lock.add_pending("cleanup/x.jsonl", "delete")
    clock[0] += 30

    lock.renew()

    item = _lock_item(platform)
    assert item["lease_expires_at"]["N"] == str(int((clock[0] + LEASE_S) * 1000))
    assert "expires_at" not in item  # a journal outlives its run until a later run finishes it


def test_a_held_lock_names_its_holder_and_until_when(platform: Platform) -> None:
    clock = [1_000.0]
    _lock(platform, clock).acquire()
    other = CleanupLock(
        platform.dynamodb, TABLE, KEYS, owner="you", lease_s=LEASE_S, clock=lambda: clock[0], heartbeat=False
    )

    with pytest.raises(LockHeld) as held:
        other.acquire()

    until_ms = int((1_000.0 + LEASE_S) * 1000)
    assert (held.value.owner, held.value.lease_expires_ms) == ("me", until_ms)
    assert str(held.value) == (
        f"another cleanup is running (lock held by me until {iso_from_ms(until_ms)}); "
        "wait for it, or see docs/runbooks.md 'Cleanup lock' if it is stuck"
    )


# ---------------------------------------------------------------------------- retention


def test_the_retention_floor_is_one_day_and_the_deployed_retention_needs_force() -> None:
    check_retention(1, 1)
    check_retention(90, 90)
    check_retention(30, 90, force=True)
    with pytest.raises(JobError, match=r"^--older-than must be at least 1 day$"):
        check_retention(0, 0, force=True)
    with pytest.raises(RetentionTooShort) as short:
        check_retention(89, 90)
    assert str(short.value) == (
        "--older-than 89d is below the deployed retention of 90 days "
        "(cleanup_retention_days); pass --force if that is really meant"
    )


# ---------------------------------------------------------------------------- reading a chunk's rows


class _Backoff:
    max_attempts = 3

    def __init__(self) -> None:
        self.waits: list[int] = []

    def wait(self, attempt: int) -> None:
        self.waits.append(attempt)


class _BatchGet:
    """BatchGetItem answering from ``rows``, leaving the first ``unprocessed`` calls' last key
    unprocessed (throttling), and never naming ``Responses`` when it processed nothing."""

    def __init__(self, rows: dict[str, dict[str, Any]], unprocessed: int) -> None:
        self.rows, self.unprocessed, self.requests = rows, unprocessed, []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(RequestItems)
        request = RequestItems[TABLE]
        keys = list(request["Keys"])
        held = keys[-1:] if len(self.requests) <= self.unprocessed else []
        served = [
            self.rows[k["transaction_id"]["S"]]
            for k in keys
            if k not in held and k["transaction_id"]["S"] in self.rows
        ]
        response: dict[str, Any] = {"Responses": {TABLE: served}} if served else {}
        if held:
            response["UnprocessedKeys"] = {TABLE: {**request, "Keys": held}}
        return response


def _run(client: _BatchGet) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        dynamodb=client,
        backoff=_Backoff(),
        result=SimpleNamespace(table=TABLE),
        key_id=lambda item: item["transaction_id"]["S"],
    )


def _keys(n: int) -> list[dict[str, Any]]:
    return [{"transaction_id": {"S": f"t{i:03}"}, "timestamp": {"N": "1"}} for i in range(n)]


def test_a_chunks_rows_are_read_consistently_in_batches_of_a_hundred() -> None:
    keys = _keys(250)
    client = _BatchGet(
        {k["transaction_id"]["S"]: k for k in keys[:-1]}, unprocessed=0
    )  # the last one is gone

    found = current_items(_run(client), keys)

    assert sorted(found) == [k["transaction_id"]["S"] for k in keys[:-1]]
    assert [len(r[TABLE]["Keys"]) for r in client.requests] == [100, 100, 50]
    assert all(r[TABLE]["ConsistentRead"] is True for r in client.requests)


def test_unprocessed_keys_are_asked_again_after_a_back_off() -> None:
    keys = _keys(3)
    client = _BatchGet({k["transaction_id"]["S"]: k for k in keys}, unprocessed=1)
    run = _run(client)

    found = current_items(run, keys)

    assert sorted(found) == ["t000", "t001", "t002"]
    assert [r[TABLE]["Keys"] for r in client.requests] == [keys, keys[-1:]]
    assert run.backoff.waits == [1]


def test_rows_that_stay_throttled_stop_the_run_with_what_to_do() -> None:
    keys = _keys(1)
    client = _BatchGet({"t000": keys[0]}, unprocessed=99)
    run = _run(client)

    with pytest.raises(
        JobError, match=r"^reading rows of an interrupted chunk stayed throttled; rerun the cleanup$"
    ):
        current_items(run, keys)

    assert len(client.requests) == _Backoff.max_attempts and run.backoff.waits == [1, 2, 3]


# ---------------------------------------------------------------------------- the lease, continued


def test_a_run_whose_lock_was_taken_over_stops_at_its_next_lock_write(platform: Platform) -> None:
    clock = [1_000.0]
    mine = _lock(platform, clock)
    mine.acquire()
    clock[0] += LEASE_S + 1  # my lease ran out; another run takes the lock over
    CleanupLock(
        platform.dynamodb, TABLE, KEYS, owner="you", lease_s=LEASE_S, clock=lambda: clock[0], heartbeat=False
    ).acquire()
    clock[0] = 1_001.0  # and my clock says my lease is still valid

    with pytest.raises(LockLost, match=r"^the cleanup lock was taken over by another run; stopped$"):
        mine.renew()

    assert mine.lost
    with pytest.raises(LockLost):
        mine.ensure()  # whatever the clock says, no further destructive step


def test_the_lease_ends_a_safety_margin_early_and_a_lost_lease_stays_lost(platform: Platform) -> None:
    clock = [1_000.0]
    lock = _lock(platform, clock)
    lock.acquire()
    assert lock.margin_s > 0
    end = lock.lease_until - lock.margin_s

    clock[0] = end - 0.001
    lock.ensure()  # still inside the lease, short of its safety margin
    clock[0] = end  # the margin's first instant: no destructive step may start
    with pytest.raises(LockLost) as lost:
        lock.ensure()
    assert str(lost.value) == (
        "the cleanup lock's lease ran out (the run was paused or could not renew it); "
        "stopped before the next change — the next run reconciles what this one left"
    )
    assert lock.lost is True
    clock[0] = 1_000.0  # the clock steps back (NTP, a skewed host): the run stays stopped
    with pytest.raises(LockLost):
        lock.ensure()


def test_the_journal_keeps_its_entries_and_gets_a_ttl_only_once_empty(platform: Platform) -> None:
    clock = [1_000.0]
    lock = _lock(platform, clock)
    lock.acquire()
    lock.add_pending("cleanup/a.jsonl", "delete")
    lock.add_pending("cleanup/b.jsonl", "backfill-ttl")
    assert lock.pending == {"cleanup/a.jsonl": "delete", "cleanup/b.jsonl": "backfill-ttl"}

    lock.remove_pending("cleanup/a.jsonl")

    item = _lock_item(platform)
    assert set(item["pending"]["M"]) == {"cleanup/b.jsonl"} and "expires_at" not in item
    assert lock.pending == {"cleanup/b.jsonl": "backfill-ttl"}

    lock.remove_pending("cleanup/b.jsonl")

    item = _lock_item(platform)
    assert item["pending"]["M"] == {} and lock.pending == {}
    assert item["expires_at"]["N"] == str(int(lock.lease_until) + TTL_GRACE_S)


def test_an_acquired_lock_renews_itself_in_the_background(platform: Platform) -> None:
    """With its heartbeat on, a run that takes the lock keeps it without calling renew itself."""
    lock = CleanupLock(platform.dynamodb, TABLE, KEYS, owner="me", lease_s=0.4)
    lock.acquire()
    first = int(_lock_item(platform)["lease_expires_at"]["N"])
    try:
        deadline = time.monotonic() + 5
        while int(_lock_item(platform)["lease_expires_at"]["N"]) == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert int(_lock_item(platform)["lease_expires_at"]["N"]) > first, "no renewal within 5 s"
    finally:
        lock.release()


def test_the_heartbeat_renews_every_quarter_lease_and_logs_a_failed_renewal(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    """The heartbeat loop run in the test's thread: its waits are recorded instead of slept."""
    lock = _lock(platform, [1_000.0])
    waits: list[float] = []
    renewals: list[int] = []

    class Stop:
        def wait(self, timeout: float) -> bool:
            waits.append(timeout)
            return False

    def renew() -> None:
        renewals.append(1)
        if len(renewals) == 1:
            raise RuntimeError("throttled")
        if len(renewals) == 3:
            raise LockLost("taken over")

    lock._stop = Stop()  # type: ignore[assignment]
    lock.renew = renew  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="payments.jobs.lock"):
        lock._beat()

    assert (
        waits == [LEASE_S / 4] * 3 and len(renewals) == 3
    )  # a failed renewal is retried; a lost lock ends it
    [record] = caplog.records
    assert record.getMessage() == "cleanup lock me: renewal failed; retrying"
    assert record.exc_info and record.exc_info[0] is RuntimeError  # with its traceback


class _Calls:
    """A DynamoDB client that records calls (a release that should not call AWS)."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append(name)
            return getattr(self.real, name)(**kwargs)

        return call


def test_release_calls_aws_only_for_a_lock_it_holds_and_only_once(platform: Platform) -> None:
    clock = [1_000.0]
    never = CleanupLock(
        _Calls(platform.dynamodb), TABLE, KEYS, owner="never", clock=lambda: clock[0], heartbeat=False
    )
    never.release()  # acquire failed (or never ran): nothing to release
    assert never.dynamodb.calls == []

    mine = CleanupLock(
        _Calls(platform.dynamodb), TABLE, KEYS, owner="me", clock=lambda: clock[0], heartbeat=False
    )
    mine.acquire()
    mine.release()
    mine.release()
    assert mine.dynamodb.calls == ["update_item", "delete_item"]

    lost = CleanupLock(
        _Calls(platform.dynamodb), TABLE, KEYS, owner="lost", clock=lambda: clock[0], heartbeat=False
    )
    lost.acquire()
    lost.lost = True
    lost.release()  # it knows it lost the lock: no write in another run's name
    assert lost.dynamodb.calls == ["update_item"]


def test_a_release_after_a_take_over_keeps_the_journal_and_says_so(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [1_000.0]
    mine = _lock(platform, clock)
    mine.acquire()
    mine.add_pending("cleanup/a.jsonl", "delete")
    clock[0] += LEASE_S + 1
    CleanupLock(
        platform.dynamodb, TABLE, KEYS, owner="you", lease_s=LEASE_S, clock=lambda: clock[0], heartbeat=False
    ).acquire()

    with caplog.at_level("INFO", logger="payments.jobs.lock"):
        mine.release()

    assert "cleanup lock me: taken over before release; nothing to release" in [
        r.getMessage() for r in caplog.records
    ]
    item = _lock_item(platform)
    assert item["owner"]["S"] == "you" and set(item["pending"]["M"]) == {"cleanup/a.jsonl"}


def test_an_owner_id_is_the_host_and_twelve_hex_digits() -> None:
    import re
    import socket

    from payments.jobs.lock import new_owner_id

    assert re.fullmatch(re.escape(socket.gethostname()) + r":[0-9a-f]{12}", new_owner_id())


def test_a_row_at_the_cutoff_is_kept_and_a_row_without_a_status_is_never_eligible() -> None:
    """The cutoff is exclusive (a row stamped at it is not older than the retention), and a row
    without a status (written by another tool) is left in place as unfinished, never deleted and
    never a crash of the run."""
    from payments.jobs.retention import classify

    cutoff = 1_700_000_000_000
    row = {"transaction_id": {"S": "txn_1"}, "timestamp": {"N": str(cutoff)}, "status": {"S": "COMPLETED"}}
    assert classify(row, KEYS, cutoff, "delete") == "skip"
    assert classify({**row, "timestamp": {"N": str(cutoff - 1)}}, KEYS, cutoff, "delete") == "eligible"
    bare = {"transaction_id": {"S": "txn_2"}, "timestamp": {"N": str(cutoff - 1)}}
    assert classify(bare, KEYS, cutoff, "delete") == "unfinished"


def test_durations_are_days_or_weeks_of_at_least_one() -> None:
    from payments.jobs.retention import parse_duration_days

    assert [parse_duration_days(t) for t in ("1", "90d", " 12W ")] == [1, 90, 84]
    for bad in ("0", "0d", "-1", "x", ""):
        with pytest.raises(JobError, match=r"^invalid duration .*: expected e\.g\. 90d, 12w or 90$"):
            parse_duration_days(bad)
