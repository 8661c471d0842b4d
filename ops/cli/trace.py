"""``ops trace TXN_ID``: one transaction's story (record, audit, workflow, queues, archive, links)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import click
from payments.money import format_display
from rich.table import Table

from ops.cli.context import OpsContext, command_options, option
from ops.core import JobError, OpsError

DEFAULT_PEEK_ROUNDS = 5


def _function_log_groups(ops: OpsContext) -> list[str]:
    groups = ops.names.output("log_group_names")
    if not isinstance(groups, Mapping):
        return []
    return sorted(str(g) for g in groups.values() if str(g).startswith("/aws/lambda/"))


def _amount(txn: Mapping[str, Any]) -> str:
    """The stored minor units in the currency's major units, as people read them (``12.50 EUR``);
    ``--json`` keeps the minor units."""
    currency = str(txn.get("currency") or "")
    try:
        minor = int(txn["amount_minor"])
    except (KeyError, TypeError, ValueError):
        return f"{txn.get('amount_minor', '?')} {currency}".strip()
    return format_display(minor, currency) if currency else str(minor)


def _render(ops: OpsContext, story: dict[str, Any]) -> None:
    txn = story["transaction"] or {}
    ops.out.print(
        f"[bold]{story['transaction_id']}[/bold]  status={txn.get('status', '?')}  "
        f"amount={_amount(txn)}  "
        f"merchant={txn.get('merchant_id', '?')}"
    )
    if not story["transaction"]:
        ops.out.print("transaction item: not in the table (archived or expired?)")
    table = Table(title="Timeline", title_justify="left")
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("event")
    for event in story["timeline"]:
        table.add_row(str(event["at"] or "?"), event["source"], event["event"])
    ops.out.print(table)
    for execution in story["executions"]:
        if execution.get("error"):
            ops.out.print(
                f"workflow failed in {execution.get('failed_state') or '?'}: {execution['error']}"
                f" — {execution.get('cause') or ''}"
            )
    for queue in story["queues"]:
        state = "message present" if queue["present"] else "no message (in the sample peeked)"
        ops.out.print(f"{queue['queue']} queue {queue['name']}: {state}")
    archive = story["archive"]
    ops.out.print(f"archive: s3://{archive['bucket']}/{archive['object']}" if archive else "archive: none")
    for name, url in story["links"].items():
        ops.out.print(f"{name}: {url}", soft_wrap=True, overflow="ignore", crop=False)
    for section, why in story["skipped"].items():
        ops.info(f"[yellow]skipped {section}: {why}[/yellow]")


@click.command("trace")
@click.argument("transaction_id")
@option(
    "--peek-max",
    type=click.IntRange(0, 100),
    default=DEFAULT_PEEK_ROUNDS,
    help="Receives of 10 messages to look at per queue (each counts toward maxReceiveCount); 0 = skip.",
)
@command_options
def trace(ops: OpsContext, transaction_id: str, peek_max: int) -> None:
    """The story of one transaction: item, audit events, workflow execution, queues, archive, links.

    Exit code 1 (and nothing on stdout) for a malformed or unknown id.
    """
    # Imported here: the trace needs the application package (id format, PAN masking), which a
    # standalone operator install does not ship; every other command works without it.
    try:
        from ops.core import trace as core  # noqa: PLC0415 - see the comment above
    except ImportError as exc:
        raise OpsError(f"ops trace needs the application package (payments): {exc}") from exc

    core.check_id(transaction_id)
    ops.interactive = True  # bounded retries and time-outs: an on-call answer in seconds
    names = ops.names
    audit_table = names.table("audit")
    queues: dict[str, str] = {}
    failed = names.failed_queue()
    if failed:
        queues["failed"] = failed
    with contextlib.suppress(OpsError):  # no DLQ name known: that section is skipped
        queues["dlq"] = names.dlq()
    try:
        bucket: str | None = names.archive_bucket()
    except JobError:
        bucket = None
    settings = core.TraceNames(
        region=ops.region,
        table=names.transactions_table(),
        audit_table=audit_table,
        state_machine_arn=names.output("state_machine_arn"),
        queues=queues,
        bucket=bucket,
        log_groups=_function_log_groups(ops),
    )
    result = core.trace(
        transaction_id,
        settings,
        ddb=ops.client("dynamodb"),
        sqs=ops.client("sqs"),
        s3=ops.client("s3"),
        sfn=ops.client("stepfunctions"),
        peek_rounds=peek_max,
    )
    if not result.found:
        raise OpsError(f"transaction {transaction_id} not found (no item, audit, run, message or archive)")
    story = result.to_dict()
    if ops.settings.json:
        ops.emit_json(story)
    else:
        _render(ops, story)
