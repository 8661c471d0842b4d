"""Each emulator shim, exercised with boto3 against the embedded server (the way the provider calls it)."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb import models as dynamodb_models

from devkit.emulator import shims
from devkit.emulator.server import Emulator
from tests.support.aws import create_service_role, echo_function_zip, trust_policy

pytestmark = pytest.mark.usefixtures("moto_emulator")

PASS_DEFINITION = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
ASSUME = json.dumps(trust_policy())


@pytest.fixture(scope="module")
def moto_emulator(emulator: Any) -> Emulator:
    if not isinstance(emulator, Emulator):
        pytest.skip("shims patch the embedded moto server only")
    return emulator


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _role(emulator: Emulator) -> str:
    return create_service_role(emulator.client("iam"), _name("role"))


# --------------------------------------------------------------------------- start-up guards


def test_a_different_moto_version_refuses_to_start() -> None:
    with pytest.raises(shims.ShimError, match=r"written for moto==0\.0\.0"):
        shims.check_moto_version("0.0.0")


def test_a_vanished_patch_target_fails_loudly() -> None:
    class Target:
        pass

    with pytest.raises(shims.ShimError, match="no longer exists"):
        shims.require(Target, "attributes")


def test_every_shim_is_installed_and_documented() -> None:
    assert shims.install_all() == [s.__name__ for s in shims.SHIMS]
    assert shims.install_runtime() == [s.__name__ for s in shims.RUNTIME_SHIMS]
    for shim in (*shims.SHIMS, *shims.RUNTIME_SHIMS):
        assert shim.__doc__ and "moto" in shim.__doc__, shim.__name__


def test_moto_is_configured_before_the_first_request(moto_emulator: Emulator) -> None:
    from moto.core.config import default_user_config

    assert default_user_config["lambda"]["use_docker"] is False
    assert default_user_config["stepfunctions"]["execute_state_machine"] is True


def test_aws_managed_policies_can_be_attached(moto_emulator: Emulator) -> None:
    iam = moto_emulator.client("iam")
    role = _name("managed")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=ASSUME)
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [arn]


# --------------------------------------------------------------------------- Step Functions


def test_validate_state_machine_definition_accepts_a_valid_definition(moto_emulator: Emulator) -> None:
    result = moto_emulator.client("stepfunctions").validate_state_machine_definition(
        definition=PASS_DEFINITION
    )
    assert result["result"] == "OK"
    assert result["diagnostics"] == []


def test_validate_state_machine_definition_rejects_broken_json(moto_emulator: Emulator) -> None:
    result = moto_emulator.client("stepfunctions").validate_state_machine_definition(definition="{not json")
    assert result["result"] == "FAIL"
    assert result["diagnostics"][0]["severity"] == "ERROR"


def test_list_state_machine_versions_lists_published_versions(moto_emulator: Emulator) -> None:
    sfn = moto_emulator.client("stepfunctions")
    role = _role(moto_emulator)
    plain = sfn.create_state_machine(name=_name("sm"), definition=PASS_DEFINITION, roleArn=role)
    assert (
        sfn.list_state_machine_versions(stateMachineArn=plain["stateMachineArn"])["stateMachineVersions"]
        == []
    )
    published = sfn.create_state_machine(
        name=_name("sm"), definition=PASS_DEFINITION, roleArn=role, publish=True
    )
    versions = sfn.list_state_machine_versions(stateMachineArn=published["stateMachineArn"])[
        "stateMachineVersions"
    ]
    assert [v["stateMachineVersionArn"] for v in versions] == [published["stateMachineVersionArn"]]


def test_list_state_machine_versions_of_an_unknown_machine_is_an_error(moto_emulator: Emulator) -> None:
    arn = f"arn:aws:states:{moto_emulator.region}:123456789012:stateMachine:{_name('missing')}"
    with pytest.raises(ClientError) as err:
        moto_emulator.client("stepfunctions").list_state_machine_versions(stateMachineArn=arn)
    assert err.value.response["Error"]["Code"] == "StateMachineDoesNotExist"


# --------------------------------------------------------------------------- X-Ray


def _rule(name: str, **overrides: Any) -> dict[str, Any]:
    rule = {
        "RuleName": name,
        "ResourceARN": "*",
        "Priority": 100,
        "FixedRate": 0.1,
        "ReservoirSize": 1,
        "ServiceName": "payment-*",
        "ServiceType": "*",
        "Host": "*",
        "HTTPMethod": "*",
        "URLPath": "*",
        "Version": 1,
    }
    rule.update(overrides)
    return rule


def test_xray_sampling_rule_lifecycle(moto_emulator: Emulator) -> None:
    xray = moto_emulator.client("xray")
    name = _name("rule")
    created = xray.create_sampling_rule(SamplingRule=_rule(name), Tags=[{"Key": "team", "Value": "payments"}])
    arn = created["SamplingRuleRecord"]["SamplingRule"]["RuleARN"]
    assert arn.endswith(f":sampling-rule/{name}")
    rules = {r["SamplingRule"]["RuleName"]: r for r in xray.get_sampling_rules()["SamplingRuleRecords"]}
    assert "Default" in rules and rules[name]["SamplingRule"]["FixedRate"] == 0.1
    assert xray.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "payments"}]
    updated = xray.update_sampling_rule(SamplingRuleUpdate={"RuleName": name, "FixedRate": 0.5})
    assert updated["SamplingRuleRecord"]["SamplingRule"]["FixedRate"] == 0.5
    xray.delete_sampling_rule(RuleName=name)
    names = [r["SamplingRule"]["RuleName"] for r in xray.get_sampling_rules()["SamplingRuleRecords"]]
    assert name not in names
    with pytest.raises(ClientError) as err:
        xray.delete_sampling_rule(RuleName="Default")
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_xray_group_lifecycle_and_tags(moto_emulator: Emulator) -> None:
    xray = moto_emulator.client("xray")
    name = _name("group")
    group = xray.create_group(GroupName=name, FilterExpression='service("payment-intake")')["Group"]
    assert xray.get_group(GroupName=name)["Group"]["FilterExpression"] == 'service("payment-intake")'
    assert name in [g["GroupName"] for g in xray.get_groups()["Groups"]]
    xray.update_group(GroupARN=group["GroupARN"], FilterExpression='service("payment-status")')
    assert (
        xray.get_group(GroupARN=group["GroupARN"])["Group"]["FilterExpression"] == 'service("payment-status")'
    )
    xray.tag_resource(
        ResourceARN=group["GroupARN"], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]
    )
    xray.untag_resource(ResourceARN=group["GroupARN"], TagKeys=["a"])
    assert xray.list_tags_for_resource(ResourceARN=group["GroupARN"])["Tags"] == [{"Key": "b", "Value": "2"}]
    xray.delete_group(GroupName=name)
    with pytest.raises(ClientError) as err:
        xray.get_group(GroupName=name)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_xray_tags_on_an_unknown_resource_are_not_found(moto_emulator: Emulator) -> None:
    with pytest.raises(ClientError) as err:
        moto_emulator.client("xray").list_tags_for_resource(
            ResourceARN="arn:aws:xray:us-east-1:1:group/none/X"
        )
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_xray_encryption_config_round_trips(moto_emulator: Emulator) -> None:
    xray = moto_emulator.client("xray")
    key = moto_emulator.client("kms").create_key()["KeyMetadata"]["Arn"]
    xray.put_encryption_config(Type="KMS", KeyId=key)
    config = xray.get_encryption_config()["EncryptionConfig"]
    assert config == {"KeyId": key, "Status": "ACTIVE", "Type": "KMS"}
    xray.put_encryption_config(Type="NONE")
    assert xray.get_encryption_config()["EncryptionConfig"]["Type"] == "NONE"


def test_xray_state_is_per_region(moto_emulator: Emulator) -> None:
    name = _name("regional")
    moto_emulator.client("xray").create_group(GroupName=name, FilterExpression="ok")
    other = moto_emulator.client("xray", region_name="eu-central-1")
    assert name not in [g["GroupName"] for g in other.get_groups()["Groups"]]


# --------------------------------------------------------------------------- SQS


@pytest.fixture
def queues(moto_emulator: Emulator) -> tuple[Any, str, str, str, str]:
    sqs = moto_emulator.client("sqs")
    dlq = sqs.create_queue(QueueName=_name("dlq"))["QueueUrl"]
    src = sqs.create_queue(QueueName=_name("src"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src_arn = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, dlq, dlq_arn, src, src_arn


def test_redrive_allow_policy_is_returned(queues: tuple[Any, str, str, str, str]) -> None:
    sqs, dlq, _, _, src_arn = queues
    allow = {"redrivePermission": "byQueue", "sourceQueueArns": [src_arn]}
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={"RedriveAllowPolicy": json.dumps(allow, indent=2)})
    by_name = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["RedriveAllowPolicy"])["Attributes"]
    assert json.loads(by_name["RedriveAllowPolicy"]) == allow
    assert by_name["RedriveAllowPolicy"] == json.dumps(allow, separators=(",", ":"), sort_keys=True)
    everything = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
    assert everything["RedriveAllowPolicy"] == by_name["RedriveAllowPolicy"]


def test_redrive_policy_comes_back_compact_as_jsonencode_writes_it(
    queues: tuple[Any, str, str, str, str],
) -> None:
    sqs, _, dlq_arn, src, _ = queues
    # Terraform's jsonencode(): keys sorted, no whitespace.
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}, separators=(",", ":"))
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": policy})
    got = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"][
        "RedrivePolicy"
    ]
    assert got == policy


def test_setting_other_attributes_keeps_the_queue_policy(queues: tuple[Any, str, str, str, str]) -> None:
    sqs, _, dlq_arn, src, src_arn = queues
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": src_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"Policy": json.dumps(policy)})
    sqs.set_queue_attributes(
        QueueUrl=src,
        Attributes={
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        },
    )
    attrs = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "360"
    assert json.loads(attrs["Policy"]) == policy
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"Policy": ""})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["Policy"]).get(
        "Attributes", {}
    )


# --------------------------------------------------------------------------- EC2


def test_security_group_rule_descriptions_survive_for_prefix_lists_and_group_references(
    moto_emulator: Emulator,
) -> None:
    ec2 = moto_emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName=_name("sg"), Description="x", VpcId=vpc)["GroupId"]
    peer = ec2.create_security_group(GroupName=_name("peer"), Description="x", VpcId=vpc)["GroupId"]
    prefix_list = ec2.describe_prefix_lists()["PrefixLists"][0]["PrefixListId"]
    egress = ec2.authorize_security_group_egress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "PrefixListIds": [{"PrefixListId": prefix_list, "Description": "HTTPS to s3 via gateway"}],
            }
        ],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    ingress = ec2.authorize_security_group_ingress(
        GroupId=peer,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "UserIdGroupPairs": [{"GroupId": sg, "Description": "HTTPS from the functions"}],
            }
        ],
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    rules = {
        r["SecurityGroupRuleId"]: r
        for r in ec2.describe_security_group_rules(SecurityGroupRuleIds=[egress, ingress])[
            "SecurityGroupRules"
        ]
    }
    assert rules[egress]["Description"] == "HTTPS to s3 via gateway"
    assert rules[ingress]["Description"] == "HTTPS from the functions"


# --------------------------------------------------------------------------- Lambda


def test_lambda_logging_config_round_trips(moto_emulator: Emulator) -> None:
    lam = moto_emulator.client("lambda")
    role = _role(moto_emulator)
    name = _name("fn")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": echo_function_zip()},
        LoggingConfig={
            "LogFormat": "JSON",
            "LogGroup": f"/aws/lambda/{name}",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "WARN",
        },
    )
    config = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
    assert config == {
        "LogFormat": "JSON",
        "LogGroup": f"/aws/lambda/{name}",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "WARN",
    }
    lam.update_function_configuration(FunctionName=name, LoggingConfig={"ApplicationLogLevel": "DEBUG"})
    assert (
        lam.get_function(FunctionName=name)["Configuration"]["LoggingConfig"]["ApplicationLogLevel"]
        == "DEBUG"
    )


def test_lambda_logging_config_defaults_to_text_and_the_function_log_group(moto_emulator: Emulator) -> None:
    lam = moto_emulator.client("lambda")
    name = _name("fn")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=_role(moto_emulator),
        Handler="app.handler",
        Code={"ZipFile": echo_function_zip()},
    )
    assert lam.get_function_configuration(FunctionName=name)["LoggingConfig"] == {
        "LogFormat": "Text",
        "LogGroup": f"/aws/lambda/{name}",
    }


def test_event_source_mappings_can_be_listed_by_function_name_or_arn(moto_emulator: Emulator) -> None:
    lam, sqs = moto_emulator.client("lambda"), moto_emulator.client("sqs")
    name = _name("consumer")
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=_role(moto_emulator),
        Handler="app.handler",
        Code={"ZipFile": echo_function_zip()},
    )["FunctionArn"]
    queue = sqs.create_queue(QueueName=_name("source"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # The provider passes the function ARN, as here.
    lam.create_event_source_mapping(FunctionName=arn, EventSourceArn=queue_arn, BatchSize=10)
    for ref in (name, arn):
        mappings = lam.list_event_source_mappings(FunctionName=ref)["EventSourceMappings"]
        assert [m["EventSourceArn"] for m in mappings] == [queue_arn], ref
    assert lam.list_event_source_mappings(FunctionName=_name("other"))["EventSourceMappings"] == []


# --------------------------------------------------------------------------- S3


def test_tls_only_bucket_policy_does_not_block_every_object_request(moto_emulator: Emulator) -> None:
    """Stock moto treats every condition operator but StringEquals as matched: the TLS-only Deny would
    refuse every object request. devkit.emulator.shims.runtime evaluates conditions; the server installs
    it with the other shims."""
    s3 = moto_emulator.client("s3")
    bucket = _name("archive")
    s3.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "NoDeletesAtAll",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    s3.put_object(Bucket=bucket, Key="transactions/2026/01/01/txn.json", Body=b"{}")
    assert s3.get_object(Bucket=bucket, Key="transactions/2026/01/01/txn.json")["Body"].read() == b"{}"
    # Unconditional denies still apply.
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="transactions/2026/01/01/txn.json")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_ssm_parameters_survive_concurrent_writes_and_listings(moto_emulator: Emulator) -> None:
    """Terraform creates parameters while it lists them: no 'dictionary changed size' 500s (bounded load).

    The race is rare at this size (it showed in full applies at parallelism 10-40): this guards the
    serialization against regressions; the shim's presence is asserted too."""
    for name in ("put_parameter", "delete_parameter", "describe_parameters", "get_parameters_by_path"):
        assert f"moto.ssm.models.SimpleSystemManagerBackend.{name}" in shims.PATCHED
    prefix = f"/concurrency-{uuid.uuid4().hex[:8]}"
    errors: list[str] = []
    done = threading.Event()

    def writer(worker: int) -> None:
        ssm = moto_emulator.client("ssm")
        for n in range(30):
            name = f"{prefix}/w{worker}/p{n}"
            try:
                ssm.put_parameter(Name=name, Value="v", Type="String")
                if n % 3 == 0:
                    ssm.delete_parameter(Name=name)
            except ClientError as exc:
                errors.append(str(exc))

    def lister() -> None:
        ssm = moto_emulator.client("ssm")
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            try:
                ssm.describe_parameters(MaxResults=50)
            except ClientError as exc:
                errors.append(str(exc))

    listers = [threading.Thread(target=lister) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in listers + writers:
        thread.start()
    for thread in writers:
        thread.join(120)
    done.set()
    for thread in listers:
        thread.join(120)
    assert errors == []
    names = moto_emulator.client("ssm").get_parameters_by_path(Path=prefix, Recursive=True, MaxResults=10)
    assert names["Parameters"], "the writers' parameters exist"


def test_a_gateway_endpoint_whose_route_is_gone_is_still_deleted(moto_emulator: Emulator) -> None:
    ec2 = moto_emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{moto_emulator.region}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[table],
    )["VpcEndpoint"]
    [route] = [
        r
        for r in ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Routes"]
        if r.get("DestinationPrefixListId")
    ]
    ec2.delete_route(RouteTableId=table, DestinationPrefixListId=route["DestinationPrefixListId"])

    answer = ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])

    assert answer.get("Unsuccessful", []) == []
    [state] = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])["VpcEndpoints"]
    assert state["State"].lower() == "deleted"


