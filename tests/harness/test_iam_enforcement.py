"""IAM at run time in the embedded emulator: functions call AWS with their own role; grants are enforced."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import botocore.exceptions
import pytest

from devkit.emulator import iam_enforcement
from devkit.emulator.iam_enforcement import Request, evaluate, requested
from devkit.emulator.lambda_runtime import lambda_may_assume
from tests.harness import make_zip
from tests.support.aws import trust_policy

REGION, ACCOUNT = "us-east-1", "123456789012"

CALLER = {
    "handlers/__init__.py": "",
    "handlers/caller.py": """
        import json, os, boto3

        def handler(event, context):
            identity = boto3.client("sts").get_caller_identity()["Arn"]
            if event.get("param"):
                ssm = boto3.client("ssm")
                ssm.put_parameter(Name=event["param"], Value="v", Type="String", Overwrite=True)
            if event.get("transact"):
                boto3.client("dynamodb").transact_write_items(TransactItems=event["transact"])
            return {"identity": identity, "token": bool(os.environ.get("AWS_SESSION_TOKEN")),
                    "key": os.environ["AWS_ACCESS_KEY_ID"]}
    """,
}

TRUST = trust_policy()


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# -- the evaluator --------------------------------------------------------------------------------------


def test_explicit_deny_beats_allow_and_default_is_deny() -> None:
    allow = {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:*:*:parameter/app/*"}
    deny = {"Effect": "Deny", "Action": "ssm:*", "Resource": "arn:aws:ssm:*:*:parameter/app/secret"}
    docs = [_doc(allow), _doc(deny)]
    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/"
    assert evaluate(docs, Request("ssm:GetParameter", arn + "name")) == "allow"
    assert evaluate(docs, Request("ssm:GetParameter", arn + "secret")) == "explicit-deny"
    assert evaluate(docs, Request("ssm:PutParameter", arn + "name")) == "implicit-deny"
    assert evaluate(docs, Request("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/other")) == (
        "implicit-deny"
    )


def test_actions_match_case_insensitively_resources_exactly() -> None:
    docs = [_doc({"Effect": "Allow", "Action": ["SQS:sendmessage"], "Resource": "arn:aws:sqs:*:*:Queue-?"})]
    assert evaluate(docs, Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:Queue-1")) == "allow"
    assert evaluate(docs, Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:queue-1")) == "implicit-deny"
    assert evaluate(docs, Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:Queue-12")) == "implicit-deny"


def test_not_action_not_resource_and_conditions() -> None:
    docs = [
        _doc(
            {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::private/*"},
            # A conditioned Deny is not evaluated (documented gap), so it never denies here.
            {
                "Effect": "Deny",
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {"Bool": {"x": "true"}},
            },
        )
    ]
    assert evaluate(docs, Request("s3:GetObject", "arn:aws:s3:::public/a")) == "allow"
    assert evaluate(docs, Request("s3:GetObject", "arn:aws:s3:::private/a")) == "implicit-deny"
    assert evaluate(docs, Request("iam:PassRole", "*")) == "implicit-deny"
    assert evaluate(docs, Request("sns:Publish", "arn:aws:sns:us-east-1:1:t")) == "allow"


def test_requests_derive_the_resources_aws_authorizes() -> None:
    items = [
        {"Put": {"TableName": "tx", "Item": {}}},
        {"Update": {"TableName": "audit", "Key": {}}},
        {"ConditionCheck": {"TableName": "tx", "Key": {}}},
    ]
    got = requested(
        "dynamodb", "TransactWriteItems", {"TransactItems": items}, path="/", region=REGION, account=ACCOUNT
    )
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    assert got == [
        Request("dynamodb:PutItem", table + "tx"),
        Request("dynamodb:UpdateItem", table + "audit"),
        Request("dynamodb:ConditionCheckItem", table + "tx"),
    ]
    query = requested(
        "dynamodb",
        "Query",
        {"TableName": "tx", "IndexName": "by-day"},
        path="/",
        region=REGION,
        account=ACCOUNT,
    )
    assert query == [Request("dynamodb:Query", table + "tx/index/by-day")]
    sqs = requested(
        "sqs",
        "SendMessage",
        {"QueueUrl": f"http://127.0.0.1:5000/{ACCOUNT}/q.fifo"},
        path="/",
        region=REGION,
        account=ACCOUNT,
    )
    assert sqs == [Request("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q.fifo")]
    alarms = requested(
        "monitoring",
        "DescribeAlarms",
        {"AlarmNamePrefix": "payment-"},
        path="/",
        region=REGION,
        account=ACCOUNT,
    )
    # Listing by prefix is authorized on every alarm, so a grant on alarm:payment-* does not cover it.
    assert alarms == [Request("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:*")]
    assert requested("ssm", "GetParameter", {"Name": "/a/b"}, path="/", region=REGION, account=ACCOUNT) == [
        Request("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/a/b")
    ]


def test_trust_policy_must_name_the_lambda_service() -> None:
    assert lambda_may_assume(TRUST)
    other = json.loads(json.dumps(TRUST).replace("lambda.amazonaws.com", "states.amazonaws.com"))
    assert not lambda_may_assume(other)
    denied = json.loads(json.dumps(TRUST).replace('"Allow"', '"Deny"'))
    assert not lambda_may_assume(denied)


# -- in the emulator --------------------------------------------------------------------------------------


@pytest.fixture
def role_function(moto_emulator: Any) -> Callable[..., tuple[str, str]]:
    """Create (role with ``policy``, function running CALLER under it); returns (role name, function name)."""
    iam, lam = moto_emulator.client("iam"), moto_emulator.client("lambda")

    def create(policy: dict[str, Any] | None, trust: dict[str, Any] = TRUST) -> tuple[str, str]:
        name = f"harness-iam-{uuid.uuid4().hex[:8]}"
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        if policy is not None:
            iam.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=json.dumps(policy))
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="handlers.caller.handler",
            Code={"ZipFile": make_zip(CALLER)},
            Timeout=20,
        )
        return name, name

    return create


def _invoke(emulator: Any, name: str, payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    response = emulator.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def test_enforcement_is_on_in_the_session_emulator(moto_emulator: Any) -> None:
    assert moto_emulator.iam_enforced and iam_enforcement.enabled()


def test_function_runs_with_its_role_and_a_missing_grant_fails(
    moto_emulator: Any, role_function: Callable[..., tuple[str, str]]
) -> None:
    scoped = _doc(
        {
            "Effect": "Allow",
            "Action": "ssm:PutParameter",
            "Resource": "arn:aws:ssm:*:*:parameter/harness/iam/ok/*",
        }
    )
    role, fn = role_function(scoped)
    error, result = _invoke(moto_emulator, fn, {"param": "/harness/iam/ok/a"})
    assert error is None, result
    assert result["identity"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{fn}"
    assert result["token"] and result["key"] != "test"

    # Outside the granted resource scope: AccessDenied reaches the handler, the invocation fails.
    error, result = _invoke(moto_emulator, fn, {"param": "/harness/iam/elsewhere"})
    assert error == "Unhandled"
    assert "AccessDenied" in result["errorMessage"] and "ssm:PutParameter" in result["errorMessage"]

    # Grants changed through the IAM API take effect on the next call, both ways.
    iam = moto_emulator.client("iam")
    iam.put_role_policy(
        RoleName=role,
        PolicyName="grants",
        PolicyDocument=json.dumps(_doc({"Effect": "Allow", "Action": "ssm:PutParameter", "Resource": "*"})),
    )
    assert _invoke(moto_emulator, fn, {"param": "/harness/iam/elsewhere"})[0] is None
    iam.delete_role_policy(RoleName=role, PolicyName="grants")
    error, result = _invoke(moto_emulator, fn, {"param": "/harness/iam/ok/a"})
    assert error == "Unhandled" and "AccessDenied" in result["errorMessage"]


def test_transactions_are_authorized_per_item(
    moto_emulator: Any, role_function: Callable[..., tuple[str, str]]
) -> None:
    ddb = moto_emulator.client("dynamodb")
    tables = [f"harness-iam-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for table in tables:
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
    _, fn = role_function(
        _doc({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": arn + tables[0]})
    )
    put = {"Put": {"TableName": tables[0], "Item": {"k": {"S": "a"}}}}
    assert _invoke(moto_emulator, fn, {"transact": [put]})[0] is None
    update = {
        "Update": {
            "TableName": tables[1],
            "Key": {"k": {"S": "b"}},
            "UpdateExpression": "SET v = :v",
            "ExpressionAttributeValues": {":v": {"S": "x"}},
        }
    }
    error, result = _invoke(moto_emulator, fn, {"transact": [put, update]})
    assert error == "Unhandled"
    assert (
        "AccessDeniedException" in result["errorMessage"] and "dynamodb:UpdateItem" in result["errorMessage"]
    )
    assert "Item" not in ddb.get_item(TableName=tables[1], Key={"k": {"S": "b"}})


def test_role_lambda_cannot_assume_fails_the_invocation(
    moto_emulator: Any, role_function: Callable[..., tuple[str, str]]
) -> None:
    other = json.loads(json.dumps(TRUST).replace("lambda.amazonaws.com", "states.amazonaws.com"))
    _, fn = role_function(None, trust=other)
    error, result = _invoke(moto_emulator, fn, {})
    assert error == "Unhandled" and "cannot be assumed by Lambda" in result["errorMessage"]


def test_unknown_or_forged_credentials_are_refused(moto_emulator: Any) -> None:
    def sqs(key: str, secret: str, token: str | None = None) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=moto_emulator.endpoint_url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )

    with pytest.raises(botocore.exceptions.ClientError, match=r"InvalidClientTokenId|security token"):
        sqs("AKIAUNKNOWNKEY000000", "nope").list_queues()
    role = moto_emulator.client("iam").create_role(
        RoleName=f"harness-iam-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    issued = moto_emulator.client("sts").assume_role(RoleArn=role, RoleSessionName="harness")["Credentials"]
    with pytest.raises(botocore.exceptions.ClientError, match=r"SignatureDoesNotMatch|signature"):
        sqs(issued["AccessKeyId"], "wrong-secret", issued["SessionToken"]).list_queues()
    # Valid credentials of a role without grants: signed correctly, then denied.
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        sqs(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]).list_queues()
    # The administrator's key is not evaluated; nor is any key outside AWS's format (the "testing" keys
    # of in-process mock_aws unit tests that may share this process).
    admin = sqs("test", "test")
    url = admin.create_queue(QueueName=f"harness-iam-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    assert url in admin.list_queues()["QueueUrls"]
    assert url in sqs("testing", "testing").list_queues()["QueueUrls"]
