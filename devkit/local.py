"""One-command local platform: ``devkit up`` / ``devkit down`` (emulator + terraform apply/destroy).

Layout under ``.local/`` (git-ignored):

- ``emulator.json`` / ``emulator.log`` — the detached moto emulator (pid, port, endpoint) and its log;
- ``<backend>/stack/`` — scratch working copy of the root module with ``emulator_override.tf``,
  ``.terraform`` and the local state;
- ``<backend>/outputs.json`` — ``terraform output -json`` of the last apply (for ``ops --outputs-file``);
- ``terraform.log`` — full terraform output of every run (and every transient re-run, with the call),
  as terraform prints it for a human (apply and destroy run with ``-json`` for the progress count;
  the log gets the human text of each message);
- ``logs/terraform-<command>-<time>-*.log`` — the full output of each failed terraform command, kept;
- ``terraformrc`` — CLI config pointing at the local provider mirror, when there is one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments.authorizer import ACTIVE

from devkit.build import BuildResult, build_package
from devkit.demo import DEMO_MERCHANTS, run_demo
from devkit.emulator import localstack as host_localstack
from devkit.emulator.endpoints import (
    BACKENDS,
    DEFAULT_REGION,
    LOCALSTACK_ENDPOINT,
    EmulatorError,
    emulator_clients,
    emulator_env,
    localstack_health,
    pid_alive,
    probe,
)
from devkit.terraform import (
    LOCAL_DIR,
    REPO_ROOT,
    ApplyProgress,
    Terraform,
    TerraformError,
    prepare_workdir,
    terraform_env,
)
from devkit.terraform.workdir import ENDPOINT_OUTPUT
from ops.core import JobError, OpsError
from ops.core.clients import ClientStore
from ops.core.names import terraform_outputs

EMULATOR_STATE = LOCAL_DIR / "emulator.json"
EMULATOR_LOG = LOCAL_DIR / "emulator.log"
TERRAFORM_LOG = LOCAL_DIR / "terraform.log"
DEFAULT_SUFFIX = "local"
EMULATOR_START_TIMEOUT_S = 60.0
EMULATOR_STOP_TIMEOUT_S = 15.0
APPLY_TIMEOUT_S = 1800.0
DESTROY_TIMEOUT_S = 1200.0

# Variables set for local runs when the root module declares them: everything must be destroyable
# and the account-wide API Gateway CloudWatch role is the emulator's to create.
LOCAL_TF_VARS: dict[str, Any] = {
    "table_deletion_protection": False,
    "archive_force_destroy": True,
    "manage_api_gateway_account": True,
}

# Per backend: LocalStack's free edition has neither WAFv2 nor the X-Ray control plane, so those
# switches go off there (and only there; production keeps the defaults).
BACKEND_TF_VARS: dict[str, dict[str, Any]] = {
    # LocalStack stores Lambda authorizers but never runs them (docs/emulators.md), so no request
    # there carries a principal.
    "localstack": {
        "enable_waf": False,
        "enable_xray_resources": False,
        "require_authorizer_principal": False,
    },
}

Progress = Callable[[str], None]
# Called with the apply's (or destroy's) progress each time a resource change starts or ends.
ChangeProgress = Callable[[ApplyProgress], None]


class LocalError(RuntimeError):
    """devkit up/down could not complete; the message says what to do."""


@dataclass
class UpResult:
    backend: str
    endpoint_url: str
    region: str
    suffix: str
    stack_dir: Path
    outputs: dict[str, Any]
    sensitive: set[str]
    package: BuildResult
    resource_count: int
    timings: dict[str, float] = field(default_factory=dict)
    demo_error: str | None = None
    # The demo's payments: transaction id -> final status (empty without the demo).
    demo_transactions: dict[str, str] = field(default_factory=dict)
    # Re-runs of terraform after a transient connection error: (command, failed calls, first error line).
    retries: list[tuple[str, list[str], str]] = field(default_factory=list)


@dataclass
class DownResult:
    backend: str
    destroyed: bool
    emulator_stopped: bool
    removed: list[Path]
    seconds: float
    retries: list[tuple[str, list[str], str]] = field(default_factory=list)


# --------------------------------------------------------------------------- paths


def backend_dir(backend: str) -> Path:
    return LOCAL_DIR / backend


def stack_dir(backend: str) -> Path:
    return backend_dir(backend) / "stack"


def outputs_file(backend: str) -> Path:
    return backend_dir(backend) / "outputs.json"


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise LocalError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


# --------------------------------------------------------------------------- emulator process


def _is_our_emulator(pid: int) -> bool:
    """Guard against signalling a recycled pid: the process must be ``python -m devkit.emulator``."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.is_file():
        return b"devkit.emulator" in cmdline.read_bytes()
    return pid_alive(pid)


