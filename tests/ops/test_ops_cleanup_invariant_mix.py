"""The proof over random mixes (seeded, bounded in count and time): two or three cleanup runs with
skewed clocks, pauses past the lease (another run takes over inside the paused one's step),
crashes at a random step, concurrent writers of every kind, TTL backfills. After each mix and a
final run: every row missing from the table is in exactly one current archive object at its last
version, and ``--verify`` agrees (``assert_invariant``); after tampering with the archive,
``--verify`` says so."""

from __future__ import annotations

import contextlib
import json
import random
import time
from typing import Any

import pytest
from ops_testkit import BUCKET, TABLE, Interrupt, Platform, fail_after
from payments.dynamo import from_attributes
from payments.jobs import JobError
from payments.jobs.archive import verify_archive
from payments.jobs.lock import LockHeld
from payments.store.keys import LOCK_ID
from test_ops_cleanup_fencing import BASE, HOUR, LEASE_S
from test_ops_cleanup_safety import CUTOFF, _apply, _clients, archive_lines, archived_versions, kid
from test_ops_cleanup_writers import WRITERS, _current, _repo, _row

MIXES = 8
BUDGET_S = 120.0
OPERATIONS = (
    ("dynamodb", "TransactWriteItems"),
    ("dynamodb", "UpdateItem"),
    ("s3", "PutObject"),
)
STATUSES = ("COMPLETED", "COMPLETED", "COMPLETED", "REJECTED", "PENDING")


class _Mix:
    def __init__(self, platform: Platform, rng: random.Random) -> None:
        self.platform = platform
        self.rng = rng
        self.repo = _repo(platform)
        self.rows = []
        for n in range(rng.randint(6, 16)):
            row = _row(n)
            row["status"] = {"S": rng.choice(STATUSES)}
            self.rows.append(row)
        platform.put(self.rows)
        self.last = {kid(r): r for r in self.rows}
        self.log: list[str] = []

    def write_something(self) -> None:
        """A concurrent writer of a random kind on a random row (it may be refused)."""
        row = self.rng.choice(self.rows)
        name = self.rng.choice(sorted(WRITERS))
        current = _current(self.platform, row)
        if not current:
            return
        WRITERS[name](self.repo, from_attributes(current))
        now = _current(self.platform, row)
        if now:
            self.last[kid(row)] = now
        self.log.append(f"{name}({kid(row)})")

    def hook(self, clients: dict[str, Any], service: str, operation: str, after: int, action: Any) -> None:
        seen = {"n": 0}

        def fire(**_: Any) -> None:
            seen["n"] += 1
            if seen["n"] == after + 1:
                clients[service].meta.events.unregister(f"before-call.{service}.{operation}", fire)
                action()

        clients[service].meta.events.register(f"before-call.{service}.{operation}", fire)

    def run(self, clock: float) -> None:
        rng = self.rng
        dynamodb, s3 = _clients()
        clients = {"dynamodb": dynamodb, "s3": s3}
        kind = rng.choice(["plain", "crash", "pause", "writer", "writer"])
        backfill = rng.random() < 0.3
        service, operation = rng.choice(OPERATIONS)
        after = rng.randint(0, 3)
        self.log.append(f"run {kind} backfill={backfill} clock={clock - BASE:+.0f} at {operation}#{after}")
        if kind == "crash":
            fail_after(operation, after)(clients[service])
        elif kind == "pause":
            other = clock + LEASE_S + rng.choice([1.0, HOUR])

            def take_over() -> None:
                b_dynamodb, b_s3 = _clients()
                with contextlib.suppress(LockHeld):
                    _apply(b_dynamodb, b_s3, clock=lambda: other, lock_lease_s=LEASE_S, chunk_items=4)

            self.hook(clients, service, operation, after, take_over)
        elif kind == "writer":
            self.hook(clients, service, operation, after, self.write_something)
        try:
            _apply(
                dynamodb,
                s3,
                clock=lambda: clock,
                lock_lease_s=LEASE_S,
                chunk_items=rng.choice([3, 4, 50]),
                backfill_ttl=backfill,
            )
        except (Interrupt, JobError) as exc:  # LockHeld, LockLost, "already exists", a crash
            self.log.append(f"  ended: {type(exc).__name__}")


def _assert_invariant(platform: Platform, last: dict[str, dict[str, Any]], log: list[str]) -> None:
    """``assert_invariant`` of the safety tests without its row-count bound, which assumes delete
    runs only (a manifest of a TTL backfill also records rows still in the table)."""
    present = {kid(i) for i in platform.all_items() if i["transaction_id"]["S"] != LOCK_ID}
    missing = set(last) - present
    owners = archive_lines(platform)
    versions = archived_versions(platform)
    assert [k for k in missing if owners[k] != 1] == [], ("a deleted row is not in exactly one object", log)
    assert {k: versions[k] for k in missing} == {k: last[k]["version"]["N"] for k in missing}, log
    assert all(last[k]["status"]["S"] in ("COMPLETED", "REJECTED") for k in missing), log
    checked = verify_archive(platform.dynamodb, TABLE, platform.s3, BUCKET, CUTOFF.date())
    assert checked.ok, (checked.problems, log)


@pytest.mark.parametrize("seed", range(MIXES))
def test_random_mixes_keep_every_deleted_row_in_exactly_one_archive_object(
    platform: Platform, seed: int
) -> None:
    started = time.monotonic()
    platform.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    rng = random.Random(seed)
    mix = _Mix(platform, rng)
    clock = BASE
    for _ in range(rng.randint(2, 3)):
        if rng.random() < 0.5:
            mix.write_something()
        mix.run(clock + rng.choice([-HOUR, 0.0, HOUR]))
        clock += LEASE_S + HOUR + 1  # the next run: any earlier lease has run out on its clock
    _apply(platform.dynamodb, platform.s3, clock=lambda: clock + 10 * HOUR, lock_lease_s=LEASE_S)
    _assert_invariant(platform, mix.last, mix.log)
    assert time.monotonic() - started < BUDGET_S, mix.log

    # Tamper: trim one deleted row out of its object; --verify must name it.
    present = {kid(i) for i in platform.all_items()}
    for key in sorted(k for k in platform.s3_keys("cleanup/") if k.endswith(".jsonl")):
        lines = platform.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
        gone = [line for line in lines if line.strip() and kid(json.loads(line)["Item"]) not in present]
        if gone:
            kept = [line for line in lines if line != gone[0]]
            platform.s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(kept) + "\n").encode())
            checked = verify_archive(platform.dynamodb, TABLE, platform.s3, BUCKET, CUTOFF.date())
            lost = kid(json.loads(gone[0])["Item"])
            assert not checked.ok and any(lost in p for p in checked.problems), (mix.log, checked.problems)
            break
