"""Runs the deployed Lambda code inside the embedded moto emulator (no Docker needed).

moto 5.2.5 invokes functions in three ways, all of which end in one of two methods:

* ``LambdaSimpleBackend.invoke`` — the Invoke API when ``lambda.use_docker = false`` (also what Step
  Functions' ``arn:aws:states:::lambda:invoke`` reaches: moto's ASL interpreter calls the server's own
  Invoke API over HTTP on ``localhost:$MOTO_PORT``). Stock behaviour: echo the payload or a canned
  result; the code never runs.
* ``LambdaFunction.invoke`` — SNS→Lambda subscriptions, legacy InvokeAsync and the stock SQS
  event-source delivery. Stock behaviour: start a Docker container.

:func:`install` replaces both with :class:`LambdaRuntime`, which takes the code zip moto stored for
the function (checked against the CodeSha256 moto reports), extracts it once per hash, and runs the
configured handler in a subprocess of the function runtime's interpreter (:mod:`devkit.emulator.runtimes`:
CPython 3.12 with only the runtime-provided libraries for ``python3.12``) with the function's environment
plus the variables the managed runtime sets, the event on stdin, and the function's timeout. Errors
come back the way Lambda reports them (``X-Amz-Function-Error: Unhandled`` and an
``errorMessage``/``errorType``/``stackTrace`` payload), so Step Functions Retry/Catch work unchanged.

SQS event-source mappings. moto's own delivery (synchronous, one message per invocation, no partial
batch failures, no redelivery) is replaced: :func:`install` detaches new SQS mappings from moto's
queues and starts :class:`devkit.emulator.sqs_poller.SqsEventSourcePoller`, which emulates Lambda's
poller (see :mod:`devkit.emulator.sqs_poller`).

Credentials. Every invocation runs with temporary credentials of the function's execution role, obtained
with ``sts:AssumeRole`` against the emulator (:class:`RoleCredentials`) after checking that the role's
trust policy lets ``lambda.amazonaws.com`` assume it. With :mod:`devkit.emulator.iam_enforcement` switched
on, a call the role does not grant fails with AccessDenied, as it would on AWS.

:func:`install` also applies the run-time shims (:func:`devkit.emulator.shims.install_runtime`: Step
Functions JSONPath, S3 bucket policy conditions): moto behaviours the deployed code meets at run time.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import moto
from botocore.config import Config
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.sts.models import sts_backends

from devkit.emulator import shims
from devkit.emulator.endpoints import emulator_clients
from devkit.emulator.runtimes import RuntimeNotAvailableError, runtime_python
from devkit.emulator.shims import PINNED_MOTO_VERSION, ShimError
from devkit.emulator.sqs_poller import (
    SqsEventSourcePoller,
    detached_sqs_mapping_hook,
    retry_visibility_from_env,
)

BOOTSTRAP = Path(__file__).with_name("_lambda_bootstrap.py")
RUNTIME_ID = "python3.12"
# Lambda gives a function's initialisation (imports, module-level clients) 10 s outside its timeout.
INIT_TIMEOUT_SECONDS = 10
# Lambda truncates the tail log returned with LogType=Tail to the last 4 KB.
TAIL_LOG_BYTES = 4096

log = logging.getLogger(__name__)


class EmulatorLike(Protocol):
    """What :func:`install` needs from ``devkit.emulator.server.Emulator``."""

    @property
    def endpoint_url(self) -> str: ...


@dataclass(frozen=True)
class FunctionSpec:
    """The configuration moto reports for a function plus its stored code."""

    function_name: str
    function_arn: str
    version: str
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    code_sha256: str
    code: bytes
    log_group_name: str
    role: str = ""

    @classmethod
    def from_moto(cls, fn: Any) -> FunctionSpec:
        config = fn.get_configuration()
        return cls(
            function_name=config["FunctionName"],
            function_arn=config["FunctionArn"],
            version=str(config.get("Version") or "$LATEST"),
            handler=config.get("Handler") or "",
            runtime=config.get("Runtime") or RUNTIME_ID,
            timeout=int(config.get("Timeout") or 3),
            memory_size=int(config.get("MemorySize") or 128),
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            code_sha256=config.get("CodeSha256") or "",
            code=bytes(getattr(fn, "code_bytes", b"") or b""),
            log_group_name=f"/aws/lambda/{config['FunctionName']}",
            role=str(config.get("Role") or ""),
        )


@dataclass
class Invocation:
    """One run of a handler: what went in, what came out, and everything it printed."""

    request_id: str
    function_name: str
    payload: bytes
    function_error: str | None
    output: str
    duration_ms: float
    started_at: float = field(default_factory=time.time)

    @property
    def result(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is not None:
        return str(value)
    lowered = name.lower()
    for key, val in dict(headers).items():
        if str(key).lower() == lowered:
            return str(val)
    return None


class AssumeRoleError(RuntimeError):
    """The function's execution role cannot be assumed by Lambda."""


