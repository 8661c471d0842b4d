"""Queue references: a queue is named by URL, ARN or name (outputs, alarms, operators), and resolved
to its URL in one place."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class QueueNotFound(LookupError):
    """The reference names no queue this account can see (or is not a queue reference at all)."""


def queue_url(sqs: Any, ref: str) -> str:
    """The URL of the queue ``ref`` names: a URL as is, an ARN (another account's queue by its owner)
    or a name through GetQueueUrl. Raises ``QueueNotFound`` with the reason."""
    if ref.startswith(("https://", "http://")):
        return ref
    request: dict[str, str] = {"QueueName": ref}
    if ref.startswith("arn:"):
        parts = ref.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise QueueNotFound(f"not an SQS queue ARN: {ref}")
        request = {"QueueName": parts[5], "QueueOwnerAWSAccountId": parts[4]}
    try:
        return str(sqs.get_queue_url(**request)["QueueUrl"])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        why = f"{error.get('Code', 'ClientError')}: {error.get('Message', exc)}"
        raise QueueNotFound(f"queue {ref} not found ({why})") from exc
