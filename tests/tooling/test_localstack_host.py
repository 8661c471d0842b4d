"""LocalStack without Docker (``devkit.emulator.localstack``): the parts that need no running LocalStack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devkit import local
from devkit.emulator import localstack as host
from devkit.emulator.endpoints import ExternalEmulator, free_port


def test_runtime_env_listens_on_loopback_and_downloads_nothing() -> None:
    env = host.runtime_env(4599)
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"
    assert env["OVERRIDE_IN_DOCKER"] == "0" and env["DNS_ADDRESS"] == "0"
    assert env["SKIP_SSL_CERT_DOWNLOAD"] == "1" and env["DISABLE_EVENTS"] == "1"
    # Installers look under FILESYSTEM_ROOT, where `install` staged Java and DynamoDB Local.
    assert env["FILESYSTEM_ROOT"] == str(host.FS_ROOT)
    assert host.JAVA_DIR.is_relative_to(host.FS_ROOT) and host.DYNAMODB_DIR.is_relative_to(host.FS_ROOT)
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == "subprocess"
    assert Path(env["LOCALSTACK_LAMBDA_PYTHON"]).name.startswith("python")
    assert not [k for k in env if k.startswith("AWS_")]
    assert "wafv2" not in env["SERVICES"] and "xray" not in env["SERVICES"]


def test_a_bad_interpreter_override_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCALSTACK_PYTHON", sys.executable)
    if sys.version_info[:2] == (3, 13):
        assert host.find_python() == sys.executable
    else:
        with pytest.raises(host.LocalStackSetupError, match=r"not a working Python 3\.13"):
            host.find_python()


def test_found_interpreter_is_python_313() -> None:
    try:
        python = host.find_python()
    except host.LocalStackSetupError as exc:
        pytest.skip(f"no Python 3.13 on this machine: {exc}")
    out = subprocess.run(  # noqa: S603 - the interpreter find_python() verified
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "(3, 13)"


def test_requirements_pin_every_package() -> None:
    lines = [
        line.strip()
        for line in host.REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "localstack-core[runtime]==4.14.0" in lines
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
    pins = {line.split("==")[0].lower(): line.split("==")[1] for line in lines}
    assert int(pins["cbor2"].split(".")[0]) < 6
    assert int(pins["pyopenssl"].split(".")[0]) < 26
    assert "service-identity" in pins


def test_executor_plugin_is_registered_in_the_localstack_venv(tmp_path: Path) -> None:
    if not host.venv_python().is_file():
        pytest.skip("LocalStack is not installed (python -m devkit.emulator.localstack install)")
    host.install_executor_plugin()
    probe = (
        "import json, importlib.metadata as m;"
        "eps = m.entry_points(group='localstack.lambda.runtime_executor');"
        "print(json.dumps({e.name: e.value for e in eps}))"
    )
    out = subprocess.run(  # noqa: S603 - our LocalStack venv's interpreter
        [str(host.venv_python()), "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(out.stdout)
    assert found["subprocess"] == "devkit.emulator.localstack_executor:SubprocessRuntimeExecutorPlugin"
    assert "docker" in found
    load = (
        "from devkit.emulator.localstack_executor import SubprocessRuntimeExecutorPlugin as P;"
        "print(P.name, P().load().__name__)"
    )
    out = subprocess.run(  # noqa: S603 - our LocalStack venv's interpreter
        [str(host.venv_python()), "-c", load], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.split() == ["subprocess", "SubprocessRuntimeExecutor"]


def test_registering_the_plugin_again_never_leaves_a_file_cut_short(tmp_path: Path) -> None:
    """CI runs the LocalStack lane beside the tooling tests, which register the executor plugin in the
    same venv: a LocalStack starting then must read the entry points whole, never an emptied file."""
    site = tmp_path / "lib" / "python3.13" / "site-packages"
    site.mkdir(parents=True)
    entry_points = host.install_executor_plugin(tmp_path) / "entry_points.txt"
    first = entry_points.stat()
    host.install_executor_plugin(tmp_path)
    assert entry_points.stat().st_ino == first.st_ino  # unchanged content: not written again
    assert entry_points.stat().st_mtime_ns == first.st_mtime_ns
    # A changed file is replaced by a rename: a reader holding the old one reads it whole.
    entry_points.write_text("stale\n")
    with entry_points.open(encoding="utf-8") as held:
        host.install_executor_plugin(tmp_path)
        assert held.read() == "stale\n"
    assert "SubprocessRuntimeExecutorPlugin" in entry_points.read_text(encoding="utf-8")
    assert sorted(p.name for p in site.rglob("*.tmp")) == []


def test_nothing_recorded_means_nothing_to_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "STATE_FILE", tmp_path / "host.json")
    assert host.running() is None
    assert host.stop() is False
    # A record whose process is gone is cleared, not signalled.
    (tmp_path / "host.json").write_text(
        json.dumps({"pid": 2**22 + 7, "port": 1, "endpoint_url": "http://127.0.0.1:1"})
    )
    assert host.running() is None
    assert host.stop() is False
    assert not (tmp_path / "host.json").exists()


def test_an_explicit_endpoint_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", endpoint)
    chosen = host.select_localstack()
    assert type(chosen) is ExternalEmulator and chosen.endpoint_url == endpoint
    monkeypatch.delenv("LOCALSTACK_ENDPOINT")
    # Nothing answers on :4566 here: LocalStack without Docker is chosen (not started by choosing).
    if not ExternalEmulator().running:
        assert isinstance(host.select_localstack(), host.HostLocalStack)


def test_host_files_survive_ops_down() -> None:
    # `devkit down --backend localstack` removes its own stack directory: LocalStack's files live apart.
    assert not host.HOME.is_relative_to(local.backend_dir("localstack"))
    assert not local.backend_dir("localstack").is_relative_to(host.HOME)


class _FakeHost(host.HostLocalStack):
    """A host LocalStack that records its start and stop instead of running LocalStack."""

    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls

    def start(self) -> host.HostLocalStack:
        self.calls.append("start")
        self.endpoint_url = "http://127.0.0.1:45999"
        return self

    def stop(self) -> None:
        self.calls.append("stop")


# Writes the LOCALSTACK_ENDPOINT it was given to argv[1], then exits with argv[2].
_REPORT_ENDPOINT = (
    "import os, pathlib, sys; "
    "pathlib.Path(sys.argv[1]).write_text(os.environ.get('LOCALSTACK_ENDPOINT', '')); "
    "sys.exit(int(sys.argv[2]))"
)


def test_run_shares_one_host_localstack_with_the_command_and_stops_it_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make test-localstack`'s workers find LocalStack through LOCALSTACK_ENDPOINT; the one started
    for them is stopped when the command ends, failed or not, and its exit code is the command's."""
    monkeypatch.delenv("LOCALSTACK_ENDPOINT", raising=False)
    calls: list[str] = []
    monkeypatch.setattr(host, "select_localstack", lambda region=host.DEFAULT_REGION: _FakeHost(calls))
    seen = tmp_path / "endpoint.txt"
    assert host.run([sys.executable, "-c", _REPORT_ENDPOINT, str(seen), "3"]) == 3
    assert seen.read_text() == "http://127.0.0.1:45999"
    assert calls == ["start", "stop"]


