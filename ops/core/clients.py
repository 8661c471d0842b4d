"""API clients for ``ops clients``: onboard, rotate, revoke, list (docs/interfaces.md "Authorization").

A new secret is returned once, to be printed once; only its salted HMAC is stored
(``payments.authorizer.secret_record``). Every change is one conditional write of the client item
and one audit entry in the audit table (partition = the key id), so "who changed this client, when"
is answered from the same store as a transaction's history.
"""

from __future__ import annotations

import os
import secrets as _secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from payments import dynamo
from payments.authorizer import (
    ACTIVE,
    KINDS,
    MAX_ACTIVE_SECRETS,
    REVOKED,
    new_key_id,
    new_secret,
    secret_record,
    token,
)
from payments.clock import iso_from_ms, now_ms
from payments.store import write

from ops.core import OpsError


@dataclass(frozen=True)
class Issued:
    """A client and the secret just made for it: the only time the secret exists outside the caller."""

    client: dict[str, Any]
    secret_id: str
    token: str


def _now() -> str:
    return iso_from_ms(now_ms())


def actor() -> str:
    """Who made a change, for the audit entry: the operator's login name (never a credential)."""
    return os.environ.get("OPS_ACTOR") or os.environ.get("USER") or "unknown"


def public_view(client: dict[str, Any]) -> dict[str, Any]:
    """A client without its hashes and salts (what ``list`` shows)."""
    return {
        "key_id": client["key_id"],
        "name": client.get("name", ""),
        "kind": client.get("kind", ""),
        "merchants": sorted(client.get("merchants") or []),
        "status": client.get("status", ""),
        "secret_ids": [s["secret_id"] for s in client.get("secrets") or []],
        "created_at": client.get("created_at", ""),
        "updated_at": client.get("updated_at", ""),
    }


def _check_merchants(merchants: Iterable[str]) -> list[str]:
    result = sorted({m.strip() for m in merchants if m.strip()})
    if not result:
        raise OpsError("a client needs at least one merchant (--merchant)")
    return result


class ClientStore:
    """The clients table (and the audit table for the change log)."""

    def __init__(self, dynamodb: Any, table: str, audit_table: str) -> None:
        self._ddb = dynamodb
        self._table = table
        self._audit = audit_table

    # -- reads -----------------------------------------------------------------------------
    def fetch(self, key_id: str) -> dict[str, Any]:
        item = self._ddb.get_item(TableName=self._table, Key={"key_id": {"S": key_id}}, ConsistentRead=True)
        if "Item" not in item:
            raise OpsError(f"no client {key_id}")
        return dynamo.from_attributes(item["Item"])

    def all(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self._ddb.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            found.extend(dynamo.from_attributes(item) for item in page.get("Items", []))
        return sorted(found, key=lambda c: str(c.get("created_at", "")))

    # -- writes ----------------------------------------------------------------------------
    def _save(self, client: dict[str, Any], expected_version: int | None, action: str, who: str) -> None:
        """Create the client (``expected_version`` None) or replace the row read at that version."""
        saved = write.put(
            self._ddb,
            self._table,
            dynamo.to_attributes(client),
            condition="attribute_not_exists(key_id)" if expected_version is None else None,
            read_version=write.ANY_VERSION if expected_version is None else expected_version,
        )
        if not saved:
            raise OpsError(f"client {client['key_id']} changed meanwhile; run the command again")
        at = client["updated_at"]
        entry = {
            "transaction_id": client["key_id"],
            "event_id": f"{at}#{_secrets.token_hex(4)}",
            "at": at,
            "source": "ops clients",
            "action": action,
            "actor": who,
            "status": client["status"],
            "merchants": list(client["merchants"]),
            "secret_ids": [s["secret_id"] for s in client["secrets"]],
        }
        write.put(
            self._ddb,
            self._audit,
            dynamo.to_attributes(entry),
            condition="attribute_not_exists(event_id)",  # one entry per change, never overwritten
            read_version=write.ANY_VERSION,
        )

    def add(self, name: str, merchants: Iterable[str], kind: str, who: str) -> Issued:
        if kind not in KINDS:
            raise OpsError(f"kind must be one of {', '.join(KINDS)}")
        scope = _check_merchants(merchants)
        if kind == "merchant" and len(scope) != 1:
            raise OpsError("a merchant's own integration has exactly one merchant; use --kind partner")
        at = _now()
        key_id, secret, secret_id = new_key_id(), new_secret(), "s1"
        client = {
            "key_id": key_id,
            "name": name,
            "kind": kind,
            "merchants": scope,
            "status": ACTIVE,
            "secrets": [secret_record(secret, secret_id, at)],
            "created_at": at,
            "updated_at": at,
            "version": 1,
        }
        self._save(client, None, "add", who)
        return Issued(public_view(client), secret_id, token(key_id, secret))

    def rotate(self, key_id: str, who: str) -> Issued:
        """Add a new secret; keep the newest old one, so callers switch without downtime."""
        client = self.fetch(key_id)
        if client.get("status") != ACTIVE:
            raise OpsError(f"client {key_id} is revoked; add a new client instead")
        version = int(client["version"])
        at = _now()
        secret = new_secret()
        secret_id = f"s{version + 1}"
        kept = list(client.get("secrets") or [])[-(MAX_ACTIVE_SECRETS - 1) :]
        client.update(
            secrets=[*kept, secret_record(secret, secret_id, at)], updated_at=at, version=version + 1
        )
        self._save(client, version, "rotate", who)
        return Issued(public_view(client), secret_id, token(key_id, secret))

    def drop_secret(self, key_id: str, secret_id: str, who: str) -> dict[str, Any]:
        """Retire one secret after callers moved to the new one (the other stays valid)."""
        client = self.fetch(key_id)
        version = int(client["version"])
        remaining = [s for s in client.get("secrets") or [] if s["secret_id"] != secret_id]
        if len(remaining) == len(client.get("secrets") or []):
            raise OpsError(f"client {key_id} has no secret {secret_id}")
        if not remaining and client.get("status") == ACTIVE:
            raise OpsError("cannot drop the last secret of an active client; revoke the client instead")
        client.update(secrets=remaining, updated_at=_now(), version=version + 1)
        self._save(client, version, f"drop-secret {secret_id}", who)
        return public_view(client)

    def revoke(self, key_id: str, who: str) -> dict[str, Any]:
        """Cut a client off: status revoked and every secret hash removed."""
        client = self.fetch(key_id)
        version = int(client["version"])
        client.update(status=REVOKED, secrets=[], updated_at=_now(), version=version + 1)
        self._save(client, version, "revoke", who)
        return public_view(client)
