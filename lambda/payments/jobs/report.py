"""Daily transaction report: the same code runs in ``ops report`` and the 02:00 UTC Lambda job.

Reads only the requested day: one paginated Query per write shard of the ``by-day`` index
(``YYYY-MM-DD#00`` .. ``#NN-1``), run in parallel. Never a Scan: the cost of a report is the size
of the day, not the size of the table (S0's full-table Scan without pagination was both wrong
past 1 MB and proportional to all history).

Which shards: every one any deployment can have written, ``#00`` .. ``#99`` (the
``day_shard_count`` variable allows 1-100). A day written under an earlier, larger shard count
is then counted in full, and no reader has to know or guess the writer's count. An empty Query
reads nothing and costs the minimum 0.5 read unit, so the ceiling adds about 50 read units a day.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from payments import money
from payments.clock import iso_from_datetime
from payments.dynamo import value_of
from payments.jobs import JobError
from payments.layout import report_key
from payments.shards import day_shard_key, day_shard_keys, parse_day_shard
from payments.states import Status

# A failure is technical (the platform could not finish the payment) and is what pages someone;
# a rejection is a business outcome (the fraud rules refused it) and is reported apart.
FAILED_STATUSES: tuple[str, ...] = (Status.FAILED.value,)
REJECTED_STATUSES: tuple[str, ...] = (Status.REJECTED.value,)
SETTLED_STATUS = Status.COMPLETED.value
DEFAULT_TOP_MERCHANTS = 10
MAX_PARALLEL_QUERIES = 16
MAX_PAGES_PER_SHARD = 100_000  # bound on a loop driven by a remote service
MALFORMED_EXAMPLES = 10  # transaction ids kept per report to find the rows with a malformed amount

# Only what the report needs leaves DynamoDB: items are read in full either way, but the
# response (and the client's memory) is a fraction of the item.
_PROJECTION = "#ts, #st, merchant_id, amount_minor, currency, transaction_id"
_PROJECTION_NAMES = {"#ts": "timestamp", "#st": "status", "#ds": "day_shard"}


def resolve_day(value: str | None, now: dt.datetime | None = None) -> dt.date:
    """``None``/``"yesterday"`` → yesterday in UTC, ``"today"``, or an ISO date ``YYYY-MM-DD``."""
    now = now or dt.datetime.now(dt.UTC)
    today = now.astimezone(dt.UTC).date()
    if value in (None, "", "yesterday"):
        return today - dt.timedelta(days=1)
    if value == "today":
        return today
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise JobError(f"invalid date {value!r}: expected YYYY-MM-DD, 'today' or 'yesterday'") from exc


@dataclass
class _Tally:
    count: int = 0
    totals: Counter[str] = field(default_factory=Counter)
    currency_counts: Counter[str] = field(default_factory=Counter)
    settled: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    hourly: Counter[int] = field(default_factory=Counter)
    merchant_counts: Counter[str] = field(default_factory=Counter)
    merchant_totals: dict[str, Counter[str]] = field(default_factory=dict)
    queries: int = 0
    items_read: int = 0
    shards_with_items: set[int] = field(default_factory=set)
    # Rows whose amount_minor is missing or not a number: counted in the day, in no total.
    malformed_amounts: int = 0
    malformed_examples: list[str] = field(default_factory=list)

    def add(self, item: Mapping[str, Any]) -> None:
        self.count += 1
        status = value_of(item, "status", "S") or "UNKNOWN"
        merchant = value_of(item, "merchant_id", "S") or "UNKNOWN"
        currency = (value_of(item, "currency", "S") or "UNKNOWN").upper()
        amount = _integer(item, "amount_minor")
        timestamp = _integer(item, "timestamp")
        self.statuses[status] += 1
        self.merchant_counts[merchant] += 1
        self.currency_counts[currency] += 1
        if amount is None:
            self.malformed_amounts += 1
            if len(self.malformed_examples) < MALFORMED_EXAMPLES:
                self.malformed_examples.append(value_of(item, "transaction_id", "S") or "?")
        else:
            self.totals[currency] += amount
            self.merchant_totals.setdefault(merchant, Counter())[currency] += amount
            if status == SETTLED_STATUS:
                self.settled[currency] += amount
        if timestamp is not None:
            self.hourly[dt.datetime.fromtimestamp(timestamp / 1000, dt.UTC).hour] += 1

    def merge(self, other: _Tally) -> None:
        self.count += other.count
        self.totals.update(other.totals)
        self.currency_counts.update(other.currency_counts)
        self.settled.update(other.settled)
        self.statuses.update(other.statuses)
        self.hourly.update(other.hourly)
        self.merchant_counts.update(other.merchant_counts)
        for merchant, totals in other.merchant_totals.items():
            self.merchant_totals.setdefault(merchant, Counter()).update(totals)
        self.queries += other.queries
        self.items_read += other.items_read
        self.shards_with_items |= other.shards_with_items
        self.malformed_amounts += other.malformed_amounts
        room = MALFORMED_EXAMPLES - len(self.malformed_examples)
        self.malformed_examples.extend(other.malformed_examples[: max(0, room)])


def _integer(item: Mapping[str, Any], name: str) -> int | None:
    """A number attribute as an int; None when missing or not a number (a malformed amount)."""
    raw = value_of(item, name, "N")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        # amount_minor is written as an integer by intake; a fractional value is corrupt data
        # and must not be silently truncated into a total.
        raise JobError(f"non-integer {name} {raw!r} in a transaction item") from None


@dataclass(frozen=True)
class MerchantSummary:
    merchant_id: str
    count: int
    totals_minor: dict[str, int]


@dataclass(frozen=True)
class Report:
    day: dt.date
    table: str
    index: str
    shards: int
    count: int
    totals_minor: dict[str, int]
    currency_counts: dict[str, int]
    settled_minor: dict[str, int]
    status_counts: dict[str, int]
    top_merchants: list[MerchantSummary]
    hourly: list[int]
    queries: int
    items_read: int
    generated_at: str
    as_of: str = ""  # when the queries started: rows written later are not in the report
    shards_with_items: tuple[int, ...] = ()
    writer_shards: int | None = None  # the deployment's current day_shard_count, when known
    malformed_amounts: int = 0  # rows without an integer amount_minor: in count, in no total
    malformed_examples: tuple[str, ...] = ()

    @property
    def shards_beyond_writer(self) -> list[int]:
        """Shards with rows that today's shard count does not write: the count was changed."""
        if self.writer_shards is None:
            return []
        return [n for n in self.shards_with_items if n >= self.writer_shards]

    def _counted(self, statuses: tuple[str, ...]) -> int:
        return sum(self.status_counts.get(s, 0) for s in statuses)

    def _share(self, part: int) -> float:
        """``part`` as a share of the day's transactions; 0.0 on a day without any."""
        return part / self.count if self.count else 0.0

    @property
    def failed(self) -> int:
        return self._counted(FAILED_STATUSES)

    @property
    def failure_rate(self) -> float:
        """Technical failures only: rejections are not failures."""
        return self._share(self.failed)

    @property
    def rejected(self) -> int:
        return self._counted(REJECTED_STATUSES)

    @property
    def rejection_rate(self) -> float:
        return self._share(self.rejected)

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON shape (the uploaded ``reports/YYYY-MM-DD.json`` and ``--format json``)."""

        def amount(currency: str, minor: int) -> dict[str, Any]:
            return {
                "currency": currency,
                "amount_minor": minor,
                "exponent": money.stored_exponent(currency),
                "amount": money.format_minor(minor, currency),
                "formatted": money.format_display(minor, currency),
            }

        return {
            "date": self.day.isoformat(),
            "as_of": self.as_of,
            "generated_at": self.generated_at,
            "source": {
                "table": self.table,
                "index": self.index,
                "shards": self.shards,
                "writer_shards": self.writer_shards,
                "shards_with_items": list(self.shards_with_items),
                "queries": self.queries,
                "items_read": self.items_read,
            },
            "count": self.count,
            "malformed_amounts": {
                "count": self.malformed_amounts,
                "transaction_ids": sorted(self.malformed_examples),
            },
            "totals": [
                {**amount(c, self.totals_minor[c]), "count": self.currency_counts.get(c, 0)}
                for c in sorted(self.totals_minor)
            ],
            "settled_totals": [amount(c, self.settled_minor[c]) for c in sorted(self.settled_minor)],
            "status": dict(sorted(self.status_counts.items())),
            "failed": self.failed,
            "failed_statuses": list(FAILED_STATUSES),
            "failure_rate": round(self.failure_rate, 6),
            "rejected": self.rejected,
            "rejected_statuses": list(REJECTED_STATUSES),
            "rejection_rate": round(self.rejection_rate, 6),
            "top_merchants": [
                {
                    "merchant_id": m.merchant_id,
                    "count": m.count,
                    "totals": [amount(c, m.totals_minor[c]) for c in sorted(m.totals_minor)],
                }
                for m in self.top_merchants
            ],
            "hourly": [{"hour": hour, "count": n} for hour, n in enumerate(self.hourly)],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


def _query_shard(client: Any, table: str, index: str, shard: str) -> _Tally:
    tally = _Tally()
    number = parse_day_shard(shard)[1]
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "#ds = :shard",
        "ExpressionAttributeNames": _PROJECTION_NAMES,
        "ExpressionAttributeValues": {":shard": {"S": shard}},
        "ProjectionExpression": _PROJECTION,
    }
    for _ in range(MAX_PAGES_PER_SHARD):
        page = client.query(**request)
        tally.queries += 1
        tally.items_read += int(page.get("ScannedCount", page.get("Count", 0)))
        for item in page.get("Items", []):
            tally.add(item)
            tally.shards_with_items.add(number)
        last = page.get("LastEvaluatedKey")
        if not last:
            return tally
        request["ExclusiveStartKey"] = last
    raise JobError(f"query of shard {shard} did not finish after {MAX_PAGES_PER_SHARD} pages")


def build_report(
    dynamodb_client: Any,
    table: str,
    index: str,
    shards: int,
    day: dt.date,
    *,
    top: int = DEFAULT_TOP_MERCHANTS,
    max_workers: int = MAX_PARALLEL_QUERIES,
    on_shard_done: Callable[[str], None] | None = None,
    now: dt.datetime | None = None,
    writer_shards: int | None = None,
) -> Report:
    """Aggregate every transaction of ``day`` (UTC) from shards ``0..shards-1`` of the by-day index
    (pass ``payments.shards.MAX_DAY_SHARDS`` to find every shard ever written)."""
    if shards < 1:
        raise JobError("the by-day index needs at least one shard")
    keys = day_shard_keys(day, shards)
    as_of = iso_from_datetime(dt.datetime.now(dt.UTC))
    total = _Tally()
    lock = threading.Lock()

    def work(shard: str) -> None:
        partial = _query_shard(dynamodb_client, table, index, shard)
        with lock:
            total.merge(partial)
        if on_shard_done:
            on_shard_done(shard)

    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(keys)))) as pool:
        # list() re-raises the first worker exception here instead of losing it.
        list(pool.map(work, keys))

    ranked = sorted(total.merchant_counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, top)]
    return Report(
        day=day,
        table=table,
        index=index,
        shards=shards,
        count=total.count,
        totals_minor=dict(total.totals),
        currency_counts=dict(total.currency_counts),
        settled_minor=dict(total.settled),
        status_counts=dict(total.statuses),
        top_merchants=[
            MerchantSummary(m, n, dict(total.merchant_totals.get(m, Counter()))) for m, n in ranked
        ],
        hourly=[total.hourly.get(hour, 0) for hour in range(24)],
        queries=total.queries,
        items_read=total.items_read,
        generated_at=iso_from_datetime(now or dt.datetime.now(dt.UTC)),
        as_of=as_of,
        shards_with_items=tuple(sorted(total.shards_with_items)),
        writer_shards=writer_shards,
        malformed_amounts=total.malformed_amounts,
        malformed_examples=tuple(total.malformed_examples),
    )


def shards_with_rows(
    dynamodb_client: Any,
    table: str,
    index: str,
    day: dt.date,
    shards: range,
    *,
    max_workers: int = MAX_PARALLEL_QUERIES,
) -> list[int]:
    """The shards among ``shards`` that hold at least one row of ``day``: one Query of one key each.

    What a report limited to fewer shards would miss: a day written under a larger shard count
    keeps rows in the higher shards, whatever the count is today."""
    keys = [day_shard_key(day, n) for n in shards]

    def probe(key: str) -> int | None:
        page = dynamodb_client.query(
            TableName=table,
            IndexName=index,
            KeyConditionExpression="#ds = :shard",
            ExpressionAttributeNames={"#ds": "day_shard"},
            ExpressionAttributeValues={":shard": {"S": key}},
            Select="COUNT",
            Limit=1,
        )
        return parse_day_shard(key)[1] if page.get("Count") else None

    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(keys)))) as pool:
        return sorted(n for n in pool.map(probe, keys) if n is not None)


def stored_report(s3_client: Any, bucket: str, day: dt.date) -> tuple[dict[str, Any], str] | None:
    """The stored ``reports/YYYY-MM-DD.json`` and its ETag, or None. Listed first: without
    s3:ListBucket, S3 answers a GET of a missing object with 403, not 404."""
    key = report_key(day)
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    if not any(obj["Key"] == key for obj in listed):
        return None
    try:
        response = s3_client.get_object(Bucket=bucket, Key=report_key(day))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    return json.loads(response["Body"].read()), str(response["ETag"])


def upload_report(
    s3_client: Any,
    bucket: str,
    report: Report,
    *,
    force: bool = False,
    retention_days: int | None = None,
    today: dt.date | None = None,
) -> str:
    """Write ``reports/YYYY-MM-DD.json``; encryption is the bucket's SSE-KMS default (no key id here).

    Refused without ``force``: a day past the cleanup retention (its rows may already be deleted,
    so the new report would count only what is left), and replacing a stored report by one with
    fewer transactions. The write is conditional on the stored report read for that check
    (``If-Match``, or ``If-None-Match: *`` when there was none), so a concurrent upload is noticed.
    """
    key = report_key(report.day)
    if retention_days is not None and not force:
        first_kept = (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=retention_days)
        if report.day < first_kept:
            raise JobError(
                f"{report.day.isoformat()} is past the {retention_days}-day retention: cleanup may have "
                "deleted its rows, so this report can undercount; not uploaded (--force to upload anyway)"
            )
    stored = stored_report(s3_client, bucket, report.day)
    if stored is not None and not force:
        old_count = int(stored[0].get("count", 0))
        if report.count < old_count:
            raise JobError(
                f"s3://{bucket}/{key} counts {old_count} transactions, this report {report.count}: "
                "not replacing it with a lower count (rows cleaned up, or shards missed?); --force to replace"
            )
    request: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "Body": report.to_json().encode("utf-8"),
        "ContentType": "application/json",
    }
    if stored is None:
        request["IfNoneMatch"] = "*"
    else:
        request["IfMatch"] = stored[1]
    try:
        s3_client.put_object(**request)
    except ClientError as exc:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status in (409, 412):
            raise JobError(f"s3://{bucket}/{key} changed while this report was built; run it again") from exc
        raise
    return f"s3://{bucket}/{key}"
