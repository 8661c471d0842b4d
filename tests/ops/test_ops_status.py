"""``ops status`` on moto (in-process): every check, the verdict rules and their exit codes (the
Nagios plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from click.testing import Result
from ops_testkit import BUCKET, REGION, SUFFIX, Platform, add_outputs, create_workflow

from ops.cli import status as status_cli
from ops.core.status import WARNING, Check, Probe, StatusNames, collect

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
    assert result.exit_code in (0, 1, 2, 3), result.output + result.stderr
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
        "checks",
        "not_run",
        "alarms",
        "queues",
        "executions",
        "api",
        "report",
        "cleanup",
        "restores",
        "errors",
    }
    assert data["status"] == "OK" and data["reasons"] == [] and data["errors"] == {}
    assert data["checks"] == dict.fromkeys(
        [
            "alarms",
            "failed_queue",
            "dlq",
            "scheduler_dlq",
            "executions",
            "api",
            "last_report",
            "last_cleanup",
            "restores",
        ],
        "OK",
    )
    assert data["not_run"] == []
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
    assert data["restores"] == []


def test_a_missing_queue_or_state_machine_is_unknown_without_hiding_the_others(
    run: Callable[..., Result], platform: Platform
) -> None:
    # No scheduler DLQ, alarms or state machine: only the fixture's basic outputs. The names
    # derived from the suffix point at nothing, so those checks could not run.
    code, data = _status(run)
    assert code == 3 and data["status"] == "UNKNOWN"
    queues = {q["queue"]: q for q in data["queues"]}
    assert queues["failed"]["visible"] == 0 and queues["dlq"]["visible"] == 0
    assert "NonExistentQueue" in queues["scheduler_dlq"]["error"]
    assert data["not_run"] == ["executions", "scheduler_dlq"]
    assert "StateMachineDoesNotExist" in data["errors"]["executions"]
    assert data["reasons"] == [
        f"UNKNOWN: scheduler_dlq could not run: {data['errors']['scheduler_dlq']}",
        f"UNKNOWN: executions could not run: {data['errors']['executions']}",
    ]
    assert data["executions"] is None and data["alarms"] == []


def test_alarm_in_alarm_is_unhealthy_and_says_for_how_long(
    run: Callable[..., Result], health: dict[str, Any]
) -> None:
    health["cloudwatch"].set_alarm_state(
        AlarmName=ALARMS["intake_errors"], StateValue="ALARM", StateReason="x"
    )
    code, data = _status(run)
    assert code == 2 and data["status"] == "CRITICAL"
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
    assert code == 1 and data["status"] == "WARNING"
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
        "CRITICAL",
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
    assert len(lines) == 3 and all(json.loads(line)["status"] == "OK" for line in lines)
    assert sleeps == [5, 5]

    sleeps.clear()
    live = run("status", "--watch", "2", "--count", "2")
    assert live.exit_code == 0 and "OK  checked" in live.stdout
    assert sleeps == [2]


# -- issue 22, item 6: a health check people can trust ---------------------------------------------
EVERY_CHECK = [
    "alarms",
    "api",
    "dlq",
    "executions",
    "failed_queue",
    "last_cleanup",
    "last_report",
    "restores",
    "scheduler_dlq",
]


def _outputs_without(platform: Platform, tmp_path: Path, *names: str) -> str:
    outputs = json.loads(platform.outputs_file.read_text())
    for name in names:
        outputs.pop(name, None)
    path = tmp_path / "outputs-partial.json"
    path.write_text(json.dumps(outputs))
    return str(path)


def test_a_dlq_with_no_name_is_unknown_never_skipped_while_it_holds_a_message(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any], tmp_path: Path
) -> None:
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody="{}")
    outputs = _outputs_without(platform, tmp_path, "dlq_url", "environment_suffix")
    result = run("--outputs-file", outputs, "status", "--json", outputs=False)
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "UNKNOWN" and "dlq" in data["not_run"]
    assert "no output names it and no suffix: pass --suffix (OPS_SUFFIX)" in data["errors"]["dlq"]
    assert any(r.startswith("UNKNOWN: dlq could not run") for r in data["reasons"])

    # The naming rule finds it from the suffix alone: CRITICAL, as it is.
    found = run("--outputs-file", outputs, "--suffix", SUFFIX, "status", "--json", outputs=False)
    assert found.exit_code == 2, found.output
    assert {q["queue"]: q.get("visible") for q in json.loads(found.stdout)["queues"]}["dlq"] == 1


def test_with_the_suffix_alone_the_executions_check_finds_the_state_machine_by_name(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    health["sfn"].start_execution(stateMachineArn=health["machine"], name="txn_failed", input="{}")
    result = run("--suffix", SUFFIX, "status", "--json", outputs=False)
    data = json.loads(result.stdout)
    assert data["checks"]["executions"] == "WARNING", data
    assert data["executions"]["counts"]["FAILED"] == 1
    assert "executions" not in data["not_run"]


def test_without_any_names_every_check_is_unknown_and_named(run: Callable[..., Result]) -> None:
    result = run("status", "--json", outputs=False)
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "UNKNOWN" and data["not_run"] == EVERY_CHECK
    assert all("OPS_SUFFIX" in why for why in data["errors"].values())
    table = run("status", outputs=False)
    assert table.exit_code == 3 and "UNKNOWN" in table.stdout
    assert "not run (UNKNOWN): " + ", ".join(EVERY_CHECK) in table.stdout


@pytest.mark.parametrize("made", [False, True], ids=["missing", "never-applied"])
def test_an_unusable_tf_dir_is_unknown_not_critical(
    run: Callable[..., Result], tmp_path: Path, made: bool
) -> None:
    """Found only while the command runs, an unusable --tf-dir is still a usage error: 3 (UNKNOWN) for
    status, whose 2 a monitor reads as CRITICAL; the other commands keep click's 2."""
    tf_dir = tmp_path / "stack"
    if made:
        tf_dir.mkdir()
    result = run("--tf-dir", str(tf_dir), "status", outputs=False)
    assert result.exit_code == 3, result.output
    assert f"--tf-dir {tf_dir}" in result.output
    assert run("--tf-dir", str(tf_dir), "links", outputs=False).exit_code == 2


