"""The platform's health at a glance (``ops status``), as a Nagios plugin reports it.

Every check is a function in ``CHECKS``; each one reads one thing and judges it. The verdict (the
exit code of ``ops status``) follows the Nagios plugin convention that monitoring tools understand:

* **2 CRITICAL**: an alarm is in ALARM, or the DLQ or the scheduler DLQ holds a message (a payment
  or a scheduled job that exhausted its retries).
* **3 UNKNOWN**: a check could not run: its resource has no name (neither a Terraform output nor
  the suffix gives one), AWS refused or did not answer, or it ran out of time. Each such check is
  named with the reason. UNKNOWN outranks WARNING: a check that did not run may hide a CRITICAL.
* **1 WARNING**: the failed queue holds messages (retries pending); a workflow execution failed,
  timed out or was aborted in the last hour; the API answered 5xx in the last 15 minutes; or the
  last cleanup run did not complete.
* **0 OK**: every check ran and none of the above. No report or cleanup run yet is OK.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from payments.clock import iso_from_datetime
from payments.layout import ARCHIVE_PREFIX, REPORTS_PREFIX, SUMMARY_NAME
from payments.names import PREFIX
from payments.queues import queue_url
from payments.states import UNSUCCESSFUL_EXECUTIONS

from ops.core.restore import restored_tables

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
_RANK = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}  # worse is higher; see the module docstring
EXECUTION_WINDOW = dt.timedelta(hours=1)
API_WINDOW = dt.timedelta(minutes=15)
QUEUE_AGE_WINDOW = dt.timedelta(minutes=15)
MAX_PAGES = 100  # bound on loops driven by a remote service
CLEANUP_CUTOFFS_SEARCHED = 3
DEFAULT_TIMEOUT_S = 7.0  # every check runs at once; those without an answer by then are UNKNOWN
DEAD_LETTER_ROLES = ("dlq", "scheduler_dlq")


class NotConfigured(Exception):
    """A check's resource has no name: no Terraform output and no suffix to derive it from."""


@dataclass(frozen=True)
class StatusNames:
    """Where each checked resource is; None where neither an output nor the naming rule says.
    ``unresolved`` says why a name is missing (field name -> reason), for the UNKNOWN message."""

    region: str
    queues: Mapping[str, str | None] = field(default_factory=dict)  # role -> URL or name
    alarm_names: Sequence[str] = ()
    alarm_prefix: str | None = None  # without alarm_names: alarms named <prefix>...<suffix>
    alarm_suffix: str | None = None
    state_machine_arn: str | None = None
    api_name: str | None = None
    api_stage: str = "prod"
    bucket: str | None = None
    table_suffix: str | None = None  # restored tables: payment-...-<suffix>-r<time> (ops restore)
    unresolved: Mapping[str, str] = field(default_factory=dict)

    def need(self, key: str, value: Any) -> Any:
        if not value:
            raise NotConfigured(self.unresolved.get(key) or f"no name for {key}")
        return value


@dataclass(frozen=True)
class Clients:
    cloudwatch: Any
    sqs: Any
    sfn: Any
    s3: Any
    dynamodb: Any = None


@dataclass(frozen=True)
class Probe:
    """What a check gets: the names, the clients and the time of the check."""

    names: StatusNames
    clients: Clients
    now: dt.datetime


Problems = list[tuple[int, str]]  # (state, reason) pairs; none: the check is OK


@dataclass(frozen=True)
class Check:
    """One check: ``run`` reads and judges, returning (its data, its problems).

    ``section`` is where the data goes in the result: a key holding it, or ``queues``, a list
    with one row per queue check. To add a check, add one to ``CHECKS``."""

    name: str
    section: str
    run: Callable[[Probe], tuple[Any, Problems]]


