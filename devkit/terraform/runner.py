"""The terraform runner: tftest's wrapper with a timeout per command, logs, and bounded re-runs.

Each command's full output goes to a log file; a failed command's output is also kept in a file of
its own, and the TerraformError carries terraform's ``Error:`` blocks. With ``json_ui`` a command
runs with ``-json`` (terraform's machine-readable UI): the messages go to ``on_event`` and the logs,
``on_line`` and the errors get the same human text as without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tftest

from devkit.terraform.errors import TerraformError, error_blocks, failed_calls, is_transient
from devkit.terraform.mirror import terraform_env
from devkit.terraform.paths import FAILED_LOG_DIR, required_terraform_version
from devkit.terraform.ui import error_diagnostics, human_text, parse_message

DEFAULT_TIMEOUT_S = 1800.0


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
    a log file, and optional callbacks for progress output: ``on_line`` gets each line of human
    output, ``on_event`` each machine-readable UI message of a ``json_ui`` command.
    """

    def __init__(
        self,
        tfdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        log_path: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        binary: str = "terraform",
        transient_retries: int = 2,
        failed_log_dir: Path | None = FAILED_LOG_DIR,
    ) -> None:
        resolved_binary = shutil.which(binary)
        if resolved_binary is None:
            raise TerraformError(
                f"{binary!r} not found on PATH: install Terraform >= {required_terraform_version()}"
            )
        super().__init__(str(tfdir), binary=resolved_binary, cache_dir=str(Path(tfdir) / ".tftest-cache"))
        # tftest merges os.environ with ``env``; we want exactly our environment.
        self.env = dict(terraform_env() if env is None else env)
        self.timeout = timeout
        self.log_path = log_path
        self.on_line = on_line
        self.on_event = on_event
        self.transient_retries = transient_retries
        self.failed_log_dir = failed_log_dir
        self.last_result: CommandResult | None = None
        # One entry per re-run after a transient error: (command, failed AWS calls, first error line).
        self.retries: list[tuple[str, list[str], str]] = []

    def run(
        self, cmd: str, *cmd_args: str, ok_codes: Iterable[int] = (0,), json_ui: bool = False
    ) -> CommandResult:
        """Run ``terraform <cmd> <args>`` in ``tfdir``; raise TerraformError unless the code is ok.

        ``json_ui`` adds ``-json`` (for plan, apply, destroy): ``out`` then holds the human text of
        the messages, and the error blocks come from the ``diagnostic`` messages.
        """
        cmdline = [self.binary, cmd, *(["-json"] if json_ui else []), *cmd_args]
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
            try:
                out, messages = self._stream(proc.stdout or (), json_ui=json_ui)
                retcode = proc.wait()
            finally:
                timer.cancel()
            err_file.seek(0)
            err = err_file.read()
        result = CommandResult(retcode, out, err, time.monotonic() - started)
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
            blocks = error_diagnostics(messages) or error_blocks(err) or error_blocks(result.out)
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

    def _stream(self, stdout: Iterable[str], *, json_ui: bool) -> tuple[str, list[dict[str, Any]]]:
        """Read stdout as it comes: the human text (UI messages turned back into it) and the messages."""
        out_lines: list[str] = []
        messages: list[dict[str, Any]] = []
        for raw in stdout:
            message = parse_message(raw) if json_ui else None
            line = raw if message is None else human_text(message) + "\n"
            if message is not None:
                messages.append(message)
            out_lines.append(line)
            if self.on_line is not None:
                for text in line.rstrip("\n").split("\n"):
                    self.on_line(text)
            if message is not None and self.on_event is not None:
                self.on_event(message)
        return "".join(out_lines), messages

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

    def apply_vars(self, tf_vars: Mapping[str, Any] | None = None, *, json_ui: bool = False) -> CommandResult:
        """``apply -auto-approve``; ``json_ui`` streams the machine-readable UI to ``on_event``."""
        return self.run_retrying(
            "apply", "-input=false", "-no-color", "-auto-approve", *self.var_args(tf_vars), json_ui=json_ui
        )

    def destroy_vars(
        self, tf_vars: Mapping[str, Any] | None = None, *, json_ui: bool = False
    ) -> CommandResult:
        """``destroy -auto-approve``; ``json_ui`` streams the machine-readable UI to ``on_event``."""
        return self.run_retrying(
            "destroy", "-input=false", "-no-color", "-auto-approve", *self.var_args(tf_vars), json_ui=json_ui
        )

    def run_retrying(
        self, cmd: str, *cmd_args: str, ok_codes: Iterable[int] = (0,), json_ui: bool = False
    ) -> CommandResult:
        """``run`` again (bounded) when every error is a dropped local connection, not a real error.

        What is left after the provider's own retry (:data:`PROVIDER_MAX_ATTEMPTS`): a connection
        error on both attempts of one call. apply/destroy are convergent, so re-running resumes where
        it stopped. Every re-run is recorded in ``retries`` and logged with the calls that failed.
        """
        for attempt in range(self.transient_retries + 1):
            try:
                return self.run(cmd, *cmd_args, ok_codes=ok_codes, json_ui=json_ui)
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
