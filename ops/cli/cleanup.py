"""``ops cleanup``: retention cleanup of the transactions table (same code as the 03:00 UTC job)."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import click
from payments.clock import iso_from_datetime, iso_from_ms
from payments.jobs.archive import VerifyResult, verify_archive
from payments.jobs.cleanup import (
    DEFAULT_CHUNK_ITEMS,
    DEFAULT_SEGMENTS,
    MAX_SEGMENTS,
    CleanupResult,
    run_cleanup,
)
from payments.jobs.retention import TERMINAL_STATUSES, RetentionTooShort, check_retention, parse_duration_days
from rich.table import Table

from ops.cli.context import OpsContext, command_options, destructive_option, option
from ops.core import JobError

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def _parse_days(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return parse_duration_days(value)
    except JobError as exc:
        raise click.BadParameter(str(exc)) from exc


def _parse_verify(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: expected the archive date YYYY-MM-DD") from exc


def interactive() -> bool:
    """Whether a person can answer a prompt (stdin is a terminal)."""
    return sys.stdin.isatty()


def _render(ops: OpsContext, result: CleanupResult, show_unfinished: bool) -> None:
    verb = "would" if result.dry_run else "did"
    state = "DRY RUN — " if result.dry_run else ("INTERRUPTED — " if result.interrupted else "")
    finished = ", ".join(TERMINAL_STATUSES)
    ops.out.print(
        f"[bold]{state}Cleanup of {result.table}[/bold]: finished ({finished}) rows created "
        f"before {iso_from_datetime(result.cutoff)} "
        f"({result.mode}, {result.segments} segments, {result.run_id})"
    )
    table = Table()
    table.add_column("step")
    table.add_column("rows", justify="right")
    table.add_row("scanned", f"{result.scanned:,}")
    table.add_row("eligible (finished, old)", f"{result.matched:,}")
    table.add_row("unfinished, kept", f"{result.unfinished:,}")
    if result.archive:
        archived = result.matched if result.dry_run else result.archived
        table.add_row(f"archive ({verb})", f"{archived:,} in {result.archive_objects:,} objects")
    if result.mode == "delete":
        table.add_row(f"delete ({verb})", f"{result.matched if result.dry_run else result.deleted:,}")
    else:
        table.add_row(f"set TTL ({verb})", f"{result.matched if result.dry_run else result.ttl_set:,}")
        if result.ttl_skipped:
            table.add_row("TTL already set", f"{result.ttl_skipped:,}")
    for label, value in (
        ("changed meanwhile, archived again", result.rearchived),
        ("changed meanwhile, kept", result.changed_skipped),
        ("gone before delete", result.vanished),
        ("recovered from an interrupted run", result.recovered_rows),
    ):
        if value:
            table.add_row(label, f"{value:,}")
    ops.out.print(table)
    _render_unfinished(ops, result, show_unfinished)
    if result.archive and result.bucket:
        ops.out.print(f"archive: s3://{result.bucket}/{result.archive_prefix}")
    if result.dry_run:
        ops.info("dry run: nothing was changed; rerun with --yes to apply")


def _render_unfinished(ops: OpsContext, result: CleanupResult, show_unfinished: bool) -> None:
    if result.unfinished:
        statuses = ", ".join(f"{s} {n:,}" for s, n in sorted(result.unfinished_statuses.items()))
        ops.info(
            f"{result.unfinished:,} rows older than the cutoff are not finished ({statuses}) and were kept"
            + ("" if show_unfinished else "; list them with --show-unfinished")
        )
    if show_unfinished and result.unfinished_samples:
        rows = Table(title="Unfinished rows older than the cutoff", title_justify="left")
        for column in ("key", "status", "created (UTC)", "version"):
            rows.add_column(column)
        for sample in result.unfinished_samples:
            created = iso_from_ms(sample["timestamp"])
            rows.add_row(sample["key"], sample["status"], created, str(sample["version"]))
        ops.out.print(rows)
        if len(result.unfinished_samples) < result.unfinished:
            ops.info(f"(first {len(result.unfinished_samples):,} of {result.unfinished:,} shown)")


def _render_verify(ops: OpsContext, result: VerifyResult, bucket: str) -> None:
    if ops.settings.json:
        ops.emit_json({"bucket": bucket, **result.to_dict()})
        return
    ops.out.print(
        f"[bold]Verify s3://{bucket}/{result.prefix}[/bold]: {result.runs} runs, "
        f"{result.manifests} manifests, "
        f"{result.rows:,} deleted rows each found exactly once in the current archive objects"
        if result.ok
        else f"[bold red]Verify s3://{bucket}/{result.prefix}: {len(result.problems)} problem(s)[/bold red]"
    )
    for problem in result.problems[:50]:
        ops.err.print(f"[red]{problem}[/red]")
    if result.pending:
        ops.info(
            f"{len(result.pending)} object(s) of an interrupted chunk ({result.pending_rows:,} rows) have no "
            "manifest yet; the next cleanup run reconciles them"
        )


@contextmanager
def _stop_on_sigint(ops: OpsContext) -> Iterator[threading.Event]:
    """First Ctrl-C: stop at the next transaction group and summarise. Second: abort at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        ops.err.print("[yellow]Ctrl-C: stopping after the current group of deletes (again to abort)[/yellow]")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@click.command("cleanup")
