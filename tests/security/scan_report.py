"""Render the checkov summary for docs/security-scan.md from the same configuration `make
security` uses.

``python -m tests.security.scan_report`` prints Markdown: passed/failed/skipped counts and every
suppression with the reason written next to the resource. Exit status 1 when a check fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def run_checkov() -> dict[str, Any]:
    # The committed config is quiet (failures only); the summary needs passed and skipped too.
    config = (REPO_ROOT / ".checkov.yaml").read_text(encoding="utf-8").replace("quiet: true", "quiet: false")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        handle.write(config)
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, pinned tool in our own venv
            [str(CHECKOV), "--config-file", handle.name, "-o", "json", "--soft-fail"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        Path(handle.name).unlink()
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    report: dict[str, Any] = next(r for r in reports if r.get("check_type") == "terraform")
    return report


def _where(check: dict[str, Any]) -> str:
    """``modules/api/main.tf: aws_api_gateway_stage.this`` — one entry per resource block, however
    many instances (for_each keys) or callers (the root, examples/) it has."""
    resource = re.sub(r"\[[^\]]*\]", "", check["resource"]).split(".")
    return f"`{check['file_path'].lstrip('/')}`: `{'.'.join(resource[-2:])}`"


def _location(check: dict[str, Any]) -> str:
    return f"{check['file_path'].lstrip('/')}:{check['file_line_range'][0]}"


def render(report: dict[str, Any]) -> str:
    summary = report["summary"]
    results = report["results"]
    lines = [
        f"checkov {summary['checkov_version']} (`make security`, `.checkov.yaml`, framework terraform, "
        f"root module and every module under `modules/`): **{summary['passed']} passed, "
        f"{summary['failed']} failed, {summary['skipped']} skipped** over {summary['resource_count']} "
        "resources.",
        "",
    ]
    failed = results.get("failed_checks", [])
    if failed:
        lines += ["Failed (must be fixed or justified before merge):", ""]
        lines += [
            f"- `{c['check_id']}` {c['check_name']} — `{c['resource']}` ({_location(c)})" for c in failed
        ]
        lines.append("")
    grouped: dict[tuple[str, str], set[str]] = defaultdict(set)
    names: dict[str, str] = {}
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result", {}).get("suppress_comment") or "").strip()
        grouped[(check["check_id"], reason)].add(_where(check))
        names[check["check_id"]] = check["check_name"]
    if grouped:
        lines += ["| check | resources | why it does not apply |", "|---|---|---|"]
        for (check_id, reason), resources in sorted(grouped.items()):
            shown = ", ".join(sorted(resources))
            lines.append(f"| `{check_id}` {names[check_id]} | {shown} | {reason} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    report = run_checkov()
    sys.stdout.write(render(report))
    return 1 if report["summary"]["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
