"""Benchmark of the ops algorithms against the S0 designs they replace, on moto (in-process).

For each table size it seeds one platform (batch writes), then runs side by side:

* report  — ours: one paginated Query per by-day shard, in parallel; S0: one full-table Scan
  without pagination. Metric: items read per report ÷ items of the day (lower bound 1; target ≤ 1.05).
* cleanup — ours: one run under the cleanup lock: parallel paginated Scan, archive to S3
  (object + manifest per chunk, conditional writes), deletes conditioned on the archived version
  in TransactWriteItems of 100; S0: one Scan page and a DeleteItem per item. Metrics, per deleted
  item: write requests (DynamoDB writes incl. the lock and its journal, S3 puts) beside the
  unguarded lower bound 1/25 = 0.04 of BatchWriteItem (target ≤ 0.045), and write units beside
  the lower bound 1 (a transactional delete costs 2); 100 % of the eligible (finished, old) items
  removed and none of the unfinished ones.
* redrive — ours: the receive(10) → send batch → delete batch loop; S0-style: one message at a time.
  Metric: SQS calls per redriven message (lower bound 0.3; target ≤ 0.31 in loop mode).

Requests are counted with botocore event hooks (``before-call``), so retries and pagination are
all included. Run: ``python -m bench.ops_bench [--sizes 10000,100000]``; writes
``bench/results/ops.md``. Run time on a 2-core machine is almost all inside moto (its Query walks
and sorts the whole index on every call — the report makes 100 of them — and its Scan re-walks the
table from the start on every page): ``--sizes 10000`` takes about 3 minutes, the default sizes
far longer. moto's TransactWriteItems is patched to back each table up once per transaction
instead of once per item (see ``_moto_backs_up_each_table_once_per_transaction``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as host
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import moto
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb import models as moto_dynamodb_models
from moto.dynamodb.models import dynamodb_backends
from payments.jobs.cleanup import TERMINAL_STATUSES, cutoff_for, run_cleanup
from payments.jobs.redrive import redrive
from payments.jobs.report import build_report
from payments.shards import MAX_DAY_SHARDS, day_shard
from payments.states import Status

from tests.support import tables

REGION = "us-east-1"
TABLE = "payment-transactions-bench"
BUCKET = "payment-archive-bench-123456789012"
SHARDS = 16
RETENTION_DAYS = 90
HISTORY_DAYS = 100
DAY_FRACTION = 0.01
RESULTS = Path(__file__).resolve().parent / "results" / "ops.md"
TARGETS = {"report": 1.05, "cleanup": 0.045, "redrive": 0.31}


class Calls:
    """Counts API calls per operation on the clients it is attached to."""

    def __init__(self, *clients: Any) -> None:
        self.counts: Counter[str] = Counter()
        for client in clients:
            client.meta.events.register("before-call", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        self.counts[event_name.split(".", 2)[2]] += 1

    def reset(self) -> Counter[str]:
        snapshot = Counter(self.counts)
        self.counts.clear()
        return snapshot


@dataclass
class Row:
    size: int
    job: str
    algorithm: str
    metric: float
    lower_bound: float
    correct: str
    requests: dict[str, int]
    seconds: float
    target: float | None = None
    write_units: str = ""

    @property
    def ratio(self) -> float:
        return self.metric / self.lower_bound if self.lower_bound else float("nan")

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "—"
        return "PASS" if self.metric <= self.target else "FAIL"


@dataclass
class Fixture:
    dynamodb: Any
    s3: Any
    sqs: Any
    day: dt.date
    day_items: int
    eligible: int
    unfinished: int = 0


def _moto_backs_up_each_table_once_per_transaction() -> None:
    """Harness shim for moto 5.2.5: its TransactWriteItems deep-copies the whole table once per
    *item* of the transaction (to roll back on failure), so a 100-delete transaction on a
    10,000-item table makes 100 full copies — minutes of CPU and gigabytes of garbage that
    DynamoDB has no equivalent of. This keeps moto's rollback but copies each table once per
    transaction; what is measured (requests, outcomes) does not change."""
    backend_class = moto_dynamodb_models.DynamoDBBackend
    if getattr(backend_class.transact_write_items, "_copies_once", False):
        return
    original = backend_class.transact_write_items
    real_copy = moto_dynamodb_models.copy

    class _CopyOnce:
        def __init__(self) -> None:
            self.copies: dict[int, Any] = {}

        def deepcopy(self, obj: Any, memo: Any = None) -> Any:
            if not isinstance(obj, moto_dynamodb_models.Table):
                return real_copy.deepcopy(obj, memo)
            if id(obj) not in self.copies:
                self.copies[id(obj)] = real_copy.deepcopy(obj, memo)
            return self.copies[id(obj)]

    def transact_write_items(self: Any, transact_items: Any) -> Any:
        moto_dynamodb_models.copy = _CopyOnce()  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        finally:
            moto_dynamodb_models.copy = real_copy

    transact_write_items._copies_once = True  # type: ignore[attr-defined]
    backend_class.transact_write_items = transact_write_items  # type: ignore[method-assign]


@contextmanager
def timed() -> Iterator[list[float]]:
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


def _item(n: int, timestamp_ms: int, rng: random.Random) -> dict[str, Any]:
    """A transaction item of realistic size and shape (about 600 bytes)."""
    # Random rather than time-ordered ids: moto scans in key order, DynamoDB in hash order of
    # the key; random ids make moto's order as unrelated to age as DynamoDB's is.
    transaction_id = f"txn_{rng.getrandbits(128):032x}"[:30]
    at = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
    currency = rng.choice(["USD", "USD", "EUR", "GBP", "JPY", "KWD"])
    statuses = [Status.COMPLETED, Status.FAILED, Status.REJECTED, Status.PENDING]
    status = rng.choices([s.value for s in statuses], weights=[90, 4, 4, 2])[0]
    iso = at.isoformat(timespec="milliseconds")
    return {
        "transaction_id": {"S": transaction_id},
        "timestamp": {"N": str(timestamp_ms)},
        "day_shard": {"S": day_shard(transaction_id, timestamp_ms, SHARDS)},
        "created_at": {"S": iso},
        "updated_at": {"S": iso},
        "status": {"S": status},
        "merchant_id": {"S": f"merch_{rng.randrange(200):04d}"},
        "customer_id": {"S": f"cust_{rng.randrange(20_000):06d}"},
        "amount_minor": {"N": str(rng.randrange(100, 500_000))},
        "currency": {"S": currency},
        "payment_method_type": {"S": "card"},
        "payment_method_token": {"S": f"tok_{rng.getrandbits(96):024x}"},
        "country": {"S": rng.choice(["US", "DE", "GB", "JP", "KW"])},
        "description": {"S": f"Order #{rng.randrange(10**8):08d}"},
        "reference": {"S": f"ref-{n:010d}"},
        "metadata": {"M": {"channel": {"S": "web"}, "campaign": {"S": "spring"}}},
        "fraud": {
            "M": {
                "score": {"N": str(rng.randrange(0, 60))},
                "decision": {"S": "APPROVE"},
                "reasons": {"L": []},
            }
        },
        "attempts": {"N": "1"},
        "version": {"N": "4"},
    }


def _create(dynamodb: Any, s3: Any) -> None:
    # Only the index the jobs use: the by-customer/by-merchant GSIs change none of the measured
    # reads or writes, and each one multiplies moto's cost per seeded item.
    tables.create_table(dynamodb, tables.TRANSACTIONS, TABLE, indexes=["by-day"])
    s3.create_bucket(Bucket=BUCKET)


class _Writer:
    """Seeds the table: BatchWriteItem (25 per call) through the client, or — the default, about
    2.5x faster — the same puts handed straight to moto's backend, skipping its request parsing
    (2.5-4 ms per item), which is not what this benchmark measures."""

    def __init__(self, dynamodb: Any, via_backend: bool) -> None:
        self.dynamodb = dynamodb
        self.table: Any = None
        if via_backend:
            self.table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(TABLE)
        self.batch: list[dict[str, Any]] = []

    def put(self, item: dict[str, Any]) -> None:
        self.batch.append(item)
        if len(self.batch) == 25:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        if self.table is not None:
            for item in self.batch:
                self.table.put_item(item)
        else:
            response = self.dynamodb.batch_write_item(
                RequestItems={TABLE: [{"PutRequest": {"Item": item}} for item in self.batch]}
            )
            if response.get("UnprocessedItems"):
                raise RuntimeError("seeding: unprocessed items")
        self.batch = []


def seed(size: int, now: dt.datetime, rng: random.Random, via_backend: bool = True) -> Fixture:
    dynamodb: Any = boto3.client("dynamodb", region_name=REGION)
    s3: Any = boto3.client("s3", region_name=REGION)
    sqs: Any = boto3.client("sqs", region_name=REGION)
    _create(dynamodb, s3)
    today = now.date()
    day = today - dt.timedelta(days=10)
    day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
    cutoff_ms = int(cutoff_for(RETENTION_DAYS, now).timestamp() * 1000)
    history_start = day_start - (HISTORY_DAYS - 10) * 86_400_000
    day_items = int(size * DAY_FRACTION)
    eligible = unfinished = 0
    writer = _Writer(dynamodb, via_backend)
    for n in range(size):
        if n < day_items:
            ts = day_start + rng.randrange(86_400_000)
        else:
            ts = history_start + rng.randrange(HISTORY_DAYS * 86_400_000)
            while day_start <= ts < day_start + 86_400_000 or ts >= int(now.timestamp() * 1000):
                ts = history_start + rng.randrange(HISTORY_DAYS * 86_400_000)
        item = _item(n, ts, rng)
        if ts < cutoff_ms:
            finished = item["status"]["S"] in TERMINAL_STATUSES
            eligible += finished
            unfinished += not finished
        writer.put(item)
    writer.flush()
    return Fixture(dynamodb, s3, sqs, day, day_items, eligible, unfinished)


# -- report ---------------------------------------------------------------------------------
def report_ours(fx: Fixture, size: int) -> Row:
    calls = Calls(fx.dynamodb)
    with timed() as t:
        # As the job and `ops report` do: every shard any deployment can write.
        report = build_report(fx.dynamodb, TABLE, "by-day", MAX_DAY_SHARDS, fx.day, writer_shards=SHARDS)
    correct = "yes" if report.count == fx.day_items else f"NO ({report.count}/{fx.day_items})"
    return Row(
        size,
        "report",
        "ours: Query per shard, paginated",
        report.items_read / fx.day_items,
        1.0,
        correct,
        dict(calls.reset()),
        t[0],
        TARGETS["report"],
    )


def _s0_page(fx: Fixture, **filter_args: Any) -> dict[str, Any]:
    """S0's single Scan call: a FilterExpression and no pagination, so one page (DynamoDB, and
    moto alike, stop a page after 1 MB of items *read*, then apply the filter)."""
    return dict(fx.dynamodb.scan(TableName=TABLE, **filter_args))


def report_s0(fx: Fixture, size: int) -> Row:
    calls = Calls(fx.dynamodb)
    with timed() as t:
        # S0: one Scan of the table for the day, no pagination.
        page = _s0_page(
            fx,
            FilterExpression="begins_with(created_at, :day)",
            ExpressionAttributeValues={":day": {"S": fx.day.isoformat()}},
        )
        found = len(page["Items"])
    correct = "yes" if found == fx.day_items else f"NO ({found}/{fx.day_items} items)"
    return Row(
        size,
        "report",
        "S0: one Scan, no pagination",
        page["ScannedCount"] / fx.day_items,
        1.0,
        correct,
        dict(calls.reset()),
        t[0],
    )


# -- cleanup --------------------------------------------------------------------------------
def _remaining(fx: Fixture, cutoff_ms: int, finished: bool) -> int:
    """Old rows still in the table: finished (eligible) ones, or unfinished ones."""
    remaining = 0
    terminal = {f":t{i}": {"S": status} for i, status in enumerate(TERMINAL_STATUSES)}
    request: dict[str, Any] = {
        "TableName": TABLE,
        "Select": "COUNT",
        "FilterExpression": f"#ts < :c AND {'' if finished else 'NOT '}#st IN ({', '.join(terminal)})",
        "ExpressionAttributeNames": {"#ts": "timestamp", "#st": "status"},
        "ExpressionAttributeValues": {":c": {"N": str(cutoff_ms)}, **terminal},
    }
    for _ in range(100_000):
        page = fx.dynamodb.scan(**request)
        remaining += page["Count"]
        if "LastEvaluatedKey" not in page:
            return remaining
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    raise RuntimeError("count scan did not finish")


def cleanup_s0(fx: Fixture, size: int, now: dt.datetime) -> Row:
    cutoff_ms = int(cutoff_for(RETENTION_DAYS, now).timestamp() * 1000)
    calls = Calls(fx.dynamodb)
    with timed() as t:
        # S0: one Scan page, then one DeleteItem per item; no archive.
        page = _s0_page(
            fx,
            FilterExpression="#ts < :c",
            ExpressionAttributeNames={"#ts": "timestamp"},
            ExpressionAttributeValues={":c": {"N": str(cutoff_ms)}},
        )
        old = page["Items"]
        for item in old:
            fx.dynamodb.delete_item(
                TableName=TABLE,
                Key={"transaction_id": item["transaction_id"], "timestamp": item["timestamp"]},
            )
    deleted = len(old)
    finished = sum(item["status"]["S"] in TERMINAL_STATUSES for item in old)
    requests = calls.reset()
    fx.eligible -= finished
    fx.unfinished -= deleted - finished
    return Row(
        size,
        "cleanup",
        "S0: one Scan page + DeleteItem each",
        requests["DeleteItem"] / max(deleted, 1),
        1 / 25,
        f"removed {finished}/{finished + fx.eligible} eligible and {deleted - finished} UNFINISHED rows, "
        "nothing archived",
        dict(requests),
        t[0],
        write_units=f"{requests['DeleteItem'] / max(deleted, 1):.2f}",
    )


def cleanup_ours(fx: Fixture, size: int, now: dt.datetime) -> Row:
    cutoff_ms = int(cutoff_for(RETENTION_DAYS, now).timestamp() * 1000)
    calls = Calls(fx.dynamodb, fx.s3)
    with timed() as t:
        result = run_cleanup(
            fx.dynamodb,
            TABLE,
            older_than_days=RETENTION_DAYS,
            s3_client=fx.s3,
            bucket=BUCKET,
            dry_run=False,  # segments: the default (one per GiB, so one here)
            now=now,
        )
    requests = calls.reset()
    dynamodb_writes = requests["TransactWriteItems"] + requests["UpdateItem"] + requests["DeleteItem"]
    writes = dynamodb_writes + requests["PutObject"]
    # Write units are not reported by moto: a delete in a transaction costs 2 units for an item up
    # to 1 KB (these are about 600 bytes), so does the lock's fencing ConditionCheck in each group
    # of 99 (one per TransactWriteItems), every lock/journal update or delete 1.
    units = (
        2 * result.deleted
        + 2 * requests["TransactWriteItems"]
        + requests["UpdateItem"]
        + requests["DeleteItem"]
    )
    left = _remaining(fx, cutoff_ms, finished=True)
    kept = _remaining(fx, cutoff_ms, finished=False)
    complete = (
        result.deleted == fx.eligible
        and left == 0
        and result.archived == result.deleted
        and kept == fx.unfinished == result.unfinished
    )
    correct = (
        f"removed {result.deleted}/{fx.eligible} (100 %), all archived; {kept} unfinished kept"
        if complete
        else f"NO: removed {result.deleted}/{fx.eligible}, {left} left, archived {result.archived}, "
        f"unfinished {kept}/{fx.unfinished} kept"
    )
    if complete and not result.deleted:
        correct = "nothing left: the table is smaller than S0's one page"
    return Row(
        size,
        "cleanup",
        "ours: locked Scan + archive + guarded, fenced TransactWrite 99+1",
        writes / max(result.deleted, 1),
        1 / 25,
        correct,
        dict(requests),
        t[0],
        TARGETS["cleanup"] if result.deleted else None,
        write_units=f"{units / max(result.deleted, 1):.2f}",
    )


# -- redrive --------------------------------------------------------------------------------
def _queues(sqs: Any, tag: str) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName=f"failed-transactions-dlq-{tag}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName=f"failed-transactions-{tag}",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})},
    )["QueueUrl"]
    return dlq, source


def _fill(sqs: Any, url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": json.dumps({"transaction_id": f"txn_{start + i:08d}", "error": "Timeout"}),
                "MessageAttributes": {"event_type": {"DataType": "String", "StringValue": "failure"}},
            }
            for i in range(min(10, count - start))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def redrive_ours(fx: Fixture, size: int, messages: int) -> Row:
    dlq, source = _queues(fx.sqs, "ours")
    _fill(fx.sqs, dlq, messages)
    calls = Calls(fx.sqs)
    with timed() as t:
        result = redrive(fx.sqs, dlq, mode="loop", wait_s=0)
    requests = calls.reset()
    arrived = int(
        fx.sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    correct = "yes" if result.moved == messages == arrived else f"NO ({result.moved}/{messages})"
    return Row(
        size,
        "redrive",
        "ours: receive 10 → send batch → delete batch",
        sum(requests.values()) / max(result.moved, 1),
        0.3,
        correct,
        dict(requests),
        t[0],
        TARGETS["redrive"],
    )


def redrive_s0(fx: Fixture, size: int, messages: int) -> Row:
    dlq, source = _queues(fx.sqs, "s0")
    _fill(fx.sqs, dlq, messages)
    calls = Calls(fx.sqs)
    moved = 0
    with timed() as t:
        for _ in range(messages + 1):  # one message at a time: receive, send, delete
            got = fx.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1).get("Messages", [])
            if not got:
                break
            fx.sqs.send_message(QueueUrl=source, MessageBody=got[0]["Body"])
            fx.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=got[0]["ReceiptHandle"])
            moved += 1
    requests = calls.reset()
    return Row(
        size,
        "redrive",
        "one message at a time",
        sum(requests.values()) / max(moved, 1),
        0.3,
        "yes (attributes dropped)" if moved == messages else f"NO ({moved}/{messages})",
        dict(requests),
        t[0],
    )


# -- driver ---------------------------------------------------------------------------------
def run_size(size: int, seed_value: int, via_backend: bool) -> tuple[list[Row], float]:
    rng = random.Random(seed_value)
    now = dt.datetime.now(dt.UTC)
    with mock_aws():
        with timed() as t:
            fx = seed(size, now, rng, via_backend)
        rows = [report_ours(fx, size), report_s0(fx, size)]
        # S0 first: it removes one page of the eligible items; ours must then remove all the rest.
        rows.append(cleanup_s0(fx, size, now))
        rows.append(cleanup_ours(fx, size, now))
    return rows, t[0]


def run_redrive(messages: int, s0_messages: int) -> list[Row]:
    """Redrive cost does not depend on the table, so it runs once per benchmark.

    moto's ReceiveMessage costs O(queue length) with a large constant (each call re-checks every
    message's visibility), so the DLQs are kept modest; the calls per message measured here do
    not depend on the queue length beyond a run's fixed overhead.
    """
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        fx = Fixture(None, None, sqs, dt.datetime.now(dt.UTC).date(), 0, 0)
        return [redrive_ours(fx, messages, messages), redrive_s0(fx, s0_messages, s0_messages)]


def _fmt_requests(requests: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(requests.items()))


def render(rows: list[Row], seeding: dict[int, float], argv: str, wall: float) -> str:
    lines = [
        "# ops benchmark: our algorithms vs. S0's",
        "",
        f"Generated by `python -m bench.ops_bench {argv}` on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with moto {moto.__version__} in-process, "
        f"Python {host.python_version()}, {os.cpu_count()} CPU(s); total {wall:.0f} s.",
        "",
        f"Data: {DAY_FRACTION:.0%} of the items on the report day, the rest spread over "
        f"{HISTORY_DAYS} days; retention {RETENTION_DAYS} days (a tenth of the table is eligible). "
        "Requests are counted with botocore `before-call` hooks (pagination and retries included).",
        "",
        "Metrics, with their lower bound: report = items read / items of the day (1); "
        "cleanup = write requests (DynamoDB writes, including the lock and its journal, + S3 "
        "PutObject) / deleted items, beside the unguarded lower bound of BatchWriteItem (1/25), and "
        "write units / deleted item beside its lower bound 1 (a guarded, transactional delete costs 2; "
        "moto reports no capacity, so units are computed from the requests); "
        "redrive = SQS calls / messages moved (3/10). The S0 cleanup ran first, on the same table; "
        "ours then had to remove every remaining eligible item. S0's scans stop after one 1 MB page "
        "of items read, as on DynamoDB; its report ratio looks small only because it reads one page "
        "and misses most of the day (see `correct`). For redrive rows the items column "
        "is the number of DLQ messages; a run's fixed overhead (find the source queue, counts "
        "before and after, the check for a RUNNING move task, one final empty receive) is 7 calls. "
        "The report queries all 100 shards any deployment can write (empty Queries read nothing). "
        "moto's TransactWriteItems backs each table up once per transaction here instead of once "
        "per item (a harness shim; requests and outcomes are unchanged).",
        "",
        "| items | job | algorithm | metric | ratio to lower bound | target | verdict | write units / item "
        "(lower bound 1) | correct | requests | time |",
        "|---:|---|---|---:|---:|---:|---|---:|---|---|---:|",
    ]
    for row in rows:
        target = f"<= {row.target}" if row.target is not None else ""
        lines.append(
            f"| {row.size:,} | {row.job} | {row.algorithm} | {row.metric:.4f} | {row.ratio:.2f} | {target} | "
            f"{row.verdict} | {row.write_units} | {row.correct} | {_fmt_requests(row.requests)} | "
            f"{row.seconds:.2f} s |"
        )
    lines += ["", "Seeding (25 items per batch; not measured — see `_Writer`):", ""]
    lines += [f"- {size:,} items: {seconds:.0f} s" for size, seconds in seeding.items()]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated table sizes")
    parser.add_argument("--messages", type=int, default=800, help="DLQ messages for our redrive")
    parser.add_argument("--s0-messages", type=int, default=200, help="DLQ messages, one-at-a-time redrive")
    parser.add_argument("--seed", type=int, default=20260314)
    parser.add_argument(
        "--seed-with-batch-writes",
        action="store_true",
        help="seed through the client's BatchWriteItem instead of moto's backend (slower)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(s < 100 for s in sizes) or args.messages < 1 or args.s0_messages < 1:
        parser.error("sizes must be at least 100 (1 % of the items make the report day); messages >= 1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    _moto_backs_up_each_table_once_per_transaction()
    rows: list[Row] = []
    seeding: dict[int, float] = {}
    start = time.perf_counter()

    def show(new_rows: list[Row]) -> None:
        for row in new_rows:
            print(
                f"  {row.size:>7,} {row.job:8} {row.algorithm:46} {row.metric:9.4f} (x{row.ratio:6.2f}) "
                f"{row.verdict:5} {row.seconds:7.2f} s  {row.correct}",
                flush=True,
            )

    for size in sizes:
        print(f"size {size:,}: seeding and running ...", file=sys.stderr, flush=True)
        size_rows, seeding[size] = run_size(size, args.seed, not args.seed_with_batch_writes)
        print(f"  seeded in {seeding[size]:.0f} s", file=sys.stderr, flush=True)
        rows += size_rows
        show(size_rows)
    print(f"redrive: {args.messages} and {args.s0_messages} messages ...", file=sys.stderr, flush=True)
    redrive_rows = run_redrive(args.messages, args.s0_messages)
    rows += redrive_rows
    show(redrive_rows)

    shown = " ".join(sys.argv[1:] if argv is None else argv) or f"--sizes {args.sizes}"
    text = render(rows, seeding, shown, time.perf_counter() - start)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    failed = [row for row in rows if row.verdict == "FAIL" or (row.target and "NO" in row.correct)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
