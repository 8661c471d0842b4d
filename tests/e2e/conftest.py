"""End-to-end fixtures: the platform client, taps and the ops CLI over the session's ONE deployment
(``deployment``, from the root conftest.py: tests/support/stack.py, shared with the apply suite).

``E2E_BACKEND=moto`` (default) applies to the embedded emulator, whose Lambda runtime hook runs the
deployed zip; ``E2E_BACKEND=localstack`` applies the same root module to LocalStack and talks HTTP to
its API Gateway. Nothing below depends on which one runs, except the checks that need the embedded
runtime's captured output (they also read CloudWatch Logs, which both have).

The session ends with ``terraform destroy`` and a sweep asserting that no resource carrying the
session's suffix is left in the emulator (tests/support/stack.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.demo import Platform
from devkit.emulator import lambda_runtime
from tests.e2e.flows import AuditStream, Ledger, OpsCli, TopicTap
from tests.support.stack import Deployment

_HISTORY_MARK = pytest.StashKey[int]()


@pytest.fixture(autouse=True)
def _remember_invocations(request: pytest.FixtureRequest) -> None:
    runtime = lambda_runtime.installed_runtime()
    request.node.stash[_HISTORY_MARK] = len(runtime.history()) if runtime else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the Lambda invocations that failed during the test (moto backend)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    runtime = lambda_runtime.installed_runtime()
    if report.when != "call" or not report.failed or runtime is None:
        return
    failed = [i for i in runtime.history()[item.stash.get(_HISTORY_MARK, 0) :] if i.function_error]
    if failed:
        text = "\n\n".join(
            f"{i.function_name} {i.request_id}: {i.payload.decode()[:1500]}\n{i.output[-3000:]}"
            for i in failed[-5:]
        )
        report.sections.append(("failed Lambda invocations", text))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def platform(deployment: Deployment) -> Platform:
    return Platform(deployment.outputs, deployment.env)


@pytest.fixture(scope="session")
def outputs(deployment: Deployment) -> dict[str, Any]:
    return deployment.outputs


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture(scope="session")
def runtime() -> lambda_runtime.LambdaRuntime | None:
    """The embedded Lambda runtime (moto backend) — it keeps every handler's stdout/stderr."""
    return lambda_runtime.installed_runtime()


@pytest.fixture(scope="session")
def taps(platform: Platform, deployment: Deployment) -> Iterator[dict[str, TopicTap]]:
    created = {
        kind: TopicTap(platform, platform.outputs[f"{kind}_topic_arn"], f"e2e-tap-{kind}-{deployment.suffix}")
        for kind in ("events", "failed", "alerts")
    }
    yield created
    for tap in created.values():
        tap.close()


@pytest.fixture(scope="session")
def audit_stream(platform: Platform) -> AuditStream:
    return AuditStream(platform)


@pytest.fixture(scope="session")
def ops_cli(platform: Platform, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> OpsCli:
    outputs_file = platform.write_outputs_file(tmp_path_factory.mktemp("ops"))
    return OpsCli(env=deployment.env, args=platform.cli_args(outputs_file))
