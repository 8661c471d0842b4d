"""The scheduled jobs' Lambda handlers run ops.core with the schedule payloads of docs/interfaces.md."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from ops_testkit import BUCKET, SHARDS, TABLE, Platform, epoch_ms, txn_item
from payments.jobs import runtime as jobs
from payments.jobs.archive import archived_items
from payments.jobs.retention import cutoff_for
from payments.shards import MAX_DAY_SHARDS

REPORT_PAYLOAD = {"date": "yesterday", "upload": True}
CLEANUP_PAYLOAD = {"older_than_days": 90, "archive": True, "dry_run": False, "backfill_ttl": False}


class Context:
    function_name = "payment-report-test"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:payment-report-test"
    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def job_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    monkeypatch.setenv("TRANSACTIONS_TABLE", TABLE)
    monkeypatch.setenv("BY_DAY_INDEX", "by-day")
    monkeypatch.setenv("DAY_SHARDS", str(SHARDS))
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "payment-test")
    jobs.reset()
    yield platform
    jobs.reset()


def test_report_handler_uploads_yesterdays_report(
    job_env: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from payments.handlers import _runtime

    # The logger is built once per container (at first import, possibly under another test's
    # capture): point its stream at this test's captured stdout, as tests/unit does.
    handler = _runtime.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(sys.stdout)
    try:
        _run_report_and_check(job_env, capsys)
    finally:
        handler.setStream(previous or sys.__stdout__)


def _run_report_and_check(job_env: Platform, capsys: pytest.CaptureFixture[str]) -> None:
    from payments.handlers import report

    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    job_env.put(
        [
            txn_item(1, epoch_ms(yesterday, 1), amount_minor=500, currency="JPY"),
            txn_item(2, epoch_ms(yesterday, 2), amount_minor=1234, currency="KWD", status="FAILED"),
            txn_item(3, epoch_ms(yesterday + dt.timedelta(days=1), 2), amount_minor=1),  # today: not in it
        ]
    )
    summary = report.handler(REPORT_PAYLOAD, Context())
    key = f"reports/{yesterday.isoformat()}.json"
    assert summary["uploaded_to"] == f"s3://{BUCKET}/{key}"
    assert summary["count"] == 2
    assert summary["failed"] == 1
    stored = job_env.s3_json(key)
    assert {t["currency"]: t["amount_minor"] for t in stored["totals"]} == {"JPY": 500, "KWD": 1234}
    # Every shard any deployment can write is queried; the deployed count is recorded beside it.
    assert stored["source"]["queries"] == MAX_DAY_SHARDS
    assert stored["source"]["writer_shards"] == SHARDS
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(entry.get("message") == "daily report built" for entry in logs)


def test_report_handler_accepts_an_explicit_date_without_upload(job_env: Platform) -> None:
    from payments.handlers import report

    job_env.put([txn_item(1, epoch_ms(dt.date(2026, 1, 2), 5))])
    summary = report.handler({"date": "2026-01-02", "upload": False}, Context())
    assert summary["count"] == 1
    assert summary["uploaded_to"] is None
    assert job_env.s3_keys("reports/") == []


def test_cleanup_handler_runs_the_schedule_payload(job_env: Platform) -> None:
    from payments.handlers import cleanup

    cutoff_ms = int(cutoff_for(90).timestamp() * 1000)
    old = [txn_item(i, cutoff_ms - 1 - i * 1000) for i in range(40)]
    new = [txn_item(100 + i, cutoff_ms + i) for i in range(5)]
    job_env.put(old + new)
    summary = cleanup.handler(CLEANUP_PAYLOAD, Context())
    assert summary["deleted"] == 40
    assert summary["archived"] == 40
    assert summary["complete"] is True
    assert summary["dry_run"] is False
    assert len(job_env.all_items()) == 5
    assert len(archived_items(job_env.s3, BUCKET)) == 40


def test_cleanup_handler_without_dry_run_flag_changes_nothing(job_env: Platform) -> None:
    from payments.handlers import cleanup

    job_env.put([txn_item(1, int(cutoff_for(90).timestamp() * 1000) - 1)])
    summary = cleanup.handler({"older_than_days": 90}, Context())
    assert summary["dry_run"] is True
    assert summary["matched"] == 1
    assert len(job_env.all_items()) == 1


def test_cleanup_handler_refuses_a_retention_below_the_deployed_one_unless_forced(
    job_env: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from payments.handlers import cleanup
    from payments.jobs.retention import RetentionTooShort

    monkeypatch.setenv("CLEANUP_RETENTION_DAYS", "90")
    job_env.put([txn_item(1, int(cutoff_for(30).timestamp() * 1000) - 1)])
    with pytest.raises(RetentionTooShort, match="below the deployed retention of 90 days"):
        cleanup.handler({**CLEANUP_PAYLOAD, "older_than_days": 30}, Context())
    assert len(job_env.all_items()) == 1
    summary = cleanup.handler({**CLEANUP_PAYLOAD, "older_than_days": 30, "force": True}, Context())
    assert summary["deleted"] == 1


def test_cleanup_handler_stops_before_the_lambda_timeout(job_env: Platform) -> None:
    from payments.handlers import cleanup

    job_env.put([txn_item(1, int(cutoff_for(90).timestamp() * 1000) - 1)])
    summary = cleanup.handler(CLEANUP_PAYLOAD, Context(remaining_ms=30_000))  # under the safety margin
    assert summary["complete"] is False
    assert len(job_env.all_items()) == 1


@pytest.mark.parametrize(
    "payload",
    [{"older_than_days": "90"}, {"older_than_days": 0}, {"dry_run": "false"}, {"archive": 1}],
)
def test_cleanup_handler_rejects_malformed_payloads(job_env: Platform, payload: dict[str, Any]) -> None:
    from payments.handlers import cleanup

    with pytest.raises(ValueError):
        cleanup.handler(payload, Context())


def test_report_handler_refuses_to_replace_a_stored_report_with_a_lower_count(job_env: Platform) -> None:
    from payments.handlers import report
    from payments.jobs import JobError

    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    rows = [txn_item(i, epoch_ms(yesterday, 3)) for i in range(4)]
    job_env.put(rows)
    assert report.handler(REPORT_PAYLOAD, Context())["count"] == 4
    job_env.dynamodb.delete_item(
        TableName=TABLE, Key={k: rows[0][k] for k in ("transaction_id", "timestamp")}
    )
    with pytest.raises(JobError, match="lower count"):  # fails the invocation: the destination alerts
        report.handler(REPORT_PAYLOAD, Context())
    assert job_env.s3_json(f"reports/{yesterday.isoformat()}.json")["count"] == 4
    assert report.handler({**REPORT_PAYLOAD, "force": True}, Context())["count"] == 3
