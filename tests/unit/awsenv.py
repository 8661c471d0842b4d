"""Builds the platform's AWS resources in moto (in-process) with the names from docs/interfaces.md.

Shared by the unit tests and ``bench/handlers.py``: the handlers run against real (emulated)
tables, queues, topics, bucket, parameters and state machine — no fakes of our own code.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.support import tables
from tests.support.aws import create_service_role

REGION = "us-east-1"
SUFFIX = "test"
ACCOUNT = "123456789012"
API_KEY_ID = "key-mobile-1"
# What a client sends in x-api-key; the log test proves it never reaches the logs.
API_KEY_VALUE = "Zq3mK8vT1xW9yB4nR6pL2sD7fG5hJ0aC"

FRAUD_RULES = {
    "amount_thresholds": {"default": "10000"},
    "velocity_window_minutes": 60,
    "velocity_max": 10,
    "blocked_countries": ["CN", "RU", "KP", "IR"],
    "blocked_merchants": ["merch_blocked"],
    "reject_score": 70,
}


def names() -> dict[str, str]:
    s = SUFFIX
    return {
        "ENVIRONMENT_SUFFIX": s,
        "TRANSACTIONS_TABLE": f"payment-transactions-{s}",
        "AUDIT_TABLE": f"payment-audit-{s}",
        "IDEMPOTENCY_TABLE": f"payment-idempotency-{s}",
        "CLIENTS_TABLE": f"payment-clients-{s}",
        "BY_DAY_INDEX": "by-day",
        "BY_CUSTOMER_INDEX": "by-customer",
        "BY_MERCHANT_INDEX": "by-merchant",
        "DAY_SHARDS": "16",
        "AUDIT_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/transaction-queue-{s}.fifo",
        "FAILED_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/failed-transactions-{s}",
        "DLQ_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/failed-transactions-dlq-{s}",
        "ALERTS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:payment-alerts-{s}",
        "EVENTS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:payment-events-{s}",
        "FAILED_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:payment-failed-{s}",
        "ARCHIVE_BUCKET": f"payment-archive-{s}-{ACCOUNT}",
        "STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:payment-workflow-{s}",
        "PROCESSOR_ENDPOINT_PARAM": f"/payment-{s}/processor/endpoint",
        "PROCESSOR_CREDENTIALS_PARAM": f"/payment-{s}/processor/credentials",
        "FRAUD_RULES_PARAM": f"/payment-{s}/fraud/rules",
        "AUDIT_TTL_DAYS": "90",
        "IDEMPOTENCY_TTL_HOURS": "24",
        "ALARM_NAME_PREFIX": "payment-",
        "CORS_ALLOWED_ORIGINS": "https://app.example.com,https://admin.example.com",
        # The handler tests call the API functions without the gateway, so without the authorizer's
        # principal; tests/unit/test_authorizer.py turns it on to prove the deployed default.
        "REQUIRE_PRINCIPAL": "false",
        "POWERTOOLS_SERVICE_NAME": "payment-test",
        "POWERTOOLS_METRICS_NAMESPACE": "PaymentPlatform",
        "LOG_LEVEL": "INFO",
    }


def process_env() -> dict[str, str]:
    return {
        **names(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@dataclass(repr=False)
class AwsEnv:
    """Handles on the emulated platform plus helpers the tests assert with."""

    n: dict[str, str]
    ddb: Any
    sqs: Any
    sns: Any
    s3: Any
    ssm: Any
    sfn: Any
    cloudwatch: Any
    observers: dict[str, str] = field(default_factory=dict)  # topic role -> observer queue url

    # -- state inspection ----------------------------------------------------
    def scan(self, table_var: str) -> list[dict[str, Any]]:
        from payments.store.repository import from_attributes

        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.n[table_var], "ConsistentRead": True}
        for _ in range(1000):
            page = self.ddb.scan(**kwargs)
            items.extend(from_attributes(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items

    def count(self, table_var: str) -> int:
        return int(self.ddb.scan(TableName=self.n[table_var], Select="COUNT")["Count"])

    def transactions(self) -> list[dict[str, Any]]:
        return self.scan("TRANSACTIONS_TABLE")

    def audit(self, transaction_id: str | None = None) -> list[dict[str, Any]]:
        items = self.scan("AUDIT_TABLE")
        if transaction_id is not None:
            items = [i for i in items if i["transaction_id"] == transaction_id]
        return sorted(items, key=lambda i: i["event_id"])

    def drain(self, queue_url: str, limit: int = 200) -> list[dict[str, Any]]:
        """Receive (and delete) up to ``limit`` messages, with attributes."""
        out: list[dict[str, Any]] = []
        for _ in range(limit // 10 + 2):
            page = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            )
            messages = page.get("Messages", [])
            if not messages:
                break
            out.extend(messages)
            self.sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            if len(out) >= limit:
                break
        return out

    def audit_stream(self) -> list[dict[str, Any]]:
        return self.drain(self.n["AUDIT_QUEUE_URL"])

    def notifications(self, role: str) -> list[dict[str, Any]]:
        """SNS envelopes delivered to the observer queue subscribed to topic ``role``."""
        return [json.loads(m["Body"]) for m in self.drain(self.observers[role])]

    def executions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"stateMachineArn": self.n["STATE_MACHINE_ARN"], "maxResults": 1000}
        for _ in range(100):
            page = self.sfn.list_executions(**kwargs)
            out.extend(page.get("executions", []))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return out

    def queue_depth(self, queue_url: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def set_processor(self, endpoint: str) -> None:
        self.ssm.put_parameter(
            Name=self.n["PROCESSOR_ENDPOINT_PARAM"], Value=endpoint, Type="String", Overwrite=True
        )
        _forget_parameters()

    def set_fraud_rules(self, rules: Mapping[str, Any]) -> None:
        self.ssm.put_parameter(
            Name=self.n["FRAUD_RULES_PARAM"], Value=json.dumps(rules), Type="String", Overwrite=True
        )
        _forget_parameters()


def _forget_parameters() -> None:
    from payments.handlers import _runtime

    _runtime.reset(keep_clients=True)


_CLIENTS: dict[str, Any] = {}


def _client(service: str) -> Any:
    # Clients are reused across builds (moto intercepts every client created after it is
    # imported); creating eight per test would dominate the unit-test run time.
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.session.Session(region_name=REGION).client(service)  # type: ignore[call-overload]
    return _CLIENTS[service]


def build(n: Mapping[str, str] | None = None) -> AwsEnv:
    """Create every resource (call inside an active ``mock_aws``)."""
    n = dict(n or names())
    ddb, sqs, sns, s3, ssm, sfn, iam, cloudwatch = (
        _client(s) for s in ("dynamodb", "sqs", "sns", "s3", "ssm", "stepfunctions", "iam", "cloudwatch")
    )

    tables.create_table(ddb, tables.TRANSACTIONS, n["TRANSACTIONS_TABLE"])
    tables.create_table(ddb, tables.AUDIT, n["AUDIT_TABLE"])
    tables.create_table(ddb, tables.IDEMPOTENCY, n["IDEMPOTENCY_TABLE"])
    tables.create_table(ddb, tables.CLIENTS, n["CLIENTS_TABLE"])

    dlq = sqs.create_queue(QueueName=f"failed-transactions-dlq-{SUFFIX}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(
        QueueName=f"failed-transactions-{SUFFIX}",
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )
    sqs.create_queue(
        QueueName=f"transaction-queue-{SUFFIX}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )

    env = AwsEnv(n=n, ddb=ddb, sqs=sqs, sns=sns, s3=s3, ssm=ssm, sfn=sfn, cloudwatch=cloudwatch)
    for role in ("alerts", "events", "failed"):
        topic = sns.create_topic(Name=f"payment-{role}-{SUFFIX}")["TopicArn"]
        observer = sqs.create_queue(QueueName=f"observer-{role}-{SUFFIX}")["QueueUrl"]
        observer_arn = sqs.get_queue_attributes(QueueUrl=observer, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=observer_arn)
        env.observers[role] = observer

    # The data CMK's ARN; moto does not need the key to exist to apply bucket encryption.
    key_id = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5f0e3c1a-7d2b-4c8e-9a61-2b7f4d9e0c13"
    s3.create_bucket(Bucket=n["ARCHIVE_BUCKET"])
    s3.put_bucket_encryption(
        Bucket=n["ARCHIVE_BUCKET"],
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_id,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )

    ssm.put_parameter(Name=n["PROCESSOR_ENDPOINT_PARAM"], Value="sim://approve", Type="String")
    ssm.put_parameter(
        Name=n["PROCESSOR_CREDENTIALS_PARAM"], Value="placeholder-credential", Type="SecureString"
    )
    ssm.put_parameter(Name=n["FRAUD_RULES_PARAM"], Value=json.dumps(FRAUD_RULES), Type="String")

    role_arn = create_service_role(iam, f"payment-workflow-{SUFFIX}", "states.amazonaws.com")
    sfn.create_state_machine(
        name=f"payment-workflow-{SUFFIX}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=role_arn,
    )
    return env


@contextmanager
def environment() -> Iterator[None]:
    """Process environment for the handlers (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in process_env()}
    os.environ.update(process_env())
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------- events


