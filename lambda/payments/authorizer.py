"""API clients and their secrets: the credential format, the stored hash, the authorizer's decision.

A client is one row of the clients table (docs/interfaces.md "Authorization"), keyed by its key id.
The caller presents ``Authorization: Bearer <key id>.<secret>``; the table holds, per secret, a
random salt and ``HMAC-SHA256(salt, secret)``, never the secret. Up to two secrets are active at
once, so a rotation adds the new one, the caller switches, and the old one is dropped — no downtime.

Why HMAC-SHA256 and not a slow KDF: the secrets are 256 random bits made by ``secrets``, never chosen
by a person, so there is no dictionary to slow down; a KDF's cost would only be paid by the
authorizer on every uncached request. The per-secret salt keeps equal secrets (there are none) and
precomputed tables out of reach. Comparison is ``hmac.compare_digest`` over every stored hash, so
the time taken does not depend on where a guess differs, nor on which of the two secrets matched.

This module is plain Python: the table access is ``ClientsTable`` (GetItem only, the authorizer's
role allows nothing else); the writes the operator makes live in ``ops.core.clients``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payments import dynamo

KEY_ID_PREFIX = "cli_"
KEY_ID_PATTERN = re.compile(r"^cli_[0-9a-f]{16}$")
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_ACTIVE_SECRETS = 2
ACTIVE = "active"
REVOKED = "revoked"
# Who a client is: a merchant's own integration, or a partner acting for a listed set of merchants.
KINDS = ("merchant", "partner")

# Hashed when the key id is unknown, so an unknown client costs the same as a wrong secret.
_DUMMY_SALT = "00" * 16


class Unauthorized(Exception):
    """No usable credentials: API Gateway answers 401 when a Lambda authorizer raises this message."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    principal_id: str
    # Why, for the log line (never the secret): ok, unknown_client, revoked, wrong_secret.
    reason: str
    merchants: tuple[str, ...] = ()
    kind: str = ""


def new_key_id() -> str:
    return KEY_ID_PREFIX + secrets.token_hex(8)


def new_secret() -> str:
    """256 random bits, URL-safe base64 without padding (43 characters)."""
    return secrets.token_urlsafe(32)


def token(key_id: str, secret: str) -> str:
    """What the caller sends after ``Bearer ``."""
    return f"{key_id}.{secret}"


def hash_secret(secret: str, salt_hex: str) -> str:
    return hmac.new(bytes.fromhex(salt_hex), secret.encode("ascii"), hashlib.sha256).hexdigest()


def secret_record(secret: str, secret_id: str, created_at: str) -> dict[str, str]:
    """The stored form of one secret: its id, a fresh salt and the HMAC; the secret itself is dropped."""
    salt = secrets.token_hex(16)
    return {"secret_id": secret_id, "salt": salt, "hash": hash_secret(secret, salt), "created_at": created_at}


def parse_authorization(value: str | None) -> Credentials:
    """``Bearer <key id>.<secret>`` -> credentials; anything else is 401 (missing or malformed)."""
    if not value or len(value) > 200:
        raise Unauthorized
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized
    key_id, dot, secret = rest.strip().partition(".")
    if not dot or not KEY_ID_PATTERN.match(key_id) or not SECRET_PATTERN.match(secret):
        raise Unauthorized
    return Credentials(key_id, secret)


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def secret_matches(stored: list[Mapping[str, Any]], secret: str) -> bool:
    """True when ``secret`` is one of the stored ones; every stored hash is compared (constant time)."""
    matched = False
    for record in stored[:MAX_ACTIVE_SECRETS]:
        expected = str(record.get("hash", ""))
        actual = hash_secret(secret, str(record.get("salt") or _DUMMY_SALT))
        matched = hmac.compare_digest(expected, actual) or matched
    return matched


def decide(client: Mapping[str, Any] | None, credentials: Credentials) -> Decision:
    """Allow an active client whose secret matches; deny everything else with the same answer."""
    if client is None:
        hash_secret(credentials.secret, _DUMMY_SALT)
        return Decision(False, credentials.key_id, "unknown_client")
    matched = secret_matches(list(client.get("secrets") or []), credentials.secret)
    if client.get("status") != ACTIVE:
        return Decision(False, credentials.key_id, "revoked")
    if not matched:
        return Decision(False, credentials.key_id, "wrong_secret")
    merchants = tuple(sorted(str(m) for m in client.get("merchants") or []))
    return Decision(True, credentials.key_id, "ok", merchants, str(client.get("kind") or "merchant"))


def stage_arn(method_arn: str) -> str:
    """``arn:...:<api>/<stage>/<METHOD>/<path>`` -> ``arn:...:<api>/<stage>/*``.

    The decision is about the caller, not the route: allowing the whole stage lets API Gateway's
    cache (keyed by the Authorization header alone) answer every route from one decision; the
    merchant scope is enforced by the application on each request.
    """
    prefix, _, rest = method_arn.partition(":execute-api:")
    parts = rest.split("/")
    if not prefix or len(parts) < 2:
        return method_arn
    return f"{prefix}:execute-api:{parts[0]}/{parts[1]}/*"


def policy(decision: Decision, method_arn: str) -> dict[str, Any]:
    """The authorizer's answer: an IAM policy for execute-api plus the principal's context."""
    result: dict[str, Any] = {
        "principalId": decision.principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow" if decision.allowed else "Deny",
                    "Resource": stage_arn(method_arn),
                }
            ],
        },
    }
    if decision.allowed:
        # Context values must be strings, numbers or booleans: the scope travels space-separated.
        result["context"] = {
            "client_id": decision.principal_id,
            "kind": decision.kind,
            "merchants": " ".join(decision.merchants),
        }
    return result


def authorize(
    event: Mapping[str, Any], lookup: Callable[[str], Mapping[str, Any] | None]
) -> tuple[Decision, dict[str, Any]]:
    """A REQUEST authorizer event -> (decision, response). Raises ``Unauthorized`` (401) when the
    credentials are missing or malformed; a client that is unknown, revoked or presents a wrong
    secret gets a Deny (403) — the same answer for all three, so nothing about other clients leaks."""
    credentials = parse_authorization(header(event.get("headers"), "authorization"))
    decision = decide(lookup(credentials.key_id), credentials)
    return decision, policy(decision, str(event.get("methodArn") or ""))


class ClientsTable:
    """Read access to the clients table: one GetItem per uncached request."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self._dynamodb = dynamodb
        self._table = table_name

    def client_by_key_id(self, key_id: str) -> dict[str, Any] | None:
        answer = self._dynamodb.get_item(
            TableName=self._table, Key={"key_id": {"S": key_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return dynamo.from_attributes(item) if item else None
