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
        raw = self.amount_thresholds.get(currency, self.amount_thresholds.get("default", "10000"))
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
