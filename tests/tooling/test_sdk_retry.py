"""An SDK retry of a call whose response was lost is answered, not run twice (devkit.emulator.sdk_retry).

The failure it prevents, from a CI run: the provider's AddPermission took effect, its response was
lost, the SDK sent the call again, moto appended a second statement with the same id, and
``terraform destroy`` failed waiting for the statement to disappear.
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devkit.emulator.sdk_retry import RetryReplay
from devkit.emulator.server import Emulator
from tests.support.aws import create_service_role, echo_function_zip

# --------------------------------------------------------------------------- the middleware alone


class CountingApp:
    """A WSGI app that counts the calls it runs; answers ``status`` after ``delay`` seconds."""

    def __init__(self, status: str = "200 OK", delay: float = 0.0) -> None:
        self.status, self.delay = status, delay
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay)
        start_response(self.status, [("Content-Type", "application/json")])
        return [json.dumps({"call": n}).encode()]


def _environ(invocation: str | None, attempt: int = 1, path: str = "/x") -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": ""}
    if invocation is not None:
        environ["HTTP_AMZ_SDK_INVOCATION_ID"] = invocation
        environ["HTTP_AMZ_SDK_REQUEST"] = f"attempt={attempt}; max=4"
    environ["wsgi.input"] = io.BytesIO(b"")
    return environ


def _call(app: RetryReplay, environ: dict[str, Any]) -> tuple[str, bytes]:
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"] = status
        return lambda _data: None

    body = b"".join(app(environ, start_response))
    return seen["status"], body


def test_a_retry_of_a_successful_call_gets_the_first_answer_without_running_again() -> None:
    inner = CountingApp()
    app = RetryReplay(inner)
    first = _call(app, _environ("inv-1", attempt=1))
    again = _call(app, _environ("inv-1", attempt=2))
    assert again == first == ("200 OK", b'{"call": 1}')
    assert inner.calls == 1
    assert app.stats.replayed == 1 and app.stats.replayed_calls == ["? POST /x"]


def test_another_invocation_or_a_request_without_sdk_headers_runs() -> None:
    inner = CountingApp()
    app = RetryReplay(inner)
    _call(app, _environ("inv-1"))
    assert _call(app, _environ("inv-2"))[1] == b'{"call": 2}'
    assert _call(app, _environ(None))[1] == b'{"call": 3}'
    assert _call(app, _environ(None))[1] == b'{"call": 4}'
    # The same invocation id on another path is another request (never sent by an SDK; not replayed).
    assert _call(app, _environ("inv-1", attempt=2, path="/y"))[1] == b'{"call": 5}'
    assert app.stats.replayed == 0


@pytest.mark.parametrize("status", ["500 Internal Server Error", "400 Bad Request", "409 Conflict"])
def test_a_failed_attempt_is_run_again_not_replayed(status: str) -> None:
    inner = CountingApp(status)
    app = RetryReplay(inner)
    _call(app, _environ("inv-1", attempt=1))
    inner.status = "200 OK"
    assert _call(app, _environ("inv-1", attempt=2)) == ("200 OK", b'{"call": 2}')
    # ...and the successful retry is what a third attempt gets.
    assert _call(app, _environ("inv-1", attempt=3)) == ("200 OK", b'{"call": 2}')
    assert inner.calls == 2


def test_a_retry_that_arrives_while_the_first_attempt_runs_waits_for_its_answer() -> None:
    inner = CountingApp(delay=0.5)
    app = RetryReplay(inner)
    answers: list[tuple[str, bytes]] = []
    first = threading.Thread(target=lambda: answers.append(_call(app, _environ("inv-1", attempt=1))))
    first.start()
    time.sleep(0.1)
    retry = _call(app, _environ("inv-1", attempt=2))
    first.join(5)
    assert answers == [retry] == [("200 OK", b'{"call": 1}')]
    assert inner.calls == 1


def test_a_retry_does_not_wait_forever_for_a_stuck_attempt() -> None:
    inner = CountingApp(delay=1.0)
    app = RetryReplay(inner, wait_s=0.2)
    first = threading.Thread(target=lambda: _call(app, _environ("inv-1", attempt=1)))
    first.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert _call(app, _environ("inv-1", attempt=2))[1] == b'{"call": 2}'
    assert time.monotonic() - started < 2.0
    first.join(5)


def test_large_answers_are_not_kept_and_memory_is_bounded() -> None:
    inner = CountingApp()
    app = RetryReplay(inner, max_body=5, max_entries=3)
    _call(app, _environ("big", attempt=1))
    assert _call(app, _environ("big", attempt=2))[1] == b'{"call": 2}', "an answer over max_body is not kept"
    for n in range(10):
        _call(app, _environ(f"inv-{n}"))
    assert len(app._invocations) <= 3


# --------------------------------------------------------------------------- against the emulator


@pytest.fixture(scope="module")
def moto_emulator(emulator: Any) -> Emulator:
    if not isinstance(emulator, Emulator) or emulator.server_kind != "waitress":
        pytest.skip("the replay is part of the embedded moto server (waitress)")
    return emulator


def _function(emulator: Emulator) -> str:
    role = create_service_role(emulator.client("iam"), f"role-{uuid.uuid4().hex[:8]}")
    name = f"fn-{uuid.uuid4().hex[:8]}"
    emulator.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": echo_function_zip()},
    )
    return name


def _sent_requests(client: Any) -> list[Any]:
    """Record every request the client sends (as prepared, signed, with its SDK headers)."""
    sent: list[Any] = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(request))
    return sent


def _resend(request: Any, attempt: int) -> tuple[int, dict[str, Any]]:
    """Send a recorded request again as the SDK's retry ``attempt`` of the same call."""
    headers = {k: v for k, v in request.headers.items() if k.lower() != "amz-sdk-request"}
    headers["amz-sdk-request"] = f"attempt={attempt}; max=4"
    body = request.body.encode() if isinstance(request.body, str) else request.body
    req = urllib.request.Request(request.url, data=body, headers=headers, method=request.method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the loopback emulator
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _statement_ids(lam: Any, name: str) -> list[str]:
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    return [s["Sid"] for s in policy["Statement"]]


def test_add_permission_resent_after_a_lost_response_leaves_one_statement(moto_emulator: Emulator) -> None:
    lam = moto_emulator.client("lambda")
    name = _function(moto_emulator)
    sent = _sent_requests(lam)
    first = lam.add_permission(
        FunctionName=name,
        StatementId="apigateway-create-transaction",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
    )
    [request] = sent
    assert request.headers["amz-sdk-invocation-id"], "botocore sends it, as the SDK for Go does"

    status, again = _resend(request, attempt=2)

    assert status == first["ResponseMetadata"]["HTTPStatusCode"]
    assert json.loads(again["Statement"]) == json.loads(first["Statement"])
    assert _statement_ids(lam, name) == ["apigateway-create-transaction"]
    lam.remove_permission(FunctionName=name, StatementId="apigateway-create-transaction")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        lam.get_policy(FunctionName=name)
    replayed = moto_emulator.replayed_retries
    assert any(call.startswith("lambda POST /") and call.endswith("/policy") for call in replayed)


def test_a_statement_id_used_twice_is_a_conflict_as_on_aws(moto_emulator: Emulator) -> None:
    lam = moto_emulator.client("lambda")
    name = _function(moto_emulator)
    grant = {
        "FunctionName": name,
        "StatementId": "events-daily",
        "Action": "lambda:InvokeFunction",
        "Principal": "events.amazonaws.com",
    }
    lam.add_permission(**grant)
    # A new call (a new invocation id) with an id the policy holds: AWS answers 409.
    with pytest.raises(ClientError) as caught:
        lam.add_permission(**grant)
    assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert _statement_ids(lam, name) == ["events-daily"]


def test_concurrent_permission_changes_on_one_function_lose_nothing(moto_emulator: Emulator) -> None:
    lam = moto_emulator.client("lambda")
    name = _function(moto_emulator)
    sids = [f"s{n}" for n in range(24)]
    for sid in sids:
        lam.add_permission(
            FunctionName=name, StatementId=sid, Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
        )
    removed, errors = sids[::2], []

    def remove(sid: str) -> None:
        try:
            moto_emulator.client("lambda").remove_permission(FunctionName=name, StatementId=sid)
        except ClientError as exc:  # pragma: no cover - the assertion below reports it
            errors.append(f"{sid}: {exc}")

    threads = [threading.Thread(target=remove, args=(sid,)) for sid in removed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(_statement_ids(lam, name)) == sorted(set(sids) - set(removed))


def test_a_retry_of_a_failed_call_is_run_again(moto_emulator: Emulator) -> None:
    lam = moto_emulator.client("lambda")
    name = _function(moto_emulator)
    sent = _sent_requests(lam)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        lam.get_policy(FunctionName=name)
    failed = sent[-1]
    lam.add_permission(
        FunctionName=name, StatementId="late", Action="lambda:InvokeFunction", Principal="s3.amazonaws.com"
    )
    status, answer = _resend(failed, attempt=2)
    assert status == 200 and "late" in answer["Policy"]
