"""``ops redrive``: move dead-lettered messages back to their source queue."""

from __future__ import annotations

import html
import re

import click
from payments.jobs.redrive import (
    DEFAULT_MAX_REDRIVES,
    DEFAULT_NATIVE_TIMEOUT_S,
    DEFAULT_VISIBILITY_TIMEOUT_S,
    DEFAULT_WAIT_S,
    MODES,
    REDRIVE_COUNT_ATTRIBUTE,
    RedriveResult,
)
from payments.jobs.redrive import (
    redrive as run_redrive,
)
from rich.table import Table

from ops.cli.context import OpsContext, command_options, option
from ops.core import JobError, OpsError

REASON_MAX_CHARS = 120
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_NOISE = re.compile(r"<(script|style)[^>]*>.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def one_line(text: str, limit: int = REASON_MAX_CHARS) -> str:
    """An endpoint's error as one short line: an HTML error page becomes its title (or its text)."""
    title = _TITLE.search(text)
    if title:
        # The text around the page (e.g. "501: ") stays; the page is summed up by its title.
        text = f"{text[: text.find('<')]}{title.group(1)}{text[text.rfind('>') + 1 :]}"
    flat = " ".join(html.unescape(_NOISE.sub(" ", text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _render(ops: OpsContext, result: RedriveResult) -> None:
    table = Table(
        title=f"{'DRY RUN — ' if result.dry_run else ''}Redrive {result.dlq.name} → {result.source.name}"
        f" ({result.mode}{', FIFO' if result.source.fifo else ''})",
        title_justify="left",
    )
    table.add_column("queue")
    table.add_column("visible before", justify="right")
    table.add_column("visible after", justify="right")
    table.add_column("in flight after", justify="right")
    for role, queue in (("dlq", result.dlq), ("source", result.source)):
        after = result.after.get(role, {})
        table.add_row(
            queue.name,
            str(result.before[role]["visible"]),
            str(after.get("visible", "?")),
            str(after.get("in_flight", "?")),
        )
    ops.out.print(table)
    if result.dry_run:
        if result.max_redrives:
            mode = (
                f"receive/send/delete loop, parking messages redriven {result.max_redrives} time(s) already"
            )
        else:
            mode = "native message-move task, else the receive/send/delete loop"
        limit = f", --max {result.max_messages}" if result.max_messages is not None else ""
        ops.out.print(f"would move {result.would_move} message(s) ({mode}{limit}); nothing was moved")
        return
    sent = (
        f" ({result.sent} sent to the source queue)"
        if result.sent != result.moved and result.mode == "loop"
        else ""
    )
    ops.out.print(f"moved {result.moved} message(s){sent}")
    if result.parked:
        _render_parked(ops, result)
    if result.fallback_reason:
        ops.info(
            f"native redrive unavailable ({one_line(result.fallback_reason)}); "
            "ran the receive/send/delete loop instead"
        )
    if result.failed_sends or result.failed_deletes:
        ops.err.print(
            f"[red]{result.failed_sends} send(s) and {result.failed_deletes} delete(s) failed; "
            "those messages stay in (or return to) the DLQ — rerun to finish[/red]"
        )


def _render_parked(ops: OpsContext, result: RedriveResult) -> None:
    table = Table(title=f"Parked in {result.dlq.name} (not sent again)", title_justify="left")
    for column in ("message id", "transaction", "redrives", "why"):
        table.add_column(column)
    for parked in result.parked.values():
        table.add_row(
            parked["message_id"], parked["transaction_id"] or "-", str(parked["redrives"]), parked["reason"]
        )
    ops.out.print(table)
    ops.err.print(
        f"[yellow]parked {len(result.parked)} message(s) in the DLQ: each went round "
        f"{result.max_redrives} time(s) and failed again. Find the cause (ops trace <transaction>); "
        "once fixed, redrive them with a higher --max-redrives, or delete them[/yellow]"
    )


@click.command("redrive")
@option("--queue", help="Dead-letter queue name, URL or ARN (default: the platform DLQ).")
@option(
    "--source-queue",
    help="Queue to move messages to (default: from the DLQ's redrive-allow policy or source list).",
)
@option(
    "--max",
    "max_messages",
    envvar="OPS_REDRIVE_MAX",
    type=click.IntRange(min=1),
    help="Send at most N messages back (loop mode): a canary before a full redrive.",
)
@option(
    "--max-redrives",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_REDRIVES,
    help=f"Park (leave in the DLQ, listed) a message already redriven N times: each redrive is counted "
    f"in its {REDRIVE_COUNT_ATTRIBUTE} message attribute (loop mode). 0 = no limit, no counting.",
)
@option("--dry-run", is_flag=True, help="Show counts and what would move (at most --max); receives nothing.")
@option(
    "--mode",
    type=click.Choice(MODES),
    default="auto",
    help="native = SQS message-move task (needs --max-redrives 0: it cannot count); loop = "
    "receive/send/delete; auto = loop, or with --max-redrives 0 native first, else loop.",
)
@option(
    "--visibility-timeout",
    type=click.IntRange(0, 43_200),
    default=DEFAULT_VISIBILITY_TIMEOUT_S,
    help="Seconds a received DLQ message stays hidden while it is being re-sent (loop mode).",
)
@option(
    "--wait-seconds",
    type=click.IntRange(0, 20),
    default=DEFAULT_WAIT_S,
    help="Long-poll wait per receive (loop mode); 0 = short polling.",
)
@option(
    "--timeout",
    type=click.FloatRange(1, 43_200),
    default=DEFAULT_NATIVE_TIMEOUT_S,
    help="Seconds to follow a native message-move task before giving up watching.",
)
@command_options
def redrive(
    ops: OpsContext,
    queue: str | None,
    source_queue: str | None,
    max_messages: int | None,
    max_redrives: int,
    dry_run: bool,
    mode: str,
    visibility_timeout: int,
    wait_seconds: int,
    timeout: float,
) -> None:
    """Move dead-lettered messages back to their source queue, FIFO-aware; counts before/after.

    Deletes a DLQ message only after its send succeeded: an interrupted run loses nothing.
    """
    dlq = ops.names.dlq(queue)
    with ops.progress(f"Redriving {dlq.rsplit('/', 1)[-1]}") as advance:
        done = {"n": 0}

        def on_progress(moved: int, _total: int | None) -> None:
            advance(moved - done["n"])
            done["n"] = moved

        try:
            result = run_redrive(
                ops.client("sqs"),
                dlq,
                source=source_queue,
                max_messages=max_messages,
                mode=mode,
                dry_run=dry_run,
                visibility_timeout_s=visibility_timeout,
                wait_s=wait_seconds,
                native_timeout_s=timeout,
                on_progress=on_progress,
                max_redrives=max_redrives,
            )
        except JobError as exc:
            # An endpoint's answer may be a whole HTML error page: report one line.
            raise OpsError(one_line(str(exc), limit=300)) from exc
    ops.debug(f"requests: {dict(result.requests)}")
    if ops.settings.json:
        ops.emit_json(result.to_dict())
    else:
        _render(ops, result)
    if not result.ok:
        raise click.exceptions.Exit(1)
