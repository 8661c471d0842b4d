"""``ops links``: the on-call links (dashboard, alarms, queues, workflow, logs) from outputs, and
with ``--subscriptions`` who the alerts topic reaches and whether each subscription is confirmed."""

from __future__ import annotations

import click
from rich.table import Table

from ops.cli.context import OpsContext, command_options, option
from ops.core import OpsError
from ops.core.links import (
    CONFIRMED,
    GROUP_ORDER,
    Subscription,
    flatten,
    grouped,
    stage_link,
    subscription_states,
)

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
@option(
    "--subscriptions",
    envvar="OPS_LINKS_SUBSCRIPTIONS",
    is_flag=True,
    default=False,
    help="Also list the alerts topic's subscriptions with their confirmation state (reads SNS; "
    "exit 1 when none is confirmed: alarms would reach nobody).",
)
@command_options
def links(ops: OpsContext, groups: tuple[str, ...], fmt: str, subscriptions: bool) -> None:
    """On-call console links from the `oncall_links` Terraform output, grouped, after the API stage's
    URL (`api_invoke_url`)."""
    if subscriptions:
        _subscriptions(ops)
        return
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


def _subscriptions(ops: OpsContext) -> None:
    topic_arn = ops.names.output("alerts_topic_arn")
    if not topic_arn:
        raise OpsError("no alerts_topic_arn in the Terraform outputs: pass --outputs-file or --tf-dir")
    subs = subscription_states(ops.client("sns"), str(topic_arn))
    confirmed = [s for s in subs if s.state == CONFIRMED]
    if ops.settings.json:
        ops.emit_json(
            {
                "topic_arn": topic_arn,
                "subscriptions": [_as_dict(s) for s in subs],
                "confirmed": len(confirmed),
            }
        )
    else:
        table = Table(title=f"Alert subscriptions ({topic_arn})", title_justify="left")
        table.add_column("protocol", no_wrap=True)
        table.add_column("endpoint", overflow="fold")
        table.add_column("state", no_wrap=True)
        for sub in subs:
            table.add_row(sub.protocol, sub.endpoint, sub.state)
        ops.out.print(table)
    if not confirmed:
        raise OpsError("no confirmed subscription on the alerts topic: alarms and failed jobs reach nobody")


def _as_dict(sub: Subscription) -> dict[str, str | None]:
    return {"protocol": sub.protocol, "endpoint": sub.endpoint, "state": sub.state, "arn": sub.arn}