@dataclass
class HealthReport:
    """What `ops status` found: each check's section, its verdict, and the overall exit code."""

    checked_at: str
    alarms: list[dict[str, Any]] | None = None  # None: the check did not run (never "none in ALARM")
    queues: list[dict[str, Any]] = field(default_factory=list)
    executions: dict[str, Any] | None = None
    api: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    cleanup: dict[str, Any] | None = None
    restores: list[dict[str, Any]] | None = None  # None: not checked (never "no restore")
    extra: dict[str, Any] = field(default_factory=dict)  # sections of checks added later
    checks: dict[str, str] = field(default_factory=dict)  # check name -> OK | WARNING | ...
    errors: dict[str, str] = field(default_factory=dict)  # check name -> why it could not run
    reasons: list[str] = field(default_factory=list)
    code: int = OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": STATES[self.code],
            "exit_code": self.code,
            "reasons": self.reasons,
            "checked_at": self.checked_at,
            "checks": self.checks,
            "not_run": sorted(self.errors),
            "alarms": self.alarms,
            "queues": self.queues,
            "executions": self.executions,
            "api": self.api,
            "report": self.report,
            "cleanup": self.cleanup,
            "restores": self.restores,
            **self.extra,
            "errors": self.errors,
        }


def _iso(value: dt.datetime) -> str:
    return iso_from_datetime(value)


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
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{REPORTS_PREFIX}/"}
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


def queue_depth(sqs: Any, cloudwatch: Any, role: str, ref: str, now: dt.datetime) -> dict[str, Any]:
    url = queue_url(sqs, ref)
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    row: dict[str, Any] = {
        "queue": role,
        "name": url.rsplit("/", 1)[-1],
        "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "oldest_age_s": None,
    }
    if row["visible"] + row["in_flight"]:
        # SQS has no attribute for the age of the oldest message; CloudWatch publishes it per minute.
        query = _metric(
            "age", "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": row["name"]}, "Maximum", 60
        )
        newest = metric_values(cloudwatch, [query], now - QUEUE_AGE_WINDOW, now).get("age") or []
        row["oldest_age_s"] = int(newest[0]) if newest else None
    return row


# -- the checks ----------------------------------------------------------------------------------
def check_alarms(probe: Probe) -> tuple[Any, Problems]:
    names = probe.names
    names.need("alarms", names.alarm_names or names.alarm_prefix)
    alarms = alarms_in_alarm(probe.clients.cloudwatch, names, probe.now)
    return alarms, [(CRITICAL, f"alarm {a['name']} in ALARM") for a in alarms]


def _queue_check(role: str) -> Callable[[Probe], tuple[Any, Problems]]:
    def check(probe: Probe) -> tuple[Any, Problems]:
        ref = probe.names.need(role, probe.names.queues.get(role))
        row = queue_depth(probe.clients.sqs, probe.clients.cloudwatch, role, ref, probe.now)
        depth = row["visible"] + row["in_flight"]
        if not depth:
            return row, []
        return row, [
            (CRITICAL if role in DEAD_LETTER_ROLES else WARNING, f"{row['name']} holds {depth} message(s)")
        ]

    return check


def check_executions(probe: Probe) -> tuple[Any, Problems]:
    arn = probe.names.need("executions", probe.names.state_machine_arn)
    executions = bad_executions(probe.clients.sfn, arn, probe.now)
    failed = sum(executions["counts"].values())
    if not failed:
        return executions, []
    return executions, [
        (WARNING, f"{failed} workflow execution(s) failed, timed out or aborted in the last hour")
    ]


def check_api(probe: Probe) -> tuple[Any, Problems]:
    api = probe.names.need("api", probe.names.api_name)
    health = api_health(probe.clients.cloudwatch, api, probe.names.api_stage, probe.now)
    if not health["errors_5xx"]:
        return health, []
    return health, [(WARNING, f"API answered {health['errors_5xx']} 5xx in the last 15 minutes")]


def check_report(probe: Probe) -> tuple[Any, Problems]:
    return last_report(probe.clients.s3, probe.names.need("bucket", probe.names.bucket)), []


def check_cleanup(probe: Probe) -> tuple[Any, Problems]:
    cleanup = last_cleanup(probe.clients.s3, probe.names.need("bucket", probe.names.bucket))
    if cleanup and not cleanup.get("complete"):
        return cleanup, [(WARNING, f"last cleanup run {cleanup.get('run_id')} did not complete")]
    return cleanup, []


def check_restores(probe: Probe) -> tuple[Any, Problems]:
    """Point-in-time restores of this environment's tables (``ops restore``): listed, and one still
    running is a WARNING (a drill or a cut-over in progress is worth a look, not a page)."""
    suffix = probe.names.need("restores", probe.names.table_suffix)
    if probe.clients.dynamodb is None:
        raise NotConfigured("no DynamoDB client")
    restores = restored_tables(probe.clients.dynamodb, PREFIX, suffix)
    return restores, [
        (WARNING, f"restore into {r['table']} (from {r['source']}) still running")
        for r in restores
        if r["in_progress"]
    ]


