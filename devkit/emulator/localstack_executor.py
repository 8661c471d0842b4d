"""A Lambda runtime executor for LocalStack without Docker: each invocation runs in a subprocess.

LocalStack 4.x ships only a Docker executor. This module is loaded *inside LocalStack's own
process* (its Python 3.13 virtualenv) through the plux entry point
``localstack.lambda.runtime_executor: subprocess``, which ``python -m devkit.emulator.localstack
install`` registers, and is chosen with ``LAMBDA_RUNTIME_EXECUTOR=subprocess``.

The rule is the one the moto harness follows: the code that runs is the zip Terraform deployed.
``prepare_version`` fetches the archive LocalStack stored for the function version, checks it
against the version's ``CodeSha256`` and unzips it; every invocation then starts
``devkit/emulator/_lambda_bootstrap.py`` in a fresh interpreter (``LOCALSTACK_LAMBDA_PYTHON``: the
functions' runtime, CPython 3.12 with the managed runtime's boto3, see devkit.emulator.runtimes)
with the environment LocalStack computed for the function (credentials, ``AWS_ENDPOINT_URL`` pointing back at
LocalStack, the function's own variables). The handler's stdout/stderr become the invocation's
logs, which LocalStack writes to CloudWatch Logs as it does for containers.

Only the standard library and LocalStack may be imported here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from localstack import config
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

LOG = logging.getLogger(__name__)

PYTHON_ENV = "LOCALSTACK_LAMBDA_PYTHON"
BOOTSTRAP = Path(__file__).with_name("_lambda_bootstrap.py")
# Module imports (the init phase) get their own budget on top of the function timeout, as in Lambda.
INIT_BUDGET_S = 30.0
# Keep this many characters of an invocation's output in the executor's log view.
KEPT_LOG_CHARS = 20_000


class CodeMismatchError(RuntimeError):
    """The stored archive does not hash to the function version's CodeSha256."""


def _code_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


class SubprocessRuntimeExecutor(RuntimeExecutor):
    """Runs the deployed handler in a subprocess per invocation, on the host."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self._env: dict[str, str] = {}
        self._logs = ""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        code = self.function_version.config.code
        if code is None:
            raise RuntimeError("the subprocess executor runs zip functions only (no image functions)")
        task_root = str(code.get_unzipped_code_location())
        self._env = {key: str(value) for key, value in env_vars.items()}
        self._env["LAMBDA_TASK_ROOT"] = task_root
        self._env["PYTHONDONTWRITEBYTECODE"] = "1"
        self._env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
        if not Path(task_root).is_dir():
            raise RuntimeError(f"code of {self.function_version.qualified_arn} is not prepared")

    def stop(self) -> None:
        """Nothing runs between invocations."""

    # -- addresses -------------------------------------------------------------------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}/_localstack_lambda/{self.id}"

    # -- invocations -----------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        cfg = self.function_version.config
        timeout = float(cfg.timeout)
        spec: dict[str, Any] = {
            "function_name": self.function_version.id.function_name,
            "function_version": self.function_version.id.qualifier,
            "invoked_function_arn": payload["invoked-function-arn"],
            "memory_limit_in_mb": cfg.memory_size,
            "aws_request_id": request_id,
            "log_group_name": self._env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            "log_stream_name": self._env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            "timeout_seconds": timeout,
        }
        env = dict(self._env)
        env["_X_AMZN_TRACE_ID"] = payload.get("trace-id", "")
        python = os.environ.get(PYTHON_ENV, "python3")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="ls-lambda-") as scratch:
            context_path = Path(scratch) / "context.json"
            result_path = Path(scratch) / "result.json"
            context_path.write_text(json.dumps(spec))
            try:
                completed = subprocess.run(  # noqa: S603 - fixed interpreter and bootstrap, no shell
                    # -B: the task root stays as deployed (read-only in Lambda); its own bytecode runs.
                    [python, "-I", "-B", str(BOOTSTRAP), str(context_path), str(result_path)],
                    input=payload["payload"].encode(),
                    capture_output=True,
                    env=env,
                    cwd=env["LAMBDA_TASK_ROOT"],
                    timeout=timeout + INIT_BUDGET_S,
                    check=False,
                )
                output = (completed.stdout + completed.stderr).decode(errors="replace")
            except subprocess.TimeoutExpired as exc:
                output = ((exc.stdout or b"") + (exc.stderr or b"")).decode(errors="replace")
                message = f"{request_id} Task timed out after {timeout:.2f} seconds"
                body = {"errorMessage": message, "errorType": "Sandbox.Timedout"}
                return self._result(request_id, json.dumps(body), True, output)
            if result_path.is_file():
                result = json.loads(result_path.read_text())
                return self._result(request_id, result["payload"], not result["ok"], output)
        body = {
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with code {completed.returncode}",
            "errorType": "Runtime.ExitError",
        }
        LOG.warning("Lambda subprocess exited after %.1f s without a result", time.monotonic() - started)
        return self._result(request_id, json.dumps(body), True, output)

    def _result(self, request_id: str, payload: str, is_error: bool, output: str) -> InvocationResult:
        self._logs = (self._logs + output)[-KEPT_LOG_CHARS:]
        return InvocationResult(request_id, payload.encode(), is_error, output)

    def get_logs(self) -> str:
        return self._logs

    # -- versions --------------------------------------------------------------------------------
    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        code = function_version.config.code
        if code is None:
            return
        expected = getattr(code, "code_sha256", None)
        download = getattr(code, "_download_archive_to_file", None)
        if expected and download is not None:
            with tempfile.NamedTemporaryFile(suffix=".zip") as archive:
                download(archive)
                actual = _code_sha256(Path(archive.name))
            if actual != expected:
                raise CodeMismatchError(
                    f"{function_version.qualified_arn}: stored code hashes to {actual}, "
                    f"CodeSha256 says {expected}"
                )
        code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """The unzipped code belongs to LocalStack's cache, which it cleans itself."""

    @classmethod
    def validate_environment(cls) -> bool:
        python = os.environ.get(PYTHON_ENV)
        if not python or not Path(python).is_file():
            LOG.warning("%s does not name an interpreter: Lambda invocations will fail", PYTHON_ENV)
            return False
        return True


class SubprocessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "subprocess"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return SubprocessRuntimeExecutor
