"""The platform's health at a glance (``ops status``), with a verdict scripts can act on.

Verdict (the exit code of ``ops status``):

* **2 unhealthy**: an alarm is in ALARM, or the DLQ or the scheduler DLQ holds a message
  (a payment or a scheduled job that exhausted its retries).
* **1 degraded**: the failed queue holds messages (retries pending); a workflow execution failed,
  timed out or was aborted in the last hour; the API answered 5xx in the last 15 minutes; the last
  cleanup run did not complete; or a section could not be read.
* **0 healthy**: none of the above. A platform with no report or cleanup run yet is healthy.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from payments.jobs.archive import SUMMARY_NAME
from payments.layout import ARCHIVE_PREFIX
from payments.states import UNSUCCESSFUL_EXECUTIONS

HEALTHY, DEGRADED, UNHEALTHY = 0, 1, 2
VERDICTS = {HEALTHY: "healthy", DEGRADED: "degraded", UNHEALTHY: "unhealthy"}
EXECUTION_WINDOW = dt.timedelta(hours=1)
API_WINDOW = dt.timedelta(minutes=15)
QUEUE_AGE_WINDOW = dt.timedelta(minutes=15)
MAX_PAGES = 100  # bound on loops driven by a remote service
CLEANUP_CUTOFFS_SEARCHED = 3


@dataclass(frozen=True)
class StatusNames:
    region: str
    queues: Mapping[str, str] = field(default_factory=dict)  # role -> URL or name
    alarm_names: Sequence[str] = ()
    alarm_prefix: str | None = None  # without alarm_names: alarms named <prefix>...<suffix>
    alarm_suffix: str | None = None
    state_machine_arn: str | None = None
    api_name: str | None = None
    api_stage: str = "prod"
    bucket: str | None = None


@dataclass
class Status:
    checked_at: str
    alarms: list[dict[str, Any]] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)
    executions: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    cleanup: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)  # section -> why it could not be read
    reasons: list[str] = field(default_factory=list)
    code: int = HEALTHY

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": VERDICTS[self.code],
            "exit_code": self.code,
            "reasons": self.reasons,
            "checked_at": self.checked_at,
            "alarms": self.alarms,
            "queues": self.queues,
            "executions": self.executions,
            "api": self.api,
            "report": self.report,
            "cleanup": self.cleanup,
            "errors": self.errors,
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def alarms_in_alarm(cloudwatch: Any, names: StatusNames, now: dt.datetime) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    if names.alarm_names:
        wanted = sorted(names.alarm_names)
        requests = [{"AlarmNames": wanted[i : i + 100]} for i in range(0, len(wanted), 100)]
    elif names.alarm_prefix:
        requests = [{"AlarmNamePrefix": names.alarm_prefix}]
    for base in requests:
        request = {**base, "StateValue": "ALARM"}
        for _ in range(MAX_PAGES):
            page = cloudwatch.describe_alarms(**request)
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                if alarm.get("StateValue") != "ALARM":
                    continue  # the filter is a request; some endpoints ignore it beside AlarmNames
                if not names.alarm_names and not alarm["AlarmName"].endswith(names.alarm_suffix or ""):
                    continue  # another environment's alarm under the same prefix
                since = alarm.get("StateUpdatedTimestamp")
                found.append(
                    {
                        "name": alarm["AlarmName"],
                        "since": _iso(since) if since else None,
                        "for_s": int((now - since).total_seconds()) if since else None,
                        "reason": alarm.get("StateReason"),
                    }
                )
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    return sorted(found, key=lambda a: a["name"])


def _queue_url(sqs: Any, ref: str) -> str:
    if ref.startswith(("https://", "http://")):
        return ref
    return str(sqs.get_queue_url(QueueName=ref)["QueueUrl"])


def metric_values(
    cloudwatch: Any, queries: list[dict[str, Any]], start: dt.datetime, end: dt.datetime
) -> dict[str, list[float]]:
    """``{query id: newest-first values}`` from one GetMetricData call (paginated, bounded)."""
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    if not queries:
        return values
    request: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampDescending",
    }
    for _ in range(MAX_PAGES):
        page = cloudwatch.get_metric_data(**request)
        for result in page.get("MetricDataResults", []):
            values.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    return values


def _metric(qid: str, namespace: str, name: str, dims: Mapping[str, str], stat: str, period: int) -> dict:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def queue_health(
    sqs: Any, cloudwatch: Any, queues: Mapping[str, str], now: dt.datetime
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for role, ref in queues.items():
        try:
            url = _queue_url(sqs, ref)
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        except ClientError as exc:  # one missing queue must not hide the others
            error = exc.response.get("Error", {})
            rows.append({"queue": role, "name": ref.rsplit("/", 1)[-1], "error": error.get("Code", str(exc))})
            continue
        rows.append(
            {
                "queue": role,
                "name": url.rsplit("/", 1)[-1],
                "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "oldest_age_s": None,
            }
        )
    # SQS has no attribute for the age of the oldest message; CloudWatch publishes it per minute.
    readable = [row for row in rows if "error" not in row]
    queries = [
        _metric(f"q{i}", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": r["name"]}, "Maximum", 60)
        for i, r in enumerate(readable)
    ]
    ages = metric_values(cloudwatch, queries, now - QUEUE_AGE_WINDOW, now)
    for i, row in enumerate(readable):
        newest = ages.get(f"q{i}") or []
        row["oldest_age_s"] = int(newest[0]) if newest and row["visible"] + row["in_flight"] else None
    return rows


def bad_executions(sfn: Any, state_machine_arn: str, now: dt.datetime) -> dict[str, Any]:
    since = now - EXECUTION_WINDOW
    counts: dict[str, int] = {}
    recent: list[dict[str, Any]] = []
    for status in (s.value for s in UNSUCCESSFUL_EXECUTIONS):
        counts[status] = 0
        request: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": status}
        for _ in range(MAX_PAGES):
            page = sfn.list_executions(**request)
            older = False
            for execution in page.get("executions", []):  # newest first
                when = execution.get("stopDate") or execution.get("startDate")
                if when is None or when < since:
                    older = True
                    continue
                counts[status] += 1
                if len(recent) < 10:
                    recent.append({"name": execution["name"], "status": status, "at": _iso(when)})
            if older or not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    return {"window_s": int(EXECUTION_WINDOW.total_seconds()), "counts": counts, "recent": recent}


def api_health(cloudwatch: Any, api_name: str, stage: str, now: dt.datetime) -> dict[str, Any]:
    dims = {"ApiName": api_name, "Stage": stage}
    period = int(API_WINDOW.total_seconds())
    queries = [
        _metric("errors5xx", "AWS/ApiGateway", "5XXError", dims, "Sum", period),
        _metric("count", "AWS/ApiGateway", "Count", dims, "Sum", period),
        _metric("p99", "AWS/ApiGateway", "Latency", dims, "p99", period),
    ]
    values = metric_values(cloudwatch, queries, now - API_WINDOW, now)
    p99 = values.get("p99") or []
    return {
        "api": api_name,
        "stage": stage,
        "window_s": period,
        "requests": int(sum(values.get("count") or [])),
        "errors_5xx": int(sum(values.get("errors5xx") or [])),
        "latency_p99_ms": round(max(p99), 1) if p99 else None,
    }


def last_report(s3: Any, bucket: str) -> dict[str, Any] | None:
    newest: dict[str, Any] | None = None
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": "reports/"}
    for _ in range(MAX_PAGES):
        page = s3.list_objects_v2(**request)
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".json") and (newest is None or obj["Key"] > newest["Key"]):
                newest = obj
        if not page.get("IsTruncated"):
            break
        request["ContinuationToken"] = page["NextContinuationToken"]
    if newest is None:
        return None
    body = json.loads(s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read())
    keys = ("date", "generated_at", "count", "failed", "rejected", "failure_rate", "rejection_rate")
    return {
        "key": newest["Key"],
        "uploaded_at": _iso(newest["LastModified"]),
        **{k: body.get(k) for k in keys},
    }


def _prefixes(s3: Any, bucket: str, prefix: str) -> list[str]:
    found: list[str] = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    for _ in range(MAX_PAGES):
        page = s3.list_objects_v2(**request)
        found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        if not page.get("IsTruncated"):
            break
        request["ContinuationToken"] = page["NextContinuationToken"]
    return sorted(found)


def last_cleanup(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The newest cleanup run's summary (``cleanup/<cutoff>/<run id>/summary.json``)."""
    runs: list[str] = []
    for cutoff in reversed(_prefixes(s3, bucket, f"{ARCHIVE_PREFIX}/")[-CLEANUP_CUTOFFS_SEARCHED:]):
        runs.extend(_prefixes(s3, bucket, cutoff))
    # Run ids start with their UTC start time (run-YYYYmmddTHHMMSSZ-...): newest last.
    for run in sorted(runs, key=lambda p: p.rstrip("/").rsplit("/", 1)[-1], reverse=True):
        key = f"{run}{SUMMARY_NAME}"
        try:
            body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                continue  # a run still going (or one that died before its summary)
            raise
        keys = ("run_id", "mode", "dry_run", "cutoff", "complete", "interrupted", "finished_at")
        counts = ("scanned", "matched", "archived", "deleted", "unfinished")
        return {"key": key, **{k: body.get(k) for k in keys}, **{k: body.get(k) for k in counts}}
    return None