@option(
    "--older-than",
    "older_than",
    default="90d",
    callback=_parse_days,
    metavar="AGE",
    help="Retention: rows created before midnight UTC this many days ago (90d, 12w, 90). At least "
    "the deployed cleanup_retention_days unless --force.",
)
@destructive_option(
    "--no-archive",
    "no_archive",
    is_flag=True,
    help="Delete WITHOUT writing rows to the archive bucket. Needs --confirm-no-archive too.",
)
@destructive_option(
    "--confirm-no-archive",
    is_flag=True,
    help="Second flag --no-archive needs: deleted rows will have no copy in S3.",
)
@option(
    "--backfill-ttl",
    is_flag=True,
    help="Archive old finished rows, then set expires_at on those that lack it (conditional on the "
    "archived version) instead of deleting them.",
)
@option(
    "--segments",
    type=click.IntRange(1, MAX_SEGMENTS),
    default=DEFAULT_SEGMENTS,
    help="Parallel scan segments (default: one per GiB of table, up to 16).",
)
@option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_CHUNK_ITEMS,
    help="Rows per archive object.",
)
@option("--show-unfinished", is_flag=True, help="List old rows kept because they are not finished.")
@option(
    "--verify",
    "verify_date",
    callback=_parse_verify,
    metavar="YYYY-MM-DD",
    help="Only check the archive of that cutoff date: every deleted row is in exactly one current "
    "archive object, with the version and checksum its manifest recorded.",
)
@option("--dry-run", is_flag=True, help="Only report what would happen (the default unless --yes).")
@destructive_option(
    "--yes", "-y", is_flag=True, help="Apply without asking (else: a dry run, then a prompt)."
)
@destructive_option(
    "--force",
    is_flag=True,
    help="Allow --older-than below the deployed minimum retention.",
)
@option(
    "--table",
    "table_name",
    envvar="OPS_CLEANUP_TABLE",
    help="Transactions table (default: from outputs or suffix).",
)
@option("--bucket", help="Archive bucket (default: from outputs or suffix).")
@command_options
def cleanup(
    ops: OpsContext,
    older_than: int,
    no_archive: bool,
    confirm_no_archive: bool,
    backfill_ttl: bool,
    segments: int | None,
    chunk_size: int,
    show_unfinished: bool,
    verify_date: dt.date | None,
    dry_run: bool,
    yes: bool,
    force: bool,
    table_name: str | None,
    bucket: str | None,
) -> None:
    """Archive, then delete (or TTL-mark) finished transactions older than the retention period.

    Dry run unless --yes (or a "y" at the prompt). One run at a time (a lock shared with the
    03:00 job); Ctrl-C stops it with a partial summary (exit 130); a rerun finishes the job.
    """
    names = ops.names
    if verify_date is not None:
        verify_bucket = names.archive_bucket(bucket)
        verify_table = names.transactions_table(table_name)
        result_verify = verify_archive(
            ops.client("dynamodb"), verify_table, ops.client("s3"), verify_bucket, verify_date
        )
        _render_verify(ops, result_verify, verify_bucket)
        if not result_verify.ok:
            raise click.exceptions.Exit(1)
        return
    try:
        check_retention(older_than, names.retention_days(), force=force)
    except RetentionTooShort as exc:
        raise click.UsageError(str(exc)) from exc
    if no_archive and not confirm_no_archive:
        raise click.UsageError(
            "--no-archive deletes rows with no copy in S3: add --confirm-no-archive to mean it"
        )
    archive = not no_archive
    if no_archive:
        ops.err.print(
            "[bold red]WARNING: --no-archive: deleted rows are NOT archived; only point-in-time "
            "recovery (35 days) can bring them back[/bold red]"
        )
    table = names.transactions_table(table_name)
    bucket_name: str | None = names.archive_bucket(bucket) if archive else None
    applying = yes and not dry_run

    def execute(apply: bool, stop: threading.Event | None = None) -> CleanupResult:
        description = ops.client("dynamodb").describe_table(TableName=table)["Table"]
        estimate = int(description.get("ItemCount", 0)) or None
        with ops.progress(f"Scanning {table}", estimate) as advance:
            return run_cleanup(
                ops.client("dynamodb"),
                table,
                older_than_days=older_than,
                s3_client=ops.client("s3") if archive else None,
                bucket=bucket_name,
                archive=archive,
                backfill_ttl=backfill_ttl,
                segments=segments,
                dry_run=not apply,
                chunk_items=chunk_size,
                on_progress=lambda kind, n: advance(n) if kind == "scanned" else None,
                stop=stop,
            )

    ops.debug(f"table {table}, bucket {bucket_name}, segments {segments}, applying {applying}")
    if not applying:
        result = execute(False)
        _show(ops, result, show_unfinished)
        action = "set a TTL on" if backfill_ttl else "delete"
        if dry_run or not result.matched or not interactive() or ops.settings.json:
            return
        prompt = (
            f"Archive and {action} {result.matched:,} rows of {table}?"
            if archive
            else (f"{action.capitalize()} {result.matched:,} rows of {table} WITHOUT an archive?")
        )
        if not click.confirm(prompt, default=False, err=True):
            ops.info("nothing was changed")
            return
    with _stop_on_sigint(ops) as stop:
        result = execute(True, stop)
    _show(ops, result, show_unfinished)
    if result.interrupted:
        ops.err.print(
            "[yellow]interrupted: the summary above is partial; every deleted row is archived. "
            "Rerun the same command to finish.[/yellow]"
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


def _show(ops: OpsContext, result: CleanupResult, show_unfinished: bool) -> None:
    ops.debug(f"requests: {dict(result.requests)}")
    if ops.settings.json:
        data = result.to_dict()
        if show_unfinished:
            data["unfinished_rows"] = result.unfinished_samples
        ops.emit_json(data)
    else:
        _render(ops, result, show_unfinished)
