"""The API's OpenAPI 3.1 document, generated from what the stage is built from.

The routes, their API-key requirement and validation come from ``modules/api/main.tf`` (``routes`` and
``resource_paths``); the request body schema is ``lambda/payments/schemas/create_transaction.json``, the
file the API Gateway model and the intake function use (OpenAPI 3.1 takes its JSON Schema as is, type
arrays included); responses, credentials (API key and client token) and the transaction id follow
docs/interfaces.md ("API", "Authorization") and ``payments`` (ids, states, health). The 202 of a create
links to both reads of the payment. An outside client (e.g. an OpenAPI-driven tester such as
schemathesis, tests/e2e/test_17_api_contract.py) reads the contract from ``docs/openapi.json``.

    python tools/openapi.py          # rewrite docs/openapi.json
    python tools/openapi.py --check  # exit 1 when docs/openapi.json is stale
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from payments.health import DEGRADED, HEALTHY, UNHEALTHY
from payments.idempotency import MAX_LENGTH as MAX_KEY_LENGTH
from payments.ids import ID_PATTERN
from payments.states import Status

ROOT = Path(__file__).resolve().parents[1]
API_MODULE = ROOT / "modules" / "api" / "main.tf"
REQUEST_SCHEMA = ROOT / "lambda" / "payments" / "schemas" / "create_transaction.json"
DOCUMENT = ROOT / "docs" / "openapi.json"

_ROUTE = re.compile(
    r'^\s*(?P<name>[a-z-]+)\s*=\s*\{\s*resource\s*=\s*"(?P<resource>[a-z_]+)",\s*method\s*=\s*"(?P<method>[A-Z]+)",'
    r'\s*function\s*=\s*"(?P<function>[a-z_]+)",\s*api_key\s*=\s*(?P<key>true|false),'
    r'\s*validation\s*=\s*"(?P<validation>[a-z]+)"\s*\}',
    re.M,
)
_REQUEST_REF = "#/components/schemas/CreateTransaction"
_PATH = re.compile(r'^\s*(?P<resource>[a-z_]+)\s*=\s*"(?P<path>/[^"]*)"\s*$', re.M)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "type": {"type": "string"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}
# A transaction id as the status handler accepts it (payments.ids): anything else is 400 parameter_invalid.
_TRANSACTION_ID = {"type": "string", "pattern": ID_PATTERN.pattern}
_TRANSACTION = {
    "type": "object",
    "required": ["transaction_id", "status"],
    "properties": {
        "transaction_id": _TRANSACTION_ID,
        "status": {"type": "string", "enum": [status.value for status in Status]},
    },
}
_VALID = {
    "type": "object",
    "required": ["valid", "amount_minor", "amount", "currency"],
    "properties": {
        "valid": {"type": "boolean"},
        "amount_minor": {"type": "integer"},
        "amount": {"type": "string"},
        "currency": {"type": "string"},
    },
}


def _health(*statuses: str) -> dict[str, Any]:
    """payments.health's report (the cached copy says so), with the given overall statuses."""
    return {
        "type": "object",
        "required": ["status", "environment", "checked_at", "checks", "cached"],
        "properties": {
            "status": {"type": "string", "enum": list(statuses)},
            "environment": {"type": "string"},
            "checked_at": {"type": "string"},
            "checks": {"type": "object"},
            "cached": {"type": "boolean"},
        },
    }


