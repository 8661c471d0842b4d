"""Fencing, not clocks: a cleanup run that lost the lock deletes nothing, shrinks no archive
object and replaces no manifest, whatever its host's clock says.

Each actor has its own clock. Run A works on one chunk; at one step of it A is "paused" (the
hook runs run B there, on A's thread) and B takes the lock over because, on B's clock, A's lease
has run out: B's clock an hour fast, A's an hour slow, or A's frozen during a pause longer than
the lease. A's own ``ensure`` sees a valid lease (its clock did not move), so only the fencing
token can stop it. After A resumes: the table and every archive object and manifest are as B left
them, and once a later run has finished, every row missing from the table is in exactly one
current archive object at its last version, and ``--verify`` agrees.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ops_testkit import BUCKET, TABLE, Platform
from payments.jobs import JobError
from payments.jobs.lock import FENCE, CleanupLock, LockLost
from payments.store import write
from payments.store.keys import LOCK_ID, lock_key
from test_ops_cleanup_safety import KEYS, _apply, _clients, assert_invariant, kid, old_rows

LEASE_S = 600.0
BASE = 2_000_000_000.0  # a fixed "true" time, in epoch seconds
HOUR = 3600.0

# (A's clock, B's clock) around the true time: each takes A's lease for expired on B's clock.
SKEWS = {
    "b-fast-1h": (BASE, BASE + HOUR),
    "a-slow-1h": (BASE - HOUR, BASE),
    "a-paused-past-lease": (BASE, BASE + LEASE_S + 1),
}


def _body(params: dict[str, Any]) -> str:
    body = params.get("body") or b""
    return body.decode() if isinstance(body, bytes) else str(body)


def _journal_add(params: dict[str, Any]) -> bool:
    return "pending.#obj = :mode" in _body(params)


def _journal_remove(params: dict[str, Any]) -> bool:
    return "REMOVE pending.#obj" in _body(params)


def _object_create(params: dict[str, Any]) -> bool:
    headers = params.get("headers", {})
    return str(params.get("url_path", "")).endswith(".jsonl") and headers.get("If-None-Match") == "*"


def _object_shrink(params: dict[str, Any]) -> bool:
    return str(params.get("url_path", "")).endswith(".jsonl") and bool(
        params.get("headers", {}).get("If-Match")
    )


def _manifest(params: dict[str, Any]) -> bool:
    return str(params.get("url_path", "")).endswith(".manifest.json")


def _deletes(params: dict[str, Any]) -> bool:
    return True


# Every step of a chunk after the lock is taken: (client, operation, which call).
STEPS: dict[str, tuple[str, str, Callable[[dict[str, Any]], bool]]] = {
    "journal": ("dynamodb", "UpdateItem", _journal_add),
    "archive-put": ("s3", "PutObject", _object_create),
    "delete-group": ("dynamodb", "TransactWriteItems", _deletes),
    "shrink": ("s3", "PutObject", _object_shrink),
    "manifest": ("s3", "PutObject", _manifest),
    "unjournal": ("dynamodb", "UpdateItem", _journal_remove),
}


def _snapshot(platform: Platform) -> tuple[list[Any], dict[str, Any]]:
    """The rows, and every archive object's and manifest's body and writer (its fence)."""
    items = sorted(platform.all_items(), key=lambda i: (i["transaction_id"]["S"], i["timestamp"]["N"]))
    bodies = {}
    for key in platform.s3_keys("cleanup/"):
        got = platform.s3.get_object(Bucket=BUCKET, Key=key)
        bodies[key] = (got["Body"].read(), got.get("Metadata"))
    return [i for i in items if i["transaction_id"]["S"] != LOCK_ID], bodies


def _make_ineligible(platform: Platform, row: dict[str, Any]) -> dict[str, Any]:
    """A concurrent writer reopens ``row`` (versioned write) so A's delete of it is refused."""
    written = write.update(
        platform.dynamodb,
        TABLE,
        {k: row[k] for k in KEYS},
        sets=["#st = :st"],
        condition=None,
        read_version=write.ANY_VERSION,
        names={"#st": "status"},
        values={":st": {"S": "SETTLING"}},
    )
    return written.item


