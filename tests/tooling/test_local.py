"""`devkit up` / `devkit down` plumbing: the detached emulator process, backend selection, idempotent down."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from devkit import local
from devkit.cli.local_cmd import down as down_cmd
from devkit.cli.local_cmd import up as up_cmd
from devkit.emulator.server import EmulatorError, ExternalEmulator, free_port, probe, selected_backend


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point devkit.local at a scratch .local so tests never touch a developer's running stack."""
    monkeypatch.setattr(local, "LOCAL_DIR", tmp_path)
    monkeypatch.setattr(local, "EMULATOR_STATE", tmp_path / "emulator.json")
    monkeypatch.setattr(local, "EMULATOR_LOG", tmp_path / "emulator.log")
    monkeypatch.setattr(local, "TERRAFORM_LOG", tmp_path / "terraform.log")
    monkeypatch.setattr(local, "backend_dir", lambda backend: tmp_path / backend)
    yield tmp_path
    local.stop_emulator()


def test_emulator_process_starts_detached_is_reused_and_stops(local_dir: Path) -> None:
    state = local.start_emulator()
    assert probe(state["endpoint_url"])
    recorded = json.loads((local_dir / "emulator.json").read_text())
    assert recorded["pid"] == state["pid"] and recorded["endpoint_url"].startswith("http://127.0.0.1:")
    assert "serving at" in (local_dir / "emulator.log").read_text()
    again = local.start_emulator()
    assert again["pid"] == state["pid"]
    assert local.stop_emulator() is True
    assert not probe(state["endpoint_url"], timeout=1)
    assert not (local_dir / "emulator.json").exists()
    assert local.stop_emulator() is False  # idempotent


def test_a_stale_state_file_does_not_block_a_new_emulator(local_dir: Path) -> None:
    (local_dir / "emulator.json").write_text(
        json.dumps({"pid": 2**22 + 7, "endpoint_url": "http://127.0.0.1:9"})
    )
    state = local.start_emulator()
    assert state["pid"] != 2**22 + 7 and probe(state["endpoint_url"])


