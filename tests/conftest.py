"""Project-wide fixtures. Nothing here runs unless a test asks for it: unit tests stay fast.

- ``emulator``: the AWS emulator for the session. ``E2E_BACKEND=moto`` (default) starts the embedded
  moto server in this process; ``E2E_BACKEND=localstack`` points at LocalStack on
  ``LOCALSTACK_ENDPOINT`` (default http://127.0.0.1:4566) after a health check.
- ``lambda_package``: builds ``build/lambda/payment-app.zip`` once per session.

Caveat for authors of in-process moto tests: ``moto.mock_aws`` shares (and resets) the same global
backends as the embedded server, so do not mix ``mock_aws`` with tests that rely on state deployed to
the ``emulator`` inside one pytest run (``make test`` runs apply/e2e in their own invocation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ops.build import BuildError, BuildResult, build_package, default_architecture

# The emulator modules import moto's server (Flask, every backend's URL table): imported inside
# the fixtures so that unit-test sessions that never ask for an emulator do not pay for it.


def emulator_backend() -> str:
    from ops.emulator.endpoints import selected_backend

    try:
        return selected_backend("E2E_BACKEND")
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    """The session's emulator: ``.endpoint_url``, ``.region``, ``.env()``, ``.client(service)``."""
    from ops.emulator.endpoints import LOCALSTACK_ENDPOINT, EmulatorError, ExternalEmulator

    if emulator_backend() == "localstack":
        remote = ExternalEmulator(os.environ.get("LOCALSTACK_ENDPOINT", LOCALSTACK_ENDPOINT))
        try:
            remote.start()
        except EmulatorError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield remote
        return
    from ops.emulator.server import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="session")
def lambda_package() -> BuildResult:
    """The reproducible Lambda zip, built (or found unchanged) once per session."""
    try:
        return build_package(architecture=default_architecture())
    except BuildError as exc:
        pytest.fail(f"cannot build the Lambda package: {exc}", pytrace=False)
