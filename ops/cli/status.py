"""``ops status``: health at a glance; the exit code is the verdict (0 healthy, 1 degraded, 2 unhealthy)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ops.cli.context import OpsContext, command_options, option
from ops.core import OpsError
from ops.core.status import StatusNames, collect

STYLE = {0: "green", 1: "yellow", 2: "red"}


def _names(ops: OpsContext) -> StatusNames:
    names = ops.names
    suffix = names.suffix
    queues: dict[str, str] = {}
    failed = names.failed_queue()
    if failed:
        queues["failed"] = failed
    if names.output("dlq_url") or suffix:
        queues["dlq"] = names.dlq()
    scheduler = names.output("scheduler_dlq_url") or (f"payment-scheduler-dlq-{suffix}" if suffix else None)
    if scheduler:
        queues["scheduler_dlq"] = str(scheduler)
    alarms = names.output("alarm_names")
    bucket: str | None = None
    if names.output("archive_bucket_name") or suffix:
        bucket = names.archive_bucket()
    return StatusNames(
        region=ops.region,
        queues=queues,
        alarm_names=sorted(str(a) for a in alarms.values()) if isinstance(alarms, Mapping) else (),
        alarm_prefix="payment-" if suffix and not isinstance(alarms, Mapping) else None,
        alarm_suffix=f"-{suffix}" if suffix else None,
        state_machine_arn=names.output("state_machine_arn"),
        api_name=f"payment-api-{suffix}" if suffix else None,
        api_stage=str(names.output("api_stage_name") or "prod"),
        bucket=bucket,
    )


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def render(data: dict[str, Any]) -> Group:
    code = data["exit_code"]
    parts: list[Any] = [
        Text.from_markup(f"[bold {STYLE[code]}]{data['status'].upper()}[/]  checked {data['checked_at']}")
    ]
    parts.extend(Text(f"  • {reason}") for reason in data["reasons"])
    alarms = Table(title="Alarms in ALARM", title_justify="left")
    alarms.add_column("alarm", no_wrap=True)
    alarms.add_column("for", justify="right")
    alarms.add_column("since")
    for alarm in data["alarms"]:
        alarms.add_row(alarm["name"], _age(alarm["for_s"]), alarm["since"] or "?")
    if not data["alarms"]:
        alarms.add_row("none", "", "")
    queues = Table(title="Queues", title_justify="left")
    for column in ("queue", "visible", "in flight", "oldest"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for queue in data["queues"]:
        if "error" in queue:
            queues.add_row(queue["name"], "?", "?", queue["error"])
            continue
        depth = (str(queue["visible"]), str(queue["in_flight"]))
        queues.add_row(queue["name"], *depth, _age(queue["oldest_age_s"]))
    parts += [alarms, queues]
    lines: list[str] = []
    if data["executions"]:
        counts = data["executions"]["counts"]
        lines.append("executions (1 h): " + ", ".join(f"{k.lower()} {v}" for k, v in counts.items()))
    if data["api"]:
        api = data["api"]
        p99 = f"{api['latency_p99_ms']} ms" if api["latency_p99_ms"] is not None else "-"
        lines.append(f"API (15 min): {api['requests']} requests, {api['errors_5xx']} 5xx, p99 {p99}")
    report = data["report"]
    if report:
        rate = report.get("failure_rate")
        lines.append(
            f"last report: {report.get('date')} ({report.get('count')} txns, "
            f"failure rate {rate if rate is not None else '?'}), uploaded {report['uploaded_at']}"
        )
    else:
        lines.append("last report: none")
    cleanup = data["cleanup"]
    if cleanup:
        result = "complete" if cleanup.get("complete") else "INCOMPLETE"
        lines.append(
            f"last cleanup: {cleanup.get('run_id')} {result}, deleted {cleanup.get('deleted')}, "
            f"archived {cleanup.get('archived')}, finished {cleanup.get('finished_at')}"
        )
    else:
        lines.append("last cleanup: none")
    lines.extend(f"[unreadable] {section}: {why}" for section, why in data["errors"].items())
    parts.extend(Text(line) for line in lines)
    return Group(*parts)


@click.command("status")
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
@command_options
def status(ops: OpsContext, watch: int | None, count: int) -> None:
    """Health at a glance: alarms, queues, failed executions, API errors and p99, report and cleanup.

    Exit code: 2 unhealthy (an alarm in ALARM, or the DLQ or scheduler DLQ holds a message);
    1 degraded (failed-queue backlog, a failed/timed-out/aborted execution in the last hour,
    API 5xx in the last 15 minutes, an incomplete last cleanup, or an unreadable section);
    0 healthy.
    """
    try:
        names = _names(ops)
    except OpsError as exc:
        raise OpsError(f"cannot tell where the platform is: {exc}") from exc
    if not names.queues:
        # Nothing to look at is not "healthy": say what is missing instead.
        raise OpsError(
            "cannot tell where the platform is: pass --suffix (OPS_SUFFIX), "
            "--outputs-file (OPS_OUTPUTS_FILE) or --tf-dir (OPS_TF_DIR)"
        )

    def check() -> dict[str, Any]:
        return collect(
            names,
            cloudwatch=ops.client("cloudwatch"),
            sqs=ops.client("sqs"),
            sfn=ops.client("stepfunctions"),
            s3=ops.client("s3"),
        ).to_dict()

    rounds = count if watch else 1
    data: dict[str, Any] = {}
    if ops.settings.json:
        for n in range(rounds):
            data = check()
            if watch:
                click.echo(json.dumps(data, separators=(",", ":"), default=str))
            else:
                ops.emit_json(data)
            if n + 1 < rounds:
                time.sleep(watch or 0)
    elif watch:
        data = check()
        with Live(render(data), console=ops.out, auto_refresh=False) as live:
            for _ in range(rounds - 1):
                time.sleep(watch)
                data = check()
                live.update(render(data), refresh=True)
    else:
        data = check()
        ops.out.print(render(data))
    if data["exit_code"]:
        raise click.exceptions.Exit(data["exit_code"])