def lambda_may_assume(trust_policy: Mapping[str, Any]) -> bool:
    """True when the trust policy allows ``sts:AssumeRole`` to the Lambda service principal.

    Conditions in the trust policy are not evaluated (Lambda sends none that this platform uses).
    """
    statements = trust_policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        services = (
            (statement.get("Principal") or {}).get("Service", [])
            if isinstance(statement.get("Principal"), dict)
            else []
        )
        services = services if isinstance(services, list) else [services]
        if (
            statement.get("Effect") == "Allow"
            and any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions)
            and "lambda.amazonaws.com" in services
        ):
            return True
    return False


class RoleCredentials:
    """Temporary credentials of execution roles, from ``sts:AssumeRole`` against the emulator.

    Cached per (role, session) for :data:`ttl` seconds and while moto still knows the session (a moto reset
    forgets assumed roles). The administrator's key makes the AssumeRole call, as the Lambda service would
    with its own identity.
    """

    def __init__(self, endpoint_url: str, *, region: str = "us-east-1", ttl: float = 900.0) -> None:
        config = Config(retries={"max_attempts": 2})
        self._sts, self._iam = emulator_clients(endpoint_url, "sts", "iam", region=region, config=config)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    @staticmethod
    def _known(access_key_id: str, role_arn: str) -> bool:
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        try:
            assumed = sts_backends[account]["aws"].assumed_roles
        except KeyError:
            return False
        return any(r.access_key_id == access_key_id for r in assumed)

    def get(self, role_arn: str, session_name: str) -> dict[str, str]:
        """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` for the role."""
        key = (role_arn, session_name)
        with self._lock:
            cached = self._cache.get(key)
            if (
                cached
                and time.monotonic() < cached[0]
                and self._known(cached[1]["AWS_ACCESS_KEY_ID"], role_arn)
            ):
                return cached[1]
            if ":role/" not in role_arn:
                raise AssumeRoleError(f"{role_arn!r} is not an IAM role ARN")
            name = role_arn.rsplit("/", 1)[-1]
            try:
                trust = self._iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
            except self._iam.exceptions.NoSuchEntityException as exc:
                raise AssumeRoleError(f"the execution role {role_arn} does not exist") from exc
            if isinstance(trust, str):
                trust = json.loads(unquote(trust))
            if not lambda_may_assume(trust):
                raise AssumeRoleError(
                    f"the role {role_arn} cannot be assumed by Lambda: its trust policy does not allow "
                    "lambda.amazonaws.com to call sts:AssumeRole"
                )
            issued = self._sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
            env = {
                "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
                "AWS_SESSION_TOKEN": issued["SessionToken"],
            }
            self._cache[key] = (time.monotonic() + self.ttl, env)
            return env


