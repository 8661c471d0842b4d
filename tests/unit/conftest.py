"""Unit-test fixtures: the platform's resources in moto (in-process), names from env vars."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devkit.emulator.processor import ProcessorServer, serve
from tests.support.inprocess import in_process_aws
from tests.unit import awsenv


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[awsenv.AwsEnv]:
    for key, value in awsenv.process_env().items():
        monkeypatch.setenv(key, value)
    from payments.handlers import _runtime

    # Clients survive between tests (building them is the slow part); settings, parameters
    # and services are rebuilt so every test sees its own environment.
    _runtime.reset(keep_clients=True)
    with in_process_aws():
        env = awsenv.build()
        yield env
    _runtime.reset(keep_clients=True)


@pytest.fixture
def ctx() -> Any:
    return awsenv.FakeContext()


@pytest.fixture
def processor_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProcessorServer]:
    """The HTTPS processor simulator on 127.0.0.1, trusted through PROCESSOR_CA_BUNDLE."""
    # The client's timeout only has to be shorter than the stall (a stalled answer times out); it
    # must also leave room for a TLS handshake and an answer on a loaded machine: 0.3 s did not on
    # two xdist workers beside other suites (a lookup timed out), 1.5 s does.
    with serve(stall_s=3.0) as server:
        monkeypatch.setenv("PROCESSOR_CA_BUNDLE", str(server.ca_bundle))
        monkeypatch.setenv("PROCESSOR_TIMEOUT_SECONDS", "1.5")
        yield server
