"""Money: exact conversion of major-unit amounts to integer minor units (never float).

Exponents are ISO 4217's minor units. Amounts arrive as JSON numbers (parsed to Decimal)
or decimal strings; anything that cannot be represented exactly in the currency's minor
units is refused rather than rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

from payments.errors import InvalidRequest


def _codes(table: str) -> list[str]:
    return table.split()


# ISO 4217 active codes with a non-default (≠ 2) exponent.
_EXPONENT_0 = _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF")
_EXPONENT_3 = _codes("BHD IQD JOD KWD LYD OMR TND")
_EXPONENT_4 = _codes("CLF UYW")
# ISO 4217 active codes with exponent 2 (funds codes included; precious metals, XDR,
# test and "no currency" codes are deliberately absent: they cannot be paid in).
_EXPONENT_2 = _codes(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
)

CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_EXPONENT_2, 2),
    **dict.fromkeys(_EXPONENT_0, 0),
    **dict.fromkeys(_EXPONENT_3, 3),
    **dict.fromkeys(_EXPONENT_4, 4),
}

# Largest accepted amount in minor units (10^13 - 1: 99,999,999,999.99 USD). Real card
# payments are far below; anything above is a unit mistake or an attack on arithmetic.
MAX_AMOUNT_MINOR = 10**13 - 1
# Digits a well-formed amount can have: 13 integral digits + up to 4 decimals, with slack.
_MAX_DIGITS = 40
_DECIMAL_STRING = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def exponent(currency: str) -> int:
    """ISO 4217 exponent of ``currency`` (upper-case code); InvalidRequest if unknown."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise InvalidRequest(
            "invalid_currency", "currency must be a supported ISO 4217 currency code.", "currency"
        ) from None


def normalize_currency(value: object) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise InvalidRequest("invalid_currency", "currency must be a 3-letter ISO 4217 code.", "currency")
    code = value.upper()
    exponent(code)
    return code


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise InvalidRequest("invalid_amount", "amount must be a number or a decimal string.", "amount")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Floats only reach here from callers outside the JSON path; repr() is the shortest
        # exact round-trip, which is what the client wrote.
        return Decimal(repr(value))
    if isinstance(value, str):
        if len(value) > 32 or not _DECIMAL_STRING.match(value):
            raise InvalidRequest(
                "invalid_amount", 'amount must be a decimal string such as "100.50".', "amount"
            )
        return Decimal(value)
    raise InvalidRequest("invalid_amount", "amount must be a number or a decimal string.", "amount")


def to_minor_units(value: object, currency: str) -> int:
    """Convert a major-unit amount to integer minor units of ``currency`` exactly."""
    exp = exponent(currency)
    amount = _to_decimal(value)
    if not amount.is_finite():
        raise InvalidRequest("invalid_amount", "amount must be a finite number.", "amount")
    if amount <= 0:
        raise InvalidRequest("amount_too_small", "amount must be greater than zero.", "amount")
    digits = amount.as_tuple().digits
    if amount.adjusted() > 13 or len(digits) > _MAX_DIGITS:
        raise InvalidRequest("amount_too_large", "amount exceeds the maximum allowed.", "amount")
    with localcontext() as ctx:
        ctx.prec = _MAX_DIGITS + 10
        ctx.traps[InvalidOperation] = True
        scaled = amount.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise InvalidRequest(
                "invalid_amount_precision",
                f"amount has more decimal places than {currency} allows ({exp}).",
                "amount",
            )
        minor = int(scaled)
    if minor > MAX_AMOUNT_MINOR:
        raise InvalidRequest("amount_too_large", "amount exceeds the maximum allowed.", "amount")
    return minor


def stored_exponent(currency: str) -> int:
    """Exponent of a currency read back from storage (reports, notifications): never raises.

    Stored amounts passed :func:`exponent` at intake; a code outside the table here means data
    from elsewhere, shown with the common exponent 2 rather than failing a whole report.
    """
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def format_minor(minor: int, currency: str) -> str:
    """Minor units back to a major-unit decimal string: ``(10050, "USD") -> "100.50"``."""
    exp = stored_exponent(currency)
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor))
    if exp == 0:
        return sign + digits
    digits = digits.rjust(exp + 1, "0")
    return f"{sign}{digits[:-exp]}.{digits[-exp:]}"


def format_display(minor: int, currency: str) -> str:
    """Grouped major units and the code, for people: ``(123456789, "KWD") -> "123,456.789 KWD"``."""
    exp = stored_exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    text = f"{sign}{whole:,}"
    if exp:
        text += f".{frac:0{exp}d}"
    return f"{text} {currency.upper()}"


def major_to_minor_threshold(value: object, currency: str) -> int:
    """A configured major-unit threshold (fraud rules) in minor units; rounds down."""
    with localcontext() as ctx:
        ctx.prec = 50
        amount = Decimal(str(value))
        if not amount.is_finite() or amount < 0:
            raise ValueError("threshold must be a finite, non-negative number")
        return int(amount.scaleb(CURRENCY_EXPONENTS.get(currency, 2)))
