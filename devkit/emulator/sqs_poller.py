"""Lambda's SQS event-source poller, emulated for the embedded moto server.

moto delivers an SQS mapping synchronously inside SendMessage, one message per invocation, ignores
``ReportBatchItemFailures`` (a returned ``batchItemFailures`` list still deletes the whole batch) and
never redelivers a failed message unless another one is sent. :func:`devkit.emulator.lambda_runtime.install`
therefore detaches new SQS mappings from moto's queue objects (:func:`detached_sqs_mapping_hook`; the
mapping itself stays visible through the Lambda API) and :class:`SqsEventSourcePoller` emulates the
Lambda poller for every mapping it finds through ListEventSourceMappings: batch size and batching
window, the real record shape, deletes on success, partial-batch failures, and a whole-batch failure
on a function error. The poller receives, deletes and re-times messages with the function's execution
role (as Lambda's poller does). Failed messages come back after ``failure_visibility_timeout`` seconds
instead of the queue's visibility timeout (time compression, see
:data:`DEFAULT_RETRY_VISIBILITY_SECONDS`); the receive count and the move to the DLQ after
maxReceiveCount are moto's own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import boto3
from botocore.config import Config
from moto.sqs.models import sqs_backends

from devkit.emulator.endpoints import emulator_clients

log = logging.getLogger(__name__)

RETRY_VISIBILITY_ENV = "OPS_EMULATOR_SQS_RETRY_VISIBILITY"
# Failed SQS messages come back after this many seconds in the emulator instead of the queue's visibility
# timeout (6 x the retry function's timeout = 6 minutes here), so three receives and the DLQ move take
# seconds, not 18 minutes. Set OPS_EMULATOR_SQS_RETRY_VISIBILITY=queue for AWS timing.
DEFAULT_RETRY_VISIBILITY_SECONDS = 2


def retry_visibility_from_env(environ: Mapping[str, str] | None = None) -> int | None:
    value = (environ if environ is not None else os.environ).get(RETRY_VISIBILITY_ENV, "").strip().lower()
    if not value:
        return DEFAULT_RETRY_VISIBILITY_SECONDS
    if value in ("queue", "off", "none"):
        return None
    seconds = int(value)
    if not 0 <= seconds <= 43200:
        raise ValueError(f"{RETRY_VISIBILITY_ENV} must be between 0 and 43200 seconds, got {seconds}")
    return seconds


class CredentialSource(Protocol):
    """Where the poller gets an execution role's credentials
    (:class:`devkit.emulator.lambda_runtime.RoleCredentials`)."""

    def get(self, role_arn: str, session_name: str) -> dict[str, str]: ...


class SqsEventSourcePoller:
    """Emulates Lambda's SQS poller for the mappings the Lambda API reports (see module docstring)."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str = "us-east-1",
        poll_interval: float = 0.2,
        refresh_interval: float = 2.0,
        failure_visibility_timeout: int | None = None,
        credentials: CredentialSource | None = None,
    ) -> None:
        config = Config(retries={"max_attempts": 1}, read_timeout=960, connect_timeout=5)
        self._config = config
        self._endpoint_url = endpoint_url
        self.credentials = credentials
        self._role_clients: dict[str, tuple[str, Any]] = {}
        self._function_roles: dict[str, str] = {}
        self._lambda, self._sqs = emulator_clients(
            endpoint_url, "lambda", "sqs", region=region, config=config
        )
        self.region = region
        self.poll_interval = poll_interval
        self.refresh_interval = refresh_interval
        self.failure_visibility_timeout = failure_visibility_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue_urls: dict[str, str] = {}
        self.batches_delivered = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="sqs-esm-poller")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _mappings(self) -> list[dict[str, Any]]:
        mappings: list[dict[str, Any]] = []
        for page in self._lambda.get_paginator("list_event_source_mappings").paginate():
            mappings.extend(page.get("EventSourceMappings", []))
        return [
            m
            for m in mappings
            if m.get("State") == "Enabled" and str(m.get("EventSourceArn", "")).startswith("arn:aws:sqs:")
        ]

    def _sqs_for(self, function_arn: str) -> Any:
        """An SQS client with the function's execution role (Lambda's poller uses it), or the admin one."""
        if self.credentials is None:
            return self._sqs
        role = self._function_roles.get(function_arn)
        if role is None:
            role = str(self._lambda.get_function_configuration(FunctionName=function_arn).get("Role") or "")
            self._function_roles[function_arn] = role
        issued = self.credentials.get(role, "awslambda-sqs-poller")
        key_id, client = self._role_clients.get(role, ("", None))
        if client is None or key_id != issued["AWS_ACCESS_KEY_ID"]:
            client = boto3.session.Session(
                aws_access_key_id=issued["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=issued["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=issued["AWS_SESSION_TOKEN"],
                region_name=self.region,
            ).client("sqs", endpoint_url=self._endpoint_url, config=self._config)
            self._role_clients[role] = (issued["AWS_ACCESS_KEY_ID"], client)
        return client

    def _loop(self) -> None:
        mappings: list[dict[str, Any]] = []
        refreshed = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() - refreshed > self.refresh_interval:
                    mappings = self._mappings()
                    self._function_roles.clear()
                    refreshed = time.monotonic()
            except Exception as exc:  # the emulator may be shutting down; keep polling until told to stop
                self.last_error = repr(exc)
                log.debug("SQS poller: %r", exc)
            delivered = 0
            for mapping in mappings:
                # Each mapping on its own, as Lambda polls them: one that fails (its role may not read
                # its queue, its function may be gone) must not starve the mappings listed after it.
                try:
                    delivered += self.poll_once(mapping)
                except Exception as exc:  # reported through last_error; the next poll tries again
                    self.last_error = f"{mapping.get('UUID')}: {exc!r}"
                    log.debug("SQS poller, mapping %s: %r", mapping.get("UUID"), exc)
            if not delivered:
                self._stop.wait(self.poll_interval)

    def _queue_url(self, queue_arn: str) -> str:
        if queue_arn not in self._queue_urls:
            _, _, _, _, account, name = queue_arn.split(":", 5)
            self._queue_urls[queue_arn] = self._sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account
            )["QueueUrl"]
        return self._queue_urls[queue_arn]

    def _receive(self, sqs: Any, queue_url: str, batch_size: int, window: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + window
        while len(messages) < batch_size:
            page = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, batch_size - len(messages)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(page)
            if not page:
                if not messages or time.monotonic() >= deadline or self._stop.is_set():
                    break
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        return messages

    def _record(self, message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
        attributes = dict(message.get("Attributes", {}))
        message_attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": base64.b64encode(value["BinaryValue"]).decode()
                if "BinaryValue" in value
                else None,
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.region,
        }

    def poll_once(self, mapping: dict[str, Any]) -> int:
        """Deliver at most one batch for the mapping; return how many messages were delivered."""
        queue_arn = mapping["EventSourceArn"]
        # Disabling a mapping takes effect before the next poll, not at the next list refresh.
        current = self._lambda.get_event_source_mapping(UUID=mapping["UUID"])
        if current.get("State") != "Enabled":
            return 0
        mapping = {**mapping, **current}
        queue_url = self._queue_url(queue_arn)
        batch_size = int(mapping.get("BatchSize") or 10)
        window = int(mapping.get("MaximumBatchingWindowInSeconds") or 0)
        sqs = self._sqs_for(mapping["FunctionArn"])
        messages = self._receive(sqs, queue_url, batch_size, window)
        if not messages:
            return 0
        event = {"Records": [self._record(m, queue_arn) for m in messages]}
        response = self._lambda.invoke(
            FunctionName=mapping["FunctionArn"], Payload=json.dumps(event).encode()
        )
        body = response["Payload"].read()
        failed = self._failed_ids(mapping, response.get("FunctionError"), body, messages)
        receipts = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        done = [(mid, rh) for mid, rh in receipts.items() if mid not in failed]
        for chunk in _chunks(done, 10):
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": rh} for i, (_, rh) in enumerate(chunk)],
            )
        if failed and self.failure_visibility_timeout is not None:
            retry = [(mid, rh) for mid, rh in receipts.items() if mid in failed]
            for chunk in _chunks(retry, 10):
                sqs.change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": rh,
                            "VisibilityTimeout": self.failure_visibility_timeout,
                        }
                        for i, (_, rh) in enumerate(chunk)
                    ],
                )
        self.batches_delivered += 1
        return len(messages)

    @staticmethod
    def _failed_ids(
        mapping: dict[str, Any], function_error: str | None, body: bytes, messages: list[dict[str, Any]]
    ) -> set[str]:
        every = {m["MessageId"] for m in messages}
        if function_error:
            return every
        if "ReportBatchItemFailures" not in (mapping.get("FunctionResponseTypes") or []):
            return set()
        try:
            result = json.loads(body) if body else None
        except ValueError:
            return every
        if not isinstance(result, dict) or not result.get("batchItemFailures"):
            return set()
        failures = result["batchItemFailures"]
        ids = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
        # Lambda treats a malformed partial response (unknown or empty identifier) as a whole-batch failure.
        if not all(isinstance(i, str) and i in every for i in ids) or len(ids) != len(failures):
            return every
        return {str(i) for i in ids}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def detached_sqs_mapping_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    """Create mappings as moto does, but take SQS ones off the queue: the poller delivers them."""

    def create_event_source_mapping(backend: Any, spec: dict[str, Any]) -> Any:
        esm = original(backend, spec)
        if str(esm.event_source_arn).startswith("arn:aws:sqs:"):
            for queue in sqs_backends[backend.account_id][backend.region_name].queues.values():
                if queue.queue_arn == esm.event_source_arn:
                    queue.lambda_event_source_mappings.pop(esm.function_arn, None)
        return esm

    return create_event_source_mapping
