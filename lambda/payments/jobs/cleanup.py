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
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from payments.jobs import JobError
from payments.jobs.archive import (
    OBJECT_SUFFIX,
    SUMMARY_NAME,
    ArchiveObject,
    ArchiveStore,
    VerifyResult,
    item_line,
    item_version,
    verify,
)
from payments.jobs.lock import DEFAULT_LEASE_S, CleanupLock
from payments.jobs.retry import Backoff
from payments.states import TERMINAL
from payments.store import write
from payments.store.keys import is_lock_item, key_id, key_names_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

TTL_ATTRIBUTE = "expires_at"
BACKFILL_ATTRIBUTE = "ttl_backfill"  # set with the TTL: which run archived the row, and where
TERMINAL_STATUSES: tuple[str, ...] = tuple(sorted(s.value for s in TERMINAL))  # finished: eligible
TRANSACT_LIMIT = 100  # DynamoDB TransactWriteItems maximum
BATCH_GET_LIMIT = 100
DEFAULT_SEGMENTS = None  # auto: see choose_segments()
MAX_AUTO_SEGMENTS = 16
BYTES_PER_SEGMENT = 1 << 30  # one scan worker per GiB of table
DEFAULT_CHUNK_ITEMS = 1000
MAX_SEGMENTS = 64
MAX_PAGES_PER_SEGMENT = 1_000_000  # bound on a loop driven by a remote service
MAX_CONFLICT_ROUNDS = 5  # a row that keeps changing is left for the next run
MAX_UNFINISHED_SAMPLES = 1000
ARCHIVE_PREFIX = "cleanup"

ProgressCallback = Callable[[str, int], None]


