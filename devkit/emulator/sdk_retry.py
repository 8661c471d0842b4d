"""Answer an AWS SDK's retry of a call the emulator already carried out with the answer it gave.

Why: under parallel load the AWS SDK for Go (inside the Terraform provider) sometimes fails to read a
200 response it was sent ("use of closed network connection", its own client closes the connection;
``bench/results/hammer.md``) and sends the call again. The call had taken effect, so the retry runs it
twice. For calls without a client token that is not harmless: moto's ``AddPermission`` appended a
second statement with the same ``Sid``; ``terraform destroy`` then removed one of them and waited in
vain for the statement to disappear ("waiting for Lambda Permission ... delete: found resource"), and
a CI run failed on it. Calls that take a ``ClientToken`` are covered by moto itself or by
:mod:`devkit.emulator.shims.idempotency`; this covers every other call.

How: every AWS SDK (the SDK for Go v2, botocore) sends ``amz-sdk-invocation-id`` (one UUID per call,
kept across the call's retries) and ``amz-sdk-request: attempt=N; max=M``. The middleware remembers
the successful (2xx) answer of each invocation and serves a later attempt of the same invocation
from it, without running it again; if the first attempt is still in progress the retry waits for it.
Answers other than 2xx are never replayed (a throttled or failed attempt must really be retried), and
requests without the header (curl, moto's own API) pass straight through.

This is what the SDK would have seen had the first response arrived. AWS itself has no such memory,
so an AWS-faithful emulator stays faithful for every first attempt: moto still answers duplicates,
conflicts and errors for them as before.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger("devkit.emulator.sdk_retry")

INVOCATION_ID = "HTTP_AMZ_SDK_INVOCATION_ID"
REQUEST_INFO = "HTTP_AMZ_SDK_REQUEST"
# SigV4: "Credential=AKID/20261130/us-east-1/iam/aws4_request" names the service.
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")

# Invocations remembered (oldest finished ones are forgotten first) and the largest answer kept. A
# retry follows its attempt within seconds, so a few thousand entries cover any parallel apply; large
# answers are reads (GetObject, list calls), which are safe to run again.
MAX_ENTRIES = 4096
MAX_BODY_BYTES = 256 * 1024
# How long a retry waits for an attempt of the same invocation that is still being served.
WAIT_FOR_FIRST_S = 120.0

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class _Invocation:
    done: threading.Event = field(default_factory=threading.Event)
    # (status line, headers, body) of a 2xx answer; None while running or when it was not a success.
    answer: tuple[str, list[tuple[str, str]], bytes] | None = None


@dataclass
class ReplayStats:
    replayed_calls: list[str] = field(default_factory=list)

    @property
    def replayed(self) -> int:
        return len(self.replayed_calls)


class RetryReplay:
    """WSGI middleware: see the module docstring."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        max_entries: int = MAX_ENTRIES,
        max_body: int = MAX_BODY_BYTES,
        wait_s: float = WAIT_FOR_FIRST_S,
    ) -> None:
        self.app = app
        self.max_entries = max_entries
        self.max_body = max_body
        self.wait_s = wait_s
        self.stats = ReplayStats()
        self._lock = threading.Lock()
        self._invocations: OrderedDict[tuple[str, str, str, str], _Invocation] = OrderedDict()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        invocation_id = environ.get(INVOCATION_ID)
        if not invocation_id:
            return self.app(environ, start_response)
        key = (
            str(invocation_id),
            str(environ.get("REQUEST_METHOD", "")),
            str(environ.get("PATH_INFO", "")),
            str(environ.get("QUERY_STRING", "")),
        )
        while True:
            with self._lock:
                seen = self._invocations.get(key)
                if seen is None or (seen.done.is_set() and seen.answer is None):
                    # First attempt, or the earlier one did not succeed: run it, and remember the answer.
                    mine = _Invocation()
                    self._invocations[key] = mine
                    self._forget_oldest()
                    break
            if not seen.done.wait(self.wait_s):
                # The earlier attempt is stuck: serve this one on its own, remembering nothing.
                return self.app(environ, start_response)
            if seen.answer is not None:
                return self._replay(seen.answer, environ, start_response)
        return self._serve(mine, environ, start_response)

    def _serve(
        self, mine: _Invocation, environ: dict[str, Any], start_response: StartResponse
    ) -> list[bytes]:
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, list(headers)
            if exc_info:
                start_response(status, headers, exc_info)
            else:
                start_response(status, headers)
            return written.append

        try:
            result = self.app(environ, capture)
            try:
                body = b"".join([*written, *result])
            finally:
                close = getattr(result, "close", None)
                if callable(close):
                    close()
            status = str(captured.get("status", ""))
            if status.startswith("2") and len(body) <= self.max_body:
                mine.answer = (status, captured["headers"], body)
            return [body]
        finally:
            mine.done.set()

    def _replay(
        self,
        answer: tuple[str, list[tuple[str, str]], bytes],
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> list[bytes]:
        status, headers, body = answer
        call = _call_name(environ)
        with self._lock:
            self.stats.replayed_calls.append(call)
        LOG.warning(
            "answered a retry (%s) of %s from its earlier successful attempt: the SDK lost that response",
            environ.get(REQUEST_INFO, "attempt=?"),
            call,
        )
        start_response(status, headers)
        return [body]

    def _forget_oldest(self) -> None:
        """Drop the oldest finished invocations beyond ``max_entries`` (caller holds the lock)."""
        excess = len(self._invocations) - self.max_entries
        if excess <= 0:
            return
        # Oldest first, stopping at the excess: usually one look at the front, not a scan of them all.
        finished = (key for key, invocation in self._invocations.items() if invocation.done.is_set())
        for key in list(itertools.islice(finished, excess)):
            del self._invocations[key]


def _call_name(environ: dict[str, Any]) -> str:
    """The call a replayed request makes: its service (the SigV4 credential scope), then
    ``X-Amz-Target`` (JSON protocols), the ``Action`` of a query-protocol body, or method and path
    (REST protocols). Reads the body: only for requests that are not run."""
    scope = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    service = scope.group(1) if scope else "?"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service} {str(target).rsplit('.', 1)[-1]}"
    if "form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
        try:
            length = min(int(environ.get("CONTENT_LENGTH") or 0), 64 * 1024)
            form = urllib.parse.parse_qs(environ["wsgi.input"].read(length).decode("utf-8", "replace"))
        except (KeyError, OSError, ValueError):
            form = {}
        if form.get("Action"):
            return f"{service} {form['Action'][0]}"
    return f"{service} {environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"
