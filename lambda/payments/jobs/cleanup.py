"""Retention cleanup of the transactions table: the same code runs in ``ops cleanup`` and the
03:00 UTC Lambda job.

Guarantees (S0's cleanup scanned one page and deleted item by item; later ones lost rows when
two runs overlapped, and deleted unfinished or changing transactions):

* one run at a time: a lease in DynamoDB (``payments.jobs.lock``), taken by the CLI and the job alike;
* complete: parallel Scan segments, each paginated to the end;
* only finished rows: COMPLETED and REJECTED rows older than the cutoff go; older rows in any
  other status (PENDING, VALIDATING, SETTLING, FAILED — FAILED is retryable) are counted and
  listed as *unfinished*, never touched;
* nothing deleted that is not archived: each chunk is written to S3 as one new JSONL object
  (``If-None-Match: *``) *before* any of its rows is deleted; the object is recorded in the
  lock's journal first, so a chunk a crash leaves half done is reconciled by the next run;
* guarded deletes: every delete is conditioned on the archived ``version`` (and a finished
  status), in TransactWriteItems of up to 100. A row that changed in between is archived again
  in its new version (``If-Match`` on the object) and deleted under that version; a row that
  vanished or is no longer eligible is taken out of the object. So a missing row is in exactly
  one current archive object, with its last version;
* verifiable: each finished object gets a manifest (keys, versions, count, SHA-256) and each
  run a summary; ``ops cleanup --verify`` (``payments.jobs.archive.verify``) re-reads them;
* stoppable: a stop request (Ctrl-C in the CLI, the Lambda's time budget) ends the run at the
  next transaction group; the current chunk is closed consistently (its object then holds
  exactly the rows already deleted).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from payments.clock import iso_from_datetime, iso_from_ms, ms_from_datetime, now_ms
from payments.dynamo import value_of
from payments.jobs import JobError, retention
from payments.jobs.archive import (
    ArchiveObject,
    ArchiveStore,
    item_line,
    item_version,
)
from payments.jobs.backoff import Backoff
from payments.jobs.calls import RequestCounter
from payments.jobs.lock import DEFAULT_LEASE_S, CleanupLock, LockLost
from payments.jobs.reconcile import reconcile_journal
from payments.jobs.retention import (
    BACKFILL_ATTRIBUTE,
    BACKFILL_TTL,
    DELETE,
    TERMINAL_STATUSES,
    TTL_ATTRIBUTE,
    cutoff_for,
)
from payments.layout import OBJECT_SUFFIX, SUMMARY_NAME, cleanup_prefix
from payments.store import write
from payments.store.keys import key_id, key_names_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

TRANSACT_LIMIT = 100  # DynamoDB TransactWriteItems maximum
DEFAULT_SEGMENTS = None  # auto: see choose_segments()
MAX_AUTO_SEGMENTS = 16
BYTES_PER_SEGMENT = 1 << 30  # one scan worker per GiB of table
DEFAULT_CHUNK_ITEMS = 1000
MAX_SEGMENTS = 64
MAX_PAGES_PER_SEGMENT = 1_000_000  # bound on a loop driven by a remote service
MAX_CONFLICT_ROUNDS = 5  # a row that keeps changing is left for the next run
MAX_UNFINISHED_SAMPLES = 1000

ProgressCallback = Callable[[str, int], None]


@dataclass
class CleanupResult:
    table: str
    cutoff: dt.datetime
    older_than_days: int
    mode: str  # "delete" | "backfill-ttl"
    dry_run: bool
    archive: bool
    segments: int
    run_id: str = ""
    bucket: str | None = None
    complete: bool = True
    interrupted: bool = False
    scanned: int = 0
    matched: int = 0
    unfinished: int = 0
    unfinished_statuses: Counter[str] = field(default_factory=Counter)
    unfinished_samples: list[dict[str, Any]] = field(default_factory=list)
    archived: int = 0
    rearchived: int = 0
    archive_objects: int = 0
    deleted: int = 0
    changed_skipped: int = 0
    vanished: int = 0
    recovered_objects: int = 0
    recovered_rows: int = 0
    ttl_set: int = 0
    ttl_skipped: int = 0
    retries: int = 0
    s3_merges: int = 0
    objects: list[str] = field(default_factory=list)
    summary_key: str | None = None
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def cutoff_ms(self) -> int:
        return ms_from_datetime(self.cutoff)

    @property
    def archive_prefix(self) -> str:
        return cleanup_prefix(self.cutoff.date())

    @property
    def write_requests(self) -> int:
        return sum(self.requests[k] for k in ("transact_write_items", "update_item", "s3_put_object"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "run_id": self.run_id,
            "cutoff": iso_from_datetime(self.cutoff),
            "cutoff_ms": self.cutoff_ms,
            "older_than_days": self.older_than_days,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "archive": self.archive,
            "bucket": self.bucket,
            "archive_prefix": f"s3://{self.bucket}/{self.archive_prefix}" if self.bucket else None,
            "segments": self.segments,
            "complete": self.complete,
            "interrupted": self.interrupted,
            "scanned": self.scanned,
            "matched": self.matched,
            "unfinished": self.unfinished,
            "unfinished_statuses": dict(sorted(self.unfinished_statuses.items())),
            "archived": self.archived,
            "rearchived": self.rearchived,
            "archive_objects": self.archive_objects,
            "deleted": self.deleted,
            "changed_skipped": self.changed_skipped,
            "vanished": self.vanished,
            "recovered_objects": self.recovered_objects,
            "recovered_rows": self.recovered_rows,
            "ttl_set": self.ttl_set,
            "ttl_skipped": self.ttl_skipped,
            "retries": self.retries,
            "s3_merges": self.s3_merges,
            "summary": f"s3://{self.bucket}/{self.summary_key}" if self.summary_key else None,
            "requests": dict(sorted(self.requests.items())),
        }


class Run:
    """State of one cleanup run shared by the segment workers."""

    def __init__(
        self,
        dynamodb: Any,
        result: CleanupResult,
        key_names: Sequence[str],
        chunk_items: int,
        backoff: Backoff,
        on_progress: ProgressCallback | None,
        deadline: float | None,
        stop: threading.Event | None,
        store: ArchiveStore | None,
        lock: CleanupLock | None,
    ) -> None:
        self.dynamodb = dynamodb
        self.result = result
        self.key_names = list(key_names)
        self.chunk_items = chunk_items
        self.backoff = backoff
        self.on_progress = on_progress
        self.deadline = deadline
        self.stop = stop or threading.Event()
        self.store = store
        self.lock = lock
        self.guard = threading.Lock()
        self.abort = threading.Event()
        self.sequence = Counter[int]()

    # -- bookkeeping ---------------------------------------------------------------------
    def count(self, **deltas: int) -> None:
        """Row counters of the result (AWS requests are counted by ``payments.jobs.calls``)."""
        with self.guard:
            for name, delta in deltas.items():
                setattr(self.result, name, getattr(self.result, name) + delta)
        if self.on_progress:
            for name, delta in deltas.items():
                if delta:
                    self.on_progress(name, delta)

    def stopping(self) -> bool:
        """True when the run must end at the next safe point (Ctrl-C, time budget, failure)."""
        if self.abort.is_set():
            return True
        if self.stop.is_set():
            with self.guard:
                self.result.complete = False
                self.result.interrupted = True
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            with self.guard:
                self.result.complete = False
            return True
        return False

    def archive_store(self) -> ArchiveStore:
        if self.store is None:
            raise JobError("this step needs the archive bucket")
        return self.store

    def ensure_lock(self) -> None:
        if self.lock is not None:
            self.lock.ensure()

    # -- items ---------------------------------------------------------------------------
    def key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.key_names}

    def key_id(self, item: Mapping[str, Any]) -> str:
        return key_id(self.key_names, item)

    def classify(self, item: Mapping[str, Any], mode: str) -> str:
        """ "eligible", "unfinished" or "skip" (``payments.jobs.retention.classify``)."""
        return retention.classify(item, self.key_names, self.result.cutoff_ms, mode)

    def note_unfinished(self, item: Mapping[str, Any]) -> None:
        status = value_of(item, "status", "S", "(none)")
        with self.guard:
            self.result.unfinished += 1
            self.result.unfinished_statuses[status] += 1
            if len(self.result.unfinished_samples) < MAX_UNFINISHED_SAMPLES:
                self.result.unfinished_samples.append(
                    {
                        "key": self.key_id(item),
                        "status": status,
                        "timestamp": int(value_of(item, "timestamp", "N")),
                        "version": item_version(item),
                    }
                )

    # -- segment worker ------------------------------------------------------------------
    def segment(self, segment: int) -> None:
        try:
            self._segment(segment)
        except BaseException:
            self.abort.set()
            raise

    def _segment(self, segment: int) -> None:
        res = self.result
        request: dict[str, Any] = {
            "TableName": res.table,
            # Age only: the status is classified here, so one scan also counts unfinished rows.
            "FilterExpression": "#ts < :cutoff",
            "ExpressionAttributeNames": {"#ts": "timestamp"},
            "ExpressionAttributeValues": {":cutoff": {"N": str(res.cutoff_ms)}},
        }
        if res.segments > 1:  # one segment is a plain Scan (emulators hash every key otherwise)
            request.update(Segment=segment, TotalSegments=res.segments)
        buffer: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES_PER_SEGMENT):
            if self.stopping():
                return
            page = self.dynamodb.scan(**request)
            eligible = []
            for item in page.get("Items", []):
                kind = self.classify(item, res.mode)
                if kind == "eligible":
                    eligible.append(item)
                elif kind == "unfinished":
                    self.note_unfinished(item)
            self.count(scanned=int(page.get("ScannedCount", 0)), matched=len(eligible))
            buffer.extend(eligible)
            while len(buffer) >= self.chunk_items:
                self.chunk(segment, buffer[: self.chunk_items])
                buffer = buffer[self.chunk_items :]
                if self.stopping():
                    return
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        else:
            raise JobError(f"scan segment {segment} did not finish after {MAX_PAGES_PER_SEGMENT} pages")
        if buffer and not self.stopping():
            self.chunk(segment, buffer)

    # -- chunks --------------------------------------------------------------------------
    def object_key(self, segment: int) -> str:
        with self.guard:
            self.sequence[segment] += 1
            n = self.sequence[segment]
        return f"{self.result.archive_prefix}{self.result.run_id}/s{segment:03d}-{n:06d}{OBJECT_SUFFIX}"

    def chunk(self, segment: int, items: list[dict[str, Any]]) -> None:
        res = self.result
        if res.dry_run:
            if res.archive:
                self.count(archive_objects=1)
            return
        self.ensure_lock()
        obj: ArchiveObject | None = None
        if self.store is not None:
            key = self.object_key(segment)
            if self.lock is not None:
                self.lock.add_pending(key, res.mode)  # journal first: a crash after this is reconciled
            obj = self.store.create_object(key, items)
            self.count(archive_objects=1, archived=len(items))
        self.apply(items, obj, res.mode)
        if obj is not None:
            self.finish(obj, res.mode)

    def apply(self, items: list[dict[str, Any]], obj: ArchiveObject | None, mode: str) -> None:
        """Delete (or TTL-mark) ``items`` under their archived version; rows that changed are
        archived again and retried, rows that vanished or are no longer eligible leave ``obj``."""
        pending = list(items)
        for _round in range(MAX_CONFLICT_ROUNDS):
            if not pending or self.stopping():
                return
            conflicts = self.write(pending, obj, mode)
            pending = []
            changes: dict[str, str | None] = {}
            for ident, current in conflicts.items():
                if current is None:
                    changes[ident] = None
                    self.count(vanished=1)
                elif mode == BACKFILL_TTL and TTL_ATTRIBUTE in current:
                    # Someone else set a TTL meanwhile: it is archived here, TTL deletes it.
                    self.count(ttl_skipped=1)
                    if obj is not None:
                        changes[ident] = item_line(current)
                        obj.done.add(ident)
                elif self.classify(current, mode) == "eligible":
                    changes[ident] = item_line(current)
                    pending.append(current)
                    self.count(rearchived=1)
                else:
                    changes[ident] = None
                    self.count(changed_skipped=1)
            if obj is not None and self.store is not None and changes:
                self.ensure_lock()
                # Archive first: the new version is in the object before its delete is tried.
                self.store.patch(obj, changes)
        if pending:  # still changing after every round: the next run takes them
            self.count(changed_skipped=len(pending))

    def write(
        self, items: list[dict[str, Any]], obj: ArchiveObject | None, mode: str
    ) -> dict[str, dict[str, Any] | None]:
        conflicts: dict[str, dict[str, Any] | None] = {}
        size = self.group_size
        for start in range(0, len(items), size):
            if self.stopping():
                break
            self.ensure_lock()
            group = items[start : start + size]
            done, group_conflicts = self.write_group(group, obj, mode)
            conflicts.update(group_conflicts)
            if obj is not None:
                obj.done.update(done)
        return conflicts

    @property
    def group_size(self) -> int:
        """Rows per TransactWriteItems: one place is the lock's fence check when a lock is held."""
        return TRANSACT_LIMIT - (1 if self.lock is not None else 0)

    def operation(
        self, item: dict[str, Any], obj: ArchiveObject | None, mode: str
    ) -> TransactWriteItemTypeDef:
        if mode == BACKFILL_TTL:
            return self.ttl_update(item, obj)
        return guarded_delete(self.result.table, self.key_names, item)

    def write_group(
        self, group: list[dict[str, Any]], obj: ArchiveObject | None, mode: str
    ) -> tuple[set[str], dict[str, dict[str, Any] | None]]:
        """One TransactWriteItems of guarded deletes (or TTL writes) plus, while a lock is held,
        a ``ConditionCheck`` of its fencing token; returns (done, conflicts). A refused fence
        check raises ``LockLost``: nothing of the group was written."""
        todo = list(group)
        conflicts: dict[str, dict[str, Any] | None] = {}
        attempt = 0
        done_counter = "ttl_set" if mode == BACKFILL_TTL else "deleted"
        while todo:
            operations = [self.operation(i, obj, mode) for i in todo]
            if self.lock is not None:
                operations.append(self.lock.fence_check())
            try:
                write.transact(self.dynamodb, operations)
            except self.dynamodb.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons") or []
                fence = reasons[len(todo)] if self.lock is not None and len(reasons) > len(todo) else {}
                if self.lock is not None and fence.get("Code") == "ConditionalCheckFailed":
                    self.lock.lost = True
                    raise LockLost(
                        "the cleanup lock was taken over by another run (fencing token); "
                        "stopped before deleting — the run holding the lock reconciles"
                    ) from exc
                failed = [
                    (item, reason)
                    for item, reason in zip(todo, reasons, strict=False)
                    if reason.get("Code") == "ConditionalCheckFailed"
                ]
                for item, reason in failed:
                    conflicts[self.key_id(item)] = reason.get("Item")
                if failed:
                    # The rest of the group did not run because of these rows: retry it now.
                    failed_ids = {self.key_id(item) for item, _ in failed}
                    todo = [i for i in todo if self.key_id(i) not in failed_ids]
                    continue
                attempt += 1  # conflicts with other writers or throttling: back off and retry
                if attempt >= self.backoff.max_attempts:
                    raise JobError(
                        f"{len(todo)} writes still cancelled after {attempt} attempts "
                        f"({', '.join(sorted({str(r.get('Code')) for r in reasons}))}); rerun the cleanup "
                        "to finish — archives are written and the chunk is in the lock's journal"
                    ) from exc
                self.count(retries=1)
                self.backoff.wait(attempt)
                continue
            self.count(**{done_counter: len(todo)})
            return {self.key_id(i) for i in todo}, conflicts
        return set(), conflicts

    def ttl_update(self, item: dict[str, Any], obj: ArchiveObject | None) -> TransactWriteItemTypeDef:
        """The TTL write of an archived row: only at the version archived, while it exists and
        has no TTL. The item's own age decides its expiry, so TTL removes exactly what the
        retention rule would have deleted (and DynamoDB's TTL deletes cost no write capacity)."""
        audit = {
            "M": {
                "run_id": {"S": self.result.run_id},
                "archived_to": {"S": obj.key if obj else "(not archived: --no-archive)"},
                "at": {"S": iso_from_ms(now_ms())},
            }
        }
        expires_at = retention.expires_at(item, self.result.older_than_days)
        version = item_version(item)
        operation = write.transact_update(
            self.result.table,
            self.key_of(item),
            sets=["#ttl = :exp", "#audit = :audit"],
            condition="attribute_exists(#pk) AND attribute_not_exists(#ttl)",
            read_version=None if version is None else int(version),
            names={"#ttl": TTL_ATTRIBUTE, "#audit": BACKFILL_ATTRIBUTE, "#pk": self.key_names[0]},
            values={":exp": {"N": str(expires_at)}, ":audit": audit},
        )
        operation["Update"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return operation

    def finish(self, obj: ArchiveObject, mode: str) -> None:
        """Close a chunk: its object keeps exactly the rows done, then manifest, then journal."""
        store = self.archive_store()
        leftovers = {ident: None for ident in obj.lines if ident not in obj.done}
        if leftovers:
            self.ensure_lock()
            store.patch(obj, leftovers)
        store.write_manifest(obj, {"run_id": self.result.run_id, "mode": mode})
        if self.lock is not None:
            self.lock.remove_pending(obj.key)
        with self.guard:
            self.result.objects.append(obj.key)


def guarded_delete(table: str, key_names: Sequence[str], item: Mapping[str, Any]) -> TransactWriteItemTypeDef:
    """The delete of an archived row: only at the version archived, and while it is finished."""
    finished = {f":t{i}": {"S": status} for i, status in enumerate(TERMINAL_STATUSES)}
    version = item_version(item)
    return write.transact_delete(
        table,
        {name: item[name] for name in key_names},
        condition=f"attribute_exists(#pk) AND #st IN ({', '.join(finished)})",
        read_version=None if version is None else int(version),
        names={"#pk": key_names[0], "#st": "status"},
        values=finished,
    )


def choose_segments(description: Mapping[str, Any]) -> int:
    """One scan segment per GiB (DescribeTable's size, refreshed by DynamoDB about every six
    hours): small tables get one worker and full-size chunks, large ones up to 16."""
    size = int(description.get("TableSizeBytes") or 0)
    return max(1, min(MAX_AUTO_SEGMENTS, -(-size // BYTES_PER_SEGMENT)))


def new_run_id(now: dt.datetime | None = None) -> str:
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{uuid.uuid4().hex[:8]}"


def run_cleanup(
    dynamodb_client: Any,
    table: str,
    *,
    older_than_days: int,
    s3_client: Any = None,
    bucket: str | None = None,
    archive: bool = True,
    backfill_ttl: bool = False,
    segments: int | None = DEFAULT_SEGMENTS,
    dry_run: bool = True,
    chunk_items: int = DEFAULT_CHUNK_ITEMS,
    now: dt.datetime | None = None,
    backoff: Backoff | None = None,
    on_progress: ProgressCallback | None = None,
    time_budget_s: float | None = None,
    stop: threading.Event | None = None,
    lock_owner: str | None = None,
    lock_lease_s: float = DEFAULT_LEASE_S,
    clock: Callable[[], float] = time.time,
) -> CleanupResult:
    """Archive then delete (or TTL-mark) every finished row older than the cutoff. Dry run by
    default; a real run takes the cleanup lock (``LockHeld`` if another run has it).

    ``time_budget_s`` lets the Lambda stop cleanly before its timeout and ``stop`` lets the CLI
    stop on Ctrl-C; the result then has ``complete=False`` and the next run carries on.
    """
    if segments is not None and not 1 <= segments <= MAX_SEGMENTS:
        raise JobError(f"--segments must be between 1 and {MAX_SEGMENTS}")
    if chunk_items < 1:
        raise JobError("chunk size must be positive")
    if archive and (s3_client is None or not bucket):
        raise JobError("archiving needs the archive bucket (--bucket) — or pass --no-archive")
    cutoff = cutoff_for(older_than_days, now)
    counter = RequestCounter()
    with counter.watching(dynamodb_client, (s3_client, "s3_")):
        description = dynamodb_client.describe_table(TableName=table)["Table"]
        result = CleanupResult(
            table=table,
            cutoff=cutoff,
            older_than_days=older_than_days,
            mode=BACKFILL_TTL if backfill_ttl else DELETE,
            dry_run=dry_run,
            archive=archive,
            segments=segments or choose_segments(description),
            run_id=new_run_id(now),
            bucket=bucket if archive else None,
            requests=counter.counts,
        )
        key_names = key_names_of(description)
        if "timestamp" not in key_names and backfill_ttl:
            raise JobError("backfill needs the item timestamp (range key `timestamp`)")
        run = Run(
            dynamodb_client,
            result,
            key_names,
            chunk_items,
            backoff or Backoff(),
            on_progress,
            None if time_budget_s is None else time.monotonic() + time_budget_s,
            stop,
            None,
            None,
        )
        if archive and bucket:
            run.store = ArchiveStore(s3_client, bucket, run.key_id)
        if dry_run:
            _scan_all(run)
        else:
            _apply_locked(run, lock_owner, lock_lease_s, clock)
    return result


def _apply_locked(run: Run, owner: str | None, lease_s: float, clock: Callable[[], float]) -> None:
    result = run.result
    lock = CleanupLock(
        run.dynamodb,
        result.table,
        run.key_names,
        owner=owner,
        lease_s=lease_s,
        clock=clock,
    )
    try:
        journal = lock.acquire()
        run.lock = lock
        if run.store is not None and lock.token:
            run.store.fence = (lock.owner, lock.token)
        if journal and run.store is None:
            raise JobError(
                f"an interrupted run left {len(journal)} chunk(s) half done; run the cleanup with "
                "its archive (without --no-archive) first, to reconcile them"
            )
        reconcile_journal(run, journal)
        _scan_all(run)
    finally:
        try:
            if run.store is not None and (result.objects or result.recovered_objects):
                _write_summary(run)
        finally:
            result.s3_merges = run.store.merges if run.store else 0
            lock.release()


def _scan_all(run: Run) -> None:
    with ThreadPoolExecutor(max_workers=run.result.segments) as pool:
        futures = [pool.submit(run.segment, s) for s in range(run.result.segments)]
        errors = []
        for future in futures:
            # Wait in short steps: the main thread stays responsive to signals (Ctrl-C).
            while True:
                try:
                    future.result(timeout=0.2)
                    break
                except TimeoutError:
                    continue
                except BaseException as exc:  # re-raised below, once every worker has ended
                    errors.append(exc)
                    break
        if errors:
            raise errors[0]


def _write_summary(run: Run) -> None:
    """The run's own record (an audit entry for deletes and TTL backfills alike)."""
    store = run.archive_store()
    res = run.result
    res.summary_key = f"{res.archive_prefix}{res.run_id}/{SUMMARY_NAME}"
    summary = {
        **res.to_dict(),
        "owner": run.lock.owner if run.lock else None,
        "finished_at": iso_from_ms(now_ms()),
        "objects": sorted(res.objects),
        "unfinished_samples": res.unfinished_samples[:100],
    }
    store.put_json(res.summary_key, summary)
