"""Flow 6: the report and cleanup functions, invoked with exactly the payloads the schedules carry."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from devkit.demo import Platform
from tests.e2e.backdate import days_ago, put_transaction


def _schedule(platform: Platform, job: str) -> dict[str, Any]:
    scheduler = platform.client("scheduler")
    name = platform.outputs["schedule_names"][job]
    [summary] = [s for s in scheduler.list_schedules(NamePrefix=name)["Schedules"] if s["Name"] == name]
    return dict(scheduler.get_schedule(Name=name, GroupName=summary["GroupName"]))


def _invoke(platform: Platform, function_arn: str, payload: str) -> dict[str, Any]:
    response = platform.client("lambda").invoke(FunctionName=function_arn, Payload=payload.encode())
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return dict(body)


def test_daily_report_payload_uploads_yesterdays_report(platform: Platform) -> None:
    schedule = _schedule(platform, "report")
    target = schedule["Target"]
    assert target["Arn"] == platform.outputs["function_arns"]["report"]
    assert json.loads(target["Input"]) == {"date": "yesterday", "upload": True}
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    seeded = [
        put_transaction(platform, days_ago(1, hour=h), amount_minor=m, status=s)
        for h, m, s in ((3, 1000, "COMPLETED"), (9, 2500, "COMPLETED"), (17, 700, "FAILED"))
    ]
    try:
        summary = _invoke(platform, target["Arn"], target["Input"])
        assert summary["date"] == yesterday.isoformat()
        assert summary["count"] == len(seeded) and summary["failed"] == 1
        key = f"reports/{yesterday.isoformat()}.json"
        s3 = platform.client("s3")
        uploaded = json.loads(
            s3.get_object(Bucket=platform.outputs["archive_bucket_name"], Key=key)["Body"].read()
        )
        assert uploaded["count"] == len(seeded)
        assert {t["currency"]: t["amount_minor"] for t in uploaded["totals"]} == {"USD": 4200}
        assert summary["uploaded_to"] and key in summary["uploaded_to"]
    finally:
        for item in seeded:
            platform.table("transactions").delete_item(
                Key={"transaction_id": item["transaction_id"], "timestamp": item["timestamp"]}
            )


def test_cleanup_payload_archives_and_deletes_old_items(platform: Platform) -> None:
    schedule = _schedule(platform, "cleanup")
    target = schedule["Target"]
    assert target["Arn"] == platform.outputs["function_arns"]["cleanup"]
    payload = json.loads(target["Input"])
    assert payload == {"older_than_days": 90, "archive": True, "dry_run": False, "backfill_ttl": False}
    old = [put_transaction(platform, days_ago(days)) for days in (400, 120)]
    keep = put_transaction(platform, days_ago(45))
    try:
        result = _invoke(platform, target["Arn"], target["Input"])
        assert result.get("deleted") == len(old) or result.get("result", {}).get("deleted") == len(old), (
            result
        )
        for item in old:
            assert platform.item(item["transaction_id"]) is None
        assert platform.item(keep["transaction_id"]) is not None
        s3 = platform.client("s3")
        listing = s3.list_objects_v2(Bucket=platform.outputs["archive_bucket_name"], Prefix="cleanup/")
        archived = "".join(
            s3.get_object(Bucket=platform.outputs["archive_bucket_name"], Key=o["Key"])["Body"]
            .read()
            .decode()
            for o in listing.get("Contents", [])
        )
        for item in old:
            assert item["transaction_id"] in archived
    finally:
        platform.table("transactions").delete_item(
            Key={"transaction_id": keep["transaction_id"], "timestamp": keep["timestamp"]}
        )


@pytest.mark.not_emulated(reason="neither moto nor LocalStack fires EventBridge Scheduler targets")
@pytest.mark.parametrize(
    ("job", "expression"), [("report", "cron(0 2 * * ? *)"), ("cleanup", "cron(0 3 * * ? *)")]
)
def test_schedules_are_configured_to_fire(platform: Platform, job: str, expression: str) -> None:
    schedule = _schedule(platform, job)
    assert schedule["State"] == "ENABLED"
    assert schedule["ScheduleExpression"] == expression
    assert schedule.get("ScheduleExpressionTimezone", "UTC") == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["RoleArn"].startswith("arn:aws:iam::")
    assert target["DeadLetterConfig"]["Arn"] == platform.outputs["scheduler_dlq_arn"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
