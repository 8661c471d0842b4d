"""Terraform's machine-readable UI: apply progress, diagnostics as Error blocks, the runner's -json mode.

The ``data/terraform_ui/*.jsonl`` streams were recorded from Terraform 1.11.4 applying
``data/terraform_ui/recorded.tf.txt`` (see its header for the commands).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devkit.terraform import ApplyProgress, Terraform, TerraformError, parse_message, render_diagnostic
from devkit.terraform.ui import human_text

DATA = Path(__file__).parent / "data" / "terraform_ui"


def _messages(name: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{name}.jsonl").read_text().splitlines()
    messages = [parse_message(line) for line in lines]
    assert all(messages), name
    return [m for m in messages if m is not None]


def _trace(progress: ApplyProgress, messages: list[dict[str, Any]]) -> list[tuple[int, int | None]]:
    """(finished, total) after each message that changed the progress."""
    return [(progress.finished, progress.total) for m in messages if progress.feed(m)]


def test_creations_count_up_to_the_planned_total() -> None:
    progress = ApplyProgress()
    trace = _trace(progress, _messages("create"))
    # version, 3 planned changes (total unknown), plan summary, 3 x (start, complete), apply summary.
    assert trace[:5] == [(0, None)] * 4 + [(0, 3)]
    assert [done for done, _ in trace[5:]] == [0, 1, 1, 1, 2, 3, 3]
    assert progress.total == 3 and progress.done == 3 and progress.failed == 0
    assert progress.phase == "complete"
    assert progress.summary == {"add": 3, "change": 0, "import": 0, "remove": 0, "operation": "apply"}
    assert progress.describe() == "3/3 resource changes done"


def test_a_replacement_counts_as_a_delete_and_a_create() -> None:
    progress = ApplyProgress()
    messages = _messages("replace")
    trace = _trace(progress, messages)
    assert progress.refreshed == 3
    # Plan: 1 to add, 2 to change, 1 to destroy -> 4 changes; each completion moves the bar by one.
    assert progress.total == 4 and progress.done == 4 and progress.phase == "complete"
    assert sorted({done for done, total in trace if total == 4}) == [0, 1, 2, 3, 4]
    assert all(done <= (total or 0) for done, total in trace if total is not None)


def test_a_destroy_counts_its_deletions() -> None:
    progress = ApplyProgress()
    _trace(progress, _messages("destroy"))
    assert (progress.done, progress.total, progress.phase) == (4, 4, "complete")
    assert progress.summary["operation"] == "destroy"


def test_a_failed_change_ends_the_count_with_the_error() -> None:
    progress = ApplyProgress()
    _trace(progress, _messages("errored"))
    assert (progress.done, progress.failed, progress.finished, progress.total) == (0, 1, 1, 1)
    assert progress.phase == "failed"
    assert progress.errors == ["local-exec provisioner error"]
    assert progress.current == "terraform_data.bad[0]"
    assert progress.describe() == "0/1 resource changes done, 1 failed"


def test_a_rerun_continues_the_count() -> None:
    """A re-run after a transient error plans only what is left: what was done stays done."""
    progress = ApplyProgress()
    for message in _messages("replace"):  # the first run stops after its second completion
        progress.feed(message)
        if progress.done == 2:
            break
    assert (progress.done, progress.total) == (2, 4)
    _trace(progress, _messages("create"))  # the re-run: a fresh version message, plan and apply
    assert (progress.done, progress.total, progress.runs) == (5, 5, 2)


def test_phases_before_the_plan_is_known() -> None:
    progress = ApplyProgress()
    assert progress.describe() == "starting..."
    messages = _messages("replace")
    for message in messages[:3]:
        progress.feed(message)
    assert progress.describe() == "refreshing state (1 resources read)"
    assert not progress.feed({"type": "outputs", "@message": "Outputs: 0"})


# The same diagnostics as terraform's human UI prints them without colour (recorded).
_VARIABLE_BLOCK = """\
Error: Invalid value for variable

  on main.tf line 1:
   1: variable "n" {
    ├────────────────
    │ var.n is "Not_Valid!"

n must be 2-20 lowercase letters.

This was checked by the validation rule at main.tf:4,3-13."""

_PROVISIONER_BLOCK = """\
Error: local-exec provisioner error

  with terraform_data.bad[0],
  on main.tf line 26, in resource "terraform_data" "bad":
  26:   provisioner "local-exec" {

Error running command 'echo boom; exit 3': exit status 3. Output: boom"""


def test_diagnostics_render_as_terraforms_error_blocks() -> None:
    (variable,) = [m for m in _messages("variable") if m["type"] == "diagnostic"]
    assert render_diagnostic(variable["diagnostic"]) == _VARIABLE_BLOCK
    (provisioner,) = [m for m in _messages("errored") if m["type"] == "diagnostic"]
    assert render_diagnostic(provisioner["diagnostic"]) == _PROVISIONER_BLOCK
    assert render_diagnostic({"severity": "warning", "summary": "Deprecated", "detail": "use y"}) == (
        "Warning: Deprecated\n\nuse y"
    )


def test_only_ui_messages_are_parsed() -> None:
    assert parse_message("Error: not json") is None
    assert parse_message("{not json") is None
    assert parse_message('{"no": "type"}') is None
    assert parse_message("") is None
    create = _messages("create")
    assert human_text(create[0]) == "Terraform 1.11.4"
    assert human_text(create[-2]) == "Apply complete! Resources: 3 added, 0 changed, 0 destroyed."


def _fake_terraform(tmp_path: Path, script: str) -> Path:
    fake = tmp_path / "terraform"
    fake.write_text("#!/bin/sh\n" + textwrap.dedent(script))
    fake.chmod(0o755)
    return fake


def test_the_runner_turns_the_json_stream_into_human_logs_errors_and_events(tmp_path: Path) -> None:
    args = tmp_path / "args"
    fake = _fake_terraform(tmp_path, f'echo "$@" > {args}\ncat {DATA / "errored.jsonl"}\nexit 1\n')
    events: list[dict[str, Any]] = []
    lines: list[str] = []
    log = tmp_path / "tf.log"
    tf = Terraform(
        tmp_path,
        binary=str(fake),
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
        log_path=log,
        on_line=lines.append,
        on_event=events.append,
        failed_log_dir=tmp_path / "logs",
    )
    with pytest.raises(TerraformError) as caught:
        tf.apply_vars({"x": 1}, json_ui=True)
    assert args.read_text().split()[:2] == ["apply", "-json"]
    assert caught.value.blocks == [_PROVISIONER_BLOCK]
    assert _PROVISIONER_BLOCK in str(caught.value)
    assert [e["type"] for e in events] == [json.loads(line)["type"] for line in _raw("errored")]
    assert "terraform_data.bad[0]: Creation errored after 0s" in lines
    assert "Error: local-exec provisioner error" in lines
    for text in (log.read_text(), caught.value.log_path.read_text() if caught.value.log_path else ""):
        assert "terraform_data.bad[0]: Creating..." in text and _PROVISIONER_BLOCK in text
        assert '"@level"' not in text


def _raw(name: str) -> list[str]:
    return (DATA / f"{name}.jsonl").read_text().splitlines()


def test_json_runs_are_re_run_after_a_transient_error_and_the_count_continues(tmp_path: Path) -> None:
    dropped = {
        "@level": "error",
        "@message": "Error: creating IAM Role (r)",
        "type": "diagnostic",
        "diagnostic": {
            "severity": "error",
            "summary": "creating IAM Role (r): operation error IAM: CreateRole, https response error "
            "StatusCode: 200, decomposing response: read tcp 127.0.0.1:1->127.0.0.1:2: use of closed "
            "network connection",
            "detail": "",
            "address": "aws_iam_role.r",
        },
    }
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join([*_raw("create")[:7], json.dumps(dropped)]) + "\n")
    counter = tmp_path / "attempts"
    fake = _fake_terraform(
        tmp_path,
        f"""\
        echo x >> {counter}
        if [ "$(wc -l < {counter})" -lt 2 ]; then cat {first}; exit 1; fi
        cat {DATA / "create.jsonl"}
        """,
    )
    progress = ApplyProgress()
    tf = Terraform(
        tmp_path,
        binary=str(fake),
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
        on_event=progress.feed,
        failed_log_dir=tmp_path / "logs",
    )
    result = tf.apply_vars({}, json_ui=True)
    assert "Apply complete! Resources: 3 added" in result.out
    assert [(cmd, calls) for cmd, calls, _ in tf.retries] == [("apply", ["IAM: CreateRole"])]
    # One creation finished in the first run, three in the re-run.
    assert (progress.done, progress.total, progress.runs, progress.phase) == (4, 4, 2, "complete")
