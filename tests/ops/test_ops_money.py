"""ops.core.money: ISO 4217 exponents and exact formatting of integer minor units."""

from __future__ import annotations

import pytest

from ops.core.money import exponent, format_minor, to_major_string


@pytest.mark.parametrize(
    ("currency", "exp"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4), ("usd", 2)],
)
def test_exponents(currency: str, exp: int) -> None:
    assert exponent(currency) == exp


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
    assert to_major_string(minor, currency) == major
    assert format_minor(minor, currency) == formatted
