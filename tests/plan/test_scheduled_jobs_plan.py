"""The scheduled jobs are invoked asynchronously (EventBridge Scheduler): the plan gives them no
automatic Lambda retries and an on-failure destination that pages (the alerts topic). That the job
roles may publish there (and use the topic's key) is checked with the other role grants in
tests/security/test_iam.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SUFFIX = "plantest"
Pick = Callable[[str], list[dict[str, Any]]]


def _functions_module(plan_json: dict[str, Any]) -> dict[str, Any]:
    return plan_json["configuration"]["root_module"]["module_calls"]["functions"]


def test_scheduled_jobs_never_retry_and_report_failures_to_the_alerts_topic(
    plan_json: dict[str, Any], resources_of_type: Pick
) -> None:
    configs = {
        r["values"]["function_name"]: r["values"]
        for r in resources_of_type("aws_lambda_function_event_invoke_config")
    }
    assert set(configs) == {
        f"payment-report-{SUFFIX}",
        f"payment-cleanup-{SUFFIX}",
        f"payment-sweeper-{SUFFIX}",
    }
    for name, config in configs.items():
        assert config["maximum_retry_attempts"] == 0, name
        assert 60 <= config["maximum_event_age_in_seconds"] <= 3600, name
        assert config.get("qualifier") in (None, "", "$LATEST"), name
    module = _functions_module(plan_json)
    [resource] = [
        r for r in module["module"]["resources"] if r["type"] == "aws_lambda_function_event_invoke_config"
    ]
    destination = resource["expressions"]["destination_config"][0]["on_failure"][0]["destination"]
    assert destination["references"] == ["var.job_failure_topic_arn"]
    wired = module["expressions"]["job_failure_topic_arn"]["references"]
    assert 'module.messaging.topic_arns["alerts"]' in wired