def test_run_leaves_a_localstack_it_did_not_start_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", endpoint)
    stops: list[str] = []
    monkeypatch.setattr(host, "stop", lambda *a, **k: stops.append("stop") or True)
    seen = tmp_path / "endpoint.txt"
    assert host.run([sys.executable, "-c", _REPORT_ENDPOINT, str(seen), "0"]) == 0
    assert seen.read_text() == endpoint
    assert stops == []


def test_run_without_a_command_is_a_usage_error() -> None:
    command = [sys.executable, "-m", "devkit.emulator.localstack", "run"]
    out = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    assert out.returncode == 1 and "no command given" in out.stderr


def test_the_endpoint_of_the_host_localstack_selects_it_without_owning_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pytest worker under `localstack run`: the host LocalStack (it runs the deployed code on this
    host, which flows that serve a processor on 127.0.0.1 need), never stopped by the worker."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    state = {"pid": 1, "port": 1, "endpoint_url": endpoint}
    monkeypatch.setattr(host, "running", lambda: state)
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", endpoint + "/")
    stops: list[str] = []
    monkeypatch.setattr(host, "stop", lambda *a, **k: stops.append("stop") or True)
    chosen = host.select_localstack()
    assert isinstance(chosen, host.HostLocalStack)
    chosen.start()
    assert chosen.endpoint_url == endpoint
    chosen.stop()
    assert stops == []
    monkeypatch.setenv("LOCALSTACK_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert type(host.select_localstack()) is host.ExternalEmulator
