"""``ops report``: the daily transaction report (same code as the 02:00 UTC job)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import click
from payments.jobs.report import (
    DEFAULT_TOP_MERCHANTS,
    Report,
    build_report,
    resolve_day,
    shards_with_rows,
    upload_report,
)
from payments.money import format_display
from payments.shards import MAX_DAY_SHARDS, shard_suffix
from rich.markup import escape
from rich.table import Table

from ops.cli.context import OpsContext, command_options, destructive_option, option
from ops.core import JobError


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str) -> dt.date:
    try:
        return resolve_day(value)
    except JobError as exc:
        raise click.BadParameter(str(exc)) from exc


def render_csv(report: Report) -> str:
    """Long format, one fact per row: section,key,currency,count,amount_minor,amount."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "key", "currency", "count", "amount_minor", "amount"])
    data = report.to_dict()
    writer.writerow(["summary", "as_of", "", "", "", data["as_of"]])
    writer.writerow(["summary", "transactions", "", data["count"], "", ""])
    writer.writerow(["summary", "malformed_amounts", "", data["malformed_amounts"]["count"], "", ""])
    writer.writerow(["summary", "failed", "", data["failed"], "", ""])
    writer.writerow(["summary", "failure_rate", "", "", "", f"{data['failure_rate']:.6f}"])
    writer.writerow(["summary", "rejected", "", data["rejected"], "", ""])
    writer.writerow(["summary", "rejection_rate", "", "", "", f"{data['rejection_rate']:.6f}"])
    for total in data["totals"]:
        writer.writerow(
            ["total", "all", total["currency"], total["count"], total["amount_minor"], total["amount"]]
        )
    for total in data["settled_totals"]:
        writer.writerow(["total", "settled", total["currency"], "", total["amount_minor"], total["amount"]])
    for status, count in data["status"].items():
        writer.writerow(["status", status, "", count, "", ""])
    for merchant in data["top_merchants"]:
        if not merchant["totals"]:
            writer.writerow(["merchant", merchant["merchant_id"], "", merchant["count"], "", ""])
        for total in merchant["totals"]:
            writer.writerow(
                [
                    "merchant",
                    merchant["merchant_id"],
                    total["currency"],
                    merchant["count"],
                    total["amount_minor"],
                    total["amount"],
                ]
            )
    for hour in data["hourly"]:
        writer.writerow(["hour", f"{hour['hour']:02d}", "", hour["count"], "", ""])
    return buffer.getvalue()


