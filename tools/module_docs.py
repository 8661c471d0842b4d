"""Inputs and Outputs tables of every child module's README, generated from its .tf files.

    python tools/module_docs.py          rewrite the tables in modules/<name>/README.md
    python tools/module_docs.py --check  exit 1 listing every README that is missing or stale

The tables sit between the marker comments `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`;
the text above them (a heading and what the module does) is written by hand and left alone. A
module without a README gets one with a heading and the tables, and `--check` fails on it until
someone writes the paragraph. Rows keep the order the blocks are declared in (files by name).

terraform-docs, the usual tool for this, is a Go binary that none of the package registries this
project installs from ships, so the HCL is parsed with python-hcl2 (pinned in the `dev` extra).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import hcl2

BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
ROOT = Path(__file__).resolve().parents[1]

_OPTIONS = hcl2.SerializationOptions(with_comments=False, preserve_heredocs=False)
# HCL string escapes, plus the template escapes $${ and %%{ for a literal ${ and %{.
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)|\$\$\{|%%\{", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    default: str | None  # HCL text of the default; None when the variable is required
    description: str
    sensitive: bool


@dataclass(frozen=True)
class Output:
    name: str
    description: str
    sensitive: bool


def _unquote(token: str) -> str:
    """The text of an HCL string literal as python-hcl2 returns it (quotes and escapes kept)."""
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        return token

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("$${", "%%{"):
            return text[1:]
        if text[1] in "uU":
            return chr(int(text[2:], 16))
        return _SIMPLE_ESCAPES.get(text[1], text)

    return _ESCAPE.sub(replace, token[1:-1])


def _expression(token: str) -> str:
    """python-hcl2 wraps every non-literal expression in ${...}; HCL source has none."""
    if token.startswith("${") and token.endswith("}"):
        return token[2:-1]
    return token


def _hcl(value: object) -> str:
    """A parsed value written back as HCL on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _expression(value)
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(item) for item in value) + "]"
    if isinstance(value, dict):
        items = [f"{key} = {_hcl(item)}" for key, item in value.items() if not key.startswith("__")]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"unexpected value from the HCL parser: {value!r}")


def _blocks(parsed: dict[str, object], kind: str) -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    entries = parsed.get(kind, [])
    if not isinstance(entries, list):
        raise TypeError(f"unexpected {kind} blocks from the HCL parser: {entries!r}")
    for entry in entries:
        for label, body in entry.items():
            found.append((_unquote(label), body))
    return found


def _text(body: dict[str, object], key: str) -> str:
    value = body.get(key, "")
    return _unquote(value) if isinstance(value, str) else _hcl(value)


def parse_module(module: Path) -> tuple[list[Variable], list[Output]]:
    """Every variable and output block declared in the module's .tf files."""
    variables: list[Variable] = []
    outputs: list[Output] = []
    for tf in sorted(module.glob("*.tf")):
        try:
            parsed = hcl2.loads(tf.read_text(encoding="utf-8"), serialization_options=_OPTIONS)
        except Exception as exc:  # the parser raises lark's errors; name the file they come from
            raise ValueError(f"{tf}: cannot parse: {exc}") from exc
        for name, body in _blocks(parsed, "variable"):
            variables.append(
                Variable(
                    name=name,
                    type=_expression(str(body["type"])) if "type" in body else "any",
                    default=_hcl(body["default"]) if "default" in body else None,
                    description=_text(body, "description"),
                    sensitive=body.get("sensitive") is True,
                )
            )
        for name, body in _blocks(parsed, "output"):
            outputs.append(
                Output(
                    name=name, description=_text(body, "description"), sensitive=body.get("sensitive") is True
                )
            )
    return variables, outputs


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _prose(text: str) -> str:
    """A description as a cell: `<` outside code spans escaped, or `payment-<role>` renders as a tag."""
    parts = re.split(r"(`[^`]*`)", text)
    return _cell("".join(part if part.startswith("`") else part.replace("<", "\\<") for part in parts))


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return _cell(f"{fence}{pad}{text}{pad}{fence}")


def _describe(description: str, sensitive: bool) -> str:
    return _prose(f"{description} Sensitive." if sensitive else description)


def render_tables(module: Path) -> str:
    """The generated block, markers included."""
    variables, outputs = parse_module(module)
    lines = [BEGIN, "## Inputs", ""]
    if variables:
        lines += ["| name | type | default | description |", "|---|---|---|---|"]
        for var in variables:
            default = "required" if var.default is None else _code(var.default)
            description = _describe(var.description, var.sensitive)
            lines.append(f"| {_code(var.name)} | {_code(var.type)} | {default} | {description} |")
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    if outputs:
        lines += ["| name | description |", "|---|---|"]
        for out in outputs:
            lines.append(f"| {_code(out.name)} | {_describe(out.description, out.sensitive)} |")
    else:
        lines.append("No outputs.")
    lines.append(END)
    return "\n".join(lines)


def modules(root: Path) -> list[Path]:
    """Every child module: a directory under modules/ with .tf files."""
    return sorted(path for path in (root / "modules").iterdir() if path.is_dir() and any(path.glob("*.tf")))


def expected_readme(module: Path, current: str | None) -> str:
    """The README with fresh tables: the hand-written text kept, the generated block replaced."""
    tables = render_tables(module)
    if current is None:
        return f"# {module.name} module\n\n{tables}\n"
    start, end = current.find(BEGIN), current.find(END)
    if start == -1 or end < start:
        return current.rstrip("\n") + "\n\n" + tables + "\n"
    return current[:start] + tables + current[end + len(END) :]


def check(root: Path = ROOT) -> list[str]:
    """One line per README that is missing, has no markers or description, or has stale tables."""
    problems: list[str] = []
    for module in modules(root):
        readme = module / "README.md"
        shown = readme.relative_to(root)
        if not readme.is_file():
            problems.append(f"{shown}: missing")
            continue
        current = readme.read_text(encoding="utf-8")
        start, end = current.find(BEGIN), current.find(END)
        if start == -1 or end < start:
            problems.append(f"{shown}: no {BEGIN} ... {END} block")
            continue
        prose = [line for line in current[:start].splitlines() if line.strip() and not line.startswith("#")]
        if not prose:
            problems.append(f"{shown}: no paragraph saying what the module does above the tables")
        if current != expected_readme(module, current):
            problems.append(f"{shown}: Inputs/Outputs tables differ from the module's .tf files")
    return problems


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite every module README whose tables are stale; returns the files written."""
    written: list[Path] = []
    for module in modules(root):
        readme = module / "README.md"
        current = readme.read_text(encoding="utf-8") if readme.is_file() else None
        updated = expected_readme(module, current)
        if updated != current:
            readme.write_text(updated, encoding="utf-8")
            written.append(readme)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing drift")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `python tools/module_docs.py` to regenerate the tables", file=sys.stderr)
        return 1 if problems else 0
    for path in write(args.root):
        print(f"wrote {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
