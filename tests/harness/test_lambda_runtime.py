"""The emulator's Lambda runtime: deployed code runs for Invoke, Step Functions and SQS mappings."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devkit.emulator import lambda_runtime
from devkit.emulator.lambda_runtime import FunctionSpec, LambdaRuntime
from devkit.emulator.runtimes import RuntimeNotAvailableError, declared_runtime, runtime_version
from devkit.emulator.shims import ShimError
from devkit.emulator.sqs_poller import (
    DEFAULT_RETRY_VISIBILITY_SECONDS,
    SqsEventSourcePoller,
    retry_visibility_from_env,
)
from devkit.pythons import PythonNotFoundError, find_python
from tests.harness import make_zip, wait_until

PROBE = {
    "handlers/__init__.py": "",
    "handlers/probe.py": """
        import json, os, sys, time
        import boto3

        def handler(event, context):
            if event.get("raise"):
                raise ValueError("refused: " + event["raise"])
            if event.get("sleep"):
                time.sleep(event["sleep"])
            if event.get("exit"):
                os._exit(3)
            if event.get("param"):
                boto3.client("ssm").put_parameter(Name=event["param"], Value="written", Type="String")
            print("probe ran for", context.function_name)
            return {
                "event": event,
                "function_name": context.function_name,
                "request_id": context.aws_request_id,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "memory": context.memory_limit_in_mb,
                "env": {k: os.environ.get(k) for k in (
                    "GREETING", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "AWS_ENDPOINT_URL", "_HANDLER",
                    "LAMBDA_TASK_ROOT", "AWS_EXECUTION_ENV",
                )},
                "sys_path0": sys.path[0],
                "module_file": __file__,
            }
    """,
}


def _invoke(client: Any, name: str, payload: Any, **kwargs: Any) -> tuple[str | None, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), **kwargs)
    return response.get("FunctionError"), json.loads(response["Payload"].read() or b"null")


# -- pinning -----


def test_hook_points_are_pinned_to_moto_525(monkeypatch: pytest.MonkeyPatch) -> None:
    lambda_function, simple_backend, backend = lambda_runtime._hook_points()
    assert {"invoke"} <= set(vars(lambda_function)) and "invoke" in vars(simple_backend)
    assert "create_event_source_mapping" in vars(backend)
    monkeypatch.setattr(lambda_runtime.moto, "__version__", "5.3.0")
    with pytest.raises(ShimError, match=r"moto 5\.2\.5.*5\.3\.0"):
        lambda_runtime._hook_points()


def test_missing_hook_attribute_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(lambda_runtime.LambdaSimpleBackend, "invoke")
    with pytest.raises(ShimError, match=r"hook point moved.*LambdaSimpleBackend\.invoke"):
        lambda_runtime._hook_points()


def test_retry_visibility_setting() -> None:
    assert retry_visibility_from_env({}) == DEFAULT_RETRY_VISIBILITY_SECONDS
    assert retry_visibility_from_env({"OPS_EMULATOR_SQS_RETRY_VISIBILITY": "queue"}) is None
    assert retry_visibility_from_env({"OPS_EMULATOR_SQS_RETRY_VISIBILITY": "7"}) == 7
    with pytest.raises(ValueError, match="between 0 and 43200"):
        retry_visibility_from_env({"OPS_EMULATOR_SQS_RETRY_VISIBILITY": "99999"})


# -- code handling (no emulator needed) -----


def _spec(code: bytes, sha: str | None = None) -> FunctionSpec:
    return FunctionSpec(
        function_name="unit",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:unit",
        version="$LATEST",
        handler="handlers.probe.handler",
        runtime="python3.12",
        timeout=5,
        memory_size=512,
        environment={},
        code_sha256=sha if sha is not None else base64.b64encode(hashlib.sha256(code).digest()).decode(),
        code=code,
        log_group_name="/aws/lambda/unit",
    )


def test_zip_is_extracted_once_per_code_sha(tmp_path: Any) -> None:
    runtime = LambdaRuntime("http://127.0.0.1:1", cache_dir=tmp_path)
    code = make_zip(PROBE)
    first = runtime.task_root(_spec(code))
    (first / "marker").write_text("kept")
    assert runtime.task_root(_spec(code)) == first and (first / "marker").exists()
    assert (first / "handlers" / "probe.py").is_file()


def test_code_sha_mismatch_is_refused(tmp_path: Any) -> None:
    runtime = LambdaRuntime("http://127.0.0.1:1", cache_dir=tmp_path)
    with pytest.raises(RuntimeError, match="hashes to"):
        runtime.task_root(_spec(make_zip(PROBE), sha="AAAA"))


def test_zip_slip_is_refused(tmp_path: Any) -> None:
    runtime = LambdaRuntime("http://127.0.0.1:1", cache_dir=tmp_path / "cache")
    with pytest.raises(RuntimeError, match="escapes the package"):
        runtime.task_root(_spec(make_zip({"../evil.py": "x = 1"})))
    assert not (tmp_path / "evil.py").exists()


# -- the runtime's Python -----

RUNTIME_PROBE = {
    "handlers/__init__.py": "",
    "handlers/answer.py": 'ANSWER = "from the source"\n',
    "handlers/runtime_probe.py": """
        import importlib.util, sys
        from handlers import answer

        def handler(event, context):
            return {
                "version": list(sys.version_info[:2]),
                "answer": answer.ANSWER,
                "answer_cached": answer.__cached__,
                "importable": {
                    name: importlib.util.find_spec(name) is not None
                    for name in ("boto3", "botocore", "moto", "aws_lambda_powertools", "pytest", "devkit")
                },
            }
    """,
}


def test_functions_run_on_their_runtimes_python_with_only_what_lambda_provides(
    moto_emulator: Any, make_function: Callable[..., Any], function_python: str, tmp_path: Any
) -> None:
    # The package's bytecode is what runs, used unchecked as in Lambda: a .pyc compiled (by 3.12,
    # unchecked-hash) from other source than the .py beside it wins. So a stale .pyc in the zip
    # would show in the tests as it would in Lambda.
    source = tmp_path / "answer.py"
    source.write_text('ANSWER = "from the bytecode"\n')
    pyc = tmp_path / "answer.cpython-312.pyc"
    subprocess.run(  # noqa: S603 - the runtime's interpreter, fixed arguments
        [
            function_python,
            "-c",
            "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True, "
            "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)",
            str(source),
            str(pyc),
        ],
        check=True,
        timeout=60,
    )
    files = {**RUNTIME_PROBE, "handlers/__pycache__/answer.cpython-312.pyc": pyc.read_bytes()}
    fn = make_function(files, "handlers.runtime_probe.handler")
    assert fn["Runtime"] == declared_runtime() == "python3.12"
    error, result = _invoke(moto_emulator.client("lambda"), fn["FunctionName"], {})
    assert error is None, result
    assert result["version"] == [3, 12]
    assert result["answer"] == "from the bytecode"
    assert result["answer_cached"].endswith("handlers/__pycache__/answer.cpython-312.pyc")
    # boto3 comes with the runtime; nothing of the harness's own virtualenv is importable.
    assert result["importable"] == {
        "boto3": True,
        "botocore": True,
        "moto": False,
        "aws_lambda_powertools": False,
        "pytest": False,
        "devkit": False,
    }


def test_a_runtime_without_an_interpreter_fails_naming_what_is_missing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = LambdaRuntime("http://127.0.0.1:1", cache_dir=tmp_path)
    spec = dataclasses.replace(_spec(make_zip(PROBE)), runtime="python3.99")
    with pytest.raises(RuntimeNotAvailableError, match=r"declare python3\.99.*no Python 3\.99"):
        runtime.interpreter(spec)
    with pytest.raises(RuntimeNotAvailableError, match="not a Python runtime"):
        runtime_version("nodejs20.x")
    # PYTHON_LAMBDA must name a working interpreter of the version, not just any Python.
    monkeypatch.setenv("PYTHON_LAMBDA", str(tmp_path / "no-such-python"))
    with pytest.raises(PythonNotFoundError, match=r"PYTHON_LAMBDA=.*is not a working Python 3\.12"):
        find_python("3.12")


# -- direct Invoke -----


def test_invoke_runs_the_deployed_handler(moto_emulator: Any, make_function: Callable[..., Any]) -> None:
    fn = make_function(PROBE, "handlers.probe.handler", environment={"GREETING": "hello"})
    error, result = _invoke(moto_emulator.client("lambda"), fn["FunctionName"], {"a": 1})
    assert error is None
    assert result["event"] == {"a": 1}
    assert result["function_name"] == fn["FunctionName"]
    assert 0 < result["remaining_ms"] <= 10_000 and result["memory"] == 512
    env = result["env"]
    assert env["GREETING"] == "hello" and env["AWS_LAMBDA_FUNCTION_NAME"] == fn["FunctionName"]
    assert (
        env["AWS_ENDPOINT_URL"] == moto_emulator.endpoint_url and env["_HANDLER"] == "handlers.probe.handler"
    )
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    # The code that ran is the zip's (extracted under LAMBDA_TASK_ROOT, first on sys.path).
    assert result["sys_path0"] == env["LAMBDA_TASK_ROOT"]
    assert result["module_file"].startswith(env["LAMBDA_TASK_ROOT"])


def test_handler_reaches_the_emulator_with_boto3(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    fn = make_function(PROBE, "handlers.probe.handler")
    name = f"/harness/{uuid.uuid4().hex}"
    error, _ = _invoke(moto_emulator.client("lambda"), fn["FunctionName"], {"param": name})
    assert error is None
    assert moto_emulator.client("ssm").get_parameter(Name=name)["Parameter"]["Value"] == "written"


def test_unhandled_exception_is_reported_like_lambda(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    fn = make_function(PROBE, "handlers.probe.handler")
    error, result = _invoke(moto_emulator.client("lambda"), fn["FunctionName"], {"raise": "nope"})
    assert error == "Unhandled"
    assert result["errorType"] == "ValueError" and result["errorMessage"] == "refused: nope"
    assert any("probe.py" in frame for frame in result["stackTrace"])
    assert not any("_lambda_bootstrap" in frame for frame in result["stackTrace"])


def test_timeout_from_the_function_configuration(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    fn = make_function(PROBE, "handlers.probe.handler", timeout=1)
    error, result = _invoke(moto_emulator.client("lambda"), fn["FunctionName"], {"sleep": 5})
    assert error == "Unhandled"
    assert result["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result["errorMessage"]


def test_runtime_crash_and_bad_handler(moto_emulator: Any, make_function: Callable[..., Any]) -> None:
    client = moto_emulator.client("lambda")
    crash = make_function(PROBE, "handlers.probe.handler")
    error, result = _invoke(client, crash["FunctionName"], {"exit": True})
    assert error == "Unhandled" and result["errorType"] == "Runtime.ExitError"
    missing = make_function(PROBE, "handlers.nowhere.handler")
    error, result = _invoke(client, missing["FunctionName"], {})
    assert error == "Unhandled" and result["errorType"] == "Runtime.ImportModuleError"


def test_output_goes_to_cloudwatch_logs_and_tail(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    fn = make_function(PROBE, "handlers.probe.handler")
    response = moto_emulator.client("lambda").invoke(
        FunctionName=fn["FunctionName"], Payload=b"{}", LogType="Tail"
    )
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "probe ran for" in tail and tail.startswith("START RequestId:") and "REPORT RequestId:" in tail
    logs = moto_emulator.client("logs")
    group = f"/aws/lambda/{fn['FunctionName']}"
    events = logs.filter_log_events(logGroupName=group)["events"]
    assert any("probe ran for" in e["message"] for e in events)
    runtime = lambda_runtime.installed_runtime()
    assert runtime is not None and "probe ran for" in runtime.captured_output(fn["FunctionName"])


def test_event_invocation_runs_asynchronously(moto_emulator: Any, make_function: Callable[..., Any]) -> None:
    fn = make_function(PROBE, "handlers.probe.handler")
    name = f"/harness/{uuid.uuid4().hex}"
    response = moto_emulator.client("lambda").invoke(
        FunctionName=fn["FunctionName"], InvocationType="Event", Payload=json.dumps({"param": name}).encode()
    )
    assert response["StatusCode"] == 202
    ssm = moto_emulator.client("ssm")

    def written() -> bool:
        # Looked up by name: DescribeParameters pages at 10, and other tests leave parameters behind.
        try:
            return bool(ssm.get_parameter(Name=name)["Parameter"])
        except ssm.exceptions.ParameterNotFound:
            return False

    wait_until(written, timeout=30, what="the asynchronous invocation's side effect")


# -- Step Functions -----

FLAKY = {
    "handlers/__init__.py": "",
    "handlers/flaky.py": """
        import os, boto3

        def handler(event, context):
            # Fails until it has been called `fail_times` times for this key: exercises Retry.
            table = boto3.resource("dynamodb").Table(os.environ["COUNTER_TABLE"])
            count = table.update_item(
                Key={"k": event["key"]}, UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": 1}, ReturnValues="UPDATED_NEW",
            )["Attributes"]["n"]
            if int(count) <= int(event.get("fail_times", 0)):
                raise RuntimeError(f"transient failure {count}")
            if event.get("always_fail"):
                raise RuntimeError("permanent failure")
            return {"valid": event.get("valid", True), "decision": event.get("decision", "APPROVE"),
                    "calls": int(count)}
    """,
}


def _workflow_definition(function_arn: str) -> dict[str, Any]:
    """The platform workflow's shape: Parallel checks, Choice on $.checks[i], Retry, Catch → Fail."""

    def task(payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload": payload},
            "Retry": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "IntervalSeconds": 1,
                    "MaxAttempts": 3,
                    "BackoffRate": 1.0,
                }
            ],
            # OutputPath applies after ResultPath: a task that keeps its input selects the payload instead.
            **(
                {"ResultSelector": {"result.$": "$.Payload"}}
                if "ResultPath" in extra
                else {"OutputPath": "$.Payload"}
            ),
            **extra,
        }

    return {
        "StartAt": "Checks",
        "TimeoutSeconds": 60,
        "States": {
            "Checks": {
                "Type": "Parallel",
                "ResultPath": "$.checks",
                "Next": "Decide",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
                "Branches": [
                    {
                        "StartAt": "Validate",
                        "States": {
                            "Validate": task(
                                {
                                    "key.$": "States.Format('{}-v', $.id)",
                                    "valid.$": "$.valid",
                                    "fail_times.$": "$.flaky",
                                },
                                End=True,
                            )
                        },
                    },
                    {
                        "StartAt": "Fraud",
                        "States": {
                            "Fraud": task(
                                {"key.$": "States.Format('{}-f', $.id)", "decision.$": "$.decision"}, End=True
                            )
                        },
                    },
                ],
            },
            "Decide": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Or": [
                            {"Variable": "$.checks[0].valid", "BooleanEquals": False},
                            {"Variable": "$.checks[1].decision", "StringEquals": "REJECT"},
                        ],
                        "Next": "Rejected",
                    }
                ],
                "Default": "Settle",
            },
            "Settle": task(
                {"key.$": "States.Format('{}-s', $.id)", "always_fail.$": "$.broken"},
                ResultPath="$.settlement",
                End=True,
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
            ),
            "Rejected": {"Type": "Pass", "Result": "REJECTED", "ResultPath": "$.outcome", "End": True},
            "RecordFailure": {
                "Type": "Pass",
                "Result": "FAILED",
                "ResultPath": "$.outcome",
                "Next": "WorkflowFailed",
            },
            "WorkflowFailed": {"Type": "Fail", "Error": "PaymentFailed", "Cause": "see the failure record"},
        },
    }