def render_tables(ops: OpsContext, report: Report) -> None:
    console = ops.out
    console.print(
        f"[bold]Transactions on {report.day.isoformat()}[/bold]  count {report.count:,}  "
        f"failed {report.failed:,}  failure rate {report.failure_rate:.2%}  "
        f"rejected {report.rejected:,} ({report.rejection_rate:.2%})  (as of {report.as_of})"
    )
    totals = Table(title="Totals per currency", title_justify="left")
    totals.add_column("currency")
    totals.add_column("transactions", justify="right")
    totals.add_column("total", justify="right")
    totals.add_column("settled", justify="right")
    for currency in sorted(report.totals_minor):
        totals.add_row(
            currency,
            f"{report.currency_counts.get(currency, 0):,}",
            format_display(report.totals_minor[currency], currency),
            format_display(report.settled_minor.get(currency, 0), currency),
        )
    console.print(totals)
    if report.malformed_amounts:
        console.print(
            f"[bold red]{report.malformed_amounts:,} transaction(s) without an integer amount_minor: "
            "counted above, in no total[/bold red]"
        )

    statuses = Table(title="Status", title_justify="left")
    statuses.add_column("status")
    statuses.add_column("count", justify="right")
    statuses.add_column("share", justify="right")
    for status, count in sorted(report.status_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        statuses.add_row(status, f"{count:,}", f"{count / report.count:.1%}" if report.count else "-")
    console.print(statuses)

    merchants = Table(title="Top merchants", title_justify="left")
    merchants.add_column("merchant")
    merchants.add_column("count", justify="right")
    merchants.add_column("totals", justify="right")
    for merchant in report.top_merchants:
        merchants.add_row(
            merchant.merchant_id,
            f"{merchant.count:,}",
            ", ".join(format_display(v, c) for c, v in sorted(merchant.totals_minor.items())),
        )
    console.print(merchants)

    hourly = Table(title="Hourly volume (UTC)", title_justify="left")
    hourly.add_column("hour")
    hourly.add_column("count", justify="right")
    hourly.add_column("", no_wrap=True)
    peak = max(report.hourly) or 1
    for hour, count in enumerate(report.hourly):
        hourly.add_row(f"{hour:02d}:00", f"{count:,}", "█" * round(30 * count / peak))
    console.print(hourly)


@click.command("report")
@option(
    "--date",
    "day",
    envvar="OPS_REPORT_DATE",
    default="yesterday",
    callback=_parse_date,
    metavar="YYYY-MM-DD",
    help="UTC day to report: YYYY-MM-DD, 'today' or 'yesterday'.",
)
@option(
    "--format",
    "fmt",
    envvar="OPS_REPORT_FORMAT",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    help="Output format (--json is the same as --format json).",
)
@option("--upload", is_flag=True, help="Also write reports/YYYY-MM-DD.json to the archive bucket.")
@destructive_option(
    "--force",
    is_flag=True,
    help="With --upload: replace a stored report with a lower count, or upload a day past retention.",
)
@option(
    "--top",
    type=click.IntRange(1, 1000),
    default=DEFAULT_TOP_MERCHANTS,
    help="How many merchants to rank.",
)
@option(
    "--table",
    "table_name",
    envvar="OPS_REPORT_TABLE",
    help="Transactions table (default: from outputs or suffix).",
)
@option(
    "--index",
    "index_name",
    envvar="OPS_REPORT_INDEX",
    help="By-day index name (default: from outputs, else by-day).",
)
@option(
    "--shards",
    type=click.IntRange(1, MAX_DAY_SHARDS),
    help=f"Query only shards 0..N-1 of the by-day index (default: all {MAX_DAY_SHARDS} any deployment can "
    "write, so a day written under another shard count is counted in full). Refused below the deployed "
    "count, or when a higher shard holds a row of the day (checked first: one small query per shard).",
)
@option("--bucket", help="Archive bucket for --upload (default: from outputs or suffix).")
@command_options
def report(
    ops: OpsContext,
    day: dt.date,
    fmt: str,
    upload: bool,
    force: bool,
    top: int,
    table_name: str | None,
    index_name: str | None,
    shards: int | None,
    bucket: str | None,
) -> None:
    """Daily report: count, totals per currency, statuses, failure rate, top merchants, hourly volume.

    Reads only the day's items: one paginated Query per shard of the by-day index, in parallel.
    """
    if ops.settings.json:
        fmt = "json"
    names = ops.names
    table = names.transactions_table(table_name)
    index = names.by_day_index(index_name)
    writer_shards = names.day_shards()
    if shards is not None and writer_shards is not None and shards < writer_shards:
        raise click.UsageError(
            f"--shards {shards} is below the deployed day_shard_count ({writer_shards}): the report would "
            "miss rows; leave --shards out to query every shard"
        )
    if shards is not None and shards < MAX_DAY_SHARDS:
        # The deployed count says how today's rows are spread, not how the day's rows were: a day
        # written before the count was lowered has rows above it. Look before counting less.
        higher = shards_with_rows(ops.client("dynamodb"), table, index, day, range(shards, MAX_DAY_SHARDS))
        if higher:
            where = ", ".join(shard_suffix(n) for n in higher[:10]) + (", ..." if len(higher) > 10 else "")
            raise click.UsageError(
                f"--shards {shards} would undercount {day.isoformat()}: its rows are also in shard(s) "
                f"{where}; leave --shards out to query every shard"
            )
        ops.info(f"shards {shards}..{MAX_DAY_SHARDS - 1} hold no row of {day.isoformat()}: none is missed")
    shard_count = shards or MAX_DAY_SHARDS
    description = f"Querying {shard_count} shards of {index} for {day.isoformat()}"
    with ops.progress(description, shard_count) as advance:
        result = build_report(
            ops.client("dynamodb"),
            table,
            index,
            shard_count,
            day,
            top=top,
            on_shard_done=lambda _shard: advance(1),
            writer_shards=writer_shards,
        )
    ops.debug(f"{result.queries} queries read {result.items_read} items from {table}/{index}")
    beyond = result.shards_beyond_writer
    if beyond:
        where = ", ".join(shard_suffix(n) for n in beyond)
        ops.info(
            f"rows of {day.isoformat()} are in shard(s) {where}, beyond the "
            f"deployed {writer_shards}: the shard count was lowered since; they are counted"
        )
    if result.malformed_amounts:
        examples = escape(", ".join(sorted(result.malformed_examples)))
        ops.err.print(
            f"[yellow]{result.malformed_amounts} transaction(s) of {day.isoformat()} have a missing or "
            f"non-numeric amount_minor: counted in the day, in no total (e.g. {examples})[/yellow]"
        )
    location = None
    if upload:
        location = upload_report(
            ops.client("s3"),
            names.archive_bucket(bucket),
            result,
            force=force,
            retention_days=names.retention_days(),
        )
        ops.info(f"uploaded {location}")
    if fmt == "json":
        data = result.to_dict()
        if location:
            data["uploaded_to"] = location
        ops.emit_json(data)
    elif fmt == "csv":
        click.echo(render_csv(result), nl=False)
    else:
        render_tables(ops, result)
