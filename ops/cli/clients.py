"""``ops clients add|rotate|drop-secret|revoke|list``: the API's clients and their secrets.

A new secret is printed once (stdout, or the ``token`` field with --json) and never again: the
table keeps only its salted hash. API Gateway caches an authorizer decision for the TTL of the API
module (``authorizer_ttl_seconds``), so a revoked client is refused within that time.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from ops.cli.context import OpsContext, command_options, destructive_option, option
from ops.core import OpsError
from ops.core.clients import ClientStore, Issued, actor, public_view


def _store(ops: OpsContext, table: str | None, audit_table: str | None) -> ClientStore:
    clients_table = ops.names.table("clients", table)
    audit = ops.names.table("audit", audit_table)
    if not clients_table or not audit:
        raise OpsError("cannot resolve the clients/audit tables: pass --suffix, --outputs-file or --table")
    return ClientStore(ops.client("dynamodb"), clients_table, audit)


def _table_options(func: Any) -> Any:
    func = option("--audit-table", help="Audit table override (default: payment-audit-<suffix>).")(func)
    return option("--table", help="Clients table override (default: payment-clients-<suffix>).")(func)


def _issued(ops: OpsContext, issued: Issued, what: str) -> None:
    if ops.settings.json:
        ops.emit_json({**issued.client, "secret_id": issued.secret_id, "token": issued.token})
        return
    ops.info(f"{what} {issued.client['key_id']} (secret {issued.secret_id}); the secret is shown once:")
    click.echo(f"Authorization: Bearer {issued.token}")


@click.group("clients")
def clients() -> None:
    """API clients: who may call the API for which merchants (add, rotate, drop-secret, revoke, list)."""


@clients.command("add")
@click.argument("name")
@option("--merchant", "merchants", multiple=True, required=True, help="A merchant the client may act for.")
@option(
    "--kind",
    type=click.Choice(["merchant", "partner"]),
    default="merchant",
    help="merchant: its own integration (one merchant); partner: acts for the listed merchants.",
)
@_table_options
@command_options
def add(
    ops: OpsContext,
    name: str,
    merchants: tuple[str, ...],
    kind: str,
    table: str | None,
    audit_table: str | None,
) -> None:
    """Onboard a client: prints its first secret once."""
    _issued(ops, _store(ops, table, audit_table).add(name, merchants, kind, actor()), "added client")


@clients.command("rotate")
@click.argument("key_id")
@_table_options
@command_options
def rotate(ops: OpsContext, key_id: str, table: str | None, audit_table: str | None) -> None:
    """Issue a new secret; the previous one stays valid until the next rotation."""
    _issued(ops, _store(ops, table, audit_table).rotate(key_id, actor()), "rotated client")


@clients.command("revoke")
@click.argument("key_id")
@destructive_option("--yes", is_flag=True, help="Revoke without asking.")
@_table_options
@command_options
def revoke(ops: OpsContext, key_id: str, yes: bool, table: str | None, audit_table: str | None) -> None:
    """Cut a client off: every secret is deleted and its requests are refused (403)."""
    if not yes:
        click.confirm(f"Revoke client {key_id}? Its integration stops working.", abort=True, err=True)
    view = _store(ops, table, audit_table).revoke(key_id, actor())
    if ops.settings.json:
        ops.emit_json(view)
    else:
        ops.info(f"revoked client {key_id}")


@clients.command("drop-secret")
@click.argument("key_id")
@click.argument("secret_id")
@destructive_option("--yes", is_flag=True, help="Drop without asking.")
@_table_options
@command_options
def drop_secret(
    ops: OpsContext, key_id: str, secret_id: str, yes: bool, table: str | None, audit_table: str | None
) -> None:
    """Retire one secret once its callers use the newer one (the last secret of a client: revoke)."""
    if not yes:
        click.confirm(
            f"Drop secret {secret_id} of {key_id}? Requests with it are refused.", abort=True, err=True
        )
    view = _store(ops, table, audit_table).drop_secret(key_id, secret_id, actor())
    if ops.settings.json:
        ops.emit_json(view)
    else:
        ops.info(f"dropped secret {secret_id} of client {key_id}; left: {' '.join(view['secret_ids'])}")


@clients.command("list")
@_table_options
@command_options
def list_clients(ops: OpsContext, table: str | None, audit_table: str | None) -> None:
    """Every client with its merchants, status and secret ids (never a secret or hash)."""
    views = [public_view(c) for c in _store(ops, table, audit_table).all()]
    if ops.settings.json:
        ops.emit_json(views)
        return
    out = Table(title="API clients", title_justify="left")
    for column in ("key id", "name", "kind", "merchants", "status", "secrets"):
        out.add_column(column)
    for v in views:
        out.add_row(
            v["key_id"],
            v["name"],
            v["kind"],
            " ".join(v["merchants"]),
            v["status"],
            " ".join(v["secret_ids"]),
        )
    ops.out.print(out)