@pytest.fixture(scope="module")
def workflow(moto_emulator: Any, lambda_role: str) -> tuple[Any, str]:
    table = f"harness-counter-{uuid.uuid4().hex[:8]}"
    moto_emulator.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    fn = moto_emulator.client("lambda").create_function(
        FunctionName=f"harness-flaky-{uuid.uuid4().hex[:8]}",
        Runtime="python3.12",
        Role=lambda_role,
        Handler="handlers.flaky.handler",
        Code={"ZipFile": make_zip(FLAKY)},
        Timeout=10,
        Environment={"Variables": {"COUNTER_TABLE": table}},
    )
    sfn = moto_emulator.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"harness-workflow-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(_workflow_definition(fn["FunctionArn"])),
        roleArn=lambda_role,
    )["stateMachineArn"]
    return sfn, arn


def _run(sfn: Any, arn: str, **inputs: Any) -> dict[str, Any]:
    payload = {
        "id": uuid.uuid4().hex,
        "valid": True,
        "decision": "APPROVE",
        "flaky": 0,
        "broken": False,
        **inputs,
    }
    execution = sfn.start_execution(stateMachineArn=arn, name=payload["id"], input=json.dumps(payload))
    done: dict[str, Any] = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING"
        and d,
        timeout=60,
        what="the execution to finish",
    )
    return done