def test_a_create_call_repeated_with_its_client_token_answers_the_first_result(
    moto_emulator: Emulator,
) -> None:
    ec2 = moto_emulator.client("ec2")
    logs = moto_emulator.client("logs")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    logs.create_log_group(logGroupName="/flow/idempotency")
    request = {
        "ResourceType": "VPC",
        "ResourceIds": [vpc],
        "TrafficType": "ALL",
        "LogDestinationType": "cloud-watch-logs",
        "LogGroupName": "/flow/idempotency",
        "DeliverLogsPermissionArn": f"arn:aws:iam::{moto_emulator.account_id}:role/flow",
        "ClientToken": "retry-of-one-call",
    }

    first = ec2.create_flow_logs(**request)
    # What the SDK sends when the first response was lost: the same call with the same token.
    again = ec2.create_flow_logs(**request)

    assert again["FlowLogIds"] == first["FlowLogIds"] and again["Unsuccessful"] == []
    described = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc]}])["FlowLogs"]
    assert [f["FlowLogId"] for f in described] == first["FlowLogIds"], "one flow log, not two"
    # A new token is a new request: AWS and moto both refuse a second identical flow log.
    with pytest.raises(ClientError, match="FlowLogAlreadyExists"):
        ec2.create_flow_logs(**{**request, "ClientToken": "a-different-call"})
    # The same token with different parameters is a client error, as on AWS.
    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        ec2.create_flow_logs(**{**request, "TrafficType": "REJECT"})


