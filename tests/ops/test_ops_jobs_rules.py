"""Rules of the ops jobs that the mutation run (``make mutation TARGET=jobs``, bench/results/mutation.md)
showed no other test stating: how a native redrive is followed, what a report's probe reads, the
report's CSV contract. Each test names the rule; the jobs are called directly with fakes of the AWS
calls they make, so a rule is checked without a moto account."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError
from payments.jobs import JobError, redrive, report
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
