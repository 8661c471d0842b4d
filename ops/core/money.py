"""ISO 4217 minor-unit exponents and exact formatting of integer minor amounts.

Amounts are stored and summed as integers of minor units; only presentation converts them,
and it does so with integer arithmetic so a total is never rounded.
"""

from __future__ import annotations

# Currencies whose minor unit is not 1/100 (ISO 4217 list, "minor unit" column). Everything
# else that is a valid code uses 2. Kept here rather than imported from the Lambda domain
# package because ops/core ships on its own inside the Lambda zip and in the CLI.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    # zero-decimal
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # three-decimal
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # four-decimal (units of account)
    "CLF": 4,
    "UYW": 4,
}
DEFAULT_EXPONENT = 2


def exponent(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit (USD 2, JPY 0, KWD 3)."""
    return _EXPONENT_EXCEPTIONS.get(currency.upper(), DEFAULT_EXPONENT)


def to_major_string(amount_minor: int, currency: str) -> str:
    """Exact decimal string in major units without grouping: ``to_major_string(12345, "USD") == "123.45"``."""
    exp = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    magnitude = abs(amount_minor)
    if exp == 0:
        return f"{sign}{magnitude}"
    whole, frac = divmod(magnitude, 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


def format_minor(amount_minor: int, currency: str) -> str:
    """Grouped major units and the code: ``format_minor(123456789, "KWD") == "123,456.789 KWD"``."""
    exp = exponent(currency)
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**exp)
    text = f"{sign}{whole:,}"
    if exp:
        text += f".{frac:0{exp}d}"
    return f"{text} {currency.upper()}"
