"""payments.pan: card number detection and masking."""

from __future__ import annotations

from decimal import Decimal

import pytest
from payments import pan

VALID = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4222222222222",
    "6304000000000000000",
]


@pytest.mark.parametrize("number", VALID)
def test_known_test_pans_pass_luhn(number: str) -> None:
    assert pan.luhn_valid(number)
    assert pan.contains_pan(number)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card:4111111111111111;",
        "order 12 4111 1111 1111 1111 9",
        "3782 822463 10005",
        "x4111111111111111x",
        "tok_4111111111111111",
        # Regression (issue 15, defect 6): other separators used to hide the number.
        "4111.1111.1111.1111",
        "4111\u00a01111\u00a01111\u00a01111",
        "4111 - 1111 - 1111 - 1111",
        "4111\n1111\n1111\n1111",
        "4111/1111/1111/1111",
        "4111  1111 1111 1111",
        "4111_1111*1111|1111",
        # Regression (issue 9 item 11): non-ASCII digit forms.
        "\uff14\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11 \uff11\uff11\uff11\uff11",
        "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
        "\u096a\u0967\u0967\u0967-\u0967\u0967\u0967\u0967-\u0967\u0967\u0967\u0967-\u0967\u0967\u0967\u0967",
    ],
)
def test_pans_in_text_are_found(text: str) -> None:
    assert pan.contains_pan(text)
    assert pan.find_pan({"description": text}) == "description"


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn fails
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits: not a PAN length
        "4111    1111 1111 1111",  # four spaces end the number; the rest is too short
        "4111 1111 x 1111 1111",  # a letter ends it too
        "2026-11-29T15:04:23.881Z",
        "tok_visa_4242",
        "1234-5678",
        "",
        "no digits at all",
    ],
)
def test_non_pans_are_not_flagged(text: str) -> None:
    assert not pan.contains_pan(text)


def test_find_pan_reports_the_path_never_the_number() -> None:
    assert pan.find_pan({"a": {"b": ["x", "4111 1111 1111 1111"]}}) == "a.b[1]"
    assert pan.find_pan({"metadata": {"4111111111111111": "v"}}) == "metadata"
    assert pan.find_pan({"n": Decimal("4111111111111111")}) == "n"
    assert pan.find_pan({"n": True, "m": 12}) is None
    assert pan.find_pan(["4111111111111111"]) == "[0]"
    assert pan.find_pan({"ok": "fine"}) is None


def test_find_pan_handles_deep_documents_without_recursion() -> None:
    document: object = "4111111111111111"
    for _ in range(5000):
        document = [document]
    assert pan.find_pan(document) is not None


def test_mask_pans_replaces_only_the_numbers() -> None:
    text = "a 4111 1111 1111 1111 b 5555555555554444 c 12345"
    assert pan.mask_pans(text) == "a [REDACTED-PAN] b [REDACTED-PAN] c 12345"
    assert pan.mask_pans("nothing") == "nothing"


def test_masking_maps_back_to_the_original_characters() -> None:
    text = "paid with \uff14\uff11\uff11\uff11\u00a0\uff11\uff11\uff11\uff11\u00a01111.1111 ok"

    assert pan.mask_pans(text) == "paid with [REDACTED-PAN] ok"
