"""The platform's batch jobs: the daily report, retention cleanup and DLQ redrive.

One implementation serves the scheduled Lambdas (``payments.handlers.report`` and ``cleanup``)
and the operator CLI (``ops report``, ``ops cleanup``, ``ops redrive``). boto3 and the standard
library only, so it runs in the Lambda zip and in a plain ``pip install``.
"""

from __future__ import annotations


class JobError(Exception):
    """A job failed in a way the operator must act on (the CLI reports it and exits 1)."""
