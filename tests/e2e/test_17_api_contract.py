"""Flow 17: an outside client tests the contract — schemathesis against the deployed stage.

The contract is docs/openapi.json (tools/openapi.py). schemathesis reads it as any OpenAPI client would
and, for every operation in it, generates requests: positive ones (valid per the document) and negative
ones (a body, header or path parameter the document forbids). They go to the session's stage with one
client's credentials (the demo client, as the other flows use), and every answer is checked against the
document: not a 5xx, a documented status code, content type, body schema and headers, and negative data
refused. Then schemathesis follows the document's links (the 202 of a create to both reads) as a state
machine. Afterwards no DynamoDB item of the deployment may hold a card number (payments.pan).

Steering: random merchant ids are outside every client's scope and random three-letter currencies are
not ISO codes, so purely random bodies only ever reach the refusals. Every n-th positive body therefore
takes one of the client's merchants, a currency and an amount from short lists (STEER_EVERY), so that
200/202 answers (and replays and key conflicts) are checked too; every CARD_EVERY-th positive case also
carries a test card number: in a body field or the token, where the API must refuse the request, or in
the Idempotency-Key, which is stored only hashed. None may be stored. The negative cases are sent as
generated, so they stay invalid. The state machine makes its creates valid the same way, so that there
is a payment to follow the links to.

Cost: each request that reaches a function costs one Lambda invocation (on moto a fresh interpreter,
~0.3 s of CPU), so the cases are generated first (Hypothesis, seeded, no shrinking: a failure is
reported with its curl command) and then sent IN_FLIGHT at a time; sending stops at SEND_BUDGET_S.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from payments.pan import find_pan
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devkit.demo import DEMO_MERCHANTS, Platform
from devkit.emulator.endpoints import selected_backend
from devkit.terraform import REPO_ROOT
from tests.emulator_gaps import supports
from tests.support.stack import Deployment

DOCUMENT = REPO_ROOT / "docs" / "openapi.json"
SEED = 17
# Generated requests per operation, split between positive and negative cases (an operation without
# inputs has one possible request, and nothing negative: it gets that one).
PER_OPERATION = 500
NEGATIVE = 250
IN_FLIGHT = 4  # requests in flight at once: the functions' interpreters use both cores
REQUEST_TIMEOUT_S = 60.0
SEND_BUDGET_S = 1500.0  # bounds the fuzzing part; a run that needs more fails (and says how far it got)
# The state machine: scenarios of at most this many steps (requests), links followed where they apply.
STATEFUL_SCENARIOS = 10
STATEFUL_STEPS = 5
# Luhn-valid test card numbers, in spellings a client might send (payments.pan finds them all).
CARDS = ("4111111111111111", "5555-5555-5555-4444", "378282246310005", "4012888888881881")
# Valid values for the fields random generation never gets right (the client's merchants, ISO codes).
VALID = {
    "merchant_id": DEMO_MERCHANTS,
    "currency": ("USD", "EUR", "JPY", "gbp"),
    "amount": ("25.00", 12.5, "0.50", "1000", 7),
}
# Every n-th positive body takes VALID values: /validate stores nothing; every accepted create starts a
# workflow (four more invocations), so a few dozen are enough.
STEER_EVERY = {"validate": 2, "create-transaction": 20}
# Every CARD_EVERY-th positive case (from the fourth) carries a card number, in these places in turn,
# on a body that is otherwise VALID (so only the card number can be why it is refused).
CARD_EVERY = 8
CARD_PLACES = ("description", "reference", "customer_id", "metadata", "token", "Idempotency-Key")
BASE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def _config() -> schemathesis.Config:
    """schemathesis' configuration: seeded, no shrinking (a failure is reported with its curl command),
    credentials added to each request by the caller rather than generated."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"no-shrink": True, "with-security-parameters": False, "database": "none"},
            # The state machine sends valid requests only: its point is the links between them, the
            # document's (nothing inferred from answers, no calibration: the same choices must give
            # the same scenario, or Hypothesis gives up on it as flaky).
            "phases": {
                "stateful": {
                    "generation": {"mode": "positive"},
                    "inference": {"algorithms": []},
                    "link-calibration": False,
                }
            },
        }
    )


def _schema() -> Any:
    return schemathesis.openapi.from_path(DOCUMENT, config=_config())


def make_valid(body: Any, index: int) -> None:
    """Give a generated body VALID values (chosen by ``index``, so runs repeat)."""
    if isinstance(body, dict):
        for name, values in VALID.items():
            body[name] = values[index % len(values)]


