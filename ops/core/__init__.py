"""Operator-side logic of the ``ops`` CLI that the Lambda jobs do not need (names, links, status, trace).

The jobs themselves (report, cleanup, redrive) live in :mod:`payments.jobs` and raise ``JobError``.
``OpsError`` is the operator side's own failure (a name that resolves to nothing, a refused restore):
a kind of ``JobError``, so the CLI's one ``except JobError`` turns every operational failure into
exit code 1.
"""

from __future__ import annotations

from payments.jobs import JobError


class OpsError(JobError):
    """An operator-side failure (names, links, status, trace, clients, restore)."""


__all__ = ["JobError", "OpsError"]
