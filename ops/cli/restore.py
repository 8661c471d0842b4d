"""``ops restore``: a point-in-time restore drill into a new table, verified, with the cut-over printed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from rich.table import Table

from ops.cli.context import OpsContext, command_options, destructive_option, option
from ops.core.restore import (
    DEFAULT_POLL_S,
    DEFAULT_SETTLE_S,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WINDOW_DAYS,
    TABLES,
    RestoreInputError,
    RestorePlan,
    Verification,
    check_settings,
    cutover,
    finish_restore,
    iso,
    parse_time,
    plan_restore,
    start_restore,
    verify_restore,
    wait_until_active,
)

EXIT_USAGE = 2


class BadInput(click.ClickException):
    """One line on stderr and exit 2: the input was wrong, nothing was started."""

    exit_code = EXIT_USAGE


def _parse_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time such as 2026-03-14T09:55:00Z") from exc


def _source(ops: OpsContext, key: str) -> str:
    if key == "transactions":
        return ops.names.transactions_table()
    name = ops.names.table(key)
    if not name:
        raise click.ClickException(
            f"cannot resolve the {key} table: pass --suffix (OPS_SUFFIX), --outputs-file (OPS_OUTPUTS_FILE) "
            "or --tf-dir (OPS_TF_DIR)"
        )
    return name


def _render_plan(ops: OpsContext, plan: RestorePlan, dry_run: bool) -> None:
    prefix = "DRY RUN — " if dry_run else ""
    table = Table(
        title=f"{prefix}Restore {plan.source} → {plan.target} at {iso(plan.to_time)}",
        title_justify="left",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value")
    data = plan.to_dict()
    table.add_row("restorable", f"{data['restorable']['earliest']} … {data['restorable']['latest']}")
    table.add_row("KMS key", str(plan.kms_key_arn or "AWS owned (source has no CMK)"))
    table.add_row("billing", plan.billing_mode)
    table.add_row("indexes", ", ".join(data["indexes"]) or "none")
    table.add_row(
        "then", "PITR on, tags copied" + (f", TTL on {plan.ttl_attribute}" if plan.ttl_attribute else "")
    )
    ops.out.print(table)


def _render_result(ops: OpsContext, settings: list[dict[str, Any]], check: Verification) -> None:
    table = Table(title="Restored table settings", title_justify="left")
    for column in ("setting", "source", "restored", ""):
        table.add_column(column)
    for row in settings:
        table.add_row(
            row["setting"], str(row["source"]), str(row["restored"]), "ok" if row["ok"] else "DIFFERS"
        )
    ops.out.print(table)
    counts = Table(title=f"Items created {check.window['from']} … {check.window['to']}", title_justify="left")
    for column in ("day shard" if any("#" in g for g in check.groups) else "day", "source", "restored"):
        counts.add_column(column, justify="left" if column in ("day", "day shard") else "right")
    for group, row in check.groups.items():
        counts.add_row(group, str(row["source"]), str(row["restored"]))
    if not check.groups:
        counts.add_row("none", "0", "0")
    ops.out.print(counts)
    verdict = "[green]MATCH[/green]" if check.ok else "[red]DIFFERENT[/red]"
    ops.out.print(
        f"content hash of {check.compared} item(s) unchanged since T: {verdict} "
        f"(source {check.source_hash[:12]}, restored {check.restored_hash[:12]}); "
        f"{check.changed_since} changed since T (not compared), {len(check.deleted_since)} deleted from the "
        f"source since T, {len(check.missing)} missing from the copy, {len(check.mismatched)} different"
    )
    for label, keys in (("missing", check.missing), ("different", check.mismatched)):
        if keys:
            ops.out.print(f"  {label}: {', '.join(keys[:10])}{' …' if len(keys) > 10 else ''}")


@click.command("restore")
@option(
    "--table",
    "table_key",
    envvar="OPS_RESTORE_TABLE",
    required=True,
    type=click.Choice(sorted(TABLES)),
    help="Which platform table to restore (its name comes from outputs or --suffix).",
)
@option(
    "--to-time",
    "to_time",
    required=True,
    callback=_parse_time,
    metavar="T",
    help="Restore the table as it was at T (ISO-8601, UTC unless an offset is given), within the "
    "source's restorable window.",
)
@option(
    "--target", help="Name of the new table (default: <source>-r<YYYYmmdd>-<HHMMSS> of T). Must not exist."
)
@option(
    "--window-days",
    type=click.IntRange(1, 35),
    default=DEFAULT_WINDOW_DAYS,
    help="Verify the UTC days ending at T: item counts per day shard and a content hash.",
)
@option(
    "--settle",
    type=click.FloatRange(0, 86_400),
    default=DEFAULT_SETTLE_S,
    help="Seconds before T after which a source item's last change counts as 'may have changed since T'.",
)
@option(
    "--timeout",
    type=click.FloatRange(1, 86_400),
    default=DEFAULT_TIMEOUT_S,
    help="Seconds to wait for the restored table to become ACTIVE (large tables take hours).",
)
@option(
    "--poll",
    type=click.FloatRange(0.1, 600),
    default=DEFAULT_POLL_S,
    help="Seconds between DescribeTable calls while waiting.",
)
@destructive_option(
    "--yes", "-y", is_flag=True, help="Start the restore (else: a dry run that starts nothing)."
)
@command_options
def restore(
    ops: OpsContext,
    table_key: str,
    to_time: dt.datetime,
    target: str | None,
    window_days: int,
    settle: float,
    timeout: float,
    poll: float,
    yes: bool,
) -> None:
    """Point-in-time restore drill: restore a table into a NEW table, verify it, print the cut-over.

    Dry run unless --yes. With --yes: RestoreTableToPointInTime with the source's KMS key, GSIs and
    billing mode; a bounded wait; PITR, tags and TTL as the source has them; then a comparison with
    the source over --window-days (item counts per day shard, content hash of the items that cannot
    have changed since T) and the `terraform apply -var …` that points the platform at the copy.

    Exit codes: 0 restored and verified (or dry run), 1 the restore or its verification failed,
    2 bad input (time outside the restorable window or in the future, unknown table, existing
    target) — nothing was started.
    """
    kind = TABLES[table_key]
    source = _source(ops, table_key)
    dynamodb = ops.client("dynamodb")
    try:
        plan = plan_restore(dynamodb, kind, source, to_time, target)
    except RestoreInputError as exc:
        raise BadInput(str(exc)) from exc
    way = cutover(plan)
    if not yes:
        if ops.settings.json:
            ops.emit_json({"dry_run": True, "started": False, "plan": plan.to_dict(), "cutover": way})
            return
        _render_plan(ops, plan, dry_run=True)
        ops.out.print(f"then: {way['apply']}")
        ops.info("dry run: nothing was started; add --yes to start the restore")
        return
    if not ops.settings.json:
        _render_plan(ops, plan, dry_run=False)
    described = start_restore(dynamodb, plan)
    ops.info(f"restore of {plan.source} into {plan.target} started")
    with ops.progress(f"Restoring {plan.target}", total=timeout) as advance:
        seen = {"elapsed": 0.0}

        def on_poll(status: str, elapsed: float) -> None:
            advance(elapsed - seen["elapsed"])
            seen["elapsed"] = elapsed
            ops.debug(f"{plan.target}: {status} after {elapsed:.0f} s")

        described = wait_until_active(dynamodb, plan.target, timeout_s=timeout, poll_s=poll, on_poll=on_poll)
    steps = finish_restore(dynamodb, plan, described["TableArn"])
    ops.info(f"{plan.target} is ACTIVE; " + "; ".join(steps))
    settings = check_settings(dynamodb, plan)
    with ops.progress(f"Verifying {plan.target} against {plan.source}") as _advance:
        check = verify_restore(
            dynamodb,
            plan,
            window_days=window_days,
            settle_s=settle,
            index=ops.names.by_day_index(),
            shards=ops.names.day_shards(),
        )
    ok = check.ok and all(row["ok"] for row in settings)
    if ops.settings.json:
        ops.emit_json(
            {
                "dry_run": False,
                "started": True,
                "ok": ok,
                "plan": plan.to_dict(),
                "waited_s": round(seen["elapsed"], 1),
                "steps": steps,
                "settings": settings,
                "verification": check.to_dict(),
                "cutover": way,
            }
        )
    else:
        _render_result(ops, settings, check)
        ops.out.print(f"point the platform at the copy:  {way['apply']}")
        ops.out.print(f"cut back:  {way['cut_back']}")
    if not ok:
        raise click.exceptions.Exit(1)
