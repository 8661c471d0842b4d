"""Time-ordered transaction ids: ``txn_`` + a 26-character ULID (Crockford base32).

48 bits of epoch milliseconds followed by 80 random bits. Within one millisecond the
random part is incremented, so ids issued by one container sort in creation order; the
timestamp can be read back from the id (used as the table's sort key).
"""

from __future__ import annotations

import re
import secrets
import threading

from payments.clock import now_ms

PREFIX = "txn_"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
ID_PATTERN = re.compile(r"^txn_[0-7][0-9A-HJKMNP-TV-Z]{25}$")

_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_transaction_id(epoch_ms: int | None = None) -> str:
    global _last_ms, _last_random
    ms = now_ms() if epoch_ms is None else epoch_ms
    with _lock:
        # Same millisecond: increment, so ids from one container stay strictly ordered.
        rand = (_last_random + 1) & ((1 << 80) - 1) if ms == _last_ms else secrets.randbits(80)
        _last_ms, _last_random = ms, rand
    return PREFIX + _encode(ms & ((1 << 48) - 1), 10) + _encode(rand, 16)


def is_transaction_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))


def timestamp_of(transaction_id: str) -> int:
    """Epoch milliseconds encoded in a transaction id (raises ValueError if malformed)."""
    if not is_transaction_id(transaction_id):
        raise ValueError("not a transaction id")
    value = 0
    for ch in transaction_id[len(PREFIX) : len(PREFIX) + 10]:
        value = (value << 5) | _DECODE[ch]
    return value


def new_owner_token() -> str:
    """A random token naming one actor invocation (the settlement lease owner)."""
    return secrets.token_hex(12)