@pytest.mark.parametrize(
    ("inputs", "status", "outcome"),
    [
        ({}, "SUCCEEDED", None),
        ({"valid": False}, "SUCCEEDED", "REJECTED"),
        ({"decision": "REJECT"}, "SUCCEEDED", "REJECTED"),
        ({"broken": True}, "FAILED", None),
    ],
    ids=["settled", "invalid", "fraud-reject", "catch-to-fail"],
)
def test_workflow_parallel_choice_catch(
    workflow: tuple[Any, str], inputs: dict[str, Any], status: str, outcome: str | None
) -> None:
    sfn, arn = workflow
    done = _run(sfn, arn, **inputs)
    assert done["status"] == status, done
    if status == "SUCCEEDED":
        output = json.loads(done["output"])
        assert output.get("outcome") == outcome
        assert ("settlement" in output) == (outcome is None)
    else:
        assert done.get("error") == "PaymentFailed"


def test_workflow_task_retry_recovers(workflow: tuple[Any, str]) -> None:
    sfn, arn = workflow
    done = _run(sfn, arn, flaky=2)
    assert done["status"] == "SUCCEEDED", done
    output = json.loads(done["output"])
    assert output["checks"][0]["calls"] == 3  # two failures retried, third call succeeded
    events = sfn.get_execution_history(executionArn=done["executionArn"], maxResults=1000)["events"]
    assert sum(e["type"] == "TaskFailed" for e in events) == 2