class LambdaRuntime:
    """Executes deployed functions' code for the emulator; keeps every invocation's output."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str = "us-east-1",
        cache_dir: Path | None = None,
        python: str | None = None,
        max_history: int = 5000,
        credentials: RoleCredentials | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.credentials = credentials or RoleCredentials(self.endpoint_url, region=region)
        self.region = region
        # None: each function runs on the interpreter of its own Runtime (devkit.emulator.runtimes).
        self.python = python
        self._own_cache = cache_dir is None
        self.cache_dir = Path(cache_dir or tempfile.mkdtemp(prefix="lambda-runtime-"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._extract_lock = threading.Lock()
        self._history_lock = threading.Lock()
        self._max_history = max_history
        self.invocations: list[Invocation] = []
        self._async_threads: list[threading.Thread] = []

    # -- code -----------------------------------------------------------------------------------------
    def task_root(self, spec: FunctionSpec) -> Path:
        """Extract the function's zip once per CodeSha256 and return the directory."""
        if not spec.code:
            raise RuntimeError(f"{spec.function_name}: moto holds no zip for this function (image package?)")
        actual = base64.b64encode(hashlib.sha256(spec.code).digest()).decode()
        if actual != spec.code_sha256:
            raise RuntimeError(
                f"{spec.function_name}: stored code hashes to {actual}, "
                f"the function reports {spec.code_sha256}"
            )
        target = self.cache_dir / hashlib.sha256(spec.code).hexdigest()
        with self._extract_lock:
            if target.is_dir():
                return target
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.cache_dir))
            with zipfile.ZipFile(io.BytesIO(spec.code)) as archive:
                root = staging.resolve()
                for member in archive.infolist():
                    destination = (staging / member.filename).resolve()
                    if root not in destination.parents and destination != root:
                        raise RuntimeError(
                            f"{spec.function_name}: zip entry escapes the package: {member.filename}"
                        )
                archive.extractall(staging)
            staging.rename(target)
        return target

    # -- execution ------------------------------------------------------------------------------------
    def interpreter(self, spec: FunctionSpec) -> str:
        """The Python that runs ``spec``: the one given, else its runtime's (RuntimeNotAvailableError)."""
        return self.python or runtime_python(spec.runtime)

    def environment(
        self,
        spec: FunctionSpec,
        task_root: Path,
        request_id: str,
        log_stream: str,
        credentials: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(task_root.parent),
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(Path(self.interpreter(spec)).resolve().parent),
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **(credentials or self.credentials.get(spec.role, spec.function_name)),
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # Active tracing: the runtime hands every invocation a trace header; Sampled=0 means the X-Ray
            # SDK records nothing and sends nothing to the (absent) daemon.
            "_X_AMZN_TRACE_ID": (
                f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
            ),
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
        env.update({str(k): str(v) for k, v in spec.environment.items()})
        return env

    def run(self, spec: FunctionSpec, payload: bytes) -> Invocation:
        """Run the handler once; never raises for function failures (they become the error payload)."""
        request_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        log_stream = f"{now:%Y/%m/%d}/[{spec.version}]{uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            credentials = self.credentials.get(spec.role, spec.function_name)
        except AssumeRoleError as exc:
            return self._unhandled(spec, request_id, "AccessDeniedException", str(exc), "", started)
        try:
            python = self.interpreter(spec)
            task_root = self.task_root(spec)
        except (RuntimeError, zipfile.BadZipFile) as exc:
            # RuntimeNotAvailableError: no interpreter of the function's runtime on this machine.
            kind = (
                "Runtime.InvalidRuntime"
                if isinstance(exc, RuntimeNotAvailableError)
                else "Runtime.InvalidEntrypoint"
            )
            log.error("%s: %s", spec.function_name, exc)
            return self._unhandled(spec, request_id, kind, str(exc), "", started)

        with tempfile.TemporaryDirectory(prefix="invoke-", dir=self.cache_dir) as scratch:
            context_path = Path(scratch) / "context.json"
            result_path = Path(scratch) / "result.json"
            context_path.write_text(
                json.dumps(
                    {
                        "function_name": spec.function_name,
                        "function_version": spec.version,
                        "invoked_function_arn": spec.function_arn,
                        "memory_limit_in_mb": spec.memory_size,
                        "aws_request_id": request_id,
                        "log_group_name": spec.log_group_name,
                        "log_stream_name": log_stream,
                        "timeout_seconds": spec.timeout,
                    }
                ),
                encoding="utf-8",
            )
            # -B: nothing is written into the package (Lambda's task root is read-only), so what runs
            # is the package's own bytecode (compiled by devkit.build for the runtime's Python, used
            # unchecked as in Lambda), or its sources when the zip has none.
            command = [
                python,
                "-I",
                "-B",
                str(BOOTSTRAP),
                str(context_path),
                str(result_path),
            ]
            try:
                completed = subprocess.run(  # noqa: S603 - fixed interpreter and bootstrap, no shell
                    command,
                    input=payload or b"{}",
                    capture_output=True,
                    env=self.environment(spec, task_root, request_id, log_stream, credentials),
                    cwd=task_root,
                    # The bootstrap enforces the function timeout on the handler itself; this is the
                    # backstop for a stuck initialisation (Lambda's own init budget) or interpreter.
                    timeout=spec.timeout + INIT_TIMEOUT_SECONDS + 5,
                    check=False,
                )
                output = (completed.stdout + completed.stderr).decode("utf-8", "replace")
            except subprocess.TimeoutExpired as exc:
                output = ((exc.stdout or b"") + (exc.stderr or b"")).decode("utf-8", "replace")
                if result_path.is_file():
                    # The handler answered in time; only the interpreter's exit was slow.
                    return self._answered(spec, request_id, result_path, output, started, log_stream)
                stamp = f"{now:%Y-%m-%dT%H:%M:%S.%fZ}"
                message = f"{stamp} {request_id} Task timed out after {spec.timeout:.2f} seconds"
                output += message + "\n"
                return self._unhandled(
                    spec, request_id, "Sandbox.Timedout", message, output, started, log_stream
                )

            if result_path.is_file():
                return self._answered(spec, request_id, result_path, output, started, log_stream)
            # The interpreter died before the bootstrap could answer (killed, out of memory, os._exit).
            status = completed.returncode
            message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {status}"
            return self._unhandled(
                spec, request_id, "Runtime.ExitError", message, output, started, log_stream
            )

    def _answered(
        self,
        spec: FunctionSpec,
        request_id: str,
        result_path: Path,
        output: str,
        started: float,
        log_stream: str,
    ) -> Invocation:
        """Record what the bootstrap wrote: the handler's result, or its error payload."""
        result = json.loads(result_path.read_text(encoding="utf-8"))
        error = None if result["ok"] else "Unhandled"
        return self._record(spec, request_id, result["payload"], error, output, started, log_stream)

    def _unhandled(
        self,
        spec: FunctionSpec,
        request_id: str,
        error_type: str,
        message: str,
        output: str,
        started: float,
        log_stream: str | None = None,
    ) -> Invocation:
        """Record a failure of the runtime itself, with the error payload Lambda gives it."""
        body = {"errorMessage": message, "errorType": error_type, "stackTrace": []}
        return self._record(spec, request_id, json.dumps(body), "Unhandled", output, started, log_stream)

    def _record(
        self,
        spec: FunctionSpec,
        request_id: str,
        payload: str,
        error: str | None,
        output: str,
        started: float,
        log_stream: str | None = None,
    ) -> Invocation:
        invocation = Invocation(
            request_id=request_id,
            function_name=spec.function_name,
            payload=payload.encode("utf-8"),
            function_error=error,
            output=output,
            duration_ms=(time.monotonic() - started) * 1000,
        )
        with self._history_lock:
            self.invocations.append(invocation)
            del self.invocations[: -self._max_history]
        if error:
            log.info("%s %s failed: %s", spec.function_name, request_id, payload[:500])
        return invocation

    def log_lines(self, spec: FunctionSpec, invocation: Invocation) -> list[str]:
        return [
            f"START RequestId: {invocation.request_id} Version: {spec.version}",
            *invocation.output.splitlines(),
            f"END RequestId: {invocation.request_id}",
            f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration_ms:.2f} ms\t"
            f"Billed Duration: {int(invocation.duration_ms) + 1} ms\tMemory Size: {spec.memory_size} MB",
        ]

    def captured_output(self, function_name: str | None = None) -> str:
        """Everything the handlers printed (what CloudWatch Logs would have received)."""
        with self._history_lock:
            runs = list(self.invocations)
        return "\n".join(i.output for i in runs if function_name is None or i.function_name == function_name)

    def history(self, function_name: str | None = None) -> list[Invocation]:
        with self._history_lock:
            return [i for i in self.invocations if function_name is None or i.function_name == function_name]

    def run_async(self, target: Callable[[], Any]) -> None:
        thread = threading.Thread(target=target, daemon=True, name="lambda-async-invoke")
        self._async_threads = [t for t in self._async_threads if t.is_alive()]
        self._async_threads.append(thread)
        thread.start()

    def close(self) -> None:
        for thread in self._async_threads:
            thread.join(timeout=5)
        if self._own_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)


