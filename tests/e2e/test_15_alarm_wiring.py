"""Flow 15: every deployed alarm watches something that exists and pages the alerts topic (both lanes);
on LocalStack, the alarms go to ALARM when their condition happens and the page arrives.

An alarm whose dimension names a function, queue, table, state machine or API stage that is not
there never leaves OK, and nothing says so. Everything here is read from the emulator after the
apply — the alarms as CloudWatch holds them, and each resource by the API of its own service —
never from the Terraform source.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devkit.demo import Platform
from devkit.emulator.endpoints import selected_backend
from tests.e2e.flows import OpsCli, TopicTap

# The dimensions each namespace's alarms may name: a dimension from another service's vocabulary
# (FunctionName on an SQS metric) is a wrong alarm even if the resource exists.
DIMENSIONS = {
    "AWS/Lambda": {"FunctionName"},
    "AWS/SQS": {"QueueName"},
    "AWS/DynamoDB": {"TableName"},
    "AWS/States": {"StateMachineArn"},
    "AWS/ApiGateway": {"ApiName", "Stage"},
    # The functions' own metrics (Powertools): one dimension, the emitting function's service name.
    "PaymentPlatform": {"service"},
}


def _alarms(platform: Platform) -> list[dict[str, Any]]:
    """The alarms the outputs name, as the emulator describes them (AlarmNames only: one filter)."""
    names = sorted(platform.outputs["alarm_names"].values())
    cloudwatch = platform.client("cloudwatch")
    found: list[dict[str, Any]] = []
    for start in range(0, len(names), 100):
        page = cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])
        found.extend(page["MetricAlarms"])
    return found


def _metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of a plain alarm or of every metric of a metric-math alarm."""
    if alarm.get("MetricName"):
        yield (
            alarm["Namespace"],
            alarm["MetricName"],
            {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])},
        )
    for query in alarm.get("Metrics") or []:
        metric = (query.get("MetricStat") or {}).get("Metric")
        if metric:
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dims


def _exists(probe: Callable[[], Any]) -> bool:
    try:
        probe()
    except ClientError:
        return False
    return True


@pytest.fixture(scope="module")
def alarms(platform: Platform) -> list[dict[str, Any]]:
    found = _alarms(platform)
    assert {a["AlarmName"] for a in found} == set(platform.outputs["alarm_names"].values())
    return found


def test_every_alarm_dimension_names_a_deployed_resource(
    platform: Platform, alarms: list[dict[str, Any]]
) -> None:
    lambda_ = platform.client("lambda")
    sqs = platform.client("sqs")
    dynamodb = platform.client("dynamodb")
    sfn = platform.client("stepfunctions")
    apigateway = platform.client("apigateway")
    apis = {api["name"]: api["id"] for api in apigateway.get_rest_apis(limit=500)["items"]}

    def stage_exists(api_name: str, stage: str) -> bool:
        api_id = apis.get(api_name)
        return api_id is not None and _exists(lambda: apigateway.get_stage(restApiId=api_id, stageName=stage))

    def emitted_by_a_function(service: str) -> bool:
        """A deployed function of this stack writes PaymentPlatform metrics under that service name."""
        for name in platform.outputs["function_names"].values():
            env = lambda_.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
            if env.get("POWERTOOLS_SERVICE_NAME") == service:
                return env.get("POWERTOOLS_METRICS_NAMESPACE") == "PaymentPlatform"
        return False

    probes: dict[str, Callable[[str], bool]] = {
        "service": emitted_by_a_function,
        "FunctionName": lambda v: _exists(lambda: lambda_.get_function(FunctionName=v)),
        "QueueName": lambda v: _exists(lambda: sqs.get_queue_url(QueueName=v)),
        "TableName": lambda v: _exists(lambda: dynamodb.describe_table(TableName=v)),
        "StateMachineArn": lambda v: _exists(lambda: sfn.describe_state_machine(stateMachineArn=v)),
    }
    problems: list[str] = []
    watched: dict[str, int] = {}
    for alarm in alarms:
        metrics = list(_metrics(alarm))
        if not metrics:
            problems.append(f"{alarm['AlarmName']}: watches no metric")
        for namespace, metric, dims in metrics:
            where = f"{alarm['AlarmName']} {namespace}/{metric}"
            allowed = DIMENSIONS.get(namespace)
            if allowed is None:
                problems.append(f"{where}: namespace not expected")
                continue
            if set(dims) != allowed:
                problems.append(f"{where}: dimensions {sorted(dims)}, expected {sorted(allowed)}")
                continue
            watched[namespace] = watched.get(namespace, 0) + 1
            if namespace == "AWS/ApiGateway":
                if not stage_exists(dims["ApiName"], dims["Stage"]):
                    problems.append(f"{where}: no stage {dims['Stage']} of an API named {dims['ApiName']}")
                continue
            ((name, value),) = dims.items()
            if not probes[name](value):
                problems.append(f"{where}: {name}={value} is not deployed")
    assert problems == []
    # Every kind of resource the platform alarms on was checked at least once.
    assert set(watched) == set(DIMENSIONS), watched