def test_choice_on_indexed_path_shim() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    data = {"checks": [{"valid": False}, {"decision": "REJECT"}], "items": [1, 2, 3]}
    assert json_path.extract_json("$.checks[0].valid", data) is False
    assert json_path.extract_json("$.checks[1].decision", data) == "REJECT"
    assert json_path.extract_json("$.items[1]", data) == 2
    # Indefinite paths keep moto's list semantics.
    assert json_path.extract_json("$.items[*]", data) == [1, 2, 3]
    assert json_path.extract_json("$.checks[*].valid", data) == [False]


# -- SQS event-source mappings -----

CONSUMER = {
    "handlers/__init__.py": "",
    "handlers/consumer.py": """
        import json

        def handler(event, context):
            bodies = [r["body"] for r in event["Records"]]
            print(json.dumps({"batch": bodies, "counts": [r["attributes"]["ApproximateReceiveCount"]
                                                          for r in event["Records"]]}))
            if any(b == "poison" for b in bodies):
                raise RuntimeError("whole batch fails")
            return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                          for r in event["Records"] if r["body"].startswith("bad")]}
    """,
}


def _queue_pair(sqs: Any, visibility: int = 60) -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"harness-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=f"harness-src-{suffix}",
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return queue, arn, dlq


def _depths(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _batches(function_name: str) -> list[dict[str, Any]]:
    runtime = lambda_runtime.installed_runtime()
    assert runtime is not None
    return [json.loads(i.output.splitlines()[0]) for i in runtime.history(function_name) if i.output]


def test_sqs_mapping_batches_partial_failures_and_dlq(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    sqs, client = moto_emulator.client("sqs"), moto_emulator.client("lambda")
    poller = lambda_runtime.installed_poller()
    assert poller is not None and poller.failure_visibility_timeout is not None, (
        "retry visibility compression"
    )
    queue, arn, dlq = _queue_pair(sqs)
    fn = make_function(CONSUMER, "handlers.consumer.handler")
    client.create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=fn["FunctionName"],
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(["ok-1", "bad-1", "ok-2"])],
    )
    wait_until(lambda: _depths(sqs, dlq) == (1, 0), timeout=60, what="the failing message to reach the DLQ")
    assert _depths(sqs, queue) == (0, 0)
    batches = _batches(fn["FunctionName"])
    # One batch held all three (batching window), then only the failed one came back, three receives in all.
    assert sorted(batches[0]["batch"]) == ["bad-1", "ok-1", "ok-2"]
    assert [b["batch"] for b in batches[1:]] == [["bad-1"], ["bad-1"]]
    assert [b["counts"] for b in batches[1:]] == [["2"], ["3"]]
    moved = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == ["bad-1"]