QUEUE_CHECKS = {"failed_queue": "failed", "dlq": "dlq", "scheduler_dlq": "scheduler_dlq"}  # check -> role
CHECKS: list[Check] = [
    Check("alarms", "alarms", check_alarms),
    *(Check(name, "queues", _queue_check(role)) for name, role in QUEUE_CHECKS.items()),
    Check("executions", "executions", check_executions),
    Check("api", "api", check_api),
    Check("last_report", "report", check_report),
    Check("last_cleanup", "cleanup", check_cleanup),
    Check("restores", "restores", check_restores),
]


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, NotConfigured):
        return f"not configured: {exc}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}"[:300]
    if isinstance(exc, BotoCoreError):
        return str(exc)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def run_checks(
    checks: Sequence[Check], probe: Probe, timeout_s: float
) -> list[tuple[Any, Problems] | BaseException | None]:
    """Run every check at once; each one's (data, problems), its exception, or None if it had no
    answer within ``timeout_s``. Daemon threads: a check stuck on a dead endpoint neither delays
    the answer nor keeps the process alive (each call is bounded by the clients' time-outs too)."""
    results: list[tuple[Any, Problems] | BaseException | None] = [None] * len(checks)
    lock = threading.Lock()
    finished = threading.Event()
    pending = {"n": len(checks)}

    def work(index: int, check: Check) -> None:
        outcome: tuple[Any, Problems] | BaseException
        try:
            outcome = check.run(probe)
        except Exception as exc:  # whatever breaks a check makes that check UNKNOWN
            outcome = exc
        with lock:
            results[index] = outcome
            pending["n"] -= 1
            if not pending["n"]:
                finished.set()

    if not checks:
        return results
    for index, check in enumerate(checks):
        threading.Thread(target=work, args=(index, check), name=f"status-{check.name}", daemon=True).start()
    finished.wait(timeout_s)
    with lock:
        return list(results)


def collect(
    names: StatusNames,
    *,
    cloudwatch: Any,
    sqs: Any,
    sfn: Any,
    s3: Any,
    dynamodb: Any = None,
    now: dt.datetime | None = None,
    checks: Sequence[Check] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> HealthReport:
    now = now or dt.datetime.now(dt.UTC)
    status = HealthReport(checked_at=_iso(now))
    clients = Clients(cloudwatch=cloudwatch, sqs=sqs, sfn=sfn, s3=s3, dynamodb=dynamodb)
    probe = Probe(names=names, clients=clients, now=now)
    checks = CHECKS if checks is None else checks
    problems: Problems = []
    for check, outcome in zip(checks, run_checks(checks, probe, timeout_s), strict=True):
        if outcome is None or isinstance(outcome, BaseException):
            why = describe_error(outcome) if outcome is not None else f"no answer within {timeout_s:g} s"
            status.errors[check.name] = why
            status.checks[check.name] = STATES[UNKNOWN]
            problems.append((UNKNOWN, f"{check.name} could not run: {why}"))
            if check.section == "queues":
                role = QUEUE_CHECKS[check.name]
                status.queues.append({"queue": role, "name": _short(names.queues.get(role)), "error": why})
            continue
        data, found = outcome
        if check.section == "queues":
            status.queues.append(data)
        elif check.section in _SECTIONS:
            setattr(status, check.section, data)
        else:
            status.extra[check.section] = data
        status.checks[check.name] = STATES[max((s for s, _ in found), key=_RANK.__getitem__, default=OK)]
        problems.extend(found)
    verdict(status, problems)
    return status


_SECTIONS = {"alarms", "executions", "api", "report", "cleanup", "restores"}


def _short(ref: str | None) -> str | None:
    return ref.rsplit("/", 1)[-1] if ref else None


def verdict(status: HealthReport, problems: Problems) -> None:
    """``code``: the worst state found (CRITICAL > UNKNOWN > WARNING > OK); ``reasons``: worst first."""
    ordered = sorted(problems, key=lambda p: -_RANK[p[0]])
    status.reasons = [f"{STATES[state]}: {reason}" for state, reason in ordered]
    status.code = ordered[0][0] if ordered else OK
