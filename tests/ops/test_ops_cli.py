"""The ``ops`` command tree: help everywhere, environment-variable twins, exit codes, links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from ops_testkit import BUCKET, SUFFIX, Platform, epoch_ms, txn_item

from ops.cli.main import cli


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found.extend(_walk(sub, (*path, name)))
    return found


def test_every_command_and_option_has_help_and_options_show_their_env_var() -> None:
    missing = []
    for path, command in _walk(cli):
        name = " ".join(("ops", *path))
        if not (command.help or command.short_help):
            missing.append(f"{name}: no help text")
        for param in command.params:
            if isinstance(param, click.Argument):
                continue
            assert isinstance(param, click.Option)
            if not param.help and param.name not in {"help", "version"}:
                missing.append(f"{name} {param.opts[0]}: no help text")
    assert missing == []


@pytest.mark.parametrize("command", ["report", "cleanup", "redrive", "links", "restore"])
def test_help_lists_env_var_twins(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for twin in (
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_PROFILE",
        "OPS_SUFFIX",
        "OPS_TF_DIR",
        "OPS_OUTPUTS_FILE",
    ):
        assert twin in text
    shared = {
        "endpoint_url",
        "region",
        "profile",
        "suffix",
        "tf_dir",
        "outputs_file",
        "json",
        "verbose",
        "quiet",
    }
    own = [o for o in cli.commands[command].params if isinstance(o, click.Option) and o.name != "help"]
    for option in own:
        if option.name in shared:
            continue
        if not option.allow_from_autoenv:
            # Destructive flags have no twin: a variable left in a shell must not set them.
            assert option.envvar is None and "command line only" in (option.help or "").lower(), option.opts
            continue
        # The twin is named after the flag users type: OPS_<COMMAND>_<FLAG>.
        flag = max(option.opts, key=len).lstrip("-").split("/")[0].replace("-", "_").upper()
        assert f"OPS_{command.upper()}_{flag}" in text, option.opts


def test_root_help_and_version() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("report", "cleanup", "redrive", "links", "restore"):
        assert command in result.output
    assert runner.invoke(cli, ["--version"]).output.startswith("ops, version ")


@pytest.mark.parametrize(
    "argv",
    [
        ["nonsense"],
        ["report", "--date", "2026-13-45"],
        ["report", "--format", "xml"],
        ["report", "--shards", "0"],
        ["cleanup", "--older-than", "ninety"],
        ["cleanup", "--segments", "0"],
        ["redrive", "--mode", "teleport"],
        ["redrive", "--max", "0"],
        ["links", "--bogus"],
        ["restore", "--table", "ledger", "--to-time", "2026-01-01T00:00:00Z"],
        ["restore", "--table", "audit", "--to-time", "last tuesday"],
        ["restore", "--table", "audit"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output


def test_unresolvable_names_exit_1_with_a_hint(aws_env: None) -> None:
    result = CliRunner().invoke(cli, ["report", "--date", "2026-01-01"])
    assert result.exit_code == 1
    assert "--suffix" in result.stderr


def test_env_var_twins_drive_the_command(platform: Platform) -> None:
    day = "2026-02-03"
    platform.put([txn_item(1, epoch_ms(__import__("datetime").date(2026, 2, 3), 4), amount_minor=77)])
    env = {"OPS_SUFFIX": SUFFIX, "OPS_REPORT_DATE": day, "OPS_REPORT_FORMAT": "json", "OPS_QUIET": "1"}
    result = CliRunner().invoke(cli, ["report"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["date"] == day
    assert json.loads(result.stdout)["count"] == 1
    # Outputs file by env var, JSON by env var.
    env = {"OPS_OUTPUTS_FILE": str(platform.outputs_file), "OPS_JSON": "true"}
    result = CliRunner().invoke(cli, ["links"], env=env)
    assert result.exit_code == 0, result.output
    assert "dashboard" in json.loads(result.stdout)


def test_suffix_derives_every_name_including_the_bucket_via_sts(platform: Platform) -> None:
    import datetime as dt

    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)  # within retention: no --force
    platform.put([txn_item(1, epoch_ms(day, 4))])
    result = CliRunner().invoke(
        cli, ["--suffix", SUFFIX, "report", "--date", day.isoformat(), "--upload", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uploaded_to"] == f"s3://{BUCKET}/reports/{day.isoformat()}.json"


def test_endpoint_url_is_used(platform: Platform) -> None:
    # Nothing listens on port 9: the failure proves the request went to the given endpoint.
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = CliRunner().invoke(cli, ["--suffix", SUFFIX, "report", "--date", "2026-02-03"], env=env)
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.stderr


def test_global_options_work_before_and_after_the_command(platform: Platform) -> None:
    for argv in (
        ["--json", "--suffix", SUFFIX, "report", "--date", "2026-02-03"],
        ["report", "--date", "2026-02-03", "--json", "--suffix", SUFFIX],
    ):
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["count"] == 0


def test_terraform_outputs_are_read_from_tf_dir(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in `terraform` on PATH that answers `output -json` like the real one.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "terraform"
    fake.write_text(f'#!/bin/sh\n[ "$1 $2" = "output -json" ] || exit 3\ncat {platform.outputs_file}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    result = CliRunner().invoke(cli, ["--tf-dir", str(tmp_path), "links", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["queues"] == {"dlq": "https://console.aws.amazon.com/sqs/dlq"}


def test_links_table_groups_every_link(run: Any) -> None:
    result = run("links")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for expected in ("dashboard", "alarms", "payment-dlq-messages-test", "logs", "queues", "workflow"):
        assert expected in text
    assert text.index("dashboard") < text.index("alarms") < text.index("queues") < text.index("logs")


def test_links_json_and_group_filter(run: Any) -> None:
    result = run("links", "--group", "alarms", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "alarms": {
            "payment-dlq-messages-test": "https://console.aws.amazon.com/cloudwatch/alarm/dlq",
            "payment-intake-errors-test": "https://console.aws.amazon.com/cloudwatch/alarm/intake",
        }
    }
    assert run("links", "--group", "nope").exit_code == 1


def test_links_without_outputs_exit_1(platform: Platform) -> None:
    result = CliRunner().invoke(cli, ["--suffix", SUFFIX, "links"])
    assert result.exit_code == 1
    assert "oncall_links" in result.stderr


def test_aws_errors_exit_1_with_the_error_code(platform: Platform) -> None:
    result = CliRunner().invoke(cli, ["report", "--table", "no-such-table", "--date", "2026-01-01"])
    assert result.exit_code == 1
    assert "ResourceNotFoundException" in result.stderr


def test_verbose_shows_request_counts_and_quiet_silences_stderr(run: Any, platform: Platform) -> None:
    verbose = run("cleanup", "-v")
    assert verbose.exit_code == 0, verbose.output
    assert "requests:" in verbose.stderr
    quiet = run("-q", "cleanup")
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert "DRY RUN" in quiet.stdout


def test_explicit_name_flags_need_no_outputs_or_suffix(platform: Platform) -> None:
    import datetime as dt

    from ops_testkit import TABLE, cutoff_ms_90d

    recent = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    platform.s3.create_bucket(Bucket="other-archive")
    platform.put([txn_item(1, cutoff_ms_90d() - 1), txn_item(2, epoch_ms(recent))])
    runner = CliRunner()
    cleaned = runner.invoke(
        cli, ["cleanup", "--table", TABLE, "--bucket", "other-archive", "--yes", "--json"]
    )
    assert cleaned.exit_code == 0, cleaned.output
    assert json.loads(cleaned.stdout)["deleted"] == 1
    keys = [o["Key"] for o in platform.s3.list_objects_v2(Bucket="other-archive")["Contents"]]
    assert sorted(k.rsplit(".", 1)[-1] for k in keys) == ["json", "json", "jsonl"]  # + manifest, summary
    argv = ["report", "--table", TABLE, "--upload", "--bucket", "other-archive", "--json"]
    reported = runner.invoke(cli, argv)
    assert reported.exit_code == 0, reported.output
    assert json.loads(reported.stdout)["count"] == 1
    assert (
        json.loads(reported.stdout)["uploaded_to"] == f"s3://other-archive/reports/{recent.isoformat()}.json"
    )


def test_region_and_profile_are_used(platform: Platform, tmp_path: Path) -> None:
    elsewhere = CliRunner().invoke(
        cli, ["--suffix", SUFFIX, "--region", "eu-west-1", "report", "--date", "2026-01-01"]
    )
    assert elsewhere.exit_code == 1  # the table lives in us-east-1
    assert "ResourceNotFoundException" in elsewhere.stderr
    config = tmp_path / "config"
    config.write_text(
        "[profile ops-test]\nregion = us-east-1\n"
        "aws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    with_profile = CliRunner().invoke(
        cli,
        ["--profile", "ops-test", "--suffix", SUFFIX, "report", "--date", "2026-01-01", "--json"],
        env={"AWS_CONFIG_FILE": str(config)},
    )
    assert with_profile.exit_code == 0, with_profile.output
    missing = CliRunner().invoke(cli, ["--profile", "nope", "--suffix", SUFFIX, "report"])
    assert missing.exit_code == 1
    assert "nope" in missing.stderr


def _fake_terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: str) -> None:
    """A stand-in `terraform` on PATH whose `output -json` prints ``outputs``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "outputs.json").write_text(outputs)
    fake = bin_dir / "terraform"
    fake.write_text(f'#!/bin/sh\n[ "$1 $2" = "output -json" ] || exit 3\ncat {tmp_path / "outputs.json"}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")


def test_tf_dir_of_a_local_stack_brings_its_endpoint_and_test_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 9: the failure proves the request went to the endpoint the stack names,
    # signed with credentials the shell does not have.
    outputs = {"aws_endpoint_url": {"value": "http://127.0.0.1:9"}, "transactions_table_name": {"value": "t"}}
    _fake_terraform(tmp_path, monkeypatch, json.dumps(outputs))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "a-profile-that-is-not-there")  # ignored for a local stack
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = CliRunner().invoke(cli, ["--tf-dir", str(tmp_path), "report", "--date", "2026-02-03"])
    assert result.exit_code == 1
    assert "127.0.0.1:9" in result.stderr and "credentials" not in result.stderr.lower()


def test_tf_dir_that_does_not_exist_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(cli, ["--tf-dir", str(missing), "links"])
    assert result.exit_code == 2
    assert str(missing) in result.stderr and "no such directory" in result.stderr


def test_tf_dir_without_state_is_a_usage_error_naming_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_terraform(tmp_path, monkeypatch, "{}")
    result = CliRunner().invoke(cli, ["--tf-dir", str(tmp_path), "links"])
    assert result.exit_code == 2
    assert "terraform.tfstate missing" in result.stderr and "--suffix" not in result.stderr


def test_links_start_with_the_api_stage_url(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    url = "http://127.0.0.1:4566/restapis/abc123/prod/_user_request_"
    outputs.write_text(json.dumps({"api_invoke_url": url, "oncall_links": {"dashboard": "https://d"}}))
    result = CliRunner().invoke(cli, ["--outputs-file", str(outputs), "links", "--json"])
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout).items()) == [
        ("api", {"stage": url}),
        ("dashboard", {"dashboard": "https://d"}),
    ]
    plain = CliRunner().invoke(cli, ["--outputs-file", str(outputs), "links", "--format", "plain"])
    assert plain.stdout.splitlines()[0] == f"stage  {url}"