def test_a_mapping_that_cannot_poll_does_not_starve_the_others(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    """One mapping whose role may not read its queue (AccessDenied on every receive) is listed first;
    a later mapping is still served, and the blocked queue keeps its message."""
    sqs, client = moto_emulator.client("sqs"), moto_emulator.client("lambda")
    poller = lambda_runtime.installed_poller()
    assert poller is not None
    # The harness role may poll harness-* queues only.
    blocked = sqs.create_queue(QueueName=f"outside-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    blocked_arn = sqs.get_queue_attributes(QueueUrl=blocked, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    broken = client.create_event_source_mapping(
        EventSourceArn=blocked_arn,
        FunctionName=make_function(CONSUMER, "handlers.consumer.handler")["FunctionName"],
        BatchSize=1,
    )
    try:
        sqs.send_message(QueueUrl=blocked, MessageBody="ok-blocked")
        queue, arn, _ = _queue_pair(sqs)
        fn = make_function(CONSUMER, "handlers.consumer.handler")
        client.create_event_source_mapping(EventSourceArn=arn, FunctionName=fn["FunctionName"], BatchSize=1)
        sqs.send_message(QueueUrl=queue, MessageBody="ok-served")
        wait_until(lambda: _depths(sqs, queue) == (0, 0), timeout=30, what="the healthy mapping served")
        assert [b["batch"] for b in _batches(fn["FunctionName"])] == [["ok-served"]]
        assert "AccessDenied" in (poller.last_error or "") and broken["UUID"] in (poller.last_error or "")
        assert _depths(sqs, blocked) == (1, 0), "the message the poller may not read stays in its queue"
    finally:
        client.delete_event_source_mapping(UUID=broken["UUID"])


def test_sqs_mapping_function_error_fails_the_whole_batch(
    moto_emulator: Any, make_function: Callable[..., Any]
) -> None:
    sqs, client = moto_emulator.client("sqs"), moto_emulator.client("lambda")
    queue, arn, dlq = _queue_pair(sqs)
    fn = make_function(CONSUMER, "handlers.consumer.handler")
    mapping = client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn["FunctionName"], BatchSize=10, MaximumBatchingWindowInSeconds=1
    )
    sqs.send_message_batch(
        QueueUrl=queue, Entries=[{"Id": "0", "MessageBody": "ok-9"}, {"Id": "1", "MessageBody": "poison"}]
    )
    wait_until(
        lambda: _depths(sqs, dlq)[0] == 2, timeout=60, what="both messages of the failed batch in the DLQ"
    )
    client.delete_event_source_mapping(UUID=mapping["UUID"])


