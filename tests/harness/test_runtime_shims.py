"""Run-time shims: Step Functions JSONPath, S3 bucket-policy conditions, DescribeAlarms filters."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.iam.access_control import PermissionResult

from devkit.emulator.shims.runtime import condition_holds, evaluate_policy

TLS_ONLY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
KMS_ONLY_IF_EXISTS = {
    "Sid": "DenyNonKmsEncryption",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::bkt/*",
    "Condition": {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]}
    },
}
# Deny only a header that is present and not KMS: uploads relying on default encryption pass.
KMS_ONLY_WHEN_SENT = {
    **KMS_ONLY_IF_EXISTS,
    "Condition": {
        "StringNotEquals": {"s3:x-amz-server-side-encryption": ["aws:kms", "aws:kms:dsse"]},
        "Null": {"s3:x-amz-server-side-encryption": "false"},
    },
}


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "holds"),
    [
        ("Bool", "false", "true", False),
        ("Bool", "false", None, False),
        ("BoolIfExists", "false", None, True),
        ("StringEquals", ["a", "b"], "b", True),
        ("StringEquals", "a", None, False),
        ("StringNotEquals", ["aws:kms"], None, True),  # negated operators hold for an absent key
        ("StringNotEquals", ["aws:kms"], "AES256", True),
        ("StringNotEquals", ["aws:kms"], "aws:kms", False),
        ("StringNotEqualsIfExists", ["aws:kms"], None, True),
        ("StringLike", "arn:aws:sqs:*", "arn:aws:sqs:us-east-1:1:q", True),
        ("ArnNotLike", "arn:aws:sns:*", "arn:aws:sqs:us-east-1:1:q", True),
        ("Null", "true", None, True),
        ("Null", "false", None, False),
        ("ForAnyValue:StringEquals", ["x"], "x", True),
        ("NumericLessThan", "5", "3", None),
    ],
)
def test_condition_semantics(operator: str, expected: Any, actual: str | None, holds: bool | None) -> None:
    assert condition_holds(operator, expected, actual) is holds


def test_policy_evaluation() -> None:
    tls = {"Statement": [TLS_ONLY]}
    over_tls = {"aws:SecureTransport": "true"}
    assert evaluate_policy(tls, "s3:PutObject", "arn:aws:s3:::bkt/k", over_tls) == PermissionResult.NEUTRAL
    assert (
        evaluate_policy(tls, "s3:PutObject", "arn:aws:s3:::bkt/k", {"aws:SecureTransport": "false"})
        == PermissionResult.DENIED
    )
    if_exists = {"Statement": [TLS_ONLY, KMS_ONLY_IF_EXISTS]}
    assert (
        evaluate_policy(if_exists, "s3:PutObject", "arn:aws:s3:::bkt/k", over_tls) == PermissionResult.DENIED
    )
    with_header = {**over_tls, "s3:x-amz-server-side-encryption": "aws:kms"}
    assert (
        evaluate_policy(if_exists, "s3:PutObject", "arn:aws:s3:::bkt/k", with_header)
        == PermissionResult.NEUTRAL
    )
    when_sent = {"Statement": [TLS_ONLY, KMS_ONLY_WHEN_SENT]}
    assert (
        evaluate_policy(when_sent, "s3:PutObject", "arn:aws:s3:::bkt/k", over_tls) == PermissionResult.NEUTRAL
    )
    downgrade = {**over_tls, "s3:x-amz-server-side-encryption": "AES256"}
    assert (
        evaluate_policy(when_sent, "s3:PutObject", "arn:aws:s3:::bkt/k", downgrade) == PermissionResult.DENIED
    )
    assert (
        evaluate_policy(when_sent, "s3:GetObject", "arn:aws:s3:::bkt/k", over_tls) == PermissionResult.NEUTRAL
    )
    allow = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:Get*", "Resource": "*"}]
    }
    assert (
        evaluate_policy(allow, "s3:GetObject", "arn:aws:s3:::bkt/k", over_tls) == PermissionResult.PERMITTED
    )
    someone = {"Statement": [{**TLS_ONLY, "Principal": {"AWS": "arn:aws:iam::1:root"}, "Condition": {}}]}
    assert (
        evaluate_policy(someone, "s3:GetObject", "arn:aws:s3:::bkt/k", over_tls) == PermissionResult.NEUTRAL
    )


def _bucket(emulator: Any, *statements: dict[str, Any]) -> tuple[Any, str]:
    s3 = emulator.client("s3")
    name = f"harness-policy-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [json.loads(json.dumps(st).replace("bkt", name)) for st in statements],
        }
    )
    s3.put_bucket_policy(Bucket=name, Policy=document)
    return s3, name


def test_tls_only_bucket_accepts_requests_to_the_emulator(moto_emulator: Any) -> None:
    s3, name = _bucket(moto_emulator, TLS_ONLY, KMS_ONLY_WHEN_SENT)
    s3.put_object(Bucket=name, Key="a.json", Body=b"{}")
    assert s3.get_object(Bucket=name, Key="a.json")["Body"].read() == b"{}"
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=name, Key="b.json", Body=b"{}", ServerSideEncryption="AES256")


def test_if_exists_deny_refuses_uploads_without_the_header(moto_emulator: Any) -> None:
    s3, name = _bucket(moto_emulator, TLS_ONLY, KMS_ONLY_IF_EXISTS)
    with pytest.raises(ClientError, match="403"):
        s3.put_object(Bucket=name, Key="a.json", Body=b"{}")
    s3.put_object(Bucket=name, Key="a.json", Body=b"{}", ServerSideEncryption="aws:kms")


def test_describe_alarms_applies_every_filter(moto_emulator: Any) -> None:
    cloudwatch = moto_emulator.client("cloudwatch")
    prefix = f"harness-{uuid.uuid4().hex[:6]}-"
    for name in ("quiet", "firing"):
        cloudwatch.put_metric_alarm(
            AlarmName=prefix + name,
            MetricName="Errors",
            Namespace="AWS/Lambda",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName=prefix + "firing", StateValue="ALARM", StateReason="test")
    found = cloudwatch.describe_alarms(AlarmNamePrefix=prefix, StateValue="ALARM")["MetricAlarms"]
    assert [a["AlarmName"] for a in found] == [prefix + "firing"]
    assert len(cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]) == 2
