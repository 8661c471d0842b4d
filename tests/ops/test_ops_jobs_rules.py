"""Rules of the ops jobs that the mutation run (``make mutation TARGET=jobs``, bench/results/mutation.md)
showed no other test stating: how a native redrive is followed, what a report's probe reads, the
report's CSV contract. Each test names the rule; the jobs are called directly with fakes of the AWS
calls they make, so a rule is checked without a moto account."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ops_testkit import BUCKET, Platform
from payments.jobs import JobError, redrive, report
from payments.jobs.archive import ArchiveObject, ArchiveStore
from payments.jobs.lock import LockLost
from payments.layout import OBJECT_SUFFIX, SUMMARY_NAME
from payments.shards import day_shard_key

DLQ = redrive.Queue("https://q/dlq", "arn:aws:sqs:eu-central-1:1:dlq", False, {})
SOURCE = redrive.Queue("https://q/src", "arn:aws:sqs:eu-central-1:1:src", False, {})


class _MoveTasks:
    """SQS's message-move calls: a start that answers a handle, listings scripted per call."""

    def __init__(self, listings: list[Any]) -> None:
        self.listings = listings
        self.calls = 0

    def start_message_move_task(self, **_: Any) -> dict[str, Any]:
        return {"TaskHandle": "h-1", "ResponseMetadata": {"HTTPStatusCode": 200}}

    def list_message_move_tasks(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        answer = self.listings.pop(0) if self.listings else {"Results": []}
        if isinstance(answer, Exception):
            raise answer
        return answer


def _follow(sqs: _MoveTasks, timeout_s: float = 0.05) -> redrive.RedriveResult:
    result = redrive.RedriveResult(dlq=DLQ, source=SOURCE, mode="native", dry_run=False, before={})
    redrive._native(
        sqs, result, poll_interval_s=0.0, timeout_s=timeout_s, on_progress=None, sleep=lambda _: None
    )
    return result


def test_a_started_task_the_listing_never_shows_is_still_running_at_the_deadline() -> None:
    # No RUNNING task before (first listing), then listings that never show the new one.
    sqs = _MoveTasks([{"Results": []}])
    with pytest.raises(
        JobError, match=r"^message-move task still running after 0 s \(it continues server-side\)"
    ):
        _follow(sqs)


def test_following_a_task_stops_after_five_failed_polls_and_says_it_continues() -> None:
    throttled = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "List")
    sqs = _MoveTasks([{"Results": []}, *[throttled] * redrive.MAX_POLL_FAILURES])
    with pytest.raises(JobError) as stopped:
        _follow(sqs, timeout_s=60)
    assert str(stopped.value).startswith(
        f"message-move task h-1 started, but following it failed {redrive.MAX_POLL_FAILURES} times ("
    )
    assert str(stopped.value).endswith("it continues server-side — check with `ops redrive --dry-run`")
    assert sqs.calls == 1 + redrive.MAX_POLL_FAILURES


class _CountingQueries:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        shard = request["ExpressionAttributeValues"][":shard"]["S"]
        return {"Count": 1 if shard == day_shard_key("2026-12-01", 3) else 0}


def test_a_shard_probe_reads_one_key_and_counts_at_most_one_row() -> None:
    """The probe asks whether a shard holds a row of the day: a COUNT of at most one item per
    shard (a read unit each), never the shard's rows."""
    client = _CountingQueries()
    found = report.shards_with_rows(client, "t", "by-day", dt.date(2026, 12, 1), range(5), max_workers=1)
    assert found == [3]
    assert len(client.requests) == 5
    assert all(r["Select"] == "COUNT" and r["Limit"] == 1 for r in client.requests)


def _conflict(status: int, code: str = "Conflict", metadata: bool = True) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": "no"}}
    if metadata:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "PutObject")  # type: ignore[arg-type]


class _RefusingS3:
    """No stored report; the conditional PUT is refused with ``error``."""

    def __init__(self, error: ClientError) -> None:
        self.error = error

    def list_objects_v2(self, **_: Any) -> dict[str, Any]:
        return {}

    def put_object(self, **_: Any) -> None:
        raise self.error


