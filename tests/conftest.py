"""Project-wide fixtures. Nothing here runs unless a test asks for it: unit tests stay fast.

- ``emulator``: the AWS emulator for the session. ``E2E_BACKEND=moto`` (default) starts the embedded
  moto server in this process; ``E2E_BACKEND=localstack`` points at LocalStack on
  ``LOCALSTACK_ENDPOINT`` (default http://127.0.0.1:4566) after a health check.
- ``lambda_package``: builds ``build/lambda/payment-app.zip`` once per session.
- ``function_python``: the interpreter the deployed functions run on in the emulators (the runtime
  the functions module declares, python3.12: CPython 3.12 with only the runtime's own libraries);
  the apply and e2e sessions fail at once, naming what is missing, when this machine has none.

Caveat for authors of in-process moto tests: ``moto.mock_aws`` shares (and resets) the same global
backends as the embedded server, so do not mix ``mock_aws`` with tests that rely on state deployed to
the ``emulator`` inside one pytest run (``make test`` runs apply/e2e in their own invocation).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.build import BuildError, BuildResult, build_package, default_architecture

# The emulator modules import moto's server (Flask, every backend's URL table): imported inside
# the fixtures so that unit-test sessions that never ask for an emulator do not pay for it.


def emulator_backend() -> str:
    from devkit.emulator.endpoints import selected_backend

    try:
        return selected_backend("E2E_BACKEND")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


NOT_EMULATED_PREFIX = "not_emulated"


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in pyproject.toml, whose hash keys the Makefile's venv stamp.
    config.addinivalue_line(
        "markers",
        "slow: suites of a minute or more (the settlement model, the clean install, the ops safety "
        "suites, the real-account plans): run by `make test`, left out of `make check`",
    )


# The longest test files, started first. `--dist loadfile` hands files to the workers in the order of
# its queue; by default xdist sorts that queue by the number of tests per file, which put these two
# one-test files (the settlement model's halves, ~3-4 minutes each) last, running alone at the end
# while the other worker idled. The Makefile passes `--no-loadscope-reorder`, so the queue is the
# collection order below: longest first keeps both workers busy to the end.
LONGEST_FIRST = ("test_settlement_model.py", "test_settlement_model_second_half.py")


# The apply + e2e selection on two pytest-xdist workers (`--dist loadgroup`: `make test` on moto,
# `make test-localstack`): each worker applies a deployment of its own. The apply suite and the flows
# that build on each other (the ledger of payments earlier files created, a report that counts them)
# stay together, in file order, on one worker ("chain"); the files below use nothing of the others
# and go to the second worker ("apart"), chosen per backend to even out the two workers: on LocalStack
# the contract test alone (6-10 minutes) weighs about what the chain does; on moto it skips itself,
# so the demo and the stranded flow go apart instead. Without loadgroup the marks do nothing.
E2E_APART = {
    "moto": ("test_08_demo.py", "test_09_stranded.py", "test_17_api_contract.py"),
    "localstack": ("test_17_api_contract.py",),
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    tests = Path(__file__).parent
    apart: tuple[str, ...] = ()
    for item in items:
        suite = item.path.relative_to(tests).parts[0] if tests in item.path.parents else ""
        if suite in ("apply", "e2e"):
            apart = apart or E2E_APART[emulator_backend()]
            group = "apart" if item.path.name in apart else "chain"
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``not_emulated(reason=..., backends=(...))``: on the listed backends the test cannot run at all
    (the emulator lacks the service or the behaviour), so it is skipped there with the reason; without
    ``backends`` the mark only documents that the test asserts at describe level."""
    for mark in item.iter_markers("not_emulated"):
        backends = tuple(mark.kwargs.get("backends", ()))
        if backends and emulator_backend() in backends:
            reason = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "")
            pytest.skip(f"{NOT_EMULATED_PREFIX} on {emulator_backend()}: {reason}")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    """The session's emulator: ``.endpoint_url``, ``.region``, ``.env()``, ``.client(service)``."""
    from devkit.emulator.endpoints import EmulatorError

    if emulator_backend() == "localstack":
        # LOCALSTACK_ENDPOINT, else LocalStack in Docker on :4566, else LocalStack without Docker
        # (installed and started on a free loopback port, stopped at the end of the session).
        from devkit.emulator.localstack import select_localstack

        remote = select_localstack()
        try:
            remote.start()
        except EmulatorError as exc:
            pytest.fail(str(exc), pytrace=False)
        try:
            yield remote
        finally:
            remote.stop()
        return
    from devkit.emulator.server import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def lambda_package() -> BuildResult:
    """The reproducible Lambda zip, built (or found unchanged) once per session."""
    try:
        return build_package(architecture=default_architecture())
    except BuildError as exc:
        pytest.fail(f"cannot build the Lambda package: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def function_python() -> str:
    """The Python of the functions' declared runtime (made once; see devkit.emulator.runtimes)."""
    from devkit.emulator.runtimes import RuntimeNotAvailableError, declared_runtime, runtime_python

    try:
        return runtime_python(declared_runtime())
    except RuntimeNotAvailableError as exc:
        pytest.fail(f"cannot run the deployed functions as Lambda would: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    emulator: Any,
    lambda_package: BuildResult,
    function_python: str,
) -> Iterator[Any]:
    """The session's one deployment of the root module (tests/support/stack.py), shared by the apply
    suite and the end-to-end flows; destroyed and swept for leftovers when the session ends."""
    from tests.support.stack import deploy

    yield from deploy(tmp_path_factory, emulator, lambda_package)
