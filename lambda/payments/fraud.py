"""Rule-based fraud score.

Rules come from the SSM parameter FRAUD_RULES_PARAM (JSON, see docs/interfaces.md). Each
matching rule adds its weight; the payment is rejected when the score reaches
``reject_score``. The result (score, decision, reasons) is stored on the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from payments import money

DEFAULT_RULES: dict[str, Any] = {
    "amount_thresholds": {"default": "10000"},
    "velocity_window_minutes": 60,
    "velocity_max": 10,
    "blocked_countries": ["CN", "RU", "KP", "IR"],
    "blocked_merchants": [],
    "reject_score": 70,
}

# Weights: a blocked party or an amount over the threshold rejects on its own with the
# default reject_score (70); high velocity or an amount near the threshold only add risk
# unless they coincide.
WEIGHTS = {
    "blocked_country": 100,
    "blocked_merchant": 100,
    "amount_over_threshold": 75,
    "velocity_exceeded": 50,
    "amount_near_threshold": 20,
}
NEAR_THRESHOLD_RATIO = (4, 5)  # 80 % of the threshold

# Built-in per-currency thresholds, in major units: the spec's 10,000 rule read as roughly
# USD 10,000 in each currency (order of magnitude, rounded; not an FX feed). Without them the
# "default" 10000 would be read in yen, won or dinar units: ¥10,001 (about USD 65) rejected,
# KWD 9,000 (about USD 29,000) let through. Thresholds in the rules parameter override these;
# the parameter's "default" applies only to currencies in neither.
DEFAULT_THRESHOLDS: dict[str, str] = {
    # exponent 2
    "USD": "10000", "EUR": "9000", "GBP": "8000", "CHF": "8500", "CAD": "14000", "AUD": "15000",
    "NZD": "17000", "CNY": "72000", "HKD": "78000", "SGD": "13000", "INR": "850000",
    "IDR": "165000000", "MXN": "180000", "BRL": "55000", "ZAR": "180000", "SEK": "100000",
    "NOK": "110000", "DKK": "68000", "PLN": "39000", "CZK": "230000", "HUF": "3600000",
    "TRY": "400000", "PHP": "580000", "THB": "340000", "MYR": "44000", "TWD": "320000",
    "UYU": "400000", "COP": "40000000", "PEN": "37000", "ILS": "37000", "AED": "36700",
    "SAR": "37500", "EGP": "500000", "NGN": "15000000", "KES": "1290000", "PKR": "2800000",
    # exponent 0
    "JPY": "1500000", "KRW": "14000000", "VND": "260000000", "CLP": "9500000", "ISK": "1400000",
    "PYG": "75000000", "UGX": "37000000", "RWF": "14000000", "BIF": "29000000",
    "GNF": "86000000", "DJF": "1780000", "KMF": "4500000", "VUV": "1200000", "XAF": "6000000",
    "XOF": "6000000", "XPF": "1100000",
    # exponent 3
    "BHD": "3770", "IQD": "13000000", "JOD": "7090", "KWD": "3070", "LYD": "54000",
    "OMR": "3850", "TND": "30000",
}  # fmt: skip


@dataclass(frozen=True)
class FraudRules:
    amount_thresholds: dict[str, str]
    velocity_window_minutes: int
    velocity_max: int
    blocked_countries: frozenset[str]
    blocked_merchants: frozenset[str]
    reject_score: int

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> FraudRules:
        """Rules from the parameter JSON; missing or malformed entries fall back to the defaults."""
        data = dict(DEFAULT_RULES)
        if isinstance(raw, Mapping):
            data.update({k: v for k, v in raw.items() if k in DEFAULT_RULES})

        def as_int(name: str) -> int:
            try:
                return max(0, int(data[name]))
            except (TypeError, ValueError):
                return int(DEFAULT_RULES[name])

        thresholds = data.get("amount_thresholds")
        if not isinstance(thresholds, Mapping):
            thresholds = DEFAULT_RULES["amount_thresholds"]
        return cls(
            amount_thresholds={
                str(k).upper() if k != "default" else "default": str(v) for k, v in thresholds.items()
            },
            velocity_window_minutes=as_int("velocity_window_minutes"),
            velocity_max=as_int("velocity_max"),
            blocked_countries=frozenset(str(c).upper() for c in data.get("blocked_countries") or []),
            blocked_merchants=frozenset(str(m) for m in data.get("blocked_merchants") or []),
            reject_score=as_int("reject_score"),
        )

    def threshold_minor(self, currency: str) -> int:
        """Configured threshold for ``currency``, else the built-in one, else the configured default."""
        raw = self.amount_thresholds.get(currency) or DEFAULT_THRESHOLDS.get(currency)
        if raw is None:
            raw = self.amount_thresholds.get("default", "10000")
        try:
            return money.major_to_minor_threshold(raw, currency)
        except (ArithmeticError, ValueError):
            return money.major_to_minor_threshold(DEFAULT_RULES["amount_thresholds"]["default"], currency)


@dataclass(frozen=True)
class FraudResult:
    score: int
    decision: str
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "decision": self.decision, "reasons": list(self.reasons)}


def assess(
    transaction: Mapping[str, Any],
    rules: FraudRules,
    recent_count: Callable[[int, int], int],
    now_ms: int,
) -> FraudResult:
    """Score ``transaction``.

    ``recent_count(since_ms, limit)`` counts the customer's other payments since ``since_ms``.
    """
    reasons: list[str] = []
    currency = str(transaction.get("currency", ""))
    amount = int(transaction.get("amount_minor") or 0)
    threshold = rules.threshold_minor(currency)
    if amount > threshold:
        reasons.append("amount_over_threshold")
    elif amount * NEAR_THRESHOLD_RATIO[1] >= threshold * NEAR_THRESHOLD_RATIO[0]:
        reasons.append("amount_near_threshold")
    country = transaction.get("country")
    if country and str(country).upper() in rules.blocked_countries:
        reasons.append("blocked_country")
    if str(transaction.get("merchant_id", "")) in rules.blocked_merchants:
        reasons.append("blocked_merchant")
    if rules.velocity_max > 0:
        since = now_ms - rules.velocity_window_minutes * 60_000
        if recent_count(since, rules.velocity_max) >= rules.velocity_max:
            reasons.append("velocity_exceeded")
    score = min(100, sum(WEIGHTS[r] for r in reasons))
    decision = "REJECT" if score >= rules.reject_score else "APPROVE"
    return FraudResult(score=score, decision=decision, reasons=reasons)
