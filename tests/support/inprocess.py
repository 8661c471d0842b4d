"""In-process moto for the unit, ops and harness tests: ``in_process_aws()``, the one way in.

The embedded emulator (``devkit.emulator.server.configure_moto``) turns on moto's AWS managed IAM
policies for the whole process, because Terraform attaches them by ARN. ``moto.mock_aws`` resets
every backend when it starts and again when it stops, and with that switch on each reset builds
~1,300 managed policies for every IAM partition: 2.5-5 s per test, measured, on every in-process
test that an xdist worker ran after any test of the embedded emulator (a test file ran 6.6 times slower
behind one emulator test). No in-process test attaches a managed policy, so ``in_process_aws()``
turns the switch off while its account lives and back on after. The embedded emulator keeps its
managed policies: moto's reset empties its backend tables, so the emulator's next IAM call builds a
new backend while the switch is on again (``tests/tooling/test_inprocess_moto.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto import mock_aws
from moto.core.config import default_user_config

_ENV = "MOTO_IAM_LOAD_MANAGED_POLICIES"


@contextmanager
def _managed_policies_off() -> Iterator[None]:
    iam: dict[str, Any] = default_user_config.setdefault("iam", {})
    before_config, before_env = iam.get("load_aws_managed_policies"), os.environ.get(_ENV)
    iam["load_aws_managed_policies"] = False
    os.environ.pop(_ENV, None)
    try:
        yield
    finally:
        iam["load_aws_managed_policies"] = before_config
        if before_env is not None:
            os.environ[_ENV] = before_env


@contextmanager
def in_process_aws() -> Iterator[None]:
    """``moto.mock_aws()`` with a fresh account that has no AWS managed IAM policies (see above)."""
    with _managed_policies_off(), mock_aws():
        yield
