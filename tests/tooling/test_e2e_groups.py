"""The split of the apply + e2e selection over two pytest-xdist workers (tests/conftest.py).

Each worker applies a deployment of its own. The flows that build on each other share the session's
``ledger`` (the payments earlier files created, which later files trace, count and restore), so they
must stay on one worker, in file order ("chain"); a file sent to the other worker ("apart") must use
nothing another file made. These tests hold the split to that rule for both backends.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import E2E_APART

E2E = Path(__file__).resolve().parents[1] / "e2e"
# What a flow inherits from the files before it on its worker (the other session fixtures, such as
# the topic taps, are made afresh on each worker and hold nothing of another file's flows).
SHARED_STATE = {"ledger"}


def _fixtures_requested(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        arg.arg
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        for arg in node.args.args
    }


@pytest.mark.parametrize("backend", sorted(E2E_APART))
def test_every_file_sent_apart_exists(backend: str) -> None:
    missing = [name for name in E2E_APART[backend] if not (E2E / name).is_file()]
    assert not missing, f"{backend}: {missing} named in E2E_APART but not in tests/e2e"


@pytest.mark.parametrize("backend", sorted(E2E_APART))
def test_no_file_sent_apart_reads_what_earlier_flows_left(backend: str) -> None:
    shared = {name: _fixtures_requested(E2E / name) & SHARED_STATE for name in E2E_APART[backend]}
    leaning = {name: sorted(used) for name, used in shared.items() if used}
    assert not leaning, f"{backend}: these files read the chain's shared state yet run apart: {leaning}"


def test_the_finder_sees_a_flow_that_reads_the_ledger(tmp_path: Path) -> None:
    flow = tmp_path / "test_flow.py"
    flow.write_text("def test_x(platform, ledger):\n    pass\n", encoding="utf-8")
    assert _fixtures_requested(flow) & SHARED_STATE == {"ledger"}


def test_both_backends_are_split() -> None:
    from devkit.emulator.endpoints import BACKENDS

    assert set(E2E_APART) == set(BACKENDS)
