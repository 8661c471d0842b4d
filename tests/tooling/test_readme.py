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
    quick_start = _section("Quick start (a fresh machine: Python 3.11+, Terraform 1.9+, make)")
    block = quick_start.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make up", "make test"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci, ".ci/run must run the README's test command"


# -- numbers and commands that must agree with the code --------------------------------------------------


def test_one_minimum_terraform_version_everywhere() -> None:
    from devkit.terraform.paths import required_terraform_version

    version = required_terraform_version()
    assert f"## Quick start (a fresh machine: Python 3.11+, Terraform {version}+, make)" in README
    for source in sorted([*(ROOT / "examples").glob("*/*.tf"), *(ROOT / "modules").glob("*/versions.tf")]):
        for found in re.findall(r'required_version\s*=\s*">=\s*([0-9.]+)"', source.read_text()):
            assert found == version, f"{source.relative_to(ROOT)} requires >= {found}, the root >= {version}"


def _cross_variable_validations() -> list[str]:
    """Variable validations that read another variable: Terraform accepts them from 1.9 only."""
    found = []
    for source in sorted([ROOT / "variables.tf", *(ROOT / "modules").glob("*/variables.tf")]):
        blocks = re.split(r'^variable "', source.read_text(), flags=re.MULTILINE)[1:]
        for block in blocks:
            name = block.split('"', 1)[0]
            for condition in re.findall(r"^\s*condition\s*=(.*)$", block, re.MULTILINE):
                if set(re.findall(r"\bvar\.(\w+)", condition)) - {name}:
                    found.append(f"{source.relative_to(ROOT)}: {name}")
    return found


def test_the_minimum_terraform_version_admits_every_feature_the_modules_use() -> None:
    from devkit.terraform.paths import required_terraform_version

    version = tuple(int(part) for part in required_terraform_version().split("."))
    crossing = _cross_variable_validations()
    assert crossing, "the check below reads the modules (a validation naming another variable)"
    assert version >= (1, 9), f"validations reading other variables need Terraform 1.9: {crossing}"


def _make_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-z-]+):.*## ", text, re.MULTILINE)


def test_readme_lists_every_make_help_target() -> None:
    listed = re.search(r"`make help` lists the\s+targets: `([^`]+)`", README)
    assert listed is not None
    assert listed.group(1).split() == _make_targets()


def test_every_make_command_in_the_docs_is_a_target() -> None:
    from tests.support.docs import DOCS, tool_commands

    targets = set(_make_targets())
    for doc in DOCS:
        for command in tool_commands(doc, "make"):
            named = [word for word in command.split()[1:] if "=" not in word]
            assert named and set(named) <= targets, f"{doc}: `{command}`"


def test_every_inline_ops_command_in_the_docs_names_a_command_and_its_options() -> None:
    """`ops <command> --option ...` in running text: the command exists and takes every option shown
    (placeholders like <day> aside), so a renamed flag cannot linger in the docs."""
    import click

    from ops.cli.main import cli
    from tests.support.docs import DOCS

    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for span in re.findall(r"`((?:\.venv/bin/)?ops [^`]+)`", text):
            words = span.split()[1:]
            while words and words[0].startswith("--") and words[0] != "--help":
                words = words[2:] if words[0] in ("--tf-dir", "--outputs-file", "--suffix") else words[1:]
            if not words or words[0].startswith("<") or words[0] == "--help":
                continue
            command = cli.commands.get(words[0])
            assert isinstance(command, click.Command), f"{doc}: `{span}` names no ops command"
            known = {opt for p in [*command.params, *cli.params] for opt in [*p.opts, *p.secondary_opts]}
            unknown = [w for w in words if w.startswith("-") and w.split("=")[0] not in known]
            assert not unknown, f"{doc}: `{span}`: {unknown} not options of ops {words[0]}"


def test_docker_compose_matches_the_free_edition_and_the_pins() -> None:
    import yaml

    from devkit.terraform import EMULATOR_ENDPOINT_SERVICES

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    service = compose["services"]["localstack"]
    environment = dict(item.split("=", 1) for item in service["environment"])
    assert "PERSISTENCE" not in environment  # a paid feature
    services = set(re.fullmatch(r"\$\{SERVICES:-([a-z0-9,]+)\}", environment["SERVICES"]).group(1).split(","))  # type: ignore[union-attr]
    assert not services & {"wafv2", "xray"}  # not in the free edition
    # LocalStack's names for the provider's endpoint keys: every other service the module calls is there.
    renamed = {"cloudwatchlogs": "logs", "eventbridge": "events", "sfn": "stepfunctions"}
    wanted = {renamed.get(s, s) for s in EMULATOR_ENDPOINT_SERVICES} - {"wafv2", "xray"}
    assert services == wanted
    pinned = re.search(
        r"^localstack-core(?:\[\w+\])?==([0-9.]+)", (ROOT / "requirements-localstack.txt").read_text(), re.M
    )
    assert pinned is not None
    assert service["image"] == f"localstack/localstack:${{LOCALSTACK_VERSION:-{pinned.group(1)}}}"
    assert "127.0.0.1:4566:4566" in service["ports"]
    header = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").split("name:", 1)[0]
    assert "enable_waf = false" in header and "apply fails" not in header


def test_lock_files_pin_one_provider_version_inside_the_constraint() -> None:
    versions = set()
    for lock in (ROOT / ".terraform.lock.hcl", ROOT / "examples/complete/.terraform.lock.hcl"):
        text = lock.read_text(encoding="utf-8")
        block = re.search(r'provider "registry.terraform.io/hashicorp/aws" \{(.*?)\n\}', text, re.S)
        assert block is not None, lock
        versions.add(re.search(r'version\s*=\s*"([0-9.]+)"', block.group(1)).group(1))  # type: ignore[union-attr]
        assert re.search(r'"h1:[A-Za-z0-9+/=]+"', block.group(1)), lock
    assert len(versions) == 1
    major, minor, _ = (int(p) for p in versions.pop().split("."))
    # versions.tf: ">= 5.100, < 6.0"
    assert major == 5 and minor >= 100