def add_card(case: Any, index: int) -> bool:
    """Put a test card number into one place of the case (chosen by ``index``); False when the
    operation has no such place (Idempotency-Key is a header of POST /transactions only)."""
    card = CARDS[index % len(CARDS)]
    place = CARD_PLACES[index % len(CARD_PLACES)]
    body = case.body
    if not isinstance(body, dict):
        return False
    if place == "Idempotency-Key":
        if case.headers is None or "Idempotency-Key" not in case.headers:
            return False
        case.headers["Idempotency-Key"] = f"order {card}"
    elif place == "metadata":
        body["metadata"] = {"note": f"card {card}"}
    elif place == "token":
        body["payment_method"] = {"type": "card", "token": f"tok_{card.replace('-', '')}"}
    else:
        # customer_id's pattern allows digits and dashes; the free-text fields anything.
        body[place] = card
    return True


def _steer(operation_id: str, cases: list[Any]) -> None:
    every = STEER_EVERY.get(operation_id)
    if every is None:
        return
    for index, case in enumerate(cases):
        if index % every == 0:
            make_valid(case.body, index // every)
        if index % CARD_EVERY == CARD_EVERY // 2:
            make_valid(case.body, index)
            add_card(case, index // CARD_EVERY)


def _operations() -> list[tuple[str, str, str]]:
    """(operation id, method, path) of every operation the document lists."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return [
        (operation["operationId"], method.upper(), path)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def _secured() -> set[str]:
    """``METHOD path`` of the operations the document says need credentials."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return {
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if operation.get("security")
    }


def _generate(operation: Any, mode: GenerationMode, count: int) -> list[Any]:
    """Up to ``count`` cases of ``operation`` in ``mode`` (fewer when the document allows fewer)."""
    cases: list[Any] = []

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        return []  # nothing in the operation can be made invalid (no parameters, no body)
    return cases


def generate_cases(operation_id: str, method: str, path: str) -> list[tuple[str, Any]]:
    """(mode, case) pairs: positive cases (steered, see STEER_EVERY and CARD_EVERY) and negative ones
    (as generated: the document forbids something in each)."""
    operation = _schema()[path][method]
    negative = _generate(operation, GenerationMode.NEGATIVE, NEGATIVE)
    positive = _generate(operation, GenerationMode.POSITIVE, PER_OPERATION - len(negative))
    _steer(operation_id, positive)
    return [("positive", c) for c in positive] + [("negative", c) for c in negative]


def _inputs(case: Any) -> dict[str, Any]:
    body = case.body if isinstance(case.body, (dict, list, str)) else None
    return {
        "body": body,
        "headers": dict(case.headers or {}),
        "path": dict(case.path_parameters or {}),
        "query": dict(case.query or {}),
    }


@dataclass
class Tally:
    """What was sent and answered, per operation, and every check failure (with its curl command)."""

    requests: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    modes: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    card_bodies: int = 0
    accepted_cards: list[str] = field(default_factory=list)
    gateway_bodies: int = 0
    failures: list[str] = field(default_factory=list)
    auth_checked: set[str] = field(default_factory=set)
    secured: set[str] = field(default_factory=_secured)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        parts = []
        for label, statuses in sorted(self.requests.items()):
            shown = " ".join(f"{code}x{n}" for code, n in sorted(statuses.items()))
            modes = "/".join(f"{n} {mode}" for mode, n in sorted(self.modes[label].items()))
            parts.append(f"{label}: {sum(statuses.values())} ({modes}; {shown})")
        return "; ".join(parts)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _gateway_body(response: Any) -> bool:
    """The gateway's own ``{"message": ...}`` body, which LocalStack answers instead of the API's
    gateway-response templates (tests/emulator_gaps.py)."""
    body = _json(response)
    return isinstance(body, dict) and set(body) == {"message"}


def _not_utf8(body: Any) -> bool:
    try:
        if isinstance(body, (bytes, bytearray)):
            bytes(body).decode("utf-8")
        elif isinstance(body, str):
            body.encode("utf-8")  # lone surrogates cannot be sent as UTF-8
    except UnicodeError:
        return True
    return False


def _emulator_gap(case: Any, response: Any) -> bool:
    """LocalStack's own 500 for a body that is not UTF-8 (tests/emulator_gaps.py, docs/emulators.md)."""
    return (
        response.status_code == 500
        and not supports("apigateway:non-utf8-request-body")
        and _not_utf8(case.body)
        and "codec can't decode" in response.text
    )


def check(tally: Tally, mode: str, case: Any, response: Any, headers: dict[str, str]) -> None:
    """schemathesis' checks on one answer; failures are kept in ``tally`` (they never raise)."""
    label = f"{case.method.upper()} {case.path}"
    checks = list(BASE_CHECKS)
    if _emulator_gap(case, response):
        with tally.lock:  # the emulator's own failure (tests/emulator_gaps.py), not the API's answer
            tally.requests[label]["500-emulator-gap"] += 1
            tally.modes[label][mode] += 1
        return
    with tally.lock:
        tally.requests[label][str(response.status_code)] += 1
        tally.modes[label][mode] += 1
        # ignored_auth re-sends an accepted request without credentials and with invalid ones: once per
        # operation is enough (the authorizer runs for each new token), and only where authorizers run.
        if (
            200 <= response.status_code < 300
            and label not in tally.auth_checked
            and label in tally.secured
            and supports("apigateway:lambda-authorizers")
        ):
            tally.auth_checked.add(label)
            checks.append(ignored_auth)
        if not supports("apigateway:gateway-response-templates") and _gateway_body(response):
            tally.gateway_bodies += 1
            checks.remove(response_schema_conformance)
        inputs = _inputs(case)
        if find_pan(inputs["body"]) is not None:
            tally.card_bodies += 1
            if 200 <= response.status_code < 300:
                tally.accepted_cards.append(
                    f"{label} answered {response.status_code} to a body with a card number"
                )
    try:
        case.validate_response(response, checks=checks, headers=headers)
    except BaseExceptionGroup as group:  # schemathesis' FailureGroup: one or more checks failed
        with tally.lock:
            tally.failures.append(f"[{mode}] {group}")


def send_all(
    cases: list[tuple[str, Any]], base_url: str, headers: dict[str, str], tally: Tally, deadline: float
) -> int:
    """Send ``cases``, at most IN_FLIGHT at a time, checking each answer; returns how many were sent."""
    local = threading.local()

    def exchange(case: Any) -> Any:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return case.call(base_url=base_url, session=local.session, headers=headers, timeout=REQUEST_TIMEOUT_S)

    sent = 0
    pending: dict[Future[Any], tuple[str, Any]] = {}
    queue = iter(cases)
    with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="contract") as pool:
        while True:
            while len(pending) < IN_FLIGHT and time.monotonic() < deadline:
                item = next(queue, None)
                if item is None:
                    break
                pending[pool.submit(exchange, item[1])] = item
            if not pending:
                return sent
            done, _ = wait(pending, timeout=REQUEST_TIMEOUT_S + 5, return_when=FIRST_COMPLETED)
            if not done:
                raise AssertionError(f"no answer within {REQUEST_TIMEOUT_S:.0f} s from {base_url}")
            for future in done:
                mode, case = pending.pop(future)
                check(tally, mode, case, future.result(), headers)
                sent += 1


