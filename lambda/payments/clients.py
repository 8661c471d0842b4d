"""AWS clients, created once per container on first use and shared by every invocation.

Lazily, so importing a handler costs no client construction and tests can swap the
environment (moto) before the first call. ``reset()`` forgets them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from payments.config import get_settings
from payments.sdkconfig import ClientCache, client_config

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sfn import SFNClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

# Keep the total bounded so an API caller gets a 503 + Retry-After well inside the gateway's
# 29 s limit.
_CONFIG = client_config(max_attempts=3, connect_timeout=3, read_timeout=10)

_lock = threading.Lock()
_ssm_provider: SSMProvider | None = None

# Error codes meaning "AWS is throttling us or briefly unavailable": answer 503 + Retry-After.
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "TransactionInProgressException",
    }
)


_CLIENTS = ClientCache(_CONFIG, region=lambda: get_settings().region)
_client = _CLIENTS.get


# One accessor per service, all the same cached ``_client``; only the static type differs.
dynamodb: Callable[[], DynamoDBClient] = functools.partial(_client, "dynamodb")
sqs: Callable[[], SQSClient] = functools.partial(_client, "sqs")
sns: Callable[[], SNSClient] = functools.partial(_client, "sns")
s3: Callable[[], S3Client] = functools.partial(_client, "s3")
stepfunctions: Callable[[], SFNClient] = functools.partial(_client, "stepfunctions")
cloudwatch: Callable[[], CloudWatchClient] = functools.partial(_client, "cloudwatch")
ssm: Callable[[], SSMClient] = functools.partial(_client, "ssm")


def parameters() -> SSMProvider:
    """Powertools SSM provider over this container's SSM client (values cached by max_age)."""
    global _ssm_provider  # noqa: PLW0603 - one provider per container
    if _ssm_provider is None:
        from aws_lambda_powertools.utilities.parameters import SSMProvider  # noqa: PLC0415 - cold path only

        with _lock:
            if _ssm_provider is None:
                _ssm_provider = SSMProvider(boto3_client=ssm())  # a botocore client is what it calls
    return _ssm_provider


def forget_parameters() -> None:
    """Drop cached parameter values: the next read goes to SSM."""
    global _ssm_provider  # noqa: PLW0603
    with _lock:
        _ssm_provider = None


def reset() -> None:
    """Forget every client and cached parameter (tests, or after credentials rotate)."""
    _CLIENTS.reset()
    forget_parameters()


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is AWS throttling or a transient service/network failure."""
    if isinstance(
        exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
    ):
        return True
    if isinstance(exc, ClientError):
        if error_code(exc) in RETRYABLE_CODES:
            return True
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status in (500, 502, 503, 504)
    cause = exc.__cause__
    return cause is not None and cause is not exc and is_retryable(cause)