def _report() -> report.Report:
    return report.Report(
        day=dt.date(2026, 12, 1), table="t", index="i", shards=1, count=0, totals_minor={},
        currency_counts={}, settled_minor={}, status_counts={}, top_merchants=[], hourly=[0] * 24,
        queries=1, items_read=0, generated_at="2026-12-02T00:00:00.000Z",
    )  # fmt: skip


@pytest.mark.parametrize("status", [409, 412])
def test_a_report_upload_refused_by_its_condition_says_the_report_changed(status: int) -> None:
    """S3 answers a failed If-None-Match / If-Match with 412 (409 for a concurrent conditional
    write): the report was written meanwhile, whatever the error code says."""
    with pytest.raises(
        JobError, match=r"^s3://b/reports/2026-12-01\.json changed while this report was built"
    ):
        report.upload_report(_RefusingS3(_conflict(status)), "b", _report())


def test_any_other_upload_error_is_raised_as_it_is() -> None:
    error = _conflict(500, "InternalError")
    with pytest.raises(ClientError) as raised:
        report.upload_report(_RefusingS3(error), "b", _report())
    assert raised.value is error


@pytest.mark.parametrize(
    ("error", "failed"),
    [
        (_conflict(412, "Anything"), True),  # the status decides
        (_conflict(409, "Anything"), True),
        (_conflict(0, "PreconditionFailed", metadata=False), True),  # the code decides without one
        (_conflict(0, "ConditionalRequestConflict", metadata=False), True),
        (_conflict(500, "InternalError"), False),
        (_conflict(403, "AccessDenied"), False),
    ],
)
def test_an_archive_write_precondition_fails_by_status_or_code(error: ClientError, failed: bool) -> None:
    from payments.jobs.archive import _precondition_failed

    assert _precondition_failed(error) is failed


class _PagedReports:
    """A bucket listing in pages of two, each page named by the token the previous one returned."""

    def __init__(self, keys: list[str]) -> None:
        self.pages = [keys[i : i + 2] for i in range(0, len(keys), 2)]
        self.requests: list[dict[str, Any]] = []

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        index = int(request.get("ContinuationToken", "0"))
        page: dict[str, Any] = {
            "Contents": [
                {"Key": k, "LastModified": dt.datetime(2026, 12, 1, tzinfo=dt.UTC)} for k in self.pages[index]
            ]
        }
        if index + 1 < len(self.pages):
            page.update(IsTruncated=True, NextContinuationToken=str(index + 1))
        return page

    def get_object(self, **request: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(json.dumps({"date": request["Key"][8:18], "count": 3}).encode())}


def test_the_last_report_is_found_on_the_listings_last_page() -> None:
    from ops.core.status import last_report

    keys = [f"reports/2026-11-{day:02d}.json" for day in range(1, 8)]
    s3 = _PagedReports(keys)
    found = last_report(s3, "b")
    assert found is not None and found["key"] == "reports/2026-11-07.json" and found["count"] == 3
    assert [r.get("ContinuationToken") for r in s3.requests] == [None, "1", "2", "3"]


# ---------------------------------------------------------------------------- archive objects


def test_a_patch_of_an_object_a_later_holder_wrote_names_the_object(platform: Platform) -> None:
    store = ArchiveStore(platform.s3, BUCKET, lambda item: str(item))
    store.fence = ("run-a", 3)
    taken = ArchiveObject("cleanup/2026-09-01/run-a/chunk-0001.jsonl", {}, None, fence=("run-b", 4))
    with pytest.raises(LockLost) as lost:
        store.patch(taken, {"txn_1": "{}"})
    assert str(lost.value) == (
        "cleanup/2026-09-01/run-a/chunk-0001.jsonl was written by a later holder of the cleanup lock "
        "(('run-b', 4)); this run lost the lock and stopped"
    )


def test_a_second_patch_of_one_object_is_conditioned_on_the_first_ones_etag(platform: Platform) -> None:
    """Each write keeps the ETag S3 answered: the next write of the object is an If-Match on it,
    with no merge (a lost ETag would make it an If-None-Match that S3 refuses, then a re-read)."""
    store = ArchiveStore(platform.s3, BUCKET, lambda item: str(item))
    obj = ArchiveObject("cleanup/2026-09-01/run-a/chunk-0001.jsonl", {}, None)
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append({k: v for k, v in params.items() if k in ("IfMatch", "IfNoneMatch")})

    platform.s3.meta.events.register("provide-client-params.s3.PutObject", record)
    try:
        store.patch(obj, {"txn_1": '{"Item": {}}'})
        first = obj.etag
        store.patch(obj, {"txn_2": '{"Item": {}}'})
    finally:
        platform.s3.meta.events.unregister("provide-client-params.s3.PutObject", record)
    assert first and sent == [{"IfNoneMatch": "*"}, {"IfMatch": first}]
    assert store.merges == 0 and obj.etag and obj.etag != first


