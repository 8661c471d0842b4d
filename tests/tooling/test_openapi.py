"""docs/openapi.json: the API contract for outside clients, generated from what the stage is built from."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

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