def verdict(status: Status) -> None:
    """Fill ``code`` and ``reasons`` by the rules in the module docstring."""
    bad: list[str] = []
    poor: list[str] = []
    for alarm in status.alarms:
        bad.append(f"alarm {alarm['name']} in ALARM")
    for queue in status.queues:
        if "error" in queue:
            poor.append(f"queue {queue['name']} unreadable: {queue['error']}")
            continue
        depth = queue["visible"] + queue["in_flight"]
        if depth and queue["queue"] in ("dlq", "scheduler_dlq"):
            bad.append(f"{queue['name']} holds {depth} message(s)")
        elif depth:
            poor.append(f"{queue['name']} holds {depth} message(s)")
    failed_runs = sum(status.executions.get("counts", {}).values())
    if failed_runs:
        poor.append(f"{failed_runs} workflow execution(s) failed, timed out or aborted in the last hour")
    if status.api.get("errors_5xx"):
        poor.append(f"API answered {status.api['errors_5xx']} 5xx in the last 15 minutes")
    if status.cleanup and not status.cleanup.get("complete"):
        poor.append(f"last cleanup run {status.cleanup.get('run_id')} did not complete")
    poor.extend(f"{section} unreadable: {why}" for section, why in status.errors.items())
    status.reasons = bad + poor
    status.code = UNHEALTHY if bad else DEGRADED if poor else HEALTHY


