"""``ops status``: health at a glance; the exit code is the verdict, by the Nagios plugin convention
(0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from payments import names as resource
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ops.cli.context import OpsContext, command_options, option
from ops.core import JobError
from ops.core.status import (
    CRITICAL,
    DEFAULT_TIMEOUT_S,
    OK,
    UNKNOWN,
    WARNING,
    StatusNames,
    collect,
)

STYLE = {OK: "green", WARNING: "yellow", CRITICAL: "red", UNKNOWN: "magenta"}
WHERE = "pass --suffix (OPS_SUFFIX), --outputs-file (OPS_OUTPUTS_FILE) or --tf-dir (OPS_TF_DIR)"


class StatusUnknown(click.ClickException):
    """The status itself could not be established: exit 3 (UNKNOWN), the reason on stderr."""

    exit_code = UNKNOWN


class NagiosCommand(click.Command):
    """A usage error exits 3 (UNKNOWN), not click's 2: to a monitoring tool 2 means CRITICAL."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            exc.exit_code = UNKNOWN
            raise

    def invoke(self, ctx: click.Context) -> Any:
        # A usage error found while running (an unusable --tf-dir or --outputs-file) is UNKNOWN too.
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.exit_code = UNKNOWN
            raise


def _names(ops: OpsContext) -> StatusNames:
    """Each resource from the outputs, else by the naming rule of the suffix; a name neither gives
    stays None with the reason in ``unresolved`` (its check is then UNKNOWN, never skipped)."""
    names = ops.names
    suffix = names.suffix
    unresolved: dict[str, str] = {}

    def resolve(key: str, find: Callable[[], str | None]) -> str | None:
        try:
            value = find()
        except JobError as exc:
            why = f"{exc}" if suffix else f"no output names it and no suffix: {WHERE}"
        except (ClientError, BotoCoreError) as exc:  # STS, asked for the account id
            why = f"the account id is unknown: {exc}"
        else:
            if value:
                return value
            why = f"no output names it and no suffix: {WHERE}" if not suffix else "the account id is unknown"
        unresolved[key] = why
        return None

    try:
        partition = ops.session.get_partition_for_region(ops.region)
    except BotoCoreError:  # a region botocore does not know (an emulator's): the default
        partition = "aws"
    alarms = names.output("alarm_names")
    alarm_names = sorted(str(a) for a in alarms.values()) if isinstance(alarms, Mapping) else []
    if not alarm_names and not suffix:
        unresolved["alarms"] = f"no alarm_names output and no suffix: {WHERE}"
    if not suffix:
        unresolved["api"] = f"no suffix to derive the API name from: {WHERE}"
        unresolved["restores"] = f"no suffix to find the environment's restored tables by: {WHERE}"
    return StatusNames(
        region=ops.region,
        queues={
            "failed": resolve("failed", names.failed_queue),
            "dlq": resolve("dlq", names.dlq),
            "scheduler_dlq": resolve("scheduler_dlq", names.scheduler_dlq),
        },
        alarm_names=alarm_names,
        alarm_prefix=resource.ALARM_PREFIX if suffix and not alarm_names else None,
        alarm_suffix=f"-{suffix}" if suffix else None,
        state_machine_arn=resolve("executions", lambda: names.state_machine_arn(ops.region, partition)),
        api_name=names.api_name(),
        api_stage=str(names.output("api_stage_name") or "prod"),
        bucket=resolve("bucket", names.archive_bucket),
        table_suffix=suffix or None,
        unresolved=unresolved,
    )


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _not_checked(data: dict[str, Any], check: str) -> str:
    return f"not checked ({data['errors'][check]})" if check in data["errors"] else "not checked"