def test_emulator_start_failure_reports_the_log(local_dir: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        with pytest.raises(local.LocalError, match="exited with code"):
            local.start_emulator(port=port, timeout=30)


def test_down_without_anything_deployed_is_a_no_op(local_dir: Path) -> None:
    result = CliRunner().invoke(down_cmd, [])
    assert result.exit_code == 0, result.output
    assert "nothing deployed" in result.output
    assert CliRunner().invoke(down_cmd, []).exit_code == 0


def test_up_on_localstack_without_localstack_explains_what_to_do(
    local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    result = CliRunner().invoke(up_cmd, ["--backend", "localstack", "--no-demo"])
    assert result.exit_code == 1
    assert "docker compose up -d" in result.output


def test_backend_comes_from_the_environment_twin(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_BACKEND", "localstack")
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    result = CliRunner().invoke(up_cmd, ["--no-demo"])
    assert result.exit_code == 1 and "LocalStack does not answer" in result.output
    monkeypatch.setenv("OPS_BACKEND", "nonsense")
    assert CliRunner().invoke(up_cmd, ["--no-demo"]).exit_code == 2


def test_commands_have_help_text() -> None:
    for command in (up_cmd, down_cmd):
        result = CliRunner().invoke(command, ["--help"])
        assert result.exit_code == 0 and "OPS_BACKEND" in result.output


def test_test_backend_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2E_BACKEND", raising=False)
    assert selected_backend() == "moto"
    monkeypatch.setenv("E2E_BACKEND", "LocalStack")
    assert selected_backend() == "localstack"
    monkeypatch.setenv("E2E_BACKEND", "docker")
    with pytest.raises(ValueError, match="moto or localstack"):
        selected_backend()


def test_external_emulator_health_check_fails_clearly() -> None:
    with pytest.raises(EmulatorError, match="docker compose up -d"):
        ExternalEmulator(f"http://127.0.0.1:{free_port()}").start()


def test_local_variables_only_include_what_the_root_declares(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(
        'variable "environment_suffix" {}\nvariable "archive_force_destroy" {}\n'
    )
    assert local.local_tf_vars("dev", tmp_path) == {
        "environment_suffix": "dev",
        "archive_force_destroy": True,
    }


def test_oncall_rows_flatten_the_links_output() -> None:
    rows = local.oncall_rows(
        {"oncall_links": {"dashboard": "https://d", "alarms": {"b": "https://b", "a": "https://a"}}}
    )
    assert rows == [
        ("alarms", "a", "https://a"),
        ("alarms", "b", "https://b"),
        ("dashboard", "dashboard", "https://d"),
    ]


def test_the_emulator_binds_to_loopback_by_default() -> None:
    from devkit.emulator.__main__ import parse_args
    from devkit.emulator.server import Emulator

    assert parse_args([]).host == "127.0.0.1"
    assert Emulator().host == "127.0.0.1"


def test_in_process_emulator_on_a_busy_port_fails_instead_of_hanging() -> None:
    from devkit.emulator.server import Emulator

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(EmulatorError, match="cannot bind"):
            Emulator(port=busy.getsockname()[1]).start()


def test_failed_up_prints_the_terraform_error_block_and_where_the_logs_are(local_dir: Path) -> None:
    """A deliberately broken variable: `devkit up` shows terraform's Error block, not only a resource line."""
    result = CliRunner().invoke(up_cmd, ["--no-demo", "--suffix", "Not_Valid!"])
    assert result.exit_code == 1
    assert "Error: Invalid value for variable" in result.output
    assert 'var.environment_suffix is "Not_Valid!"' in result.output
    assert "environment_suffix must be 2-20 characters" in result.output  # the detail
    kept = sorted((local_dir / "logs").glob("terraform-apply-*.log"))
    assert len(kept) == 1 and f"(full log: {kept[0]})" in result.output
    assert "Error: Invalid value for variable" in kept[0].read_text()
    assert f"emulator log: {local_dir / 'emulator.log'}" in result.output
    assert (local_dir / "emulator.log").is_file()
    assert result.output.rstrip().endswith("to clean up, run: make down")


def _recorded_progress(name: str) -> list[dict[str, object]]:
    from devkit.terraform import parse_message

    path = Path(__file__).parent / "data" / "terraform_ui" / f"{name}.jsonl"
    return [m for m in map(parse_message, path.read_text().splitlines()) if m is not None]


def test_apply_progress_off_a_terminal_is_plain_lines() -> None:
    """CI and pipes: no bar, no control codes; the planned total, tenths of it and the end."""
    import io

    from rich.console import Console

    from devkit.cli.local_cmd import _Display
    from devkit.terraform import ApplyProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=100)
    progress = ApplyProgress()
    with _Display(console, "terraform apply") as display:
        assert not display.interactive
        display.say("terraform init")
        for message in _recorded_progress("replace"):
            if progress.feed(message):
                display.changes(progress)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "> terraform init"
    assert lines[1] == "terraform apply: 4 resource changes planned"
    assert [line.split(" (")[0] for line in lines[2:]] == [
        f"terraform apply: {done}/4 resource changes done" for done in (1, 2, 3, 4)
    ]
    assert "\x1b" not in buffer.getvalue() and "\r" not in buffer.getvalue()


def test_apply_progress_on_a_terminal_is_a_bar() -> None:
    import io

    from rich.console import Console

    from devkit.cli.local_cmd import _Display
    from devkit.terraform import ApplyProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    progress = ApplyProgress()
    with _Display(console, "terraform apply") as display:
        assert display.interactive
        for message in _recorded_progress("replace"):
            if progress.feed(message):
                display.changes(progress)
                if progress.total is not None:
                    assert display._progress is not None
                    assert display._progress.tasks[0].total == 4
        assert display._progress is not None
        task = display._progress.tasks[0]
        assert (task.completed, task.total) == (4, 4)
    assert "terraform apply: 4/4 resource changes done" in buffer.getvalue()


def test_up_passes_the_apply_progress_to_the_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command wires local.up's progress callbacks to the display (no emulator, no terraform)."""
    from devkit.cli import local_cmd
    from devkit.terraform import ApplyProgress

    seen: dict[str, object] = {}

    def fake_up(**kwargs: object) -> object:
        seen.update(kwargs)
        progress = ApplyProgress()
        for message in _recorded_progress("create"):
            if progress.feed(message):
                kwargs["on_apply_progress"](progress)  # type: ignore[operator]
        raise local.LocalError("stop here")

    monkeypatch.setattr(local_cmd, "local_up", fake_up)
    result = CliRunner().invoke(up_cmd, ["--no-demo"])
    assert result.exit_code == 1 and "stop here" in result.output
    assert callable(seen["progress"]) and callable(seen["on_apply_progress"])
    assert "terraform apply: 3 resource changes planned" in result.output
    assert "terraform apply: 3/3 resource changes done" in result.output


def test_apply_progress_at_80_columns_keeps_count_and_time_and_shortens_the_resource() -> None:
    import io

    from rich.console import Console

    from devkit.cli.local_cmd import _Display
    from devkit.terraform import ApplyProgress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80)
    progress = ApplyProgress()
    progress.total, progress.done, progress.phase = 249, 123, "applying"
    progress.current = 'module.functions.aws_iam_role_policy_attachment.this["sweeper"]'
    with _Display(console, "terraform apply") as display:
        display.changes(progress)
        assert display._progress is not None
        display._progress.refresh()
        frame = buffer.getvalue().split("\r")[-1]
    plain = __import__("re").sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame)
    line = next(row for row in plain.splitlines() if "123/249" in row)
    assert len(line) <= 80 and "0:00:0" in line
    assert 'this["sweeper"]' in line and "…" in line


def test_next_steps_are_one_line_curls_and_commands_that_need_no_variables() -> None:
    from devkit.cli.local_cmd import next_steps
    from devkit.terraform import REPO_ROOT

    url = "http://127.0.0.1:4321/restapis/abc123/prod/_user_request_"
    outputs = {"api_invoke_url": url, "api_key_values": {"partner": "k3y", "mobile": "m"}}
    lines = next_steps(outputs, REPO_ROOT / ".local/moto/stack", {"txn_1": "COMPLETED"})
    create = next(line for line in lines if line.startswith("curl -sS -X POST"))
    assert f"{url}/transactions" in create and "x-api-key: k3y" in create and "Idempotency-Key" in create
    assert f"curl -sS {url}/transactions/txn_1 -H 'x-api-key: k3y'" in lines
    assert ".venv/bin/ops --tf-dir .local/moto/stack status" in lines
    assert 'eval "$(.venv/bin/devkit env)"' in lines


def test_env_prints_export_lines_of_the_local_deployment(local_dir: Path) -> None:
    from devkit.cli.local_cmd import env as env_cmd

    assert CliRunner().invoke(env_cmd, []).exit_code == 1  # nothing deployed: says `make up`
    (local_dir / "moto").mkdir()
    (local_dir / "moto" / "outputs.json").write_text(
        json.dumps(
            {
                "aws_endpoint_url": {"value": "http://127.0.0.1:4321"},
                "region": {"value": "us-east-1"},
                "api_invoke_url": {"value": "http://127.0.0.1:4321/restapis/a/prod/_user_request_"},
                "api_key_values": {"value": {"partner": "k3y"}, "sensitive": True},
            }
        )
    )
    result = CliRunner().invoke(env_cmd, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(line.startswith("export ") for line in lines)
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4321" in lines
    assert "export AWS_ACCESS_KEY_ID=test" in lines and "export API_KEY=k3y" in lines
    assert f"export OPS_TF_DIR={local_dir / 'moto' / 'stack'}" in lines


def test_tf_config_writes_the_mirror_cli_config_without_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devkit.cli import local_cmd

    mirror = tmp_path / "mirror"
    (mirror / "registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64").mkdir(parents=True)
    monkeypatch.setenv("TF_PLUGIN_MIRROR", str(mirror))
    config = tmp_path / "terraformrc"
    monkeypatch.setattr(local_cmd, "terraform_env", lambda: {"TF_CLI_CONFIG_FILE": str(config)})
    result = CliRunner().invoke(local_cmd.tf_config, [])
    assert result.exit_code == 0, result.output
    assert f"export TF_CLI_CONFIG_FILE={config}" in result.stdout


def test_up_ends_with_the_curls_and_prints_the_links_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make up` prints after a successful apply and demo (no emulator, no terraform)."""
    from devkit.cli import local_cmd
    from devkit.terraform import REPO_ROOT

    url = "http://127.0.0.1:4321/restapis/abc123/prod/_user_request_"
    outputs = {
        "api_invoke_url": url,
        "api_key_values": {"partner": "k3y"},
        "oncall_links": {"dashboard": "https://console.example/dashboard"},
    }

    def fake_up(**kwargs: object) -> local.UpResult:
        kwargs["progress"]("$ ops links --format plain\ndashboard  https://console.example/dashboard")  # type: ignore[operator]
        return local.UpResult(
            backend="moto",
            endpoint_url="http://127.0.0.1:4321",
            region="us-east-1",
            suffix="local",
            stack_dir=REPO_ROOT / ".local" / "moto" / "stack",
            outputs=outputs,
            sensitive={"api_key_values"},
            package=None,  # type: ignore[arg-type]
            resource_count=248,
            demo_transactions={"txn_1": "COMPLETED"},
        )

    monkeypatch.setattr(local_cmd, "local_up", fake_up)
    result = CliRunner().invoke(up_cmd, [], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.output.count("https://console.example/dashboard") == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == 'eval "$(.venv/bin/devkit env)"'
    assert f"curl -sS {url}/transactions/txn_1 -H 'x-api-key: k3y'" in lines
    assert any(line.startswith(f"curl -sS -X POST {url}/transactions ") for line in lines)
    assert "k3y" not in result.stderr  # the key is in the paste-ready lines only, not the summary
