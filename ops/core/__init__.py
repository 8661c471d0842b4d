"""Operational logic shared by the ``ops`` CLI and the scheduled Lambda jobs (boto3 + stdlib only)."""

from __future__ import annotations


class OpsError(Exception):
    """An operation failed in a way the operator must act on (reported, exit code 1)."""