class _VersionPages:
    """ListObjectVersions in pages of one version, each named by the previous page's markers."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.requests: list[dict[str, Any]] = []

    def list_object_versions(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        index = self.keys.index(request["KeyMarker"]) + 1 if "KeyMarker" in request else 0
        page: dict[str, Any] = {
            "Versions": [{"Key": self.keys[index], "VersionId": f"v{index}", "IsLatest": True}]
        }
        if index + 1 < len(self.keys):
            page.update(IsTruncated=True, NextKeyMarker=self.keys[index], NextVersionIdMarker=f"v{index}")
        return page


def test_every_page_of_archive_versions_is_read_by_its_markers() -> None:
    from payments.jobs.archive import _object_versions

    keys = [f"cleanup/2026-09-01/run-a/chunk-000{n}{OBJECT_SUFFIX}" for n in range(3)]
    s3 = _VersionPages(keys)

    class Store:
        bucket = "b"

        def __init__(self) -> None:
            self.s3 = s3

        def list_keys(self, prefix: str) -> list[str]:
            return []

    found = _object_versions(Store())  # type: ignore[arg-type]
    assert [(key, version) for key, version, _, _ in found] == [(k, f"v{n}") for n, k in enumerate(keys)]
    assert [(r.get("KeyMarker"), r.get("VersionIdMarker")) for r in s3.requests] == [
        (None, None),
        (keys[0], "v0"),
        (keys[1], "v1"),
    ]


# ---------------------------------------------------------------------------- status and report


def test_the_last_cleanup_skips_a_newer_run_without_a_summary(platform: Platform) -> None:
    """A run still going (or one that died before its summary) is skipped: the newest run that
    wrote a summary is the last cleanup."""
    from ops.core.status import last_cleanup

    older = "cleanup/2026-09-01/run-20261201T030000Z-aaaaaaaa/"
    newer = "cleanup/2026-09-01/run-20261202T030000Z-bbbbbbbb/"
    summary = {"run_id": "run-20261201T030000Z-aaaaaaaa", "mode": "delete", "deleted": 3}
    platform.s3.put_object(Bucket=BUCKET, Key=older + SUMMARY_NAME, Body=json.dumps(summary).encode())
    platform.s3.put_object(Bucket=BUCKET, Key=newer + "chunk-0001" + OBJECT_SUFFIX, Body=b"")
    found = last_cleanup(platform.s3, BUCKET)
    assert found is not None and found["run_id"] == "run-20261201T030000Z-aaaaaaaa"


def test_a_report_says_when_it_was_generated_and_today_is_a_day() -> None:
    now = dt.datetime(2026, 12, 2, 6, 30, 1, 250000, tzinfo=dt.UTC)
    built = report.build_report(_NoRows(), "t", "by-day", 1, dt.date(2026, 12, 1), max_workers=1, now=now)
    assert built.generated_at == "2026-12-02T06:30:01.250Z"
    assert report.resolve_day("today", now) == dt.date(2026, 12, 2)
    assert report.resolve_day(None, now) == report.resolve_day("yesterday", now) == dt.date(2026, 12, 1)


class _NoRows:
    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": [], "Count": 0, "ScannedCount": 0}


def test_verify_reads_the_table_in_batches_of_a_hundred_keys() -> None:
    """--verify asks the table which archived rows are still there: one BatchGetItem per hundred
    keys (DynamoDB's limit), each key once."""
    from payments.jobs.archive import _present

    class Batches:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            keys = RequestItems["t"]["Keys"]
            self.sizes.append(len(keys))
            return {"Responses": {"t": keys[::2]}}

    keys = [{"transaction_id": {"S": f"txn_{n:03d}"}} for n in range(150)]
    client = Batches()
    found = _present(client, "t", ["transaction_id"], keys)
    assert client.sizes == [100, 50]
    assert len(found) == 75