def render(data: dict[str, Any]) -> Group:
    code = data["exit_code"]
    parts: list[Any] = [
        Text.from_markup(f"[bold {STYLE[code]}]{data['status']}[/]  checked {data['checked_at']}")
    ]
    parts.extend(Text(f"  • {reason}") for reason in data["reasons"])
    if data["alarms"] is None:
        # A check that did not run shows no table: an empty one would read "no alarm in ALARM".
        parts.append(Text(f"Alarms in ALARM: {_not_checked(data, 'alarms')}"))
    else:
        alarms = Table(title="Alarms in ALARM", title_justify="left")
        alarms.add_column("alarm", no_wrap=True)
        alarms.add_column("for", justify="right")
        alarms.add_column("since")
        for alarm in data["alarms"]:
            alarms.add_row(alarm["name"], _age(alarm["for_s"]), alarm["since"] or "?")
        if not data["alarms"]:
            alarms.add_row("none", "", "")
        parts.append(alarms)
    queues = Table(title="Queues", title_justify="left")
    for column in ("queue", "visible", "in flight", "oldest"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for queue in data["queues"]:
        if "error" in queue:
            queues.add_row(queue["name"] or queue["queue"], "?", "?", "not checked")
            continue
        depth = (str(queue["visible"]), str(queue["in_flight"]))
        queues.add_row(queue["name"], *depth, _age(queue["oldest_age_s"]))
    parts.append(queues)
    parts.extend(Text(line) for line in _lines(data))
    return Group(*parts)


def _restore_lines(data: dict[str, Any]) -> list[str]:
    if "restores" in data["errors"]:
        return [f"restores: {_not_checked(data, 'restores')}"]
    return [
        f"restore: {r['table']} from {r['source']} to {r['restore_time']}, "
        + ("RUNNING" if r["in_progress"] else r["status"] or "?")
        for r in data["restores"] or []
    ]


def _lines(data: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if data["executions"] is not None:
        counts = data["executions"]["counts"]
        lines.append("executions (1 h): " + ", ".join(f"{k.lower()} {v}" for k, v in counts.items()))
    else:
        lines.append(f"executions (1 h): {_not_checked(data, 'executions')}")
    if data["api"] is not None:
        api = data["api"]
        p99 = f"{api['latency_p99_ms']} ms" if api["latency_p99_ms"] is not None else "-"
        lines.append(f"API (15 min): {api['requests']} requests, {api['errors_5xx']} 5xx, p99 {p99}")
    else:
        lines.append(f"API (15 min): {_not_checked(data, 'api')}")
    report = data["report"]
    if "last_report" in data["errors"]:
        lines.append(f"last report: {_not_checked(data, 'last_report')}")
    elif report:
        rate = report.get("failure_rate")
        lines.append(
            f"last report: {report.get('date')} ({report.get('count')} txns, "
            f"failure rate {rate if rate is not None else '?'}), uploaded {report['uploaded_at']}"
        )
    else:
        lines.append("last report: none")
    cleanup = data["cleanup"]
    if "last_cleanup" in data["errors"]:
        lines.append(f"last cleanup: {_not_checked(data, 'last_cleanup')}")
    elif cleanup:
        result = "complete" if cleanup.get("complete") else "INCOMPLETE"
        lines.append(
            f"last cleanup: {cleanup.get('run_id')} {result}, deleted {cleanup.get('deleted')}, "
            f"archived {cleanup.get('archived')}, finished {cleanup.get('finished_at')}"
        )
    else:
        lines.append("last cleanup: none")
    lines.extend(_restore_lines(data))
    if data["not_run"]:
        lines.append("not run (UNKNOWN): " + ", ".join(data["not_run"]))
    return lines


@click.command("status", cls=NagiosCommand)
@option(
    "--watch",
    type=click.IntRange(min=1),
    default=None,
    help="Redraw every N seconds (rich Live); with --json, one JSON object per line.",
)
@option(
    "--count",
    type=click.IntRange(min=1),
    default=10,
    help="With --watch: stop after this many checks (the exit code is the last check's).",
)
@option(
    "--timeout",
    type=click.FloatRange(1, 300),
    default=DEFAULT_TIMEOUT_S,
    help="Seconds the checks (run at once) have to answer; one without an answer is UNKNOWN.",
)
@command_options
def status(ops: OpsContext, watch: int | None, count: int, timeout: float) -> None:
    """Health at a glance: alarms, queues, failed executions, API errors and p99, report and cleanup.

    \b
    Exit code (the Nagios plugin convention, for monitoring tools):
      0 OK        every check ran; nothing below
      1 WARNING   failed-queue backlog, a failed/timed-out/aborted execution in the last
                  hour, API 5xx in the last 15 minutes, an incomplete last cleanup, or a
                  point-in-time restore (ops restore) still running
      2 CRITICAL  an alarm in ALARM, or the DLQ or scheduler DLQ holds a message
      3 UNKNOWN   a check could not run (no name for its resource, AWS refused or did not
                  answer in time; each one is named), or a usage error
    CRITICAL outranks UNKNOWN, which outranks WARNING.
    """
    try:
        ops.interactive = True  # bounded retries and time-outs: a dead endpoint answers in seconds
        started = time.monotonic()
        names = _names(ops)
        clients = {
            "cloudwatch": ops.client("cloudwatch"),
            "sqs": ops.client("sqs"),
            "sfn": ops.client("stepfunctions"),
            "s3": ops.client("s3"),
            "dynamodb": ops.client("dynamodb"),
        }
    except (JobError, ClientError, BotoCoreError) as exc:
        raise StatusUnknown(f"UNKNOWN: cannot tell where the platform is: {exc}") from exc

    def check(budget: float) -> dict[str, Any]:
        return collect(names, **clients, timeout_s=max(1.0, budget)).to_dict()

    rounds = count if watch else 1
    # The first round's budget includes resolving the names (which may ask STS for the account).
    first = timeout - (time.monotonic() - started)
    data: dict[str, Any] = {}
    if ops.settings.json:
        for n in range(rounds):
            data = check(first if n == 0 else timeout)
            if watch:
                click.echo(json.dumps(data, separators=(",", ":"), default=str))
            else:
                ops.emit_json(data)
            if n + 1 < rounds:
                time.sleep(watch or 0)
    elif watch:
        data = check(first)
        with Live(render(data), console=ops.out, auto_refresh=False) as live:
            for _ in range(rounds - 1):
                time.sleep(watch)
                data = check(timeout)
                live.update(render(data), refresh=True)
    else:
        data = check(first)
        ops.out.print(render(data))
    if data["exit_code"]:
        raise click.exceptions.Exit(data["exit_code"])