def cutoff_for(older_than_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """Start (00:00 UTC) of the day ``older_than_days`` before today: items strictly older go.

    Truncating to midnight makes the eligible set (and the archive prefix) the same for every
    run on the same day.
    """
    if older_than_days < 1:
        raise JobError("--older-than must be at least 1 day")
    today = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()
    day = today - dt.timedelta(days=older_than_days)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def parse_duration_days(text: str) -> int:
    """``"90d"``, ``"90"`` or ``"12w"`` → days."""
    value = text.strip().lower()
    units = {"d": 1, "w": 7}
    multiplier = 1
    if value and value[-1] in units:
        multiplier = units[value[-1]]
        value = value[:-1]
    if not value.isdigit() or int(value) < 1:
        raise JobError(f"invalid duration {text!r}: expected e.g. 90d, 12w or 90")
    return int(value) * multiplier


def archive_prefix(cutoff_date: dt.date) -> str:
    return f"{ARCHIVE_PREFIX}/{cutoff_date.isoformat()}/"


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
        return int(self.cutoff.timestamp() * 1000)

    @property
    def archive_prefix(self) -> str:
        return archive_prefix(self.cutoff.date())

    @property
    def write_requests(self) -> int:
        return sum(self.requests[k] for k in ("transact_write_items", "update_item", "s3_put_object"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "run_id": self.run_id,
            "cutoff": self.cutoff.isoformat(),
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


class _Run:
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
        with self.guard:
            for name, delta in deltas.items():
                if name.startswith("req_"):
                    self.result.requests[name[4:]] += delta
                else:
                    setattr(self.result, name, getattr(self.result, name) + delta)
        if self.on_progress:
            for name, delta in deltas.items():
                if not name.startswith("req_") and delta:
                    self.on_progress(name, delta)

    def count_request(self, name: str) -> None:
        self.count(**{f"req_{name}": 1})

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

    def classify(self, item: Mapping[str, Any]) -> str:
        """ "eligible", "unfinished" or "skip" for an item read from the table."""
        res = self.result
        if is_lock_item(item, self.key_names):
            return "skip"
        timestamp = item.get("timestamp", {}).get("N")
        if timestamp is None or int(timestamp) >= res.cutoff_ms:
            return "skip"
        status = item.get("status", {}).get("S")
        if status not in TERMINAL_STATUSES:
            return "unfinished"
        if res.mode == "backfill-ttl":
            return "skip" if TTL_ATTRIBUTE in item else "eligible"
        # Rows a TTL backfill archived and marked are TTL's to delete: archiving them again
        # would put them in a second object.
        return "skip" if BACKFILL_ATTRIBUTE in item else "eligible"

    def note_unfinished(self, item: Mapping[str, Any]) -> None:
        status = item.get("status", {}).get("S", "(none)")
        with self.guard:
            self.result.unfinished += 1
            self.result.unfinished_statuses[status] += 1
            if len(self.result.unfinished_samples) < MAX_UNFINISHED_SAMPLES:
                self.result.unfinished_samples.append(
                    {
                        "key": self.key_id(item),
                        "status": status,
                        "timestamp": int(item["timestamp"]["N"]),
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
                kind = self.classify(item)
                if kind == "eligible":
                    eligible.append(item)
                elif kind == "unfinished":
                    self.note_unfinished(item)
            self.count(req_scan=1, scanned=int(page.get("ScannedCount", 0)), matched=len(eligible))
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
        self.apply(items, obj)
        if obj is not None:
            self.finish(obj)

    def apply(self, items: list[dict[str, Any]], obj: ArchiveObject | None) -> None:
        """Delete (or TTL-mark) ``items`` under their archived version; rows that changed are
        archived again and retried, rows that vanished or are no longer eligible leave ``obj``."""
        pending = list(items)
        for _round in range(MAX_CONFLICT_ROUNDS):
            if not pending or self.stopping():
                return
            conflicts = self.write(pending, obj)
            pending = []
            changes: dict[str, str | None] = {}
            for ident, current in conflicts.items():
                if current is None:
                    changes[ident] = None
                    self.count(vanished=1)
                elif self.result.mode == "backfill-ttl" and TTL_ATTRIBUTE in current:
                    # Someone else set a TTL meanwhile: it is archived here, TTL deletes it.
                    self.count(ttl_skipped=1)
                    if obj is not None:
                        changes[ident] = item_line(current)
                        obj.done.add(ident)
                elif self.classify(current) == "eligible":
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
        self, items: list[dict[str, Any]], obj: ArchiveObject | None
    ) -> dict[str, dict[str, Any] | None]:
        if self.result.mode == "backfill-ttl":
            return self.set_ttl(items, obj)
        conflicts: dict[str, dict[str, Any] | None] = {}
        for start in range(0, len(items), TRANSACT_LIMIT):
            if self.stopping():
                break
            self.ensure_lock()
            group = items[start : start + TRANSACT_LIMIT]
            deleted, group_conflicts = self.delete_group(group)
            conflicts.update(group_conflicts)
            if obj is not None:
                obj.done.update(deleted)
        return conflicts

    def delete_group(self, group: list[dict[str, Any]]) -> tuple[set[str], dict[str, dict[str, Any] | None]]:
        """One TransactWriteItems of up to 100 guarded deletes; returns (deleted, conflicts)."""
        todo = list(group)
        conflicts: dict[str, dict[str, Any] | None] = {}
        attempt = 0
        while todo:
            try:
                write.transact(
                    self.dynamodb, [guarded_delete(self.result.table, self.key_names, i) for i in todo]
                )
            except self.dynamodb.exceptions.TransactionCanceledException as exc:
                self.count(req_transact_write_items=1)
                reasons = exc.response.get("CancellationReasons") or []
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
                        f"{len(todo)} deletes still cancelled after {attempt} attempts "
                        f"({', '.join(sorted({str(r.get('Code')) for r in reasons}))}); rerun the cleanup "
                        "to finish — archives are written and the chunk is in the lock's journal"
                    ) from exc
                self.count(retries=1)
                self.backoff.wait(attempt)
                continue
            self.count(req_transact_write_items=1, deleted=len(todo))
            deleted = {self.key_id(i) for i in todo}
            return deleted, conflicts
        return set(), conflicts

    def set_ttl(
        self, items: list[dict[str, Any]], obj: ArchiveObject | None
    ) -> dict[str, dict[str, Any] | None]:
        conflicts: dict[str, dict[str, Any] | None] = {}
        audit = {
            "M": {
                "run_id": {"S": self.result.run_id},
                "archived_to": {"S": obj.key if obj else "(not archived: --no-archive)"},
                "at": {"S": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
            }
        }
        for item in items:
            if self.stopping():
                break
            self.ensure_lock()
            # The item's own age decides its expiry, so TTL removes exactly what the retention
            # rule would have deleted (and DynamoDB's TTL deletes cost no write capacity).
            expires_at = int(item["timestamp"]["N"]) // 1000 + self.result.older_than_days * 86_400
            version = item_version(item)
            marked = write.update(
                self.dynamodb,
                self.result.table,
                self.key_of(item),
                sets=["#ttl = :exp", "#audit = :audit"],
                condition="attribute_exists(#pk) AND attribute_not_exists(#ttl)",
                read_version=None if version is None else int(version),
                names={"#ttl": TTL_ATTRIBUTE, "#audit": BACKFILL_ATTRIBUTE, "#pk": self.key_names[0]},
                values={":exp": {"N": str(expires_at)}, ":audit": audit},
            )
            if not marked:
                self.count(req_update_item=1)
                conflicts[self.key_id(item)] = marked.item or None
                continue
            self.count(req_update_item=1, ttl_set=1)
            if obj is not None:
                obj.done.add(self.key_id(item))
        return conflicts

    def finish(self, obj: ArchiveObject) -> None:
        """Close a chunk: its object keeps exactly the rows done, then manifest, then journal."""
        store = self.archive_store()
        leftovers = {ident: None for ident in obj.lines if ident not in obj.done}
        if leftovers:
            self.ensure_lock()
            store.patch(obj, leftovers)
        store.write_manifest(obj, {"run_id": self.result.run_id, "mode": self.result.mode})
        if self.lock is not None:
            self.lock.remove_pending(obj.key)
        with self.guard:
            self.result.objects.append(obj.key)

    # -- reconciliation of a crashed run's chunks ----------------------------------------
    def current_items(self, keys: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.result.table: {"Keys": keys[start : start + BATCH_GET_LIMIT], "ConsistentRead": True}
            }
            for attempt in range(1, self.backoff.max_attempts + 1):
                response = self.dynamodb.batch_get_item(RequestItems=request)
                self.count(req_batch_get_item=1)
                for item in response.get("Responses", {}).get(self.result.table, []):
                    found[self.key_id(item)] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self.backoff.wait(attempt)
            else:
                raise JobError("reading rows of an interrupted chunk stayed throttled; rerun the cleanup")
        return found

    def reconcile(self, key: str, mode: str) -> None:
        """Finish a chunk a crashed run left in the journal: rows already gone stay archived;
        rows still present are deleted (or TTL-marked) under their current version, or leave
        the object if they are no longer eligible."""
        store = self.archive_store()
        obj = store.read(key) if store.exists(key) else None
        if obj is None:  # the crash came before the object was written
            if self.lock is not None:
                self.lock.remove_pending(key)
            return
        saved_mode, self.result.mode = self.result.mode, mode
        try:
            self._reconcile(obj)
        finally:
            self.result.mode = saved_mode

    def _reconcile(self, obj: ArchiveObject) -> None:
        mode = self.result.mode
        archived = {ident: json.loads(line)["Item"] for ident, line in obj.lines.items()}
        current = self.current_items([self.key_of(item) for item in archived.values()])
        todo: list[dict[str, Any]] = []
        changes: dict[str, str | None] = {}
        for ident, item in archived.items():
            now = current.get(ident)
            if now is None:
                obj.done.add(ident)  # deleted after it was archived here
            elif mode == "backfill-ttl" and TTL_ATTRIBUTE in now:
                obj.done.add(ident)
            elif self.classify(now) != "eligible":
                changes[ident] = None
            else:
                if item_version(now) != item_version(item):
                    changes[ident] = item_line(now)
                todo.append(now)
        self.ensure_lock()
        self.archive_store().patch(obj, changes)
        self.apply(todo, obj)
        self.finish(obj)
        self.count(recovered_objects=1, recovered_rows=len(obj.done))


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


def verify_archive(
    dynamodb_client: Any, table: str, s3_client: Any, bucket: str, day: dt.date
) -> VerifyResult:
    """``ops cleanup --verify``: see ``payments.jobs.archive.verify``."""
    names = key_names_of(dynamodb_client.describe_table(TableName=table)["Table"])
    store = ArchiveStore(s3_client, bucket, lambda item: key_id(names, item))
    return verify(store, archive_prefix(day))


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
    use_lock: bool = True,
) -> CleanupResult:
    """Archive then delete (or TTL-mark) every finished row older than the cutoff. Dry run by
    default; a real run takes the cleanup lock (``LockHeld`` if another run has it).

    ``time_budget_s`` lets the Lambda stop cleanly before its timeout and ``stop`` lets the CLI
    stop on Ctrl-C; the result then has ``complete=False`` and the next run carries on.
    ``use_lock=False`` exists only for tests that prove the archive stays exact without it.
    """
    if segments is not None and not 1 <= segments <= MAX_SEGMENTS:
        raise JobError(f"--segments must be between 1 and {MAX_SEGMENTS}")
    if chunk_items < 1:
        raise JobError("chunk size must be positive")
    if archive and (s3_client is None or not bucket):
        raise JobError("archiving needs the archive bucket (--bucket) — or pass --no-archive")
    cutoff = cutoff_for(older_than_days, now)
    description = dynamodb_client.describe_table(TableName=table)["Table"]
    requests: Counter[str] = Counter(describe_table=1)
    result = CleanupResult(
        table=table,
        cutoff=cutoff,
        older_than_days=older_than_days,
        mode="backfill-ttl" if backfill_ttl else "delete",
        dry_run=dry_run,
        archive=archive,
        segments=segments or choose_segments(description),
        run_id=new_run_id(now),
        bucket=bucket if archive else None,
        requests=requests,
    )
    key_names = key_names_of(description)
    if "timestamp" not in key_names and backfill_ttl:
        raise JobError("backfill needs the item timestamp (range key `timestamp`)")
    run = _Run(
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
        run.store = ArchiveStore(s3_client, bucket, run.key_id, run.count_request)
    if dry_run:
        _scan_all(run)
    else:
        _apply_locked(run, lock_owner if use_lock else None, use_lock, lock_lease_s, clock)
    return result


def _apply_locked(
    run: _Run, owner: str | None, use_lock: bool, lease_s: float, clock: Callable[[], float]
) -> None:
    result = run.result
    lock = None
    if use_lock:
        lock = CleanupLock(
            run.dynamodb,
            result.table,
            run.key_names,
            owner=owner,
            lease_s=lease_s,
            clock=clock,
            on_request=run.count_request,
        )
    try:
        if lock is not None:
            journal = lock.acquire()
            run.lock = lock
            if journal and run.store is None:
                raise JobError(
                    f"an interrupted run left {len(journal)} chunk(s) half done; run the cleanup with "
                    "its archive (without --no-archive) first, to reconcile them"
                )
            for key, mode in sorted(journal.items()):
                if run.stopping():
                    break
                run.reconcile(key, mode)
        _scan_all(run)
    finally:
        try:
            if run.store is not None and (result.objects or result.recovered_objects):
                _write_summary(run)
        finally:
            result.s3_merges = run.store.merges if run.store else 0
            if lock is not None:
                lock.release()


def _scan_all(run: _Run) -> None:
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


def _write_summary(run: _Run) -> None:
    """The run's own record (an audit entry for deletes and TTL backfills alike)."""
    store = run.archive_store()
    res = run.result
    res.summary_key = f"{res.archive_prefix}{res.run_id}/{SUMMARY_NAME}"
    summary = {
        **res.to_dict(),
        "owner": run.lock.owner if run.lock else None,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "objects": sorted(res.objects),
        "unfinished_samples": res.unfinished_samples[:100],
    }
    store.put_json(res.summary_key, summary)


def archived_items(s3_client: Any, bucket: str, prefix: str = f"{ARCHIVE_PREFIX}/") -> list[dict[str, Any]]:
    """Every row line of the archive objects under ``prefix`` (current versions), e.g. to restore."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(MAX_PAGES_PER_SEGMENT):
        page = s3_client.list_objects_v2(**request)
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(OBJECT_SUFFIX):
                continue
            body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("utf-8")
            items.extend(json.loads(line)["Item"] for line in body.splitlines() if line.strip())
        if not page.get("IsTruncated"):
            return items
        request["ContinuationToken"] = page["NextContinuationToken"]
    raise JobError("listing archives did not finish")
