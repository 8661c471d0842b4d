"""The README is the module's reference: every input and output must be in its tables."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _declared(kind: str, filename: str) -> list[str]:
    text = (ROOT / filename).read_text(encoding="utf-8")
    return re.findall(rf'^{kind} "([^"]+)"', text, re.MULTILINE)


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_every_variable_is_documented_in_the_inputs_table() -> None:
    inputs = _section("Inputs")
    missing = [name for name in _declared("variable", "variables.tf") if f"| `{name}` |" not in inputs]
    assert not missing, f"variables missing from README 'Inputs': {missing}"


def test_every_output_is_documented_in_the_outputs_table() -> None:
    outputs = _section("Outputs")
    missing = [name for name in _declared("output", "outputs.tf") if f"| `{name}` |" not in outputs]
    assert not missing, f"outputs missing from README 'Outputs': {missing}"


def test_first_screen_gives_exactly_two_setup_commands() -> None:
    quick_start = _section("Quick start (a fresh machine: Python 3.11+, Terraform 1.6+, make)")
    block = quick_start.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make up", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci, ".ci/run must run the README's test command"
