"""``ops status`` on moto (in-process): every section, the verdict rules and their exit codes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from click.testing import Result
from ops_testkit import BUCKET, REGION, SUFFIX, Platform, add_outputs, create_workflow

from ops.cli import status as status_cli

ALARMS = {"intake_errors": f"payment-intake-errors-{SUFFIX}", "dlq": f"payment-dlq-messages-{SUFFIX}"}
API = f"payment-api-{SUFFIX}"
SCHEDULER_DLQ = f"payment-scheduler-dlq-{SUFFIX}"


@pytest.fixture
def health(platform: Platform) -> dict[str, Any]:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for name in ALARMS.values():
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="quiet")
    scheduler_dlq = platform.sqs.create_queue(QueueName=SCHEDULER_DLQ)["QueueUrl"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = create_workflow(sfn)
    add_outputs(
        platform,
        alarm_names=ALARMS,
        scheduler_dlq_url=scheduler_dlq,
        state_machine_arn=machine,
        api_stage_name="prod",
    )
    return {"cloudwatch": cloudwatch, "sfn": sfn, "machine": machine, "scheduler_dlq": scheduler_dlq}


def _status(run: Callable[..., Result], *args: str) -> tuple[int, dict[str, Any]]:
    result = run("status", "--json", *args)
    assert result.exit_code in (0, 1, 2), result.output + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["exit_code"] == result.exit_code
    return result.exit_code, data


def _metric(cloudwatch: Any, namespace: str, name: str, dims: dict[str, str], value: float) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Value": value,
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
            }
        ],
    )


def test_quiet_platform_is_healthy_with_the_full_json_shape(
    run: Callable[..., Result], health: dict[str, Any]
) -> None:
    code, data = _status(run)
    assert code == 0
    assert set(data) == {
        "status",
        "exit_code",
        "reasons",
        "checked_at",
        "alarms",
        "queues",
        "executions",
        "api",
        "report",
        "cleanup",
        "errors",
    }
    assert data["status"] == "healthy" and data["reasons"] == [] and data["errors"] == {}
    assert data["alarms"] == []
    assert {q["queue"]: (q["visible"], q["in_flight"], q["oldest_age_s"]) for q in data["queues"]} == {
        "failed": (0, 0, None),
        "dlq": (0, 0, None),
        "scheduler_dlq": (0, 0, None),
    }
    assert data["executions"]["counts"] == {"FAILED": 0, "TIMED_OUT": 0, "ABORTED": 0}
    assert data["api"] == {
        "api": f"payment-api-{SUFFIX}",
        "stage": "prod",
        "window_s": 900,
        "requests": 0,
        "errors_5xx": 0,
        "latency_p99_ms": None,
    }
    assert data["report"] is None and data["cleanup"] is None


def test_a_missing_queue_is_reported_and_degrades_without_hiding_the_others(
    run: Callable[..., Result], platform: Platform
) -> None:
    # No scheduler DLQ and no alarms, state machine or data: only the fixture's basic outputs.
    code, data = _status(run)
    assert code == 1
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["failed"]["visible"] == 0 and queues["dlq"]["visible"] == 0
    assert "NonExistentQueue" in queues["scheduler_dlq"]["error"]
    assert data["reasons"] == [f"queue {SCHEDULER_DLQ} unreadable: {queues['scheduler_dlq']['error']}"]
    assert data["executions"] == {} and data["alarms"] == []


def test_alarm_in_alarm_is_unhealthy_and_says_for_how_long(
    run: Callable[..., Result], health: dict[str, Any]
) -> None:
    health["cloudwatch"].set_alarm_state(
        AlarmName=ALARMS["intake_errors"], StateValue="ALARM", StateReason="x"
    )
    code, data = _status(run)
    assert code == 2 and data["status"] == "unhealthy"
    (alarm,) = data["alarms"]
    assert alarm["name"] == ALARMS["intake_errors"]
    assert alarm["since"] and 0 <= alarm["for_s"] < 600
    assert any(ALARMS["intake_errors"] in reason for reason in data["reasons"])


def test_failed_queue_backlog_is_degraded_with_depth_and_oldest_age(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any]
) -> None:
    for n in range(3):
        platform.sqs.send_message(
            QueueUrl=platform.failed_url, MessageBody=json.dumps({"transaction_id": str(n)})
        )
    _metric(
        health["cloudwatch"],
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": "failed-transactions-test"},
        420,
    )
    code, data = _status(run)
    assert code == 1 and data["status"] == "degraded"
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["failed"]["visible"] == 3 and queues["failed"]["oldest_age_s"] == 420
    assert queues["dlq"]["visible"] == 0


@pytest.mark.parametrize("queue", ["dlq", "scheduler_dlq"])
def test_a_message_in_a_dead_letter_queue_is_unhealthy(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any], queue: str
) -> None:
    url = platform.dlq_url if queue == "dlq" else health["scheduler_dlq"]
    platform.sqs.send_message(QueueUrl=url, MessageBody="{}")
    code, data = _status(run)
    assert code == 2
    assert {q["queue"]: q["visible"] for q in data["queues"]}[queue] == 1


def test_failed_execution_in_the_last_hour_is_degraded(
    run: Callable[..., Result], health: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    health["sfn"].start_execution(stateMachineArn=health["machine"], name="txn_failed", input="{}")
    code, data = _status(run)
    assert code == 1
    assert data["executions"]["counts"]["FAILED"] == 1
    assert data["executions"]["recent"][0]["name"] == "txn_failed"


def test_api_5xx_in_the_last_15_minutes_is_degraded(
    run: Callable[..., Result], health: dict[str, Any]
) -> None:
    dims = {"ApiName": API, "Stage": "prod"}
    _metric(health["cloudwatch"], "AWS/ApiGateway", "5XXError", dims, 4)
    _metric(health["cloudwatch"], "AWS/ApiGateway", "Count", dims, 40)
    code, data = _status(run)
    assert code == 1
    assert data["api"]["errors_5xx"] == 4 and data["api"]["requests"] == 40


def test_last_report_and_cleanup_runs_are_shown_and_an_incomplete_cleanup_degrades(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any]
) -> None:
    for day in ("2026-01-01", "2026-01-02"):
        report = {
            "date": day,
            "count": 5,
            "failed": 1,
            "rejected": 1,
            "failure_rate": 0.2,
            "generated_at": "x",
        }
        platform.s3.put_object(Bucket=BUCKET, Key=f"reports/{day}.json", Body=json.dumps(report).encode())
    for run_id, complete in (("run-20260101T030000Z-aaaa", True), ("run-20260102T030000Z-bbbb", False)):
        summary = {"run_id": run_id, "complete": complete, "deleted": 7, "archived": 7, "finished_at": "y"}
        key = f"cleanup/2025-10-04/{run_id}/summary.json"
        platform.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(summary).encode())

    code, data = _status(run)

    assert data["report"]["date"] == "2026-01-02" and data["report"]["failure_rate"] == 0.2
    assert data["report"]["rejected"] == 1
    assert data["cleanup"]["run_id"] == "run-20260102T030000Z-bbbb" and data["cleanup"]["complete"] is False
    assert code == 1 and any("cleanup" in r for r in data["reasons"])


def test_rich_output_names_the_verdict_and_every_section(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any]
) -> None:
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody="{}")
    result = run("status")
    assert result.exit_code == 2
    for text in (
        "UNHEALTHY",
        "Alarms in ALARM",
        "Queues",
        "executions (1 h)",
        "API (15 min)",
        "last report: none",
    ):
        assert text in result.stdout, text


def test_watch_is_bounded_by_count(
    run: Callable[..., Result], health: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(status_cli.time, "sleep", sleeps.append)
    result = run("status", "--json", "--watch", "5", "--count", "3")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["status"] == "healthy" for line in lines)
    assert sleeps == [5, 5]

    sleeps.clear()
    live = run("status", "--watch", "2", "--count", "2")
    assert live.exit_code == 0 and "HEALTHY" in live.stdout
    assert sleeps == [2]


def test_without_any_names_status_is_an_error_not_healthy(run: Callable[..., Result]) -> None:
    result = run("status", "--json", outputs=False)
    assert result.exit_code == 1
    assert result.stdout == "" and "OPS_SUFFIX" in result.stderr
