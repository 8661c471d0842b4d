"""The planted-bug corpus stays usable: at least 12 settlement and 15 ops-jobs patches, each naming
its rule and its guarding tests, each still applying to the code it mutates (``make mutants``
proves each is caught)."""

from __future__ import annotations

import runpy
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PATCHES = sorted((ROOT / "tests" / "mutants").glob("*.patch"))


def test_the_corpus_has_at_least_twelve_settlement_and_fifteen_ops_job_bugs() -> None:
    assert len([p for p in PATCHES if p.name.startswith("0")]) >= 12
    assert len([p for p in PATCHES if p.name.startswith("1")]) >= 15


@pytest.mark.parametrize("patch", PATCHES, ids=[p.stem for p in PATCHES])
def test_each_planted_bug_names_its_rule_and_guard_and_still_applies(patch: Path) -> None:
    first, second = patch.read_text().splitlines()[:2]
    assert first.startswith("# rule: ") and len(first) > 16, "first line: the rule it breaks"
    assert second.startswith("# tests: tests/"), "second line: the guarding tests"
    checked = subprocess.run(  # noqa: S603 - a corpus file of this repository
        ["git", "apply", "--check", str(patch)],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_a_model_catch_is_reported_at_the_ordinal_the_model_counted_not_at_its_seed() -> None:
    caught_by = runpy.run_path(str(ROOT / "tools" / "mutants.py"))["caught_by"]
    output = (
        "FAILED tests/unit/test_settlement_model.py::test_holds - AssertionError: schedule seed\n"
        "E   AssertionError: schedule seed 20261270 directed [('sns.publish', 'lost', 1)] "
        "(schedule 57 of the run) broke the protocol (rerun: MODEL_EXAMPLES=40 MODEL_ONLY=20261270)"
    )

    assert caught_by(output) == (
        " by tests/unit/test_settlement_model.py::test_holds at schedule seed 20261270"
        " directed [('sns.publish', 'lost', 1)] (schedule 57 of the run)"
    )