def collect(
    names: StatusNames,
    *,
    cloudwatch: Any,
    sqs: Any,
    sfn: Any,
    s3: Any,
    now: dt.datetime | None = None,
) -> Status:
    now = now or dt.datetime.now(dt.UTC)
    status = Status(checked_at=_iso(now))

    def section(name: str, read: Any) -> Any:
        # One unreadable source (a missing permission, a deleted queue) must not hide the others.
        try:
            return read()
        except (ClientError, BotoCoreError, KeyError, ValueError) as exc:
            status.errors[name] = str(exc)[:300]
            return None

    status.alarms = section("alarms", lambda: alarms_in_alarm(cloudwatch, names, now)) or []
    status.queues = section("queues", lambda: queue_health(sqs, cloudwatch, names.queues, now)) or []
    if names.state_machine_arn:
        arn = names.state_machine_arn
        status.executions = section("executions", lambda: bad_executions(sfn, arn, now)) or {}
    if names.api_name:
        api = names.api_name
        status.api = section("api", lambda: api_health(cloudwatch, api, names.api_stage, now)) or {}
    if names.bucket:
        bucket = names.bucket
        status.report = section("report", lambda: last_report(s3, bucket))
        status.cleanup = section("cleanup", lambda: last_cleanup(s3, bucket))
    verdict(status)
    return status