def run_state_machine(base_url: str, headers: dict[str, str], tally: Tally) -> dict[str, int]:
    """schemathesis' state machine over the document's links, bounded in scenarios and steps; returns
    how often each link was followed to an answer that named the created payment."""
    followed: collections.Counter[str] = collections.Counter()
    session = requests.Session()
    created: set[str] = set()
    base = _schema().as_state_machine()

    class ContractFlow(base):  # type: ignore[misc, valid-type]
        def before_call(self, case: Any) -> None:
            # A create the client may make, under a key of its own, so that there is a payment to
            # follow the links to. Both depend on the case only: Hypothesis refuses a scenario whose
            # answers (and so the rules the links enable) change when it replays the same choices.
            make_valid(case.body, len(json.dumps(case.body, default=str)))
            if case.headers is not None and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = f"contract-{uuid.uuid4()}"

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {
                "base_url": base_url,
                "session": session,
                "headers": headers,
                "timeout": REQUEST_TIMEOUT_S,
            }

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            check(tally, "stateful", case, response, headers)
            body = _json(response)
            if not isinstance(body, dict):
                return
            if case.operation.label == "POST /transactions" and response.status_code == 202:
                created.add(str(body.get("transaction_id")))
            elif response.status_code == 200 and body.get("transaction_id") in created:
                followed[case.operation.label] += 1

    ContractFlow.run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    return dict(followed)


# -- what stays stored -------------------------------------------------------------------------

_HEX_DIGEST = re.compile(r"^[0-9a-f]{24,}$")


def _platform_value(name: str, value: Any, window_ms: tuple[int, int]) -> bool:
    """Values the platform makes that may spell 13-19 digits: hex digests, salts and lease tokens;
    epoch-millisecond times of this session; amounts in minor units (the request's amount, whose text
    the intake screens for card numbers). Everything else is scanned."""
    if isinstance(value, str):
        return bool(_HEX_DIGEST.match(value)) and not value.isdigit()
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return name == "amount_minor" or window_ms[0] <= value <= window_ms[1]
    return False


def _scannable(value: Any, window_ms: tuple[int, int], name: str = "") -> Any:
    """The item with platform-made values blanked and sets as lists (payments.pan walks dicts/lists)."""
    if isinstance(value, dict):
        return {k: _scannable(v, window_ms, str(k)) for k, v in value.items()}
    if isinstance(value, (list, set, frozenset)):
        return (
            [_scannable(v, window_ms, name) for v in sorted(value, key=str)]
            if isinstance(value, (set, frozenset))
            else [_scannable(v, window_ms, name) for v in value]
        )
    if isinstance(value, (bytes, bytearray)) or _platform_value(name, value, window_ms):
        return None
    return value


