"""``ops links --subscriptions``: who the alerts topic reaches and whether each subscription confirmed.

SNS e-mail (and HTTPS) subscriptions stay "PendingConfirmation" until the endpoint confirms, and
Terraform cannot confirm an e-mail (SNS developer guide, "Email notifications": the recipient must
follow the link in the confirmation message). moto confirms every subscription at once, so the
pending case is shown with a recorded ListSubscriptionsByTopic page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from click.testing import CliRunner

from ops.cli.main import cli
from ops.core.links import CONFIRMED, PENDING, subscription_states

REGION = "us-east-1"


class _RecordedSns:
    """ListSubscriptionsByTopic / GetSubscriptionAttributes answers as SNS gives them."""

    def __init__(self, entries: list[dict[str, str]], attributes: dict[str, dict[str, str]]) -> None:
        self.entries = entries
        self.attributes = attributes

    def get_paginator(self, name: str) -> Any:
        assert name == "list_subscriptions_by_topic"
        entries = self.entries

        class _Pages:
            def paginate(self, TopicArn: str) -> list[dict[str, Any]]:
                return [{"Subscriptions": entries[:1]}, {"Subscriptions": entries[1:]}]

        return _Pages()

    def get_subscription_attributes(self, SubscriptionArn: str) -> dict[str, Any]:
        return {"Attributes": self.attributes[SubscriptionArn]}


def test_pending_and_confirmed_subscriptions_are_told_apart() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:payment-alerts-test"
    confirmed_arn = f"{topic}:0f1e2d3c"
    sns = _RecordedSns(
        [
            {"Protocol": "email", "Endpoint": "oncall@example.com", "SubscriptionArn": "PendingConfirmation"},
            {"Protocol": "https", "Endpoint": "https://h.example.com/s", "SubscriptionArn": confirmed_arn},
        ],
        {confirmed_arn: {"PendingConfirmation": "false"}},
    )
    states = {(s.protocol, s.state) for s in subscription_states(sns, topic)}
    assert states == {("email", PENDING), ("https", CONFIRMED)}


def _outputs(tmp_path: Path, topic_arn: str) -> Path:
    path = tmp_path / "outputs.json"
    output = {"value": topic_arn, "type": "string", "sensitive": False}
    path.write_text(json.dumps({"alerts_topic_arn": output}))
    return path


def test_links_lists_the_alert_subscriptions_with_their_state(aws_env: None, tmp_path: Path) -> None:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="payment-alerts-test")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="pager-inbox")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    outputs = _outputs(tmp_path, topic)

    result = CliRunner().invoke(cli, ["--outputs-file", str(outputs), "links", "--subscriptions", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["confirmed"] == 1
    assert [(s["protocol"], s["endpoint"], s["state"]) for s in answer["subscriptions"]] == [
        ("sqs", queue_arn, CONFIRMED)
    ]

    table = CliRunner().invoke(cli, ["--outputs-file", str(outputs), "links", "--subscriptions"])
    assert table.exit_code == 0, table.output
    assert "confirmed" in table.stdout and "sqs" in table.stdout


def test_a_topic_nobody_confirmed_exits_1(aws_env: None, tmp_path: Path) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="payment-alerts-test")["TopicArn"]
    result = CliRunner().invoke(
        cli, ["--outputs-file", str(_outputs(tmp_path, topic)), "links", "--subscriptions", "--json"]
    )
    assert result.exit_code == 1
    assert "reach nobody" in result.stderr