def test_without_credentials_nothing_is_shown_as_read(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any]
) -> None:
    no_credentials = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None}
    result = run("status", "--json", env=no_credentials)  # type: ignore[arg-type]
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["not_run"] == EVERY_CHECK
    assert "credentials" in data["errors"]["alarms"].lower()
    assert data["alarms"] is None and data["executions"] is None and data["api"] is None
    table = run("status", env=no_credentials)  # type: ignore[arg-type]
    assert table.exit_code == 3
    assert "Alarms in ALARM: not checked" in table.stdout
    assert "none" not in table.stdout  # no empty table that reads "no alarm in ALARM", no "last report: none"


def test_an_unreadable_section_is_unknown_not_degraded(
    run: Callable[..., Result], health: dict[str, Any], client_hooks: Any
) -> None:
    def deny_s3(client: Any) -> None:
        if client.meta.service_model.service_name == "s3":
            client.meta.events.register("before-call.s3.ListObjectsV2", _access_denied)

    client_hooks(deny_s3)
    code, data = _status(run)
    assert code == 3 and data["not_run"] == ["last_cleanup", "last_report"]
    assert "AccessDenied" in data["errors"]["last_report"]
    assert data["checks"]["dlq"] == "OK"


def _access_denied(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    error = {"Error": {"Code": "AccessDenied", "Message": "injected"}}
    return AWSResponse("https://s3", 403, HTTPHeaders(), None), error


def test_critical_outranks_unknown_which_outranks_warning(
    run: Callable[..., Result], platform: Platform, health: dict[str, Any], client_hooks: Any
) -> None:
    platform.sqs.send_message(QueueUrl=platform.failed_url, MessageBody="{}")
    client_hooks(lambda c: c.meta.events.register("before-call.s3.ListObjectsV2", _access_denied))
    code, data = _status(run)
    assert code == 3 and data["checks"]["failed_queue"] == "WARNING"
    assert data["reasons"][0].startswith("UNKNOWN:") and data["reasons"][-1].startswith("WARNING:")
    platform.sqs.send_message(QueueUrl=health["scheduler_dlq"], MessageBody="{}")
    code, data = _status(run)
    assert code == 2 and data["reasons"][0].startswith("CRITICAL:")


@pytest.mark.parametrize("args", [("--watch", "0"), ("--no-such-option",), ("--count", "x")])
def test_a_usage_error_is_unknown_not_critical(run: Callable[..., Result], args: tuple[str, ...]) -> None:
    result = run("status", *args)
    assert result.exit_code == 3, result.output
    assert "Usage:" in result.stderr


def test_help_documents_the_exit_codes(run: Callable[..., Result]) -> None:
    text = run("status", "--help").stdout
    for line in ("0 OK", "1 WARNING", "2 CRITICAL", "3 UNKNOWN"):
        assert line in text, line


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_a_dead_endpoint_answers_unknown_within_10_seconds(
    run: Callable[..., Result], platform: Platform, kind: str
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts connections, never answers a request
    port = int(silent.getsockname()[1]) if kind == "silent" else _closed_port()
    try:
        started = time.monotonic()
        result = run("--endpoint-url", f"http://127.0.0.1:{port}", "status", "--json")
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert elapsed < 10, elapsed
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["not_run"] == EVERY_CHECK


def test_a_check_without_an_answer_in_time_is_unknown_and_checks_are_a_list_to_extend() -> None:
    release = threading.Event()

    def slow(_probe: Probe) -> tuple[Any, list[tuple[int, str]]]:
        release.wait(5)
        return {}, []

    def restores(_probe: Probe) -> tuple[Any, list[tuple[int, str]]]:
        return {"in_progress": 1}, [(WARNING, "1 restore in progress")]

    names = StatusNames(region=REGION)
    checks = [Check("restores", "restores", restores), Check("slow", "slow", slow)]
    started = time.monotonic()
    status = collect(names, cloudwatch=None, sqs=None, sfn=None, s3=None, checks=checks, timeout_s=0.3)
    release.set()
    assert time.monotonic() - started < 2
    data = status.to_dict()
    assert data["exit_code"] == 3 and data["not_run"] == ["slow"]
    assert data["errors"]["slow"] == "no answer within 0.3 s"
    assert data["restores"] == {"in_progress": 1} and data["checks"]["restores"] == "WARNING"


def test_without_the_account_id_the_checks_that_need_it_are_unknown_and_say_why(
    run: Callable[..., Result], health: dict[str, Any], client_hooks: Any
) -> None:
    def deny_sts(client: Any) -> None:
        if client.meta.service_model.service_name == "sts":
            client.meta.events.register("before-call.sts.GetCallerIdentity", _access_denied)

    client_hooks(deny_sts)
    result = run("--suffix", SUFFIX, "status", "--json", outputs=False)
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["not_run"] == ["executions", "last_cleanup", "last_report"]
    assert all("the account id is unknown" in data["errors"][name] for name in data["not_run"])
    assert data["checks"]["dlq"] == "OK" and data["checks"]["alarms"] == "OK"


def test_status_calls_aws_with_bounded_retries_and_time_outs(
    run: Callable[..., Result], health: dict[str, Any], client_hooks: Any
) -> None:
    configs: dict[str, Any] = {}
    client_hooks(lambda c: configs.setdefault(c.meta.service_model.service_name, c.meta.config))
    assert _status(run)[0] == 0
    assert set(configs) >= {"cloudwatch", "sqs", "stepfunctions", "s3"}
    for config in configs.values():
        assert config.retries["total_max_attempts"] == 2
        assert (config.connect_timeout, config.read_timeout) == (2, 5)


def test_with_the_suffix_alone_only_this_environments_alarms_count(
    run: Callable[..., Result], health: dict[str, Any]
) -> None:
    """Alarms are found by the naming rule's prefix, which other environments share: an alarm of
    another suffix in ALARM is not this platform's."""
    cloudwatch = health["cloudwatch"]
    other = "payment-intake-errors-other"
    cloudwatch.put_metric_alarm(
        AlarmName=other, MetricName="Errors", Namespace="AWS/Lambda", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    for name in (other, ALARMS["intake_errors"]):
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="x")
    result = run("--suffix", SUFFIX, "status", "--json", outputs=False)
    data = json.loads(result.stdout)
    assert [a["name"] for a in data["alarms"]] == [ALARMS["intake_errors"]], data["alarms"]