def test_a_schedule_created_twice_with_one_token_exists_once(moto_emulator: Emulator) -> None:
    scheduler = moto_emulator.client("scheduler")
    request = {
        "Name": "idempotent-schedule",
        "ScheduleExpression": "cron(0 2 * * ? *)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {
            "Arn": f"arn:aws:lambda:{moto_emulator.region}:{moto_emulator.account_id}:function:f",
            "RoleArn": f"arn:aws:iam::{moto_emulator.account_id}:role/r",
        },
        "ClientToken": "one-schedule-call",
    }
    first = scheduler.create_schedule(**request)
    again = scheduler.create_schedule(**request)
    assert again["ScheduleArn"] == first["ScheduleArn"]
    with pytest.raises(ClientError, match="ConflictException"):
        scheduler.create_schedule(**{**request, "ClientToken": "another-call"})


def test_a_restored_table_gets_the_kms_key_and_billing_mode_it_was_asked_for(moto_emulator: Emulator) -> None:
    """Stock moto drops RestoreTableToPointInTime's SSESpecificationOverride and BillingModeOverride
    (the copy is unencrypted, with no billing mode); AWS applies both, and `ops restore` relies on it."""
    dynamodb = moto_emulator.client("dynamodb")
    key_arn = moto_emulator.client("kms").create_key()["KeyMetadata"]["Arn"]
    source, target = _name("restore-src"), _name("restore-dst")
    dynamodb.create_table(
        TableName=source,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
    )
    dynamodb.put_item(TableName=source, Item={"k": {"S": "one"}})
    restored = dynamodb.restore_table_to_point_in_time(
        SourceTableName=source,
        TargetTableName=target,
        UseLatestRestorableTime=True,
        BillingModeOverride="PAY_PER_REQUEST",
        SSESpecificationOverride={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
    )["TableDescription"]
    assert restored["SSEDescription"]["KMSMasterKeyArn"] == key_arn
    table = dynamodb.describe_table(TableName=target)["Table"]
    assert table["SSEDescription"]["KMSMasterKeyArn"] == key_arn
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert dynamodb.get_item(TableName=target, Key={"k": {"S": "one"}})["Item"]["k"]["S"] == "one"
    for name in (source, target):
        dynamodb.delete_table(TableName=name)


def test_a_refused_transaction_undoes_no_other_request_s_write(
    moto_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused TransactWriteItems changes nothing: not its own items, not another request's write.

    Stock moto 5.2.5 rolls a refused transaction back by putting a snapshot of the whole table (a deep
    copy taken before it applies anything) in place of the table, so a write another request committed
    in between is lost although it was answered 200 (seen in CI: a replayed Idempotency-Key's refused
    create undid the first payment's VALIDATING transition). The schedule is forced: the snapshot waits
    (up to 2 s) for a concurrent UpdateItem, which then lands inside the transaction's window unless
    the backend runs one operation at a time."""
    assert "moto.dynamodb.models.DynamoDBBackend.transact_write_items" in shims.PATCHED
    ddb = moto_emulator.client("dynamodb")
    table = _name("atomic")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "counter"}, "n": {"N": "0"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "taken"}})

    snapshot_taken, write_done = threading.Event(), threading.Event()
    real_deepcopy = copy.deepcopy

    def deepcopy(obj: Any, *args: Any) -> Any:
        result = real_deepcopy(obj, *args)
        if isinstance(obj, dynamodb_models.Table) and obj.name == table:
            snapshot_taken.set()
            write_done.wait(2.0)
        return result

    monkeypatch.setattr(dynamodb_models, "copy", SimpleNamespace(deepcopy=deepcopy))
    outcome: list[str] = []

    def writer() -> None:
        if not snapshot_taken.wait(30):
            outcome.append("the transaction never took its snapshot")
            return
        moto_emulator.client("dynamodb").update_item(
            TableName=table,
            Key={"pk": {"S": "counter"}},
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        outcome.append("acknowledged")
        write_done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            # One item on the table: moto snapshots a table once per item that names it.
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "taken"}, "n": {"N": "7"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    thread.join(60)
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert outcome == ["acknowledged"]
    counter = ddb.get_item(TableName=table, Key={"pk": {"S": "counter"}}, ConsistentRead=True)["Item"]
    assert counter["n"]["N"] == "1", "an acknowledged write was undone by another request's roll-back"
    taken = ddb.get_item(TableName=table, Key={"pk": {"S": "taken"}}, ConsistentRead=True)["Item"]
    assert "n" not in taken, "the refused Put was applied"
