"""Retention cleanup of the transactions table: the same code runs in ``ops cleanup`` and the
03:00 UTC Lambda job.

Guarantees (each one a defect of S0's cleanup, which scanned one page and deleted item by item):

* complete: parallel Scan segments, each paginated to the end;
* cheap: BatchWriteItem with 25 deletes per request; unprocessed items retried with exponential
  backoff and full jitter, a bounded number of times, then the run fails loudly;
* nothing deleted that is not archived: each chunk of eligible items is written to S3 as one
  JSONL object *before* any of its items is deleted;
* resumable without duplicates: chunks are cut in the (stable) scan order of a segment and named
  by a hash of their first item's key, and that first item is always deleted last. An interrupted
  chunk therefore starts with the same item on the rerun, maps to the same object key, and the
  rerun merges into that object instead of writing a second copy. The cutoff is a UTC midnight,
  so every rerun on the same day selects the same items.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ops.core import OpsError
from ops.core.retry import Backoff

TTL_ATTRIBUTE = "expires_at"
BATCH_WRITE_LIMIT = 25  # DynamoDB BatchWriteItem hard limit
DEFAULT_SEGMENTS = None  # auto: see choose_segments()
MAX_AUTO_SEGMENTS = 16
BYTES_PER_SEGMENT = 1 << 30  # one scan worker per GiB of table
DEFAULT_CHUNK_ITEMS = 1000
MAX_SEGMENTS = 64
MAX_PAGES_PER_SEGMENT = 1_000_000  # bound on a loop driven by a remote service
ARCHIVE_PREFIX = "cleanup"

ProgressCallback = Callable[[str, int], None]


def cutoff_for(older_than_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """Start (00:00 UTC) of the day ``older_than_days`` before today: items strictly older go.

    Truncating to midnight makes the eligible set identical for every run on the same day, which
    is what lets a rerun finish an interrupted one without re-archiving anything.
    """
    if older_than_days < 1:
        raise OpsError("--older-than must be at least 1 day")
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
        raise OpsError(f"invalid duration {text!r}: expected e.g. 90d, 12w or 90")
    return int(value) * multiplier


@dataclass
class CleanupResult:
    table: str
    cutoff: dt.datetime
    older_than_days: int
    mode: str  # "delete" | "backfill-ttl"
    dry_run: bool
    archive: bool
    segments: int
    bucket: str | None = None
    complete: bool = True
    scanned: int = 0
    matched: int = 0
    archived: int = 0
    already_archived: int = 0
    archive_objects: int = 0
    deleted: int = 0
    ttl_set: int = 0
    ttl_skipped: int = 0
    retries: int = 0
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def cutoff_ms(self) -> int:
        return int(self.cutoff.timestamp() * 1000)

    @property
    def archive_prefix(self) -> str:
        return f"{ARCHIVE_PREFIX}/{self.cutoff.date().isoformat()}/"

    @property
    def write_requests(self) -> int:
        return sum(self.requests[k] for k in ("batch_write_item", "update_item", "s3_put_object"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
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
            "scanned": self.scanned,
            "matched": self.matched,
            "archived": self.archived,
            "already_archived": self.already_archived,
            "archive_objects": self.archive_objects,
            "deleted": self.deleted,
            "ttl_set": self.ttl_set,
            "ttl_skipped": self.ttl_skipped,
            "retries": self.retries,
            "requests": dict(sorted(self.requests.items())),
        }


class _Run:
    """State of one cleanup run shared by the segment workers."""

    def __init__(
        self,
        dynamodb: Any,
        s3: Any,
        result: CleanupResult,
        key_names: Sequence[str],
        chunk_items: int,
        backoff: Backoff,
        on_progress: ProgressCallback | None,
        deadline: float | None,
    ) -> None:
        self.dynamodb = dynamodb
        self.s3 = s3
        self.result = result
        self.key_names = list(key_names)
        self.chunk_items = chunk_items
        self.backoff = backoff
        self.on_progress = on_progress
        self.deadline = deadline
        self.lock = threading.Lock()
        self.abort = threading.Event()

    # -- bookkeeping ---------------------------------------------------------------------
    def count(self, **deltas: int) -> None:
        with self.lock:
            for name, delta in deltas.items():
                if name.startswith("req_"):
                    self.result.requests[name[4:]] += delta
                else:
                    setattr(self.result, name, getattr(self.result, name) + delta)
        if self.on_progress:
            for name, delta in deltas.items():
                if not name.startswith("req_") and delta:
                    self.on_progress(name, delta)

    def out_of_time(self) -> bool:
        if self.abort.is_set():
            # Another segment failed: stop at a chunk boundary so the run ends promptly and
            # the rerun has the least to redo.
            return True
        if self.deadline is not None and time.monotonic() >= self.deadline:
            with self.lock:
                self.result.complete = False
            return True
        return False

    # -- items ---------------------------------------------------------------------------
    def key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in self.key_names}

    def key_id(self, item: Mapping[str, Any]) -> str:
        parts = []
        for name in self.key_names:
            ((_type, value),) = item[name].items()
            parts.append(str(value))
        return "|".join(parts)

    # -- segment worker ------------------------------------------------------------------
    def segment(self, segment: int) -> None:
        try:
            self._segment(segment)
        except BaseException:
            self.abort.set()
            raise

    def _segment(self, segment: int) -> None:
        res = self.result
        names = {"#ts": "timestamp"}
        filter_expr = "#ts < :cutoff"
        if res.mode == "backfill-ttl":
            names["#ttl"] = TTL_ATTRIBUTE
            filter_expr += " AND attribute_not_exists(#ttl)"
        request: dict[str, Any] = {
            "TableName": res.table,
            "FilterExpression": filter_expr,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":cutoff": {"N": str(res.cutoff_ms)}},
        }
        if res.segments > 1:  # one segment is a plain Scan (emulators hash every key otherwise)
            request.update(Segment=segment, TotalSegments=res.segments)
        if not res.archive:
            # Without an archive only the key is needed: a smaller response per page.
            key_names = {f"#k{i}": n for i, n in enumerate(self.key_names)}
            names.update(key_names)
            request["ProjectionExpression"] = ", ".join(key_names)
        existing = self.existing_objects(segment) if res.archive and not res.dry_run else set()

        buffer: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES_PER_SEGMENT):
            if self.out_of_time():
                return
            page = self.dynamodb.scan(**request)
            items = page.get("Items", [])
            self.count(req_scan=1, scanned=int(page.get("ScannedCount", 0)), matched=len(items))
            buffer.extend(items)
            while len(buffer) >= self.chunk_items:
                self.chunk(segment, buffer[: self.chunk_items], existing)
                buffer = buffer[self.chunk_items :]
                if self.out_of_time():
                    return
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        else:
            raise OpsError(f"scan segment {segment} did not finish after {MAX_PAGES_PER_SEGMENT} pages")
        if buffer:
            self.chunk(segment, buffer, existing)

    def chunk(self, segment: int, items: list[dict[str, Any]], existing: set[str]) -> None:
        res = self.result
        if res.dry_run:
            if res.archive:
                self.count(archive_objects=1)
            return
        if res.archive:
            self.archive(segment, items, existing)
        # The chunk's first item goes last: while it exists, a rerun rebuilds this same chunk
        # (same first item, same object key) instead of starting a new, overlapping one.
        head, rest = items[0], items[1:]
        if res.mode == "backfill-ttl":
            for item in [*rest, head]:
                self.set_ttl(item)
        else:
            for start in range(0, len(rest), BATCH_WRITE_LIMIT):
                self.delete_batch(rest[start : start + BATCH_WRITE_LIMIT])
            self.delete_batch([head])

    # -- archive -------------------------------------------------------------------------
    def segment_prefix(self, segment: int) -> str:
        return f"{self.result.archive_prefix}segment-{segment:03d}-of-{self.result.segments:03d}/"

    def existing_objects(self, segment: int) -> set[str]:
        keys: set[str] = set()
        request: dict[str, Any] = {"Bucket": self.result.bucket, "Prefix": self.segment_prefix(segment)}
        for _ in range(MAX_PAGES_PER_SEGMENT):
            page = self.s3.list_objects_v2(**request)
            self.count(req_s3_list_objects=1)
            keys.update(obj["Key"] for obj in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return keys
            request["ContinuationToken"] = page["NextContinuationToken"]
        raise OpsError("listing existing cleanup archives did not finish")

    def archive(self, segment: int, items: list[dict[str, Any]], existing: set[str]) -> None:
        digest = hashlib.sha256(self.key_id(items[0]).encode("utf-8")).hexdigest()[:24]
        key = f"{self.segment_prefix(segment)}{digest}.jsonl"
        lines: dict[str, str] = {}
        if key in existing:
            # Rerun of an interrupted chunk: keep what the first run archived (some of those
            # items are already deleted) and add only what is new.
            body = self.s3.get_object(Bucket=self.result.bucket, Key=key)["Body"].read().decode("utf-8")
            self.count(req_s3_get_object=1)
            for line in body.splitlines():
                if line.strip():
                    lines[self.key_id(json.loads(line)["Item"])] = line
        before = len(lines)
        new = 0
        for item in items:
            ident = self.key_id(item)
            if ident not in lines:
                # Same line format as DynamoDB's own export to S3 (DYNAMODB_JSON): restorable
                # with PutItem or an import, types preserved exactly.
                lines[ident] = json.dumps({"Item": item}, sort_keys=True, separators=(",", ":"))
                new += 1
        if new or not before:
            self.s3.put_object(
                Bucket=self.result.bucket,
                Key=key,
                Body=("\n".join(lines.values()) + "\n").encode("utf-8"),
                ContentType="application/x-ndjson",
            )
            self.count(req_s3_put_object=1)
            existing.add(key)
        self.count(archive_objects=1, archived=new, already_archived=len(items) - new)

    # -- writes --------------------------------------------------------------------------
    def delete_batch(self, items: list[dict[str, Any]]) -> None:
        pending = [{"DeleteRequest": {"Key": self.key_of(item)}} for item in items]
        attempt = 0
        while pending:
            response = self.dynamodb.batch_write_item(RequestItems={self.result.table: pending})
            unprocessed = response.get("UnprocessedItems", {}).get(self.result.table, [])
            self.count(req_batch_write_item=1, deleted=len(pending) - len(unprocessed))
            pending = unprocessed
            if pending:
                attempt += 1
                if attempt >= self.backoff.max_attempts:
                    raise OpsError(
                        f"{len(pending)} deletes still unprocessed after {attempt} attempts "
                        f"(table throttled?); rerun the cleanup to finish — archives are already written"
                    )
                self.count(retries=1)
                self.backoff.wait(attempt)

    def set_ttl(self, item: Mapping[str, Any]) -> None:
        timestamp_ms = int(item["timestamp"]["N"])
        # The item's own age decides its expiry, so TTL removes exactly what the retention
        # rule would have deleted (and DynamoDB's TTL deletes cost no write capacity).
        expires_at = timestamp_ms // 1000 + self.result.older_than_days * 86_400
        try:
            self.dynamodb.update_item(
                TableName=self.result.table,
                Key=self.key_of(item),
                UpdateExpression="SET #ttl = :exp",
                ConditionExpression="attribute_not_exists(#ttl)",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":exp": {"N": str(expires_at)}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            self.count(req_update_item=1, ttl_skipped=1)
            return
        self.count(req_update_item=1, ttl_set=1)


def choose_segments(
    description: Mapping[str, Any],
    s3_client: Any,
    bucket: str | None,
    cutoff: dt.datetime,
    requests: Counter[str],
) -> int:
    """Scan segments when none are given: those of an earlier run for the same cutoff, else by size.

    A rerun must cut the table the way the interrupted run did (chunks, and so archive object
    names, are per segment), so archives already written for this cutoff decide. Otherwise one
    segment per GiB (DescribeTable's size, refreshed by DynamoDB about every six hours): small
    tables get one worker and full-size chunks, large ones up to 16 parallel workers.
    """
    if s3_client is not None and bucket:
        page = s3_client.list_objects_v2(
            Bucket=bucket, Prefix=f"{ARCHIVE_PREFIX}/{cutoff.date().isoformat()}/", Delimiter="/", MaxKeys=1
        )
        requests["s3_list_objects"] += 1
        for prefix in page.get("CommonPrefixes", []):
            match = re.search(r"segment-\d+-of-(\d+)/$", prefix["Prefix"])
            if match and 1 <= int(match.group(1)) <= MAX_SEGMENTS:
                return int(match.group(1))
    size = int(description.get("TableSizeBytes") or 0)
    return max(1, min(MAX_AUTO_SEGMENTS, -(-size // BYTES_PER_SEGMENT)))


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
) -> CleanupResult:
    """Archive then delete (or TTL-mark) every item older than the cutoff. Dry run by default.

    ``time_budget_s`` lets the Lambda stop cleanly before its timeout; the result then has
    ``complete=False`` and the next run carries on where this one stopped.
    """
    if segments is not None and not 1 <= segments <= MAX_SEGMENTS:
        raise OpsError(f"--segments must be between 1 and {MAX_SEGMENTS}")
    if chunk_items < 1:
        raise OpsError("chunk size must be positive")
    if archive and (s3_client is None or not bucket):
        raise OpsError("archiving needs the archive bucket (--bucket) — or pass --no-archive")
    cutoff = cutoff_for(older_than_days, now)
    description = dynamodb_client.describe_table(TableName=table)["Table"]
    requests: Counter[str] = Counter(describe_table=1)
    if segments is None:
        segments = choose_segments(description, s3_client if archive else None, bucket, cutoff, requests)
    result = CleanupResult(
        table=table,
        cutoff=cutoff,
        older_than_days=older_than_days,
        mode="backfill-ttl" if backfill_ttl else "delete",
        dry_run=dry_run,
        archive=archive,
        segments=segments,
        bucket=bucket if archive else None,
        requests=requests,
    )
    key_names = [k["AttributeName"] for k in sorted(description["KeySchema"], key=lambda k: k["KeyType"])]
    if "timestamp" not in key_names and backfill_ttl:
        raise OpsError("backfill needs the item timestamp (range key `timestamp`)")
    run = _Run(
        dynamodb_client,
        s3_client,
        result,
        key_names,
        chunk_items,
        backoff or Backoff(),
        on_progress,
        None if time_budget_s is None else time.monotonic() + time_budget_s,
    )
    with ThreadPoolExecutor(max_workers=segments) as pool:
        list(pool.map(run.segment, range(segments)))
    return result


def archived_items(s3_client: Any, bucket: str, prefix: str = f"{ARCHIVE_PREFIX}/") -> list[dict[str, Any]]:
    """Every item line under ``prefix`` (latest object versions), e.g. to verify or restore."""
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    for _ in range(MAX_PAGES_PER_SEGMENT):
        page = s3_client.list_objects_v2(**request)
        for obj in page.get("Contents", []):
            body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode("utf-8")
            items.extend(json.loads(line)["Item"] for line in body.splitlines() if line.strip())
        if not page.get("IsTruncated"):
            return items
        request["ContinuationToken"] = page["NextContinuationToken"]
    raise OpsError("listing archives did not finish")