# What each route answers besides its success (docs/interfaces.md, "API"; 403/429 are the gateway's,
# 401 the authorizer's or, where no authorizer context arrives, the function's).
_ERRORS = {
    "body": ("400", "401", "403", "409", "413", "415", "429", "500", "503"),
    "params": ("400", "401", "403", "404", "429", "500", "503"),
    "none": ("500",),
}
_SUCCESS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "create-transaction": ("202", "Accepted: the payment is PENDING and its workflow started.", _TRANSACTION),
    "validate": ("200", "The request is valid (dry run: nothing stored).", _VALID),
    "get-transaction": ("200", "The transaction's status.", _TRANSACTION),
    "get-status": ("200", "The transaction's status.", _TRANSACTION),
    "health": ("200", "The service is healthy or degraded.", _health(HEALTHY, DEGRADED)),
}
# Answers that are not the error body: /health's 503 is its report, saying unhealthy.
_OTHER: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "health": {"503": ("The service is unhealthy.", _health(UNHEALTHY))},
}
# Where a 202's transaction_id leads: the two reads of the created payment (OpenAPI links, which
# link-following clients and stateful testers use).
_LINKS = {
    "create-transaction": {
        "GetTransaction": {
            "operationId": "get-transaction",
            "parameters": {"id": "$response.body#/transaction_id"},
            "description": "The created payment's status.",
        },
        "GetStatus": {
            "operationId": "get-status",
            "parameters": {"id": "$response.body#/transaction_id"},
            "description": "The same, under /status.",
        },
    }
}


def routes(module_text: str) -> list[dict[str, str]]:
    """``routes`` of modules/api with each resource's path, in the module's order."""
    paths = {m.group("resource"): m.group("path") for m in _PATH.finditer(module_text)}
    found = []
    for match in _ROUTE.finditer(module_text):
        route = match.groupdict()
        route["path"] = paths[route["resource"]]
        found.append(route)
    return found


def request_schema() -> dict[str, Any]:
    schema = json.loads(REQUEST_SCHEMA.read_text(encoding="utf-8"))
    schema.pop("$schema", None)  # draft-04's marker; the keywords used mean the same in 2020-12
    return dict(schema)


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes(API_MODULE.read_text(encoding="utf-8")):
        status, description, schema = _SUCCESS[route["name"]]
        success: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
        if route["name"] in _LINKS:
            success["headers"] = {
                "Location": {
                    "description": "The created payment.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
            success["links"] = _LINKS[route["name"]]
        operation: dict[str, Any] = {
            "operationId": route["name"],
            "responses": {
                status: success,
                **{
                    code: {"description": "Error.", "content": {"application/json": {"schema": _ERROR}}}
                    for code in _ERRORS[route["validation"]]
                },
                **{
                    code: {"description": text, "content": {"application/json": {"schema": other}}}
                    for code, (text, other) in _OTHER.get(route["name"], {}).items()
                },
            },
        }
        # The API key (usage plan) and the client's credentials (the authorizer) together.
        operation["security"] = [{"apiKey": [], "clientToken": []}] if route["key"] == "true" else []
        if route["validation"] == "body":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/CreateTransaction"}}
                },
            }
        if route["name"] == "create-transaction":
            operation["parameters"] = [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    # Printable ASCII (payments.idempotency), up to its MAX_LENGTH.
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_KEY_LENGTH,
                        "pattern": "^[ -~]+$",
                    },
                }
            ]
        if "{id}" in route["path"]:
            operation.setdefault("parameters", []).append(
                {"name": "id", "in": "path", "required": True, "schema": _TRANSACTION_ID}
            )
        paths.setdefault(route["path"], {})[route["method"].lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "payment-api",
            "version": "1",
            "description": "Generated by tools/openapi.py from modules/api and the request schema file.",
        },
        "servers": [
            {"url": "{api_invoke_url}", "variables": {"api_invoke_url": {"default": "http://127.0.0.1"}}}
        ],
        "paths": paths,
        "components": {
            "schemas": {"CreateTransaction": request_schema()},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "clientToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "<key id>.<secret> (ops clients add)",
                },
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = DOCUMENT.read_text(encoding="utf-8") if DOCUMENT.is_file() else ""
        if current != text:
            sys.stderr.write(f"{DOCUMENT.relative_to(ROOT)} is stale: run python tools/openapi.py\n")
            return 1
        return 0
    DOCUMENT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