def test_disabled_mapping_does_not_poll(moto_emulator: Any, make_function: Callable[..., Any]) -> None:
    sqs, client = moto_emulator.client("sqs"), moto_emulator.client("lambda")
    queue, arn, _ = _queue_pair(sqs)
    fn = make_function(CONSUMER, "handlers.consumer.handler")
    mapping = client.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=fn["FunctionName"], Enabled=False
    )
    sqs.send_message(QueueUrl=queue, MessageBody="ok-wait")
    poller = lambda_runtime.installed_poller()
    assert poller is not None
    # Two refresh periods later the message is still there and nothing was invoked.
    with pytest.raises(AssertionError, match="timed out"):
        wait_until(
            lambda: _batches(fn["FunctionName"]), timeout=2.5 * poller.refresh_interval, what="no delivery"
        )
    assert _depths(sqs, queue) == (1, 0)
    client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    wait_until(lambda: _depths(sqs, queue) == (0, 0), timeout=30, what="delivery once enabled")
    assert _batches(fn["FunctionName"])[0]["batch"] == ["ok-wait"]


def test_partial_response_validation() -> None:
    mapping = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
    messages = [{"MessageId": "a"}, {"MessageId": "b"}]
    failed = SqsEventSourcePoller._failed_ids
    assert failed(mapping, None, b'{"batchItemFailures": []}', messages) == set()
    assert failed(mapping, None, b"null", messages) == set()
    assert failed(mapping, None, b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', messages) == {"b"}
    # Unknown or empty identifiers make Lambda treat the whole batch as failed.
    assert failed(mapping, None, b'{"batchItemFailures": [{"itemIdentifier": "zz"}]}', messages) == {"a", "b"}
    assert failed(mapping, None, b'{"batchItemFailures": [{"itemIdentifier": ""}]}', messages) == {"a", "b"}
    assert failed(mapping, "Unhandled", b"{}", messages) == {"a", "b"}
    # Without ReportBatchItemFailures a returned list means nothing: the batch succeeded.
    assert failed({}, None, b'{"batchItemFailures": [{"itemIdentifier": "b"}]}', messages) == set()
