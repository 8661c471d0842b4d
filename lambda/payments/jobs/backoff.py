"""Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter")."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before retry ``attempt`` (1-based) is uniform in [0, min(cap, base * 2**attempt)].

    Full jitter spreads the retries of parallel workers (scan segments) so they do not hit a
    throttled partition in lock-step.
    """

    base_s: float = 0.05
    cap_s: float = 5.0
    max_attempts: int = 8
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int) -> float:
        return self.rng() * min(self.cap_s, self.base_s * (2**attempt))

    def wait(self, attempt: int) -> float:
        seconds = self.delay(attempt)
        self.sleep(seconds)
        return seconds
