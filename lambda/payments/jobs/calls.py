"""How a job counts the AWS requests it makes: one rule for the cleanup, the redrive and the restore
check, shown in each result's ``requests`` and used by the benchmarks' per-item ratios.

The count comes from botocore itself (the ``before-call`` event every API call emits, paginators
and failed calls included), not from bookkeeping beside each call, so a call added later is counted
without anyone remembering to. Keys are the operation's snake-case name (``update_item``,
``receive_message``), with a per-client prefix where two services share a result (``s3_put_object``).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore import xform_name

_ids = itertools.count(1)


class RequestCounter:
    """Counts requests per operation into ``counts`` (thread-safe: the cleanup's segment workers
    share one) while :meth:`watching` its clients."""

    def __init__(self, counts: Counter[str] | None = None) -> None:
        self.counts: Counter[str] = Counter() if counts is None else counts
        self._guard = threading.Lock()
        self._id = f"payments-request-counter-{next(_ids)}"

    def add(self, name: str, n: int = 1) -> None:
        with self._guard:
            self.counts[name] += n

    @contextmanager
    def watching(self, *clients: tuple[Any, str] | Any) -> Iterator[RequestCounter]:
        """Count every call made on ``clients`` (each a client, or ``(client, prefix)``) until the
        block ends; the handlers are removed then, so a client shared with later work (a warm
        Lambda's, the CLI's) is not counted twice."""
        registered: list[tuple[Any, str]] = []
        try:
            for entry in clients:
                client, prefix = entry if isinstance(entry, tuple) else (entry, "")
                if client is None:
                    continue
                unique_id = f"{self._id}-{len(registered)}"

                def count(prefix: str = prefix, **kwargs: Any) -> None:
                    self.add(prefix + xform_name(kwargs["model"].name))

                client.meta.events.register("before-call", count, unique_id=unique_id)
                registered.append((client, unique_id))
            yield self
        finally:
            for client, unique_id in registered:
                client.meta.events.unregister("before-call", unique_id=unique_id)
