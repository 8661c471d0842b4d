"""Cold start: what importing a Lambda entry point loads, and that X-Ray SDK tracing still works
when a function opts in (``XRAY_SDK_SUBSEGMENTS=true``).

Every check runs in a fresh interpreter with the environment of a deployed function (Lambda
detected, tracing not disabled), because ``sys.modules`` of the test process already holds
everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from payments.handlers._runtime import XRAY_SDK_ENV, sdk_tracing_requested

from tests.unit import awsenv

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(
    p.stem for p in (ROOT / "lambda" / "payments" / "handlers").glob("*.py") if not p.stem.startswith("_")
)
# The scheduled jobs run the batch code shared with the operator CLI, on boto3 clients.
JOBS = frozenset({"report", "cleanup"})


def _lambda_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **awsenv.process_env()}
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env.pop(XRAY_SDK_ENV, None)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join((str(ROOT / "lambda"), str(ROOT))),
            "AWS_LAMBDA_FUNCTION_NAME": "payment-test",
            "LAMBDA_TASK_ROOT": str(ROOT / "lambda"),
            **extra,
        }
    )
    return env


def _run(code: str, env: dict[str, str]) -> Any:
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


_IMPORT_PROBE = """
import json, sys
import payments.handlers.{name} as module
from payments.handlers import _runtime
schema = sys.modules.get("payments.validation")
print(json.dumps({{
    "handler": callable(getattr(module, "handler", None)),
    "loaded": sorted({{m.split(".")[0] for m in sys.modules}}),
    "modules": sorted(m for m in sys.modules if m.startswith("payments.")),
    "tracer": _runtime.tracer is not None,
    "schema_compiled": bool(schema and schema._compiled_schema.cache_info().currsize),
}}))
"""


@pytest.mark.parametrize("name", HANDLERS)
def test_importing_a_handler_loads_no_tracing_sdk_and_builds_nothing(name: str) -> None:
    seen = _run(_IMPORT_PROBE.format(name=name), _lambda_env())
    assert seen["handler"]
    assert "aws_xray_sdk" not in seen["loaded"]
    assert "wrapt" not in seen["loaded"]  # the X-Ray SDK's patching library
    assert seen["tracer"] is False
    # The request schema is compiled on the first validation, not at import.
    assert seen["schema_compiled"] is False
    if name not in JOBS:
        assert "boto3" not in seen["loaded"]  # botocore clients only (no resource layer, s3transfer)
        assert "payments.jobs.runtime" not in seen["modules"]
    if name != "health":
        assert "payments.health" not in seen["modules"]


_TRACED_PROBE = """
import json, sys
from moto import mock_aws
from tests.unit import awsenv

import payments.handlers.status as status
from payments.handlers import _runtime

import_loaded_sdk = "aws_xray_sdk" in sys.modules
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.patcher import _PATCHED_MODULES
from botocore.client import BaseClient


class Capture:
    def __init__(self):
        self.entities = []

    def send_entity(self, entity):
        self.entities.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address):
        pass

    @property
    def ip(self):
        return "127.0.0.1"

    @property
    def port(self):
        return 2000


capture = Capture()
xray_recorder.configure(emitter=capture)
with mock_aws():
    awsenv.build()
    capture.entities.clear()  # the fixture's own calls are traced too
    event = awsenv.api_event(
        "GET", "/transactions/{id}", path_parameters={"id": "txn_01JDX7Q8R2M4K6N8P0S2V4X6Z8"}
    )
    response = status.handler(event, awsenv.FakeContext())


def walk(entity):
    yield entity
    for child in entity.get("subsegments", []):
        yield from walk(child)


seen = [e for top in capture.entities for e in walk(top)]
print(json.dumps({
    "import_loaded_sdk": import_loaded_sdk,
    "patched": sorted(_PATCHED_MODULES),
    "wrapped": hasattr(BaseClient._make_api_call, "__wrapped__"),
    "tracer_enabled": _runtime.tracer is not None and not _runtime.tracer.disabled,
    "status": response["statusCode"],
    "subsegments": [[e.get("name"), e.get("namespace"), e.get("aws", {}).get("operation")] for e in seen],
    "annotations": {k: v for e in seen for k, v in e.get("annotations", {}).items()},
}))
"""


def test_opted_in_tracing_records_a_subsegment_per_aws_call() -> None:
    env = _lambda_env(
        **{
            XRAY_SDK_ENV: "true",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
    )
    seen = _run(_TRACED_PROBE, env)
    assert seen["import_loaded_sdk"] is True
    assert seen["tracer_enabled"] is True
    assert "botocore" in seen["patched"] and seen["wrapped"]
    assert seen["status"] == 404
    names = {name for name, _, _ in seen["subsegments"]}
    assert "## handler" in names  # Powertools' handler subsegment
    aws_calls = [operation for _, namespace, operation in seen["subsegments"] if namespace == "aws"]
    assert aws_calls == ["GetItem"]  # one subsegment per AWS SDK call
    assert seen["annotations"].get("ColdStart") is True


def test_powertools_switch_still_disables_opted_in_tracing() -> None:
    code = (
        "import json\nfrom payments.handlers import _runtime\n"
        "print(json.dumps(_runtime.tracer is not None and _runtime.tracer.disabled))"
    )
    assert _run(code, _lambda_env(**{XRAY_SDK_ENV: "true", "POWERTOOLS_TRACE_DISABLED": "true"})) is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("on", True), ("", False), ("false", False), ("0", False)],
)
def test_opt_in_values(value: str, expected: bool) -> None:
    assert sdk_tracing_requested({XRAY_SDK_ENV: value}) is expected
    assert sdk_tracing_requested({}) is False