@pytest.mark.parametrize("skew", sorted(SKEWS))
@pytest.mark.parametrize("step", list(STEPS))
def test_a_run_that_lost_the_lock_at_any_step_changes_nothing(
    platform: Platform, step: str, skew: str
) -> None:
    rows = old_rows(6)
    platform.put(rows)
    last = {kid(r): r for r in rows}
    a_clock, b_clock = SKEWS[skew]
    a_dynamodb, a_s3 = _clients()
    clients = {"dynamodb": a_dynamodb, "s3": a_s3}
    service, operation, matches = STEPS[step]
    after_b: dict[str, Any] = {}
    b_results: list[Any] = []

    if step == "shrink":  # A's deletes meet a reopened row, so A takes it out of its object

        def reopen(**_: Any) -> None:
            a_dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", reopen)
            last[kid(rows[0])] = _make_ineligible(platform, rows[0])

        a_dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", reopen)

    def pause(params: dict[str, Any], **_: Any) -> None:
        if after_b or not matches(params):
            return
        b_dynamodb, b_s3 = _clients()  # B takes the lock over and runs to the end
        b_results.append(_apply(b_dynamodb, b_s3, clock=lambda: b_clock, lock_lease_s=LEASE_S))
        after_b["state"] = _snapshot(platform)

    hook = f"before-call.{service}.{operation}"
    clients[service].meta.events.register(hook, pause)
    with pytest.raises(JobError) as raised:
        _apply(a_dynamodb, a_s3, clock=lambda: a_clock, lock_lease_s=LEASE_S)
    assert after_b, f"A never reached step {step}"
    assert isinstance(raised.value, LockLost) or "already exists" in str(raised.value)
    items, bodies = _snapshot(platform)
    before_items, before_bodies = after_b["state"]
    assert items == before_items, "the fenced-out run deleted or changed rows"
    assert {k: bodies.get(k) for k in before_bodies} == before_bodies, "an archive object or manifest changed"
    assert b_results[0].deleted + b_results[0].recovered_rows >= 1
    # A later run (any clock) finishes whatever is left; nothing was lost on the way.
    _apply(platform.dynamodb, platform.s3, clock=lambda: BASE + 10 * HOUR, lock_lease_s=LEASE_S)
    assert_invariant(platform, last)


def test_every_take_over_increments_the_fencing_token(platform: Platform) -> None:
    key = lock_key(KEYS)
    first = CleanupLock(platform.dynamodb, TABLE, KEYS, clock=lambda: BASE, lease_s=LEASE_S, heartbeat=False)
    first.acquire()
    second = CleanupLock(
        platform.dynamodb, TABLE, KEYS, clock=lambda: BASE + HOUR, lease_s=LEASE_S, heartbeat=False
    )
    second.acquire()
    assert (first.token, second.token) == (1, 2)
    with pytest.raises(LockLost):
        first.add_pending("cleanup/x/obj.jsonl", "delete")
    with pytest.raises(platform.dynamodb.exceptions.TransactionCanceledException):
        write.transact(platform.dynamodb, [first.fence_check()])
    write.transact(platform.dynamodb, [second.fence_check()])
    item = platform.dynamodb.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]
    assert item[FENCE]["N"] == "2" and item["owner"]["S"] == second.owner


def test_a_pending_journal_has_no_ttl_until_it_is_finished(platform: Platform) -> None:
    """Journals outlive their runs: DynamoDB's TTL must not remove a crashed run's journal."""
    key = lock_key(KEYS)
    lock = CleanupLock(platform.dynamodb, TABLE, KEYS, clock=lambda: BASE, lease_s=LEASE_S, heartbeat=False)
    lock.acquire()
    assert "expires_at" in platform.dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
    lock.add_pending("cleanup/x/obj.jsonl", "delete")
    assert "expires_at" not in platform.dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
    lock.renew()
    lock.release()  # the run "crashed" with the chunk pending: the journal stays, with no TTL
    item = platform.dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
    assert "expires_at" not in item and item["pending"]["M"]
    nxt = CleanupLock(
        platform.dynamodb, TABLE, KEYS, clock=lambda: BASE + 1, lease_s=LEASE_S, heartbeat=False
    )
    assert nxt.acquire() == {"cleanup/x/obj.jsonl": "delete"}
    assert "expires_at" not in platform.dynamodb.get_item(TableName=TABLE, Key=key)["Item"]
    nxt.remove_pending("cleanup/x/obj.jsonl")
    assert "expires_at" in platform.dynamodb.get_item(TableName=TABLE, Key=key)["Item"]


def test_a_paused_runs_archive_put_is_refused_after_the_next_run_reconciled_its_journal(
    platform: Platform,
) -> None:
    """Defect 2: A journals its chunk and pauses before the archive PUT; B reconciles the entry
    (the object does not exist yet) by taking its key; A's PUT is then refused: no orphan."""
    rows = old_rows(4)
    platform.put(rows)
    a_dynamodb, a_s3 = _clients()
    seen: list[str] = []

    def pause(params: dict[str, Any], **_: Any) -> None:
        if seen or not _object_create(params):
            return
        seen.append(str(params["url_path"]))
        b_dynamodb, b_s3 = _clients()
        b = _apply(b_dynamodb, b_s3, clock=lambda: BASE + HOUR, lock_lease_s=LEASE_S)
        assert b.recovered_objects == 1 and b.deleted == 4

    a_s3.meta.events.register("before-call.s3.PutObject", pause)
    with pytest.raises(JobError, match="already exists"):
        _apply(a_dynamodb, a_s3, clock=lambda: BASE, lock_lease_s=LEASE_S)
    orphan = [k for k in platform.s3_keys("cleanup/") if k.endswith(".jsonl") and seen[0].endswith(k)]
    assert len(orphan) == 1
    assert platform.s3.get_object(Bucket=BUCKET, Key=orphan[0])["Body"].read() == b""
    manifest = json.loads(
        platform.s3.get_object(Bucket=BUCKET, Key=orphan[0].removesuffix(".jsonl") + ".manifest.json")[
            "Body"
        ].read()
    )
    assert manifest["count"] == 0 and manifest["fence"]["token"] == 2
    assert_invariant(platform, {kid(r): r for r in rows})
