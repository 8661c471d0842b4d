"""``ops cleanup``: retention cleanup of the transactions table (same code as the 03:00 UTC job)."""

from __future__ import annotations

import click
from rich.table import Table

from ops.cli.context import OpsContext, aws_options, option, output_options, pass_ops
from ops.core import OpsError
from ops.core.cleanup import (
    DEFAULT_CHUNK_ITEMS,
    DEFAULT_SEGMENTS,
    MAX_SEGMENTS,
    CleanupResult,
    parse_duration_days,
    run_cleanup,
)


def _parse_days(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_duration_days(value)
    except OpsError as exc:
        raise click.BadParameter(str(exc)) from exc


def _render(ops: OpsContext, result: CleanupResult) -> None:
    verb = "would" if result.dry_run else "did"
    ops.out.print(
        f"[bold]{'DRY RUN — ' if result.dry_run else ''}Cleanup of {result.table}[/bold]: items created "
        f"before {result.cutoff.isoformat()} ({result.mode}, {result.segments} segments)"
    )
    table = Table()
    table.add_column("step")
    table.add_column("items", justify="right")
    table.add_row("scanned", f"{result.scanned:,}")
    table.add_row("eligible", f"{result.matched:,}")
    if result.archive:
        archived = result.matched if result.dry_run else result.archived + result.already_archived
        table.add_row(f"archive ({verb})", f"{archived:,} in {result.archive_objects:,} objects")
    if result.mode == "delete":
        table.add_row(f"delete ({verb})", f"{result.matched if result.dry_run else result.deleted:,}")
    else:
        table.add_row(f"set TTL ({verb})", f"{result.matched if result.dry_run else result.ttl_set:,}")
        if result.ttl_skipped:
            table.add_row("TTL already set", f"{result.ttl_skipped:,}")
    ops.out.print(table)
    if result.archive and result.bucket:
        ops.out.print(f"archive: s3://{result.bucket}/{result.archive_prefix}")
    if result.dry_run:
        ops.info("dry run: nothing was changed; rerun with --yes to apply")


@click.command("cleanup")
@option(
    "--older-than",
    "older_than",
    default="90d",
    callback=_parse_days,
    metavar="AGE",
    help="Retention: items created before midnight UTC this many days ago (90d, 12w, 90).",
)
@option(
    "--archive/--no-archive",
    default=True,
    help="Write each item to the archive bucket (JSONL) before deleting it.",
)
@option(
    "--backfill-ttl",
    is_flag=True,
    help="Set expires_at on old items that lack it (conditional update) instead of deleting them.",
)
@option(
    "--segments",
    type=click.IntRange(1, MAX_SEGMENTS),
    default=DEFAULT_SEGMENTS,
    help="Parallel scan segments (default: those of an earlier run for the same cutoff, else one "
    "per GiB of table, up to 16). A rerun must use the interrupted run's value.",
)
@option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_CHUNK_ITEMS,
    help="Items per archive object.",
)
@option("--dry-run", is_flag=True, help="Only report what would happen (the default unless --yes).")
@option("--yes", "-y", is_flag=True, help="Apply the changes (without it the command is a dry run).")
@option(
    "--table",
    "table_name",
    envvar="OPS_CLEANUP_TABLE",
    help="Transactions table (default: from outputs or suffix).",
)
@option("--bucket", help="Archive bucket (default: from outputs or suffix).")
@aws_options
@output_options
@pass_ops
def cleanup(
    ops: OpsContext,
    older_than: int,
    archive: bool,
    backfill_ttl: bool,
    segments: int | None,
    chunk_size: int,
    dry_run: bool,
    yes: bool,
    table_name: str | None,
    bucket: str | None,
) -> None:
    """Archive and delete (or TTL-mark) transactions older than the retention period.

    Dry run unless --yes. Safe to rerun after an interruption: it finishes the job without
    archiving anything twice and never deletes an item that is not archived.
    """
    names = ops.names
    table = names.transactions_table(table_name)
    bucket_name = names.archive_bucket(bucket) if archive else None
    applying = yes and not dry_run
    ops.debug(f"table {table}, bucket {bucket_name}, segments {segments}, applying {applying}")
    description = ops.client("dynamodb").describe_table(TableName=table)["Table"]
    estimate = int(description.get("ItemCount", 0)) or None
    with ops.progress(f"Scanning {table}", estimate) as advance:
        result = run_cleanup(
            ops.client("dynamodb"),
            table,
            older_than_days=older_than,
            s3_client=ops.client("s3") if archive else None,
            bucket=bucket_name,
            archive=archive,
            backfill_ttl=backfill_ttl,
            segments=segments,
            dry_run=not applying,
            chunk_items=chunk_size,
            on_progress=lambda kind, n: advance(n) if kind == "scanned" else None,
        )
    ops.debug(f"requests: {dict(result.requests)}")
    if ops.settings.json:
        ops.emit_json(result.to_dict())
    else:
        _render(ops, result)
