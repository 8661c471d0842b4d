"""``ops links``: the on-call links (dashboard, alarms, queues, workflow, logs) from outputs."""

from __future__ import annotations

import click
from rich.table import Table

from ops.cli.context import OpsContext, command_options, option
from ops.core import OpsError
from ops.core.links import GROUP_ORDER, flatten, grouped, stage_link

TABLE_CHROME = 10  # borders and padding of the three-column table


@click.command("links")
@option(
    "--group",
    "groups",
    envvar="OPS_LINKS_GROUP",
    multiple=True,
    help=f"Only these groups ({', '.join(GROUP_ORDER)}); repeatable.",
)
@option(
    "--format",
    "fmt",
    envvar="OPS_LINKS_FORMAT",
    type=click.Choice(["auto", "table", "plain"]),
    default="auto",
    help="plain = one line per link (name, then the URL unbroken); auto = plain when the "
    "terminal is too narrow for the table.",
)
@command_options
def links(ops: OpsContext, groups: tuple[str, ...], fmt: str) -> None:
    """On-call console links from the `oncall_links` Terraform output, grouped, after the API stage's
    URL (`api_invoke_url`)."""
    rows = stage_link(ops.names.output("api_invoke_url")) + flatten(ops.names.oncall_links())
    if groups:
        wanted = set(groups)
        unknown = wanted - {row.group for row in rows}
        if unknown:
            raise OpsError(f"no links in group(s): {', '.join(sorted(unknown))}")
        rows = [row for row in rows if row.group in wanted]
    if ops.settings.json:
        ops.emit_json(grouped(rows))
        return
    widest = max((len(row.group) + len(row.name) + len(row.url) for row in rows), default=0)
    if fmt == "plain" or (fmt == "auto" and widest + TABLE_CHROME > ops.out.width):
        # click.echo, not rich: a console would wrap (and so break) a URL at the terminal width.
        for row in rows:
            click.echo(f"{row.name}  {row.url}")
        return
    table = Table(title="On-call links", title_justify="left", show_lines=False)
    table.add_column("group", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("url", overflow="fold")
    previous = None
    for row in rows:
        table.add_row(row.group if row.group != previous else "", row.name, row.url)
        previous = row.group
    ops.out.print(table)