def test_every_alarm_pages_the_alerts_topic(platform: Platform, alarms: list[dict[str, Any]]) -> None:
    topic = platform.outputs["alerts_topic_arn"]
    platform.client("sns").get_topic_attributes(TopicArn=topic)  # it exists
    wrong = {
        alarm["AlarmName"]: {"alarm": alarm.get("AlarmActions"), "ok": alarm.get("OKActions")}
        for alarm in alarms
        if topic not in (alarm.get("AlarmActions") or []) or topic not in (alarm.get("OKActions") or [])
    }
    assert wrong == {}
    assert all(alarm.get("ActionsEnabled", True) for alarm in alarms)


# -- the paging path, exercised (LocalStack: it evaluates metric alarms on a schedule) ------------

# LocalStack evaluates each alarm every Period x EvaluationPeriods seconds (300 s here) from its
# creation, and its SQS metrics reporter publishes queue depths every 60 s: one evaluation after
# the causes, whatever their phase, comes within this bound.
PAGING_DEADLINE_S = 300 + 60 + 120


class AlertsTap:
    """An SQS queue subscribed to the alerts topic: every notification, parsed where it is JSON."""

    def __init__(self, platform: Platform, name: str) -> None:
        self.tap = TopicTap(platform, platform.outputs["alerts_topic_arn"], name)
        self.received: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        sqs = self.tap.sqs
        for _ in range(100):
            batch = sqs.receive_message(QueueUrl=self.tap.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = batch.get("Messages", [])
            if not messages:
                break
            for message in messages:
                envelope = json.loads(message["Body"])
                try:
                    body = json.loads(envelope["Message"])
                except ValueError:
                    body = {"text": envelope["Message"]}
                self.received.append({"subject": envelope.get("Subject"), "body": body})
                sqs.delete_message(QueueUrl=self.tap.url, ReceiptHandle=message["ReceiptHandle"])
        return self.received

    def alarm_messages(self, state: str) -> dict[str, dict[str, Any]]:
        return {
            m["body"]["AlarmName"]: m["body"]
            for m in self.drain()
            if isinstance(m["body"], dict) and m["body"].get("NewStateValue") == state
        }


def _breaching(alarm: dict[str, Any]) -> float:
    threshold = float(alarm["Threshold"])
    return threshold if alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" else threshold * 2 + 1


@pytest.mark.skipif(
    selected_backend() != "localstack",
    reason="moto never evaluates alarms; LocalStack runs its AlarmScheduler",
)
def test_alarms_page_the_alerts_topic_when_their_condition_happens(
    platform: Platform, alarms: list[dict[str, Any]], ops_cli: OpsCli, deployment: Any
) -> None:
    outputs = platform.outputs
    names = outputs["alarm_names"]
    by_name = {a["AlarmName"]: a for a in alarms}
    lambda_, sqs, cloudwatch = (
        platform.client("lambda"),
        platform.client("sqs"),
        platform.client("cloudwatch"),
    )
    tap = AlertsTap(platform, f"e2e-tap-paging-{deployment.suffix}")
    how: dict[str, str] = {}
    try:
        # Earlier flows may have left an alarm in ALARM (a dead letter, a failed job): a page is a
        # state change, so every alarm starts from OK, with the tap already listening.
        for name in by_name:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="paging drill: from OK")
        # Real causes, where LocalStack publishes the service metric.
        report = outputs["function_names"]["report"]
        bad = json.dumps({"date": "not-a-date", "upload": False}).encode()
        failed = lambda_.invoke(FunctionName=report, Payload=bad)
        assert failed.get("FunctionError"), failed
        how[names["report-errors"]] = "real: a failed invocation (Lambda Errors published by the emulator)"
        # The 02:00 job's way: asynchronous, no retries, on-failure destination = the alerts topic.
        lambda_.invoke(FunctionName=report, Payload=bad, InvocationType="Event")
        for key, url in (
            ("dlq-messages", outputs["dlq_url"]),
            ("scheduler-dlq-messages", outputs["scheduler_dlq_url"]),
        ):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"drill": key}))
            how[names[key]] = (
                "real: a message left in the queue (SQS depth published by the emulator every 60 s)"
            )
        # Datapoints with exactly the alarm's namespace, metric and dimensions where the emulator
        # publishes no service metric (API Gateway, Step Functions, the DLQ age, the other functions).
        for alarm in alarms:
            if not alarm.get("MetricName") or alarm["AlarmName"] in how:
                continue
            cloudwatch.put_metric_data(
                Namespace=alarm["Namespace"],
                MetricData=[
                    {
                        "MetricName": alarm["MetricName"],
                        "Dimensions": alarm.get("Dimensions", []),
                        "Value": _breaching(alarm),
                    }
                ],
            )
            how[alarm["AlarmName"]] = (
                "datapoint: the alarm's namespace/metric/dimensions, read from the deployment"
            )
        evaluated = set(how)

        deadline = time.monotonic() + PAGING_DEADLINE_S
        paged: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and not evaluated <= set(paged):
            time.sleep(10)
            paged.update(tap.alarm_messages("ALARM"))
        states = {
            a["AlarmName"]: a["StateValue"]
            for a in cloudwatch.describe_alarms(AlarmNames=sorted(evaluated))["MetricAlarms"]
        }
        assert {n: s for n, s in states.items() if s != "ALARM"} == {}
        assert sorted(evaluated - set(paged)) == []
        links = ops_cli.json("links")
        for name in evaluated:
            assert paged[name]["AlarmArn"] == by_name[name]["AlarmArn"]
            assert name in json.dumps(links), f"ops links has no link for {name}"
        # ops status shows the same alarms in ALARM (exit 2: CRITICAL / unhealthy).
        status = ops_cli("status", "--json")
        assert status.exit_code == 2, status.output
        assert evaluated <= {a["name"] for a in json.loads(status.stdout)["alarms"]}
        destination = [
            m["body"]
            for m in tap.received
            if isinstance(m["body"], dict) and report in json.dumps(m["body"].get("requestContext", {}))
        ]
        assert destination, "the failed asynchronous report invocation never reached the alerts topic"
        assert "invalid date" in json.dumps(destination[0].get("responsePayload"))

        # Metric-math alarms: LocalStack's free edition does not evaluate them (only alarms with
        # MetricName/Statistic/Period). Their action is proved by a state change.
        math = sorted(set(by_name) - evaluated)
        for name in math:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="paging drill")
            how[name] = "SetAlarmState: metric math is not evaluated by the emulator (action path only)"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not set(math) <= set(paged):
            time.sleep(2)
            paged.update(tap.alarm_messages("ALARM"))
        assert sorted(set(math) - set(paged)) == []
        print("\nalarms proved on LocalStack:\n" + "\n".join(f"  {n}: {w}" for n, w in sorted(how.items())))
    finally:
        for name in by_name:
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="paging drill over")
        for url in (outputs["dlq_url"], outputs["scheduler_dlq_url"]):
            sqs.purge_queue(QueueUrl=url)
        tap.tap.close()