# -- installation into moto ------------------------------------------------------------------------------


@dataclass
class _Installed:
    runtime: LambdaRuntime
    poller: SqsEventSourcePoller
    originals: dict[tuple[type, str], Any]


_installed: _Installed | None = None
_install_lock = threading.Lock()


def _hook_points() -> tuple[Any, Any, Any]:
    if moto.__version__ != PINNED_MOTO_VERSION:
        raise ShimError(
            f"devkit.emulator.lambda_runtime is written against moto {PINNED_MOTO_VERSION}, found "
            f"{moto.__version__}: the Lambda invocation hook point may have moved; re-read moto's "
            "awslambda models and update the pin"
        )
    for owner, name in (
        (LambdaFunction, "invoke"),
        (LambdaSimpleBackend, "invoke"),
        (LambdaBackend, "create_event_source_mapping"),
    ):
        if name not in vars(owner):
            raise ShimError(f"hook point moved: {owner.__module__}.{owner.__qualname__}.{name} is gone")
    return LambdaFunction, LambdaSimpleBackend, LambdaBackend


def _function_invoke_hook(runtime: LambdaRuntime) -> Callable[..., bytes]:
    """Replacement for ``LambdaFunction.invoke``: run the deployed code, answer like Lambda."""

    def function_invoke(fn: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
        spec = FunctionSpec.from_moto(fn)
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
        response_headers["x-amz-executed-version"] = spec.version
        invocation_type = _header(request_headers, "X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""

        def execute() -> Invocation:
            invocation = runtime.run(spec, payload)
            _save_logs(fn, runtime.log_lines(spec, invocation))
            return invocation

        if invocation_type == "Event":
            runtime.run_async(execute)
            return b""
        invocation = execute()
        if invocation.function_error:
            response_headers["x-amz-function-error"] = invocation.function_error
        if (_header(request_headers, "X-Amz-Log-Type") or "") == "Tail":
            tail = "\n".join(runtime.log_lines(spec, invocation)).encode()[-TAIL_LOG_BYTES:]
            response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
        return invocation.payload

    return function_invoke


def _backend_invoke(
    backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    """Replacement for ``LambdaSimpleBackend.invoke`` (canned answers): go through the function."""
    fn = backend.get_function(function_name, qualifier)
    payload: bytes = fn.invoke(body, headers, response_headers)
    response_headers["Content-Length"] = str(len(payload))
    return payload


def install(
    emulator: EmulatorLike,
    *,
    region: str | None = None,
    cache_dir: Path | None = None,
    failure_visibility_timeout: int | None = -1,
    poll_interval: float = 0.5,
) -> LambdaRuntime:
    """Make the in-process moto server run deployed Lambda code; idempotent. Returns the runtime.

    ``failure_visibility_timeout`` (negative: not given) defaults to
    ``$OPS_EMULATOR_SQS_RETRY_VISIBILITY`` (seconds; ``queue`` keeps each queue's own visibility
    timeout), else :data:`devkit.emulator.sqs_poller.DEFAULT_RETRY_VISIBILITY_SECONDS`.
    """
    if failure_visibility_timeout is not None and failure_visibility_timeout < 0:
        failure_visibility_timeout = retry_visibility_from_env()
    global _installed  # noqa: PLW0603 - moto's backends are process-global, so is the hook
    lambda_function, simple_backend, lambda_backend = _hook_points()
    endpoint = emulator.endpoint_url.rstrip("/")
    region = region or getattr(emulator, "region", None) or "us-east-1"
    with _install_lock:
        if _installed is not None:
            if _installed.runtime.endpoint_url == endpoint:
                _installed.poller.failure_visibility_timeout = failure_visibility_timeout
                return _installed.runtime
            _uninstall_locked()

        # Step Functions' lambda:invoke reaches this server through http://localhost:$MOTO_PORT.
        port = endpoint.rsplit(":", 1)[-1]
        if port.isdigit():
            os.environ["MOTO_PORT"] = port

        credentials = RoleCredentials(endpoint, region=region)
        runtime = LambdaRuntime(endpoint, region=region, cache_dir=cache_dir, credentials=credentials)
        shims.install_runtime()
        originals: dict[tuple[type, str], Any] = {
            (lambda_function, "invoke"): vars(lambda_function)["invoke"],
            (simple_backend, "invoke"): vars(simple_backend)["invoke"],
            (lambda_backend, "create_event_source_mapping"): vars(lambda_backend)[
                "create_event_source_mapping"
            ],
        }
        lambda_function.invoke = _function_invoke_hook(runtime)
        simple_backend.invoke = _backend_invoke
        lambda_backend.create_event_source_mapping = detached_sqs_mapping_hook(
            originals[(lambda_backend, "create_event_source_mapping")]
        )
        poller = SqsEventSourcePoller(
            endpoint,
            region=region,
            poll_interval=poll_interval,
            failure_visibility_timeout=failure_visibility_timeout,
            credentials=credentials,
        )
        poller.start()
        _installed = _Installed(runtime=runtime, poller=poller, originals=originals)
        return runtime


def _save_logs(fn: Any, lines: list[str]) -> None:
    """Write the invocation's output to the function's CloudWatch log group, as Lambda does."""
    try:
        backend = fn.logs_backend
        group = fn.logs_group_name
        backend.ensure_log_group(group)
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"
        backend.create_log_stream(group, stream)
        now_ms = int(time.time() * 1000)
        backend.put_log_events(
            group, stream, [{"timestamp": now_ms, "message": line} for line in lines if line]
        )
    except Exception as exc:  # logging must never turn a successful invocation into a failure
        log.warning("could not store logs for %s: %r", getattr(fn, "function_name", "?"), exc)


def installed_runtime() -> LambdaRuntime | None:
    return _installed.runtime if _installed else None


def installed_poller() -> SqsEventSourcePoller | None:
    return _installed.poller if _installed else None


def _uninstall_locked() -> None:
    global _installed  # noqa: PLW0603
    if _installed is None:
        return
    _installed.poller.stop()
    for (owner, name), original in _installed.originals.items():
        setattr(owner, name, original)
    _installed.runtime.close()
    _installed = None


def uninstall(emulator: EmulatorLike | None = None) -> None:
    """Restore moto's own invocation behaviour and stop the SQS poller (``emulator`` is accepted for
    symmetry with :func:`install`; the hook is process-wide)."""
    with _install_lock:
        _uninstall_locked()
