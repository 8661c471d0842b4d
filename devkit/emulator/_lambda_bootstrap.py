"""One Lambda invocation in a fresh interpreter, shaped like the python3.12 managed runtime.

Started by :mod:`devkit.emulator.lambda_runtime` as ``python -I -B _lambda_bootstrap.py
<context.json> <result.json>`` with the function's environment. ``-I`` keeps this file's directory
(the repository) off ``sys.path``; the extracted deployment package (``LAMBDA_TASK_ROOT``) goes first
instead, so the code that runs is the code in the zip and nothing else from the working tree. The
event arrives on stdin; the handler's stdout/stderr stay the function's log output, so the result
goes to a file.

Only the standard library may be imported here before the handler: the interpreter is the
function runtime's (devkit.emulator.runtimes: CPython 3.12 with only the runtime-provided boto3),
everything else must come from the package.
"""

from __future__ import annotations

import datetime
import decimal
import importlib
import json
import os
import signal
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the Lambda context object that handlers (and Powertools) use."""

    def __init__(self, spec: dict[str, Any], deadline: float) -> None:
        self.function_name: str = spec["function_name"]
        self.function_version: str = spec["function_version"]
        self.invoked_function_arn: str = spec["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(spec["memory_limit_in_mb"])
        self.aws_request_id: str = spec["aws_request_id"]
        self.log_group_name: str = spec["log_group_name"]
        self.log_stream_name: str = spec["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _LambdaEncoder(json.JSONEncoder):
    # The managed runtime serialises Decimal (what boto3's DynamoDB deserialiser returns) as a number.
    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


def _error(exc: BaseException, request_id: str, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        # Like the managed runtime, report the function's frames, not the bootstrap's.
        "stackTrace": traceback.format_list(
            [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
        ),
    }


def _write_result(path: str, ok: bool, payload: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"ok": ok, "payload": payload}, fh)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    context_path, result_path = argv[1], argv[2]
    with open(context_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    request_id = spec["aws_request_id"]
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])

    module_name, _, attribute = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except Exception as exc:
        payload = _error(exc, request_id, "Runtime.ImportModuleError")
        payload["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        _write_result(result_path, False, json.dumps(payload))
        return 1
    handler = getattr(module, attribute, None)
    if not callable(handler):
        message = f"Handler '{attribute}' missing on module '{module_name}'"
        _write_result(
            result_path,
            False,
            json.dumps({"errorMessage": message, "errorType": "Runtime.HandlerNotFound", "stackTrace": []}),
        )
        return 1

    raw = sys.stdin.buffer.read()
    try:
        event = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        _write_result(result_path, False, json.dumps(_error(exc, request_id, "Runtime.UnmarshalError")))
        return 1

    timeout = float(spec["timeout_seconds"])

    def on_timeout(_signum: int, _frame: Any) -> None:
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
        print(message, flush=True)
        body = {"errorMessage": message, "errorType": "Sandbox.Timedout", "stackTrace": []}
        _write_result(result_path, False, json.dumps(body))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    # The function timeout covers the handler only; initialisation (imports) has its own budget,
    # enforced by the parent process, as in Lambda.
    deadline = time.monotonic() + timeout
    signal.signal(signal.SIGALRM, on_timeout)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = handler(event, LambdaContext(spec, deadline))
        signal.setitimer(signal.ITIMER_REAL, 0)
        payload_text = json.dumps(result, cls=_LambdaEncoder)
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        traceback.print_exc()
        _write_result(result_path, False, json.dumps(_error(exc, request_id)))
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    _write_result(result_path, True, payload_text)
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Lambda freezes the sandbox once the response is sent: threads a library left running (X-Ray
    # emitters, executor pools) must not hold the invocation open, so skip interpreter shutdown.
    os._exit(code)
