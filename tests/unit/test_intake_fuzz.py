"""Property/fuzz tests of the intake handler: >= 10,000 malformed or hostile requests.

Every one must get a 4xx with Stripe's error shape (naming the field where there is one),
make no AWS call at all (so nothing can be stored, queued or started) and never echo a
card number. The environment is built once per module; emptiness is re-checked at the end.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from payments.handlers import _runtime, intake

from tests.support.inprocess import in_process_aws
from tests.unit import awsenv
from tests.unit.awsenv import api_event, payment

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)

STRING_FIELDS = ("merchant_id", "customer_id", "currency", "description", "reference", "country")
ERROR_CODES_4XX = {400, 413, 415}


class CallCounter:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls.append(event_name)


@pytest.fixture(scope="module")
def fuzz_env() -> Iterator[tuple[awsenv.AwsEnv, CallCounter]]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in awsenv.process_env().items():
            patch.setenv(key, value)
        _runtime.reset(keep_clients=True)
        with in_process_aws():
            env = awsenv.build()
            counter = CallCounter()
            services = _runtime.services()
            for client in (services.repo.ddb, services.sqs, services.sns, services.s3, services.sfn):
                client.meta.events.register("before-call", counter, unique_id="fuzz-call-counter")
            yield env, counter
            for client in (services.repo.ddb, services.sqs, services.sns, services.s3, services.sfn):
                client.meta.events.unregister("before-call", unique_id="fuzz-call-counter")
            assert_nothing_stored(env)
        _runtime.reset(keep_clients=True)


def assert_nothing_stored(env: awsenv.AwsEnv) -> None:
    assert env.count("TRANSACTIONS_TABLE") == 0
    assert env.count("IDEMPOTENCY_TABLE") == 0
    assert env.count("AUDIT_TABLE") == 0
    assert env.executions() == []
    assert env.queue_depth(env.n["AUDIT_QUEUE_URL"]) == 0
    assert env.queue_depth(env.n["FAILED_QUEUE_URL"]) == 0


def send(
    counter: CallCounter, raw_body: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    before = len(counter.calls)
    event = api_event("POST", "/transactions", raw_body=raw_body, idempotency_key="fuzz-key", headers=headers)
    response = intake.handler(event, awsenv.FakeContext())
    assert len(counter.calls) == before, f"AWS was called for a refused request: {counter.calls[before:]}"
    status = response["statusCode"]
    assert status in ERROR_CODES_4XX, response["body"]
    body = json.loads(response["body"])
    error = body["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert error["message"] and isinstance(error["message"], str)
    assert response["headers"]["X-Request-Id"] and response["headers"]["Access-Control-Allow-Origin"]
    return status, error


def dumps(document: Any) -> str:
    return json.dumps(document, default=str, ensure_ascii=False)


# ---------------------------------------------------------------------------- strategies

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        candidate = prefix + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch)
            if i % 2 == 1:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


# Every way of writing a card number the detector must see through (issue 15 defect 6, issue 9
# item 11): ASCII groups, other separators (dots, NBSP, " - ", newlines, slashes, short mixed runs),
# fullwidth and other Unicode digit forms.
PAN_STYLES = [
    "plain",
    "space4",
    "dash4",
    "space-mixed",
    "dots",
    "nbsp",
    "spaced-dash",
    "newline",
    "slash",
    "mixed-runs",
    "fullwidth",
    "fullwidth-spaced",
    "arabic-indic",
    "devanagari",
]
_DIGIT_FORMS = {"fullwidth": 0xFF10, "arabic-indic": 0x0660, "devanagari": 0x0966}


@st.composite
def pan_forms(draw: st.DrawFn) -> tuple[str, str]:
    """(the number as written, its ASCII digits)."""
    length = draw(st.integers(min_value=13, max_value=19))
    first = draw(st.sampled_from("23456"))
    rest = draw(st.text(alphabet=string.digits, min_size=length - 2, max_size=length - 2))
    digits = luhn_complete(first + rest)
    style = draw(st.sampled_from(PAN_STYLES))
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    joiners = {
        "space4": " ",
        "dash4": "-",
        "dots": ".",
        "nbsp": "\u00a0",
        "spaced-dash": " - ",
        "newline": "\n",
        "slash": "/",
        "fullwidth-spaced": "\u3000",
    }
    if style == "plain":
        text = digits
    elif style in joiners:
        text = joiners[style].join(groups)
    elif style == "space-mixed":
        text = "".join(g + draw(st.sampled_from([" ", "-"])) for g in groups[:-1]) + groups[-1]
    elif style == "mixed-runs":
        run = st.text(alphabet=" -./\\\n\t\u00a0\u2013_*|:", min_size=1, max_size=3)
        text = "".join(g + draw(run) for g in groups[:-1]) + groups[-1]
    else:
        text = digits
    for form, zero in _DIGIT_FORMS.items():
        if style.startswith(form):
            text = "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)
    return text, digits


filler = st.text(alphabet=string.ascii_letters + " :/#,.()_=+", max_size=12)


# ---------------------------------------------------------------------------- properties


@given(raw=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
@settings(FUZZ, max_examples=2000)
def test_arbitrary_text_bodies_are_refused_cleanly(fuzz_env: Any, raw: str) -> None:
    _, counter = fuzz_env
    send(counter, raw)


@given(document=json_values)
@settings(FUZZ, max_examples=1500)
def test_arbitrary_json_documents_are_refused_cleanly(fuzz_env: Any, document: Any) -> None:
    _, counter = fuzz_env
    _, error = send(counter, dumps(document))
    if not isinstance(document, dict) and error["code"] != "card_data_not_allowed":
        assert error["param"] is None


@given(
    field=st.sampled_from([*STRING_FIELDS, "payment_method", "metadata", "amount"]),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.lists(json_scalars, max_size=3),
        st.dictionaries(st.text(max_size=5), json_scalars, min_size=1, max_size=3),
        st.integers(min_value=-(10**6), max_value=10**6),
    ),
)
@settings(FUZZ, max_examples=1500)
def test_wrong_types_name_the_field(fuzz_env: Any, field: str, value: Any) -> None:
    _, counter = fuzz_env
    if field == "amount" and isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = -abs(value)  # a positive integer is a valid amount
    if field == "metadata" and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        value = {**value, "nested": {"x": 1}}
    if field == "metadata" and value is None:
        value = []
    document = payment(**{field: value}) if value is not None else {**payment(), field: None}
    _, error = send(counter, dumps(document))
    assert error["param"] is not None
    assert re.split(r"[.\[]", error["param"])[0] == field, (field, value, error)


@st.composite
def hostile_amounts(draw: st.DrawFn) -> tuple[str, str]:
    """(JSON text of the amount, currency) that must be refused."""
    kind = draw(st.sampled_from(["negative", "zero", "nonfinite", "precision", "huge", "string-junk"]))
    currency = draw(st.sampled_from(["USD", "EUR", "GBP", "JPY", "KRW", "KWD", "BHD"]))
    exponent = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}.get(currency, 2)
    if kind == "negative":
        value = draw(
            st.decimals(max_value=Decimal("-0.001"), allow_nan=False, allow_infinity=False, places=3)
        )
        return draw(st.sampled_from([str(value), json.dumps(str(value))])), currency
    if kind == "zero":
        return draw(st.sampled_from(["0", "0.0", "-0", '"0"', '"0.00"', "0e5"])), currency
    if kind == "nonfinite":
        return draw(st.sampled_from(["NaN", "Infinity", "-Infinity"])), currency
    if kind == "precision":
        whole = draw(st.integers(min_value=0, max_value=10**6))
        extra = draw(st.integers(min_value=1, max_value=9))
        text = f"{whole}.{'0' * exponent}{extra}"
        return draw(st.sampled_from([text, json.dumps(text)])), currency
    if kind == "huge":
        digits = draw(st.integers(min_value=15, max_value=400))
        text = "9" * digits
        return draw(st.sampled_from([text, f"1e{digits}", json.dumps(text[:30])])), currency
    junk = draw(st.text(min_size=1, max_size=20).filter(lambda s: not s.replace(".", "", 1).isdigit()))
    return json.dumps(junk), currency


@given(amount=hostile_amounts())
@settings(FUZZ, max_examples=2000)
def test_hostile_amounts_are_refused_naming_amount(fuzz_env: Any, amount: tuple[str, str]) -> None:
    _, counter = fuzz_env
    text, currency = amount
    base = {k: v for k, v in payment(currency=currency).items() if k != "amount"}
    raw = dumps(base)[:-1] + f', "amount": {text}}}'
    status, error = send(counter, raw)
    assert status == 400
    assert error["param"] == "amount", (raw, error)


@st.composite
def hidden_pan_documents(draw: st.DrawFn) -> tuple[dict[str, Any], str | None, str]:
    """(document, expected param, the PAN digits) with a card number hidden somewhere."""
    number, digits = draw(pan_forms())
    text = draw(filler) + number + draw(filler)
    where = draw(
        st.sampled_from(
            [
                "description",
                "reference",
                "merchant_id",
                "token",
                "metadata-value",
                "metadata-key",
                "extra",
                "number",
                "deep",
            ]
        )
    )
    doc = payment()
    param: str | None
    if where == "token":
        doc["payment_method"] = {"type": "card", "token": "tok_" + digits}
        param = "payment_method.token"
    elif where == "metadata-value":
        doc["metadata"] = {"note": text}
        param = "metadata.note"
    elif where == "metadata-key":
        doc["metadata"] = {number: "x"}
        param = "metadata"
    elif where == "extra":
        doc["notes"] = text
        param = "notes"
    elif where == "number":
        doc["card"] = Decimal(digits)
        param = "card"
    elif where == "deep":
        doc["x"] = {"y": [{"z": text}]}
        param = "x.y[0].z"
    else:
        doc[where] = text
        param = where
    return doc, param, digits


@given(case=hidden_pan_documents())
@settings(FUZZ, max_examples=2000)
def test_hidden_card_numbers_are_refused_and_never_echoed(
    fuzz_env: Any, case: tuple[dict[str, Any], str, str]
) -> None:
    _, counter = fuzz_env
    document, param, digits = case
    raw = dumps(document)
    status, error = send(counter, raw)
    assert (status, error["code"], error["param"]) == (400, "card_data_not_allowed", param)
    assert digits not in json.dumps(error)


injection = st.sampled_from(
    [
        "'; DROP TABLE transactions;--",
        '" OR "1"="1',
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "{{7*7}}",
        "../../etc/passwd",
        "\x00\x01\x02",
        "a\nb",
        "Ω≈ç√∫µ≤≥÷",
        "👍🏽" * 3,
        "\u202e\u200b",
        "$where",
        "#status",
    ]
)


@given(
    field=st.sampled_from(
        ["merchant_id", "customer_id", "currency", "country", "token", "type", "extra", "metakey"]
    ),
    value=st.one_of(injection, st.text(min_size=1, max_size=30)),
)
@settings(FUZZ, max_examples=1000)
def test_injection_and_unicode_strings_are_refused_naming_the_field(
    fuzz_env: Any, field: str, value: str
) -> None:
    _, counter = fuzz_env
    document = payment()
    allowed_id = set(string.ascii_letters + string.digits + "_.:-")
    if field in ("merchant_id", "customer_id"):
        value = value if (set(value) - allowed_id or value[0] in "_.:-") else value + "'"
        document[field] = value
        expected = field
    elif field == "currency":
        document[field] = (
            value if not (len(value) == 3 and value.isascii() and value.isalpha()) else value + "!"
        )
        expected = field
    elif field == "country":
        document[field] = (
            value if not (len(value) == 2 and value.isupper() and value.isascii()) else value + "1"
        )
        expected = field
    elif field == "token":
        document["payment_method"] = {"type": "card", "token": "tok_" + value + "'"}
        expected = "payment_method.token"
    elif field == "type":
        document["payment_method"] = {"type": value + "'", "token": "tok_ok"}
        expected = "payment_method.type"
    elif field == "extra":
        document["zz_" + value[:20]] = value
        expected = "zz_" + value[:20]
    else:
        document["metadata"] = {"k" * 41 + value: "v"}
        expected = "metadata"
    status, error = send(counter, dumps(document))
    assert status == 400
    assert error["param"] is not None
    assert error["param"] == expected or error["code"] in ("card_data_not_allowed", "invalid_string"), (
        document,
        error,
    )


@given(
    size=st.integers(min_value=64 * 1024 + 1, max_value=300 * 1024),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
    filler_char=st.sampled_from(["a", "é", " ", "{"]),
)
@settings(FUZZ, max_examples=500)
def test_huge_bodies_are_413(fuzz_env: Any, size: int, content_type: str, filler_char: str) -> None:
    _, counter = fuzz_env
    raw = '{"description": "' + filler_char * size + '"}'
    status, error = send(counter, raw, headers={"Content-Type": content_type})
    if content_type == "application/json":
        assert (status, error["code"]) == (413, "payload_too_large")
    else:
        assert (status, error["param"]) == (415, "Content-Type")


@given(
    content_type=st.text(min_size=1, max_size=40).filter(
        lambda s: s.split(";", 1)[0].strip().lower() not in ("application/json", "")
        and not (
            s.split(";", 1)[0].strip().lower().startswith("application/")
            and s.split(";", 1)[0].strip().lower().endswith("+json")
        )
    )
)
@settings(FUZZ, max_examples=500)
def test_non_json_content_types_are_415(fuzz_env: Any, content_type: str) -> None:
    _, counter = fuzz_env
    status, error = send(counter, dumps(payment()), headers={"Content-Type": content_type})
    assert (status, error["code"], error["param"]) == (415, "unsupported_media_type", "Content-Type")


def test_fuzz_run_left_nothing_behind(fuzz_env: Any) -> None:
    env, counter = fuzz_env
    assert counter.calls == []
    assert_nothing_stored(env)