@dataclass
class FakeContext:
    """The attributes of a Lambda context object the handlers read."""

    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    function_name: str = f"payment-intake-{SUFFIX}"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:payment-intake-{SUFFIX}"
    log_group_name: str = f"/aws/lambda/payment-intake-{SUFFIX}"
    log_stream_name: str = "2026/11/23/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


_request_counter = iter(range(1, 10**9))


def api_event(
    method: str,
    resource: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    api_key_id: str | None = API_KEY_ID,
    raw_body: str | None = None,
    base64: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST (Lambda proxy) event as the gateway sends it."""
    all_headers = {
        "Content-Type": "application/json",
        "x-api-key": API_KEY_VALUE,
        "Origin": "https://app.example.com",
    }
    if idempotency_key is not None:
        all_headers["Idempotency-Key"] = idempotency_key
    all_headers.update(headers or {})
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    if base64 and text is not None:
        text = _b64(text)
    path = resource
    for k, v in (path_parameters or {}).items():
        path = path.replace("{" + k + "}", v)
    request_id = f"req-{next(_request_counter):08d}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "prod",
            "requestId": request_id,
            "identity": {"apiKeyId": api_key_id, "apiKey": API_KEY_VALUE, "sourceIp": "198.51.100.7"},
        },
        "body": text,
        "isBase64Encoded": base64,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def payment(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_id": "merch_123",
        "customer_id": "cust_456",
        "amount": "100.50",
        "currency": "USD",
        "payment_method": {"type": "card", "token": "tok_visa_4242"},
        "description": "Order 1001",
        "reference": "order-1001",
        "country": "US",
        "metadata": {"order_id": "1001"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def body_of(response: Mapping[str, Any]) -> Any:
    return json.loads(response["body"])
