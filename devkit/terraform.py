"""Terraform runner helpers: provider-mirror discovery, CLI config, emulator override, scratch copies.

Production configuration never contains anything emulator-specific. Local runs work on a scratch
working copy of the root module (``prepare_workdir``) that gets an ``emulator_override.tf`` with the
test endpoints and credentials; the repository root is never written to.

``python -m devkit.terraform validate`` runs ``terraform init -backend=false`` + ``terraform validate``
on such a scratch copy (used by ``make lint`` and the pre-commit hook).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tftest

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_DIR = REPO_ROOT / ".local"
AWS_PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
OVERRIDE_FILENAME = "emulator_override.tf"
DEFAULT_PACKAGE_RELPATH = Path("build/lambda/payment-app.zip")

# Searched in order when TF_PLUGIN_MIRROR is not set; the first one holding the AWS provider for
# this platform wins.
MIRROR_SEARCH_PATHS: tuple[str, ...] = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "/usr/share/terraform/plugins",
)

# Provider 5.100 endpoint keys for every service the root module and its modules call.
EMULATOR_ENDPOINT_SERVICES: tuple[str, ...] = (
    "apigateway",
    "cloudwatch",
    "cloudwatchlogs",
    "dynamodb",
    "ec2",
    "eventbridge",
    "iam",
    "kms",
    "lambda",
    "s3",
    "scheduler",
    "secretsmanager",
    "sfn",
    "sns",
    "sqs",
    "ssm",
    "sts",
    "wafv2",
    "xray",
)

# What the root module reads from disk besides its own *.tf: copied into every scratch working copy.
_ROOT_FILE_GLOBS: tuple[str, ...] = ("*.tf", "*.tftpl", "*.tfvars", ".terraform.lock.hcl")
_COPIED_TREES: tuple[str, ...] = ("modules", "lambda/payments/schemas")
_IGNORED_IN_COPIES = shutil.ignore_patterns(
    ".terraform", "*.tfstate", "*.tfstate.*", "*_override.tf", "__pycache__", "*.pyc"
)

DEFAULT_TIMEOUT_S = 1800.0
# Where the full output of a failed terraform command is kept (one file per failure).
FAILED_LOG_DIR = LOCAL_DIR / "logs"

# Attempts the AWS SDK makes per call in local runs. Not 1: the SDK for Go has a client-side race in
# which a fast 200 response arrives while its HTTP transport still finishes the request write; the
# transport then closes the connection under the response body ("https response error StatusCode: 200
# ... decomposing response: read tcp ...: use of closed network connection"). The SDK retries exactly
# this error (net.ErrClosed) when it may make a second attempt. Measured with bench/soak.py: the error
# occurs with werkzeug's and with waitress's HTTP/1.1 keep-alive server alike, so the server is not its
# cause. Under CPU load (a 2-core machine running an apply beside the test suite) one call hit the error
# on 2 attempts in a row during a soak cycle, so 4: unimplemented emulator calls (HTTP 500) still fail
# within seconds (the SDK's back-off between attempts is sub-second at first).
PROVIDER_MAX_ATTEMPTS = 4


class TerraformError(RuntimeError):
    """A terraform command failed, timed out, or its environment is unusable.

    ``blocks`` holds the ``Error:`` diagnostics (summary, resource, detail) terraform printed;
    ``log_path`` the file that keeps the failed command's full output.
    """

    def __init__(
        self, message: str, *, blocks: list[str] | None = None, log_path: Path | None = None
    ) -> None:
        super().__init__(message)
        self.blocks = blocks or []
        self.log_path = log_path


# Provider errors that mean "the local connection dropped", not "the request was wrong".
TRANSIENT_ERRORS: tuple[str, ...] = (
    "use of closed network connection",
    "connection reset by peer",
    "connection refused",
    "unexpected EOF",
    "timeout awaiting response headers",
)


def is_transient(message: str) -> bool:
    return any(marker in message for marker in TRANSIENT_ERRORS)


_BOX_PREFIX_RE = re.compile(r"^[\u2502\u2575\u2577] ?", re.M)
_FAILED_CALL_RE = re.compile(r"operation error ([\w\s.-]+?: \w+)")


def error_blocks(output: str) -> list[str]:
    """The ``Error:`` diagnostics in terraform's output: each block from its summary line to the end
    of its detail (a blank-line-separated paragraph run, or the diagnostic box when colour is on)."""
    text = _BOX_PREFIX_RE.sub("", output)
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("Error: "):
            if current:
                blocks.append("\n".join(current).strip())
            current = [line]
        elif current is not None:
            if line.startswith(("Warning: ", "Plan: ", "Apply complete", "Destroy complete")):
                blocks.append("\n".join(current).strip())
                current = None
            else:
                current.append(line)
    if current:
        blocks.append("\n".join(current).strip())
    return blocks


def failed_calls(blocks: Iterable[str]) -> list[str]:
    """``Service: Operation`` of each AWS call named in the error blocks (what a retry is about)."""
    calls: list[str] = []
    for block in blocks:
        calls.extend(" ".join(match.split()) for match in _FAILED_CALL_RE.findall(block))
    return calls


# --------------------------------------------------------------------------- mirror + CLI config


def _platform_dir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"{sys.platform.replace('linux2', 'linux')}_{arch}"


def mirror_has_aws_provider(path: Path) -> bool:
    """True when ``path`` is a filesystem mirror (packed or unpacked) holding hashicorp/aws for us."""
    provider_dir = path / AWS_PROVIDER_SOURCE
    if not provider_dir.is_dir():
        return False
    plat = _platform_dir()
    # Unpacked layout: <version>/<os_arch>/terraform-provider-aws_*; packed: *_<os_arch>.zip.
    return any(
        (entry.is_dir() and (entry / plat).is_dir()) or entry.name.endswith(f"_{plat}.zip")
        for entry in provider_dir.iterdir()
    )


def find_provider_mirror(
    environ: Mapping[str, str] | None = None, search_paths: Iterable[str] = MIRROR_SEARCH_PATHS
) -> Path | None:
    """Locate a local provider mirror: ``TF_PLUGIN_MIRROR`` first, then the conventional directories.

    Returns None when there is none (online users then get the public registry). An explicit
    ``TF_PLUGIN_MIRROR`` that does not hold the provider is an error, not a silent fallback.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("TF_PLUGIN_MIRROR", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not mirror_has_aws_provider(path):
            raise TerraformError(
                f"TF_PLUGIN_MIRROR={explicit} does not contain {AWS_PROVIDER_SOURCE} for {_platform_dir()}"
            )
        return path.resolve()
    for candidate in search_paths:
        path = Path(candidate).expanduser()
        if mirror_has_aws_provider(path):
            return path.resolve()
    return None


def render_cli_config(mirror: Path) -> str:
    """CLI config that installs hashicorp/aws from ``mirror`` and everything else from the registry.

    Terraform links an unpacked mirror's provider directory into ``.terraform`` instead of copying
    the ~700 MB binary, so scratch working copies stay cheap without a plugin cache.
    """
    lines = [
        "provider_installation {",
        "  filesystem_mirror {",
        f"    path    = {json.dumps(str(mirror))}",
        f"    include = [{json.dumps(AWS_PROVIDER_SOURCE)}]",
        "  }",
        "  direct {",
        f"    exclude = [{json.dumps(AWS_PROVIDER_SOURCE)}]",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_cli_config(path: Path, mirror: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    content = render_cli_config(mirror)
    # Rewrite only on change: concurrent test workers read this file.
    if not path.exists() or path.read_text() != content:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(content)
        tmp.replace(path)
    return path


def terraform_env(
    base: Mapping[str, str] | None = None,
    *,
    local_dir: Path = LOCAL_DIR,
    search_paths: Iterable[str] = MIRROR_SEARCH_PATHS,
) -> dict[str, str]:
    """Environment for our terraform runs only (the caller's own environment is left untouched).

    With a mirror: TF_CLI_CONFIG_FILE points at ``<local_dir>/terraformrc``. Without one: a
    TF_CLI_CONFIG_FILE naming a missing file is dropped (terraform would warn on every command).
    """
    env = dict(os.environ if base is None else base)
    mirror = find_provider_mirror(env, search_paths)
    if mirror is not None:
        config = write_cli_config(local_dir / "terraformrc", mirror)
        env["TF_CLI_CONFIG_FILE"] = str(config)
    elif env.get("TF_CLI_CONFIG_FILE") and not Path(env["TF_CLI_CONFIG_FILE"]).expanduser().is_file():
        del env["TF_CLI_CONFIG_FILE"]
    env.setdefault("TF_IN_AUTOMATION", "1")
    env["TF_INPUT"] = "0"
    env["CHECKPOINT_DISABLE"] = "1"
    return env


# --------------------------------------------------------------------------- override + workdir

_PROVIDER_ALIAS_RE = re.compile(r'provider\s+"aws"\s*\{[^}]*?alias\s*=\s*"([^"]+)"', re.S)
_BACKEND_RE = re.compile(r'^\s*backend\s+"[^"]+"', re.M)


def provider_aliases(tf_dir: Path) -> list[str]:
    """Aliases of the root's ``provider "aws"`` blocks: each needs its own override block."""
    aliases: set[str] = set()
    for tf in sorted(tf_dir.glob("*.tf")):
        if tf.name.endswith("_override.tf"):
            continue
        aliases.update(_PROVIDER_ALIAS_RE.findall(tf.read_text()))
    return sorted(aliases)


def declares_backend(tf_dir: Path) -> bool:
    return any(
        _BACKEND_RE.search(tf.read_text())
        for tf in tf_dir.glob("*.tf")
        if not tf.name.endswith("_override.tf")
    )


def render_override(endpoint_url: str, *, aliases: Iterable[str] = (), local_backend: bool = False) -> str:
    """``emulator_override.tf``: the provider pointed at a local emulator with test credentials.

    Override-file merging keeps the root's ``region`` and ``default_tags``; only the arguments set
    here replace the original ones. ``max_retries`` (:data:`PROVIDER_MAX_ATTEMPTS`) makes an
    unimplemented emulator call fail in seconds instead of retrying for minutes.
    """
    endpoints = "\n".join(
        f"    {svc:<{max(map(len, EMULATOR_ENDPOINT_SERVICES))}} = {json.dumps(endpoint_url)}"
        for svc in EMULATOR_ENDPOINT_SERVICES
    )

    def block(alias: str | None) -> str:
        alias_line = f"  {'alias':<27} = {json.dumps(alias)}\n" if alias else ""
        return (
            'provider "aws" {\n'
            f"{alias_line}"
            '  access_key                  = "test"\n'
            '  secret_key                  = "test"\n'
            "  skip_credentials_validation = true\n"
            "  skip_metadata_api_check     = true\n"
            "  skip_region_validation      = true\n"
            "  skip_requesting_account_id  = false\n"
            "  s3_use_path_style           = true\n"
            f"  max_retries                 = {PROVIDER_MAX_ATTEMPTS}\n"
            "\n"
            "  endpoints {\n"
            f"{endpoints}\n"
            "  }\n"
            "}\n"
        )

    header = (
        "# Generated by devkit.terraform for a local emulator run. Never commit: production configuration\n"
        "# must not contain emulator endpoints or credentials (*_override.tf is git-ignored).\n\n"
    )
    parts = [header, block(None)]
    parts += ["\n" + block(alias) for alias in aliases]
    if local_backend:
        parts.append('\nterraform {\n  backend "local" {}\n}\n')
    return "".join(parts)


def prepare_workdir(
    dest: Path,
    endpoint_url: str | None,
    *,
    source: Path = REPO_ROOT,
    package_path: Path | None = None,
) -> Path:
    """Build a scratch working copy of the root module in ``dest`` and return it.

    Copies the root's ``*.tf``/templates, ``modules/``, the schema files ``file()`` reads and the
    Lambda zip (when it exists) at the path the root expects; keeps ``.terraform`` and any state in
    ``dest`` so re-runs reuse them. With ``endpoint_url`` the emulator override is written; without
    it (``validate``) the copy is a plain root module.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob("*.tf"):
        stale.unlink()
    for pattern in _ROOT_FILE_GLOBS:
        for src in source.glob(pattern):
            if src.is_file() and not src.name.endswith("_override.tf"):
                shutil.copy2(src, dest / src.name)
    for rel in _COPIED_TREES:
        src_tree = source / rel
        dst_tree = dest / rel
        if dst_tree.exists():
            shutil.rmtree(dst_tree)
        if src_tree.is_dir():
            shutil.copytree(src_tree, dst_tree, ignore=_IGNORED_IN_COPIES)
    package = package_path or (source / DEFAULT_PACKAGE_RELPATH)
    if package.is_file():
        target = dest / DEFAULT_PACKAGE_RELPATH
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy rather than link: a rebuild during a run must not change what terraform hashes.
        shutil.copy2(package, target)
    if endpoint_url is not None:
        (dest / OVERRIDE_FILENAME).write_text(
            render_override(
                endpoint_url,
                aliases=provider_aliases(dest),
                local_backend=declares_backend(dest),
            )
        )
    return dest


# --------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one terraform command (also what tftest's TerraformCommandOutput carries)."""

    retcode: int
    out: str
    err: str
    seconds: float


class Terraform(tftest.TerraformTest):
    """tftest's wrapper with what long emulator runs need: a timeout per command, stderr drained
    while stdout streams (tftest reads stderr only at exit and can deadlock on a chatty provider),
    a log file, and an optional line callback for progress output.
    """

    def __init__(
        self,
        tfdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        log_path: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        binary: str = "terraform",
        transient_retries: int = 2,
        failed_log_dir: Path | None = FAILED_LOG_DIR,
    ) -> None:
        resolved_binary = shutil.which(binary)
        if resolved_binary is None:
            raise TerraformError(f"{binary!r} not found on PATH: install Terraform >= 1.11")
        super().__init__(str(tfdir), binary=resolved_binary, cache_dir=str(Path(tfdir) / ".tftest-cache"))
        # tftest merges os.environ with ``env``; we want exactly our environment.
        self.env = dict(terraform_env() if env is None else env)
        self.timeout = timeout
        self.log_path = log_path
        self.on_line = on_line
        self.transient_retries = transient_retries
        self.failed_log_dir = failed_log_dir
        self.last_result: CommandResult | None = None
        # One entry per re-run after a transient error: (command, failed AWS calls, first error line).
        self.retries: list[tuple[str, list[str], str]] = []

    def run(self, cmd: str, *cmd_args: str, ok_codes: Iterable[int] = (0,)) -> CommandResult:
        """Run ``terraform <cmd> <args>`` in ``tfdir``; raise TerraformError unless the code is ok."""
        cmdline = [self.binary, cmd, *cmd_args]
        started = time.monotonic()
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err_file:
            proc = subprocess.Popen(  # noqa: S603 - fixed binary, arguments built by us
                cmdline,
                cwd=self.tfdir,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=err_file,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            )
            timed_out = threading.Event()

            def _kill() -> None:
                timed_out.set()
                # Interrupt first so terraform releases the state lock, then kill.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(self.timeout, _kill)
            timer.daemon = True
            timer.start()
            out_lines: list[str] = []
            try:
                for line in proc.stdout or ():
                    out_lines.append(line)
                    if self.on_line is not None:
                        self.on_line(line.rstrip("\n"))
                retcode = proc.wait()
            finally:
                timer.cancel()
            err_file.seek(0)
            err = err_file.read()
        result = CommandResult(retcode, "".join(out_lines), err, time.monotonic() - started)
        self.last_result = result
        self._log(cmdline, result)
        if timed_out.is_set():
            kept = self._keep_failed(cmdline, result)
            raise TerraformError(
                f"terraform {cmd} timed out after {self.timeout:.0f} s in {self.tfdir}"
                + (f"\n(full log: {kept})" if kept else ""),
                log_path=kept,
            )
        if retcode not in set(ok_codes):
            blocks = error_blocks(err) or error_blocks(result.out)
            kept = self._keep_failed(cmdline, result)
            if blocks:
                shown = "\n\n".join(block[:3000] for block in blocks[:10])
                if len(blocks) > 10:
                    shown += f"\n\n... and {len(blocks) - 10} more errors"
            else:
                shown = (err.strip() or result.out.strip())[-4000:]
            raise TerraformError(
                f"terraform {cmd} failed (exit {retcode}) in {self.tfdir}:\n{shown}"
                + (f"\n(full log: {kept})" if kept else ""),
                blocks=blocks,
                log_path=kept,
            )
        return result

    def _keep_failed(self, cmdline: list[str], result: CommandResult) -> Path | None:
        """Write a failed command's full output to its own file under ``failed_log_dir``."""
        if self.failed_log_dir is None:
            return None
        self.failed_log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = (
            self.failed_log_dir
            / f"terraform-{cmdline[1]}-{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6}.log"
        )
        path.write_text(
            f"$ {' '.join(cmdline[1:])}\n# in {self.tfdir}\n"
            f"# exit {result.retcode} after {result.seconds:.1f} s\n"
            f"{result.out}\n--- stderr ---\n{result.err}",
            encoding="utf-8",
        )
        return path

    def execute_command(self, cmd: str, *cmd_args: str) -> Any:
        """tftest entry point: same semantics as tftest (exit 1 raises), with our timeout and logging."""
        result = self.run(cmd, *cmd_args, ok_codes=(0, 2))
        return tftest.TerraformCommandOutput(result.retcode, result.out, result.err)

    def _log(self, cmdline: list[str], result: CommandResult) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n$ {' '.join(cmdline[1:])}  # exit {result.retcode} in {result.seconds:.1f} s\n")
            log.write(result.out)
            if result.err:
                log.write("--- stderr ---\n" + result.err)

    # Convenience wrappers with explicit, typed results -------------------------------------

    def init_dir(self, *, upgrade: bool = False) -> CommandResult:
        args = ["-input=false", "-no-color"]
        if upgrade:
            args.append("-upgrade")
        return self.run("init", *args)

    @staticmethod
    def var_args(tf_vars: Mapping[str, Any] | None) -> list[str]:
        args: list[str] = []
        for key, value in (tf_vars or {}).items():
            rendered = json.dumps(value) if isinstance(value, dict | list | bool) else str(value)
            args += ["-var", f"{key}={rendered}"]
        return args

    def plan_json(self, tf_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``plan -out`` + ``show -json``: the plan as a dict."""
        planfile = Path(self.tfdir) / "tfplan.binary"
        self.run_retrying(
            "plan", "-input=false", "-no-color", f"-out={planfile.name}", *self.var_args(tf_vars)
        )
        try:
            shown = self.run("show", "-json", "-no-color", planfile.name)
        finally:
            planfile.unlink(missing_ok=True)
        plan: dict[str, Any] = json.loads(shown.out)
        return plan

    def plan_exitcode(self, tf_vars: Mapping[str, Any] | None = None) -> CommandResult:
        """``plan -detailed-exitcode``: retcode 0 = no changes, 2 = changes pending."""
        return self.run_retrying(
            "plan",
            "-input=false",
            "-no-color",
            "-detailed-exitcode",
            *self.var_args(tf_vars),
            ok_codes=(0, 2),
        )

    def apply_vars(self, tf_vars: Mapping[str, Any] | None = None) -> CommandResult:
        return self.run_retrying(
            "apply", "-input=false", "-no-color", "-auto-approve", *self.var_args(tf_vars)
        )

    def destroy_vars(self, tf_vars: Mapping[str, Any] | None = None) -> CommandResult:
        return self.run_retrying(
            "destroy", "-input=false", "-no-color", "-auto-approve", *self.var_args(tf_vars)
        )

    def run_retrying(self, cmd: str, *cmd_args: str, ok_codes: Iterable[int] = (0,)) -> CommandResult:
        """``run`` again (bounded) when every error is a dropped local connection, not a real error.

        What is left after the provider's own retry (:data:`PROVIDER_MAX_ATTEMPTS`): a connection
        error on both attempts of one call. apply/destroy are convergent, so re-running resumes where
        it stopped. Every re-run is recorded in ``retries`` and logged with the calls that failed.
        """
        for attempt in range(self.transient_retries + 1):
            try:
                return self.run(cmd, *cmd_args, ok_codes=ok_codes)
            except TerraformError as exc:
                transient = all(is_transient(b) for b in exc.blocks) if exc.blocks else is_transient(str(exc))
                if attempt == self.transient_retries or not transient:
                    raise
                calls = failed_calls(exc.blocks)
                first = (exc.blocks or [str(exc)])[0].splitlines()[0]
                self.retries.append((cmd, calls, first))
                message = (
                    f"transient emulator connection error in terraform {cmd} "
                    f"({', '.join(calls) or 'call not named'}): {first}; re-running terraform {cmd} "
                    f"(attempt {attempt + 2} of {self.transient_retries + 1}; log: {exc.log_path})"
                )
                self._note(message)
                if self.on_line is not None:
                    self.on_line(message)
        raise AssertionError("unreachable")  # pragma: no cover

    def _note(self, message: str) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(f"\n# {time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")

    def outputs(self) -> dict[str, Any]:
        """``terraform output -json`` reduced to name → value (sensitive values included)."""
        raw = json.loads(self.run("output", "-json", "-no-color").out or "{}")
        return {name: entry.get("value") for name, entry in raw.items()}

    def state_resource_count(self) -> int:
        """Managed resources in the state (data sources excluded)."""
        listed = self.run("state", "list", ok_codes=(0, 1)).out
        return sum(1 for line in listed.splitlines() if line.strip() and ".data." not in f".{line}")


# --------------------------------------------------------------------------- plan helpers


def planned_resources(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat ``[{address, type, name, values}]`` over the root and every child module of planned_values."""
    found: list[dict[str, Any]] = []

    def walk(module: Mapping[str, Any]) -> None:
        for res in module.get("resources", []):
            if res.get("mode", "managed") != "managed":
                continue
            found.append(
                {
                    "address": res["address"],
                    "type": res["type"],
                    "name": res["name"],
                    "values": res.get("values", {}),
                }
            )
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan.get("planned_values", {}).get("root_module", {}))
    return found


# --------------------------------------------------------------------------- CLI


def validate(dest: Path | None = None) -> int:
    """``terraform init -backend=false`` + ``validate`` on a scratch copy of the root module."""
    workdir = prepare_workdir(dest or LOCAL_DIR / "validate", None)
    tf = Terraform(workdir, timeout=600)
    tf.run("init", "-backend=false", "-input=false", "-no-color")
    result = tf.run("validate", "-no-color", ok_codes=(0, 1))
    sys.stdout.write(result.out)
    sys.stderr.write(result.err)
    return result.retcode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["validate"]:
        try:
            return validate()
        except TerraformError as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
    if args[:1] == ["cli-config"]:
        env = terraform_env()
        sys.stdout.write(env.get("TF_CLI_CONFIG_FILE", "") + "\n")
        return 0
    sys.stderr.write("usage: python -m devkit.terraform validate|cli-config\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
