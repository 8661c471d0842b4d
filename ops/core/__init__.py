"""Operator-side logic of the ``ops`` CLI that the Lambda jobs do not need (names, links, status, trace).

The jobs themselves (report, cleanup, redrive) live in :mod:`payments.jobs`; their error type is
the CLI's too, so one ``except`` turns every operational failure into exit code 1.
"""

from __future__ import annotations

from payments.jobs import JobError as OpsError

__all__ = ["OpsError"]
