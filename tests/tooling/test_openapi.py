"""docs/openapi.json: the API contract for outside clients, generated from what the stage is built from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "lambda" / "payments" / "schemas" / "create_transaction.json"


def _load_generator() -> ModuleType:
    # tools/ is not a package (as in test_module_docs.py).
    spec = importlib.util.spec_from_file_location("openapi_doc", ROOT / "tools" / "openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


openapi = _load_generator()


def test_document_is_current() -> None:
    assert openapi.main(["--check"]) == 0, "docs/openapi.json is stale: run python tools/openapi.py"


def test_every_route_of_the_api_module_is_documented_with_its_key_and_validation() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    routes = openapi.routes((ROOT / "modules" / "api" / "main.tf").read_text(encoding="utf-8"))
    assert {(r["method"], r["path"]) for r in routes} == {
        ("POST", "/transactions"),
        ("POST", "/validate"),
        ("GET", "/transactions/{id}"),
        ("GET", "/status/{id}"),
        ("GET", "/health"),
    }
    for route in routes:
        operation = document["paths"][route["path"]][route["method"].lower()]
        assert bool(operation["security"]) == (route["key"] == "true"), route
        assert ("requestBody" in operation) == (route["validation"] == "body"), route


def test_request_schema_is_the_models_schema_file() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    schema = json.loads(
        (ROOT / "lambda/payments/schemas/create_transaction.json").read_text(encoding="utf-8")
    )
    documented = document["components"]["schemas"]["CreateTransaction"]
    assert documented == {k: v for k, v in schema.items() if k != "$schema"}
    # Under OpenAPI 3.1's JSON Schema dialect it accepts and refuses what the draft-04 model does.
    good = {
        "merchant_id": "m_1",
        "customer_id": "c_1",
        "amount": "42.00",
        "currency": "USD",
        "payment_method": {"type": "card", "token": "tok_abc12"},
    }
    for body, valid in [(good, True), ({**good, "amount": 42}, True), ({**good, "extra": 1}, False)]:
        assert jsonschema.Draft202012Validator(documented).is_valid(body) is valid
        assert jsonschema.Draft4Validator(schema).is_valid(body) is valid


def _document() -> dict[str, Any]:
    return dict(json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")))


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for methods in document["paths"].values() for op in methods.values()}


def test_the_created_payment_links_to_both_reads() -> None:
    # What link-following clients (and schemathesis' state machine in tests/e2e) walk: create -> read.
    operations = _operations(_document())
    accepted = operations["create-transaction"]["responses"]["202"]
    schema = accepted["content"]["application/json"]["schema"]
    assert {link["operationId"] for link in accepted["links"].values()} == {"get-transaction", "get-status"}
    for link in accepted["links"].values():
        target = operations[link["operationId"]]
        path_parameters = {p["name"] for p in target["parameters"] if p["in"] == "path"}
        assert set(link["parameters"]) == path_parameters == {"id"}
        pointer = link["parameters"]["id"].removeprefix("$response.body#/")
        assert pointer in schema["required"], link
    assert accepted["headers"]["Location"]["required"] is True


def test_a_transaction_id_is_documented_as_the_status_handler_accepts_it() -> None:
    from payments import ids

    operations = _operations(_document())
    for name in ("get-transaction", "get-status"):
        [parameter] = operations[name]["parameters"]
        assert parameter["schema"]["pattern"] == ids.ID_PATTERN.pattern
        assert "400" in operations[name]["responses"]  # anything else is parameter_invalid
    validator = jsonschema.Draft202012Validator(parameter["schema"])
    assert validator.is_valid(ids.new_transaction_id())
    assert not validator.is_valid("txn_abc") and not validator.is_valid("4111111111111111")


def test_credentials_are_documented_as_the_stage_checks_them() -> None:
    # Every route but /health needs the API key AND a client's bearer token (the authorizer), and
    # answers 401 without the token (docs/interfaces.md, "Authorization").
    document = _document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["clientToken"] == {**schemes["clientToken"], "type": "http", "scheme": "bearer"}
    for name, operation in _operations(document).items():
        if name == "health":
            assert operation["security"] == [] and "401" not in operation["responses"]
            continue
        assert operation["security"] == [{"apiKey": [], "clientToken": []}], name
        assert {"401", "403"} <= set(operation["responses"]), name
