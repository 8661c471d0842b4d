"""The apply suite: every test under tests/apply is marked ``apply``; its ``deployment`` is the
session's one stack (the root ``conftest.py``, tests/support/stack.py), shared with tests/e2e."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.apply)
