"""``ops links``: the on-call links (dashboard, alarms, queues, workflow, logs) from outputs."""

from __future__ import annotations

import click
from rich.table import Table

from ops.cli.context import OpsContext, aws_options, option, output_options, pass_ops
from ops.core import OpsError
from ops.core.links import GROUP_ORDER, flatten, grouped


@click.command("links")
@option(
    "--group",
    "groups",
    envvar="OPS_LINKS_GROUP",
    multiple=True,
    help=f"Only these groups ({', '.join(GROUP_ORDER)}); repeatable.",
)
@aws_options
@output_options
@pass_ops
def links(ops: OpsContext, groups: tuple[str, ...]) -> None:
    """On-call console links from the `oncall_links` Terraform output, grouped."""
    rows = flatten(ops.names.oncall_links())
    if groups:
        wanted = set(groups)
        unknown = wanted - {row.group for row in rows}
        if unknown:
            raise OpsError(f"no links in group(s): {', '.join(sorted(unknown))}")
        rows = [row for row in rows if row.group in wanted]
    if ops.settings.json:
        ops.emit_json(grouped(rows))
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