def read_emulator_state() -> dict[str, Any] | None:
    try:
        state = json.loads(EMULATOR_STATE.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_emulator() -> dict[str, Any] | None:
    """The recorded emulator when its process is alive and answering, else None."""
    state = read_emulator_state()
    if not state:
        return None
    pid = int(state.get("pid", 0))
    if pid > 0 and pid_alive(pid) and _is_our_emulator(pid) and probe(str(state.get("endpoint_url", ""))):
        return state
    return None


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_emulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    region: str = DEFAULT_REGION,
    timeout: float = EMULATOR_START_TIMEOUT_S,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Start ``python -m devkit.emulator`` detached (or reuse the running one); return its state."""
    existing = running_emulator()
    if existing is not None:
        if progress:
            progress(f"emulator already running at {existing['endpoint_url']} (pid {existing['pid']})")
        return existing
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    ready_file = LOCAL_DIR / "emulator.ready.json"
    ready_file.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "devkit.emulator",
        "--host",
        host,
        "--port",
        str(port),
        "--region",
        region,
        "--ready-file",
        str(ready_file),
    ]
    env = dict(os.environ)
    # The emulator imports the handlers when the Lambda runtime hook runs them.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), str(REPO_ROOT / "lambda"), env.get("PYTHONPATH", "")) if p
    )
    with EMULATOR_LOG.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the ops process and its terminal's Ctrl-C
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalError(
                f"the emulator exited with code {proc.returncode} during start-up; "
                f"last lines of {EMULATOR_LOG}:\n{_log_tail(EMULATOR_LOG)}"
            )
        if ready_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                info = json.loads(ready_file.read_text())
                if probe(info["endpoint_url"]):
                    state = {**info, "pid": proc.pid, "log": str(EMULATOR_LOG), "started_at": time.time()}
                    EMULATOR_STATE.write_text(json.dumps(state, indent=2) + "\n")
                    return state
        time.sleep(0.2)
    _terminate(proc.pid)
    raise LocalError(
        f"the emulator did not become ready within {timeout:.0f} s; "
        f"last lines of {EMULATOR_LOG}:\n{_log_tail(EMULATOR_LOG)}"
    )


def _terminate(pid: int, timeout: float = EMULATOR_STOP_TIMEOUT_S) -> bool:
    """SIGTERM, wait, then SIGKILL the emulator with this pid. True when it is gone."""
    if not pid_alive(pid):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return not pid_alive(pid)


def stop_emulator() -> bool:
    """Stop the recorded emulator (only if the pid is still ours). True if one was stopped."""
    state = read_emulator_state()
    stopped = False
    if state:
        pid = int(state.get("pid", 0))
        if pid > 0 and pid_alive(pid) and _is_our_emulator(pid):
            stopped = _terminate(pid)
            if not stopped:
                raise LocalError(f"emulator pid {pid} did not stop; see {EMULATOR_LOG}")
    EMULATOR_STATE.unlink(missing_ok=True)
    return stopped


# --------------------------------------------------------------------------- terraform


_VARIABLE_RE = re.compile(r'^\s*variable\s+"([A-Za-z0-9_-]+)"', re.M)


def declared_variables(tf_dir: Path = REPO_ROOT) -> set[str]:
    names: set[str] = set()
    for tf in tf_dir.glob("*.tf"):
        names.update(_VARIABLE_RE.findall(tf.read_text()))
    return names


def local_tf_vars(
    suffix: str,
    tf_dir: Path = REPO_ROOT,
    extra: Mapping[str, Any] | None = None,
    backend: str = "moto",
) -> dict[str, Any]:
    """``-var`` values for a local apply: the suffix plus the local settings the root declares."""
    declared = declared_variables(tf_dir)
    chosen: dict[str, Any] = {"environment_suffix": suffix}
    chosen.update({k: v for k, v in LOCAL_TF_VARS.items() if k in declared})
    chosen.update({k: v for k, v in BACKEND_TF_VARS.get(backend, {}).items() if k in declared})
    chosen.update(extra or {})
    return chosen


def _terraform(
    workdir: Path,
    timeout: float,
    on_line: Progress | None,
    tracker: ApplyProgress | None = None,
    on_change: ChangeProgress | None = None,
) -> Terraform:
    """The runner for ``up``/``down``; UI messages of ``-json`` commands update ``tracker``."""

    def on_event(message: dict[str, Any]) -> None:
        if tracker is not None and tracker.feed(message) and on_change is not None:
            on_change(tracker)

    return Terraform(
        workdir,
        env=terraform_env(),
        timeout=timeout,
        log_path=TERRAFORM_LOG,
        on_line=on_line,
        on_event=on_event,
        failed_log_dir=LOCAL_DIR / "logs",
    )


def _failure(exc: TerraformError, backend: str) -> LocalError:
    """What the user sees when terraform fails: the Error blocks (in ``exc``) and where the logs are."""
    where = [f"all terraform runs: {TERRAFORM_LOG}"]
    if backend == "moto":
        where.append(f"emulator log: {EMULATOR_LOG}")
    return LocalError(f"{exc}\n(" + "; ".join(where) + ")")


def _endpoint_for(backend: str, *, region: str, progress: Progress | None) -> str:
    if backend == "moto":
        return str(start_emulator(region=region, progress=progress)["endpoint_url"])
    endpoint = os.environ.get("LOCALSTACK_ENDPOINT", LOCALSTACK_ENDPOINT)
    try:
        health = localstack_health(endpoint, timeout=3)
    except EmulatorError as exc:
        if "LOCALSTACK_ENDPOINT" in os.environ:
            raise LocalError(str(exc)) from exc
        # Nothing on the default port (no `docker compose up -d`): LocalStack without Docker.
        if progress:
            progress(
                "no LocalStack on :4566: starting LocalStack without Docker (devkit.emulator.localstack)"
            )
        try:
            endpoint = str(host_localstack.start()["endpoint_url"])
            health = localstack_health(endpoint)
        except EmulatorError as host_exc:
            raise LocalError(str(host_exc)) from host_exc
    if progress:
        progress(f"LocalStack {health.get('version', '?')} at {endpoint}")
    return endpoint


def up(
    *,
    backend: str = "moto",
    suffix: str = DEFAULT_SUFFIX,
    architecture: str = "x86_64",
    region: str = DEFAULT_REGION,
    demo: bool = True,
    progress: Progress | None = None,
    on_terraform_line: Progress | None = None,
    on_apply_progress: ChangeProgress | None = None,
) -> UpResult:
    """Build, start the emulator (moto) or check LocalStack, apply the root module, save outputs.

    ``progress`` gets one message per step, ``on_terraform_line`` every line of terraform's human
    output and ``on_apply_progress`` the apply's resource changes done out of the total.
    """
    _check_backend(backend)
    if not (REPO_ROOT / "main.tf").is_file():
        raise LocalError(f"no root module at {REPO_ROOT / 'main.tf'}")
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}

    started = time.monotonic()
    package = build_package(architecture=architecture)
    timings["build"] = time.monotonic() - started
    say(f"package {package.path.relative_to(REPO_ROOT)} ({package.size} bytes, {package.sha256_b64})")

    started = time.monotonic()
    endpoint = _endpoint_for(backend, region=region, progress=say)
    timings["emulator"] = time.monotonic() - started

    workdir = prepare_workdir(stack_dir(backend), endpoint, package_path=package.path)
    # Written before the apply so that `devkit down` can clean up after a failed or interrupted one.
    emulator_state = read_emulator_state() if backend == "moto" else None
    run_info = {
        "backend": backend,
        "endpoint_url": endpoint,
        "region": region,
        "suffix": suffix,
        "emulator_pid": emulator_state.get("pid") if emulator_state else None,
    }
    (backend_dir(backend) / "run.json").write_text(json.dumps(run_info) + "\n")
    tf = _terraform(workdir, APPLY_TIMEOUT_S, on_terraform_line, ApplyProgress(), on_apply_progress)
    # The zip's compiled wheels are built for this architecture: the functions must match it.
    tf_vars = local_tf_vars(
        suffix, extra={"lambda_architecture": architecture} if _arch_var() else None, backend=backend
    )
    try:
        started = time.monotonic()
        say("terraform init")
        tf.init_dir()
        timings["init"] = time.monotonic() - started
        started = time.monotonic()
        shown = (
            TERRAFORM_LOG.relative_to(REPO_ROOT) if TERRAFORM_LOG.is_relative_to(REPO_ROOT) else TERRAFORM_LOG
        )
        say(f"terraform apply (suffix {suffix}); full log in {shown}")
        tf.apply_vars(tf_vars, json_ui=True)
        timings["apply"] = time.monotonic() - started
        raw = json.loads(tf.run("output", "-json", "-no-color").out or "{}")
    except TerraformError as exc:
        raise _failure(exc, backend) from exc
    out_path = outputs_file(backend)
    out_path.write_text(json.dumps(raw, indent=2) + "\n")
    out_path.chmod(0o600)  # holds the API key values
    outputs = {name: entry.get("value") for name, entry in raw.items()}
    sensitive = {name for name, entry in raw.items() if entry.get("sensitive")}
    result = UpResult(
        backend=backend,
        endpoint_url=endpoint,
        region=region,
        suffix=suffix,
        stack_dir=workdir,
        outputs=outputs,
        sensitive=sensitive,
        package=package,
        resource_count=tf.state_resource_count(),
        timings=timings,
        retries=list(tf.retries),
    )
    if demo:
        started = time.monotonic()
        try:
            demo_result = run_demo(outputs, emulator_env(endpoint, region), say)
            transactions = demo_result.get("transactions", {})
            result.demo_transactions = {str(k): str(v) for k, v in transactions.items()}
            timings["demo"] = time.monotonic() - started
        except Exception as exc:
            # The platform is deployed either way: report the demo's failure next to the outputs.
            result.demo_error = f"{type(exc).__name__}: {exc}"
    return result


def _arch_var() -> bool:
    return "lambda_architecture" in declared_variables()


def _stop_emulators(backend: str | None, backends: list[str], say: Progress) -> bool:
    """Stop what ``up`` started: the embedded moto emulator and/or LocalStack without Docker (only
    when a LocalStack deployment was brought down, so that a lane's LocalStack keeps running)."""
    stopped = False
    if backend in (None, "moto") and stop_emulator():
        stopped = True
        say("emulator stopped")
    if "localstack" in backends and host_localstack.stop():
        stopped = True
        say("LocalStack (without Docker) stopped")
    return stopped


def down(
    *,
    backend: str | None = None,
    progress: Progress | None = None,
    on_destroy_progress: ChangeProgress | None = None,
) -> DownResult:
    """Destroy what ``up`` created, stop the emulator, remove local state. Safe to run twice.

    ``on_destroy_progress`` gets the destroy's resource changes done out of the total.
    """
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    backends = [backend] if backend else [b for b in BACKENDS if backend_dir(b).exists()] or ["moto"]
    destroyed = False
    removed: list[Path] = []
    retries: list[tuple[str, list[str], str]] = []
    for name in backends:
        _check_backend(name)
        run_info: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            run_info = json.loads((backend_dir(name) / "run.json").read_text())
        workdir = stack_dir(name)
        has_state = (workdir / "terraform.tfstate").is_file()
        reachable_endpoint: str | None = None
        if name == "moto":
            emu = running_emulator()
            # A restarted emulator starts empty: the state then describes nothing that exists.
            same_process = emu is not None and emu.get("pid") == run_info.get("emulator_pid", emu.get("pid"))
            reachable_endpoint = str(emu["endpoint_url"]) if emu and same_process else None
        else:
            endpoint = str(
                run_info.get("endpoint_url") or os.environ.get("LOCALSTACK_ENDPOINT", LOCALSTACK_ENDPOINT)
            )
            try:
                localstack_health(endpoint, timeout=3)
                reachable_endpoint = endpoint
            except EmulatorError as exc:
                if has_state:
                    raise LocalError(
                        f"{exc}\nthe deployment lives in that LocalStack: start it again and "
                        f"re-run `devkit down`, or delete {backend_dir(name)} to forget the deployment"
                    ) from exc
        if has_state and reachable_endpoint:
            # Re-point the override at the current endpoint: the port may differ from the apply's.
            prepare_workdir(workdir, reachable_endpoint)
            tf = _terraform(workdir, DESTROY_TIMEOUT_S, None, ApplyProgress(), on_destroy_progress)
            suffix = str(run_info.get("suffix") or DEFAULT_SUFFIX)
            say(f"terraform destroy ({name}, suffix {suffix})")
            try:
                tf.init_dir()
                tf.destroy_vars(local_tf_vars(suffix, backend=name), json_ui=True)
            except TerraformError as exc:
                raise _failure(exc, name) from exc
            finally:
                retries.extend(tf.retries)
            destroyed = True
        elif has_state:
            say(f"the {name} emulator is gone and so is what was deployed to it; removing stale state")
        if backend_dir(name).exists():
            shutil.rmtree(backend_dir(name))
            removed.append(backend_dir(name))
    stopped = _stop_emulators(backend, backends, say)
    return DownResult(
        backend=backend or ",".join(backends),
        destroyed=destroyed,
        emulator_stopped=stopped,
        removed=removed,
        seconds=time.monotonic() - started,
        retries=retries,
    )


def oncall_rows(outputs: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(group, name, url) rows of the ``oncall_links`` output, in a stable order."""
    links = outputs.get("oncall_links") or {}
    rows: list[tuple[str, str, str]] = []
    if not isinstance(links, Mapping):
        return rows
    for group in sorted(links):
        value = links[group]
        if isinstance(value, str):
            rows.append((group, group, value))
        elif isinstance(value, Mapping):
            rows.extend((group, str(name), str(url)) for name, url in sorted(value.items()))
    return rows


# --------------------------------------------------------------------------- using the local stack

# The tier whose key the printed requests use (the demo's).
DEMO_TIER = "partner"


def api_key(outputs: Mapping[str, Any], tier: str = DEMO_TIER) -> str | None:
    keys = outputs.get("api_key_values")
    value = keys.get(tier) if isinstance(keys, Mapping) else None
    return str(value) if value else None


# The local curl client's token (``<key id>.<secret>``), kept owner-only in the stack's working copy so
# that the printed requests and `devkit env` work as pasted. A local emulator's test client only: on
# AWS a secret is printed once by `ops clients add` and stored by its owner, never by the platform.
CURL_CLIENT_FILE = ".curl-client.json"


def curl_token(outputs: Mapping[str, Any], stack: Path) -> str | None:
    """The local stack's curl client (a partner for the demo merchants): the one recorded in the stack's
    working copy while its row still exists in this deployment's clients table, else a new one, issued
    as `ops clients add` does (the table keeps only the secret's hash) and recorded owner-only.
    None when the outputs name no emulator or clients table."""
    names = (ENDPOINT_OUTPUT, "clients_table_name", "audit_table_name")
    endpoint, table, audit = (outputs.get(name) for name in names)
    if not (endpoint and table and audit):
        return None
    region = str(outputs.get("region") or DEFAULT_REGION)
    (dynamodb,) = emulator_clients(str(endpoint), "dynamodb", region=region)
    store = ClientStore(dynamodb, str(table), str(audit))
    path = Path(stack) / CURL_CLIENT_FILE
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        recorded = json.loads(path.read_text(encoding="utf-8"))
        token = str(recorded["token"])
        if recorded.get("table") == table:
            with contextlib.suppress(OpsError):
                if store.fetch(token.split(".", 1)[0]).get("status") == ACTIVE:
                    return token
    issued = store.add("local-curl", DEMO_MERCHANTS, "partner", "devkit (local curl client)")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"table": table, "key_id": issued.client["key_id"], "token": issued.token}, handle)
    return issued.token


def deployed_backends() -> list[str]:
    """Backends with a local deployment (their outputs file exists)."""
    return [name for name in BACKENDS if outputs_file(name).is_file()]


def local_env(backend: str | None = None, tf_dir: Path | None = None) -> dict[str, str]:
    """What a shell needs to use a local deployment: the AWS variables of its emulator, ``OPS_TF_DIR``,
    and ``API_URL``/``API_KEY``/``API_TOKEN`` (the local curl client's bearer token) for ``curl``.
    From ``tf_dir`` (a local stack's working copy, read with ``terraform output -json``), else from
    ``.local/<backend>/`` (default: the only deployment)."""
    if tf_dir is not None:
        try:
            outputs = dict(terraform_outputs(tf_dir))
        except JobError as exc:
            raise LocalError(str(exc)) from exc
        stack = Path(tf_dir)
        run_info: dict[str, Any] = {}
    else:
        if backend is not None:
            _check_backend(backend)
        found = [backend] if backend else deployed_backends()
        if not found or not outputs_file(found[0]).is_file():
            raise LocalError(f"no local deployment{f' on {backend}' if backend else ''}: run `make up` first")
        if len(found) > 1:
            raise LocalError(f"local deployments on {' and '.join(found)}: pick one with --backend")
        raw = json.loads(outputs_file(found[0]).read_text())
        outputs = {k: e.get("value") if isinstance(e, Mapping) else e for k, e in raw.items()}
        stack = stack_dir(found[0])
        run_info = {}
        with contextlib.suppress(OSError, ValueError):
            run_info = json.loads((backend_dir(found[0]) / "run.json").read_text())
    endpoint = str(outputs.get(ENDPOINT_OUTPUT) or run_info.get("endpoint_url") or "")
    if not endpoint:
        raise LocalError(f"{stack} names no emulator endpoint (not a local stack?): run `make up`")
    env = emulator_env(endpoint, str(outputs.get("region") or run_info.get("region") or DEFAULT_REGION))
    env["OPS_TF_DIR"] = str(stack)
    if outputs.get("api_invoke_url"):
        env["API_URL"] = str(outputs["api_invoke_url"])
    key = api_key(outputs)
    if key:
        env["API_KEY"] = key
    token = curl_token(outputs, stack)
    if token:
        env["API_TOKEN"] = token
    return env


def export_lines(env: Mapping[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