def stored_cards(platform: Platform, window_ms: tuple[int, int]) -> tuple[int, list[str]]:
    """(items scanned, ``table key → field`` of every item holding a PAN-looking number)."""
    client = platform.client("dynamodb")
    deserializer = TypeDeserializer()
    scanned, found = 0, []
    for output in sorted(k for k in platform.outputs if k.endswith("_table_name")):
        table = str(platform.outputs[output])
        pages = client.get_paginator("scan").paginate(TableName=table, PaginationConfig={"MaxItems": 100_000})
        for page in pages:
            for raw in page["Items"]:
                scanned += 1
                item = {k: deserializer.deserialize(v) for k, v in raw.items()}
                where = find_pan(_scannable(item, window_ms))
                if where is not None:
                    names = ("transaction_id", "key_id", "idempotency_key")
                    ident = next((f"{k}={item[k]}" for k in names if k in item), "(no id)")
                    found.append(f"{table} {ident}: field {where or '(root)'}")
    return scanned, found


# -- the test --------------------------------------------------------------------------------------


def _cases_by_operation() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    for operation_id, method, path in _operations():
        yield f"{method} {path}", generate_cases(operation_id, method, path)


def run_contract(
    base_url: str, headers: dict[str, str], say: Callable[[str], None]
) -> tuple[Tally, dict[str, Any]]:
    """Everything but the storage scan: fuzzing (positive + negative) and the state machine."""
    tally = Tally()
    figures: dict[str, Any] = {"generated": {}, "sent": {}}
    started = time.monotonic()
    deadline = started + SEND_BUDGET_S
    for label, cases in _cases_by_operation():
        figures["generated"][label] = len(cases)
        figures["sent"][label] = send_all(cases, base_url, headers, tally, deadline)
    figures["fuzzing_s"] = round(time.monotonic() - started, 1)
    say(f"contract fuzzing (schemathesis, seed {SEED}): {tally.summary()}; {figures['fuzzing_s']} s")
    stateful_started = time.monotonic()
    figures["links_followed"] = run_state_machine(base_url, headers, tally)
    figures["stateful_s"] = round(time.monotonic() - stateful_started, 1)
    say(
        f"contract (schemathesis {schemathesis.__version__}, seed {SEED}): {tally.summary()}; "
        f"links followed {figures['links_followed']}; bodies with a card number {tally.card_bodies}; "
        f"fuzzing {figures['fuzzing_s']} s, stateful {figures['stateful_s']} s"
    )
    return tally, figures


@pytest.mark.skipif(
    selected_backend() == "moto" and os.environ.get("CONTRACT_ON_MOTO") != "1",
    reason="CI runs the contract fuzzing on the LocalStack lane (~5 min there); on moto each request "
    "is a fresh interpreter and the 2,000+ requests take 11-15 min of CPU, past the CI budget: "
    "CONTRACT_ON_MOTO=1 runs it here",
)
def test_the_deployed_api_keeps_its_contract_and_stores_no_card_number(
    deployment: Deployment, platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    base_url = str(deployment.outputs["api_invoke_url"])
    headers = platform.credentials()
    window_ms = (
        int((dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).timestamp() * 1000),
        int((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).timestamp() * 1000),
    )

    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n{line}")

    tally, figures = run_contract(base_url, headers, say)

    assert not tally.failures, f"{len(tally.failures)} answers break the contract:\n\n" + "\n\n".join(
        tally.failures[:5]
    )
    assert set(figures["generated"]) == {f"{m} {p}" for _, m, p in _operations()}
    for label, generated in figures["generated"].items():
        assert figures["sent"][label] == generated, (
            f"out of time: sent {figures['sent']} of {figures['generated']}"
        )
        inputs = label != "GET /health"  # the one operation without parameters, body or credentials
        assert generated >= (PER_OPERATION if inputs else 1), (label, generated)
    # not_a_server_error above says the same per answer; this is the whole run's figure.
    server_errors = [
        code for codes in tally.requests.values() for code in codes if code.isdigit() and code.startswith("5")
    ]
    assert not server_errors, tally.summary()
    # The steering reached the success answers, the card numbers reached the API, the links were walked.
    assert tally.requests["POST /transactions"]["202"] > 0 and tally.requests["POST /validate"]["200"] > 0
    assert tally.card_bodies >= 10 and not tally.accepted_cards, tally.accepted_cards[:5]
    assert figures["links_followed"], "no created payment was read back through the document's links"

    scanned, found = stored_cards(platform, window_ms)
    say(f"contract: {scanned} DynamoDB items scanned for card numbers, {len(found)} found")
    assert scanned > 0 and not found, found[:10]
