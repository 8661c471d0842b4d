"""payments.money: exact major → minor unit conversion by ISO 4217 exponent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from payments import money
from payments.errors import InvalidRequest


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("100.50", "USD", 10050),
        (Decimal("100.5"), "EUR", 10050),
        ("0.01", "GBP", 1),
        (100, "USD", 10000),
        ("100.500", "USD", 10050),  # exact, just written with a trailing zero
        ("5000", "JPY", 5000),
        (Decimal("5000.0"), "KRW", 5000),
        ("1.234", "KWD", 1234),
        ("0.001", "BHD", 1),
        ("1.2345", "CLF", 12345),
        (Decimal("1E+2"), "USD", 10000),
        (0.1, "USD", 10),  # a float is read as the shortest repr, never binary noise
        ("99999999999.99", "USD", 10**13 - 1),
    ],
)
def test_converts_exactly(amount: object, currency: str, minor: int) -> None:
    assert money.to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        ("10.001", "USD", "invalid_amount_precision"),
        ("1.5", "JPY", "invalid_amount_precision"),
        ("0.0001", "KWD", "invalid_amount_precision"),
        ("0", "USD", "amount_too_small"),
        ("-1.00", "USD", "amount_too_small"),
        (Decimal("-0"), "USD", "amount_too_small"),
        (Decimal("NaN"), "USD", "invalid_amount"),
        (Decimal("sNaN"), "USD", "invalid_amount"),
        (Decimal("Infinity"), "USD", "invalid_amount"),
        (Decimal("-Infinity"), "USD", "invalid_amount"),
        ("100000000000.00", "USD", "amount_too_large"),
        (Decimal("1E+400"), "USD", "amount_too_large"),
        (Decimal("1" * 60), "USD", "amount_too_large"),
        (Decimal("0." + "0" * 60 + "1"), "USD", "invalid_amount_precision"),
        ("1,000.00", "USD", "invalid_amount"),
        (" 1.00", "USD", "invalid_amount"),
        ("1e3", "USD", "invalid_amount"),
        ("", "USD", "invalid_amount"),
        ("1" * 40, "USD", "invalid_amount"),
        (True, "USD", "invalid_amount"),
        (None, "USD", "invalid_amount"),
        ([1], "USD", "invalid_amount"),
        ("1.00", "XXX", "invalid_currency"),
        ("1.00", "XAU", "invalid_currency"),
    ],
)
def test_refuses_what_cannot_be_represented_exactly(amount: object, currency: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        money.to_minor_units(amount, currency)
    assert raised.value.code == code
    assert raised.value.param == ("currency" if code == "invalid_currency" else "amount")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (10050, "USD", "100.50"),
        (1, "USD", "0.01"),
        (5000, "JPY", "5000"),
        (1234, "KWD", "1.234"),
        (-5, "EUR", "-0.05"),
    ],
)
def test_format_minor(minor: int, currency: str, text: str) -> None:
    assert money.format_minor(minor, currency) == text


def test_round_trip_for_every_known_currency() -> None:
    for currency, exponent in money.CURRENCY_EXPONENTS.items():
        text = money.format_minor(123456, currency)
        assert money.to_minor_units(text, currency) == 123456, currency
        assert len(text.split(".")[1]) == exponent if exponent else "." not in text


@pytest.mark.parametrize("code", ["usd", "Usd", "EUR"])
def test_currency_codes_are_normalised(code: str) -> None:
    assert money.normalize_currency(code) == code.upper()


@pytest.mark.parametrize("code", ["US", "USDD", "U$D", "ÜSD", 840, None, "ZZZ"])
def test_bad_currency_codes(code: object) -> None:
    with pytest.raises(InvalidRequest) as raised:
        money.normalize_currency(code)
    assert raised.value.param == "currency"


def test_threshold_conversion() -> None:
    assert money.major_to_minor_threshold("10000", "USD") == 1_000_000
    assert money.major_to_minor_threshold(10000, "JPY") == 10000
    assert money.major_to_minor_threshold("2.5", "KWD") == 2500
    with pytest.raises(ValueError):
        money.major_to_minor_threshold("-1", "USD")


@pytest.mark.parametrize(
    ("currency", "exp"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("CLF", 4),
        ("usd", 2),
        ("ZZZ", 2),
    ],
)
def test_stored_exponents(currency: str, exp: int) -> None:
    assert money.stored_exponent(currency) == exp


@pytest.mark.parametrize(
    ("minor", "currency", "major", "formatted"),
    [
        (0, "USD", "0.00", "0.00 USD"),
        (5, "USD", "0.05", "0.05 USD"),
        (123456789, "USD", "1234567.89", "1,234,567.89 USD"),
        (123456789, "JPY", "123456789", "123,456,789 JPY"),
        (123456789, "KWD", "123456.789", "123,456.789 KWD"),
        (-1050, "USD", "-10.50", "-10.50 USD"),
        (
            10**30 + 1,
            "KWD",
            "1000000000000000000000000000.001",
            "1,000,000,000,000,000,000,000,000,000.001 KWD",
        ),
    ],
)
def test_formatting_is_exact_integer_arithmetic(
    minor: int, currency: str, major: str, formatted: str
) -> None:
    """One ISO 4217 table serves intake, notifications and the report (API and CLI agree)."""
    assert money.format_minor(minor, currency) == major
    assert money.format_display(minor, currency) == formatted
