"""ONE deployment per test session, shared by the apply suite (tests/apply) and the end-to-end flows
(tests/e2e): applying the root module to an emulator takes ~3 minutes and destroying it ~1, so each
lane pays for it once, not once per suite.

Order inside a session: the apply suite's describe checks and its re-plan run first (pytest collects
tests/apply before tests/e2e), then the flows; at the end of the session the stack is destroyed and
swept: nothing carrying the session's suffix may be left in the emulator, and the state must be
empty (a failure there is reported as an error of the last test that used the stack).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.build import BuildResult
from devkit.emulator.endpoints import selected_backend
from devkit.local import local_tf_vars
from devkit.terraform import REPO_ROOT, Terraform, TerraformError, prepare_workdir

APPLY_TIMEOUT_S = 1800.0


@dataclass
class Deployment:
    """The applied root module: its runner, variables, outputs and timings, and the emulator."""

    tf: Terraform
    emulator: Any
    suffix: str
    tf_vars: dict[str, Any]
    package: BuildResult
    workdir: Path
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    resource_count: int = 0
    destroyed: bool = False

    @property
    def env(self) -> dict[str, str]:
        """The emulator's endpoint and test credentials, as a client of the stack needs them."""
        return dict(self.emulator.env())

    @property
    def apply_seconds(self) -> float:
        return self.timings.get("apply", 0.0)

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.emulator.client(service, **kwargs)

    def destroy(self) -> None:
        if self.destroyed:
            return
        started = time.monotonic()
        self.tf.destroy_vars(self.tf_vars)
        self.timings["destroy"] = time.monotonic() - started
        self.destroyed = True


def _stack_vars(package: BuildResult) -> dict[str, Any]:
    """The session's variables beyond the local ones. The pytest-xdist workers of the LocalStack lane
    share one LocalStack (``make test-localstack``), so their stacks share one account: the
    account-wide API Gateway CloudWatch role (``aws_api_gateway_account``) is set by the first
    worker's stack only, as a second stack in a real account leaves it to the first
    (``manage_api_gateway_account``). The embedded moto server is one per worker process."""
    extra: dict[str, Any] = {"lambda_architecture": package.architecture}
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if selected_backend() == "localstack" and worker != "gw0":
        extra["manage_api_gateway_account"] = False
    return extra


def deploy(
    tmp_path_factory: pytest.TempPathFactory, emulator: Any, package: BuildResult
) -> Iterator[Deployment]:
    """Apply the root module, yield it, then destroy it and assert nothing of it is left."""
    if not (REPO_ROOT / "main.tf").is_file():
        pytest.skip("the root module (main.tf) does not exist yet")
    suffix = os.environ.get("E2E_SUFFIX") or f"e2e{uuid.uuid4().hex[:5]}"
    workdir = prepare_workdir(
        tmp_path_factory.mktemp("stack"), emulator.endpoint_url, package_path=package.path
    )
    log = workdir.parent / "terraform.log"
    tf = Terraform(workdir, timeout=APPLY_TIMEOUT_S, log_path=log)
    tf_vars = local_tf_vars(suffix, extra=_stack_vars(package), backend=selected_backend())
    dep = Deployment(
        tf=tf, emulator=emulator, suffix=suffix, tf_vars=tf_vars, package=package, workdir=workdir
    )
    try:
        started = time.monotonic()
        tf.init_dir()
        dep.timings["init"] = time.monotonic() - started
        started = time.monotonic()
        # Re-runs itself (bounded) after a dropped emulator connection: see Terraform.run_retrying.
        tf.apply_vars(tf_vars)
        dep.timings["apply"] = time.monotonic() - started
        dep.outputs = tf.outputs()
        dep.resource_count = tf.state_resource_count()
    except TerraformError as exc:
        note = f"terraform apply failed (log: {log}):\n{exc}"
        try:
            tf.destroy_vars(tf_vars)
        except TerraformError:
            note += "\n(destroy after the failed apply failed too)"
        pytest.fail(note, pytrace=False)
    yield dep
    dep.destroy()
    left = {kind: names for kind, names in leftovers(dep).items() if names}
    assert left == {}, f"resources of suffix {suffix} left after destroy: {left}"
    assert tf.state_resource_count() == 0


# Listings swept after destroy: kind -> (service, operation, result key, the item's name field; None
# when the items are the names themselves).
SWEPT: dict[str, tuple[str, str, str, str | None]] = {
    "tables": ("dynamodb", "list_tables", "TableNames", None),
    "queues": ("sqs", "list_queues", "QueueUrls", None),
    "topics": ("sns", "list_topics", "Topics", "TopicArn"),
    "functions": ("lambda", "list_functions", "Functions", "FunctionName"),
    "roles": ("iam", "list_roles", "Roles", "RoleName"),
    "state machines": ("stepfunctions", "list_state_machines", "stateMachines", "name"),
    "rest apis": ("apigateway", "get_rest_apis", "items", "name"),
    "usage plans": ("apigateway", "get_usage_plans", "items", "name"),
    "log groups": ("logs", "describe_log_groups", "logGroups", "logGroupName"),
    "kms aliases": ("kms", "list_aliases", "Aliases", "AliasName"),
    "alarms": ("cloudwatch", "describe_alarms", "MetricAlarms", "AlarmName"),
    "dashboards": ("cloudwatch", "list_dashboards", "DashboardEntries", "DashboardName"),
    "schedules": ("scheduler", "list_schedules", "Schedules", "Name"),
    "parameters": ("ssm", "describe_parameters", "Parameters", "Name"),
}


def leftovers(deployment: Deployment) -> dict[str, list[str]]:
    """Names carrying the deployment's suffix, per kind, still in the emulator (after destroy)."""
    s = deployment.suffix
    c = deployment.client
    found: dict[str, list[str]] = {}
    for kind, (service, operation, key, name) in SWEPT.items():
        names = [item if name is None else item[name] for item in list_all(c(service), operation, key)]
        found[kind] = [n for n in names if s in n]
    found["buckets"] = [b["Name"] for b in c("s3").list_buckets()["Buckets"] if s in b["Name"]]
    # LocalStack's free edition has neither WAFv2 nor the X-Ray control plane: nothing to list there.
    if selected_backend() != "localstack":
        acls = c("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]
        found["web acls"] = [w["Name"] for w in acls if s in w["Name"]]
        found["xray groups"] = [
            g["GroupName"] for g in c("xray").get_groups()["Groups"] if s in g["GroupName"]
        ]
        rules = c("xray").get_sampling_rules()["SamplingRuleRecords"]
        found["xray rules"] = [
            r["SamplingRule"]["RuleName"] for r in rules if s in r["SamplingRule"]["RuleName"]
        ]
    found["vpcs"] = [
        v["VpcId"]
        for v in list_all(c("ec2"), "describe_vpcs", "Vpcs")
        if any(s in t["Value"] for t in v.get("Tags", []))
    ]
    return found


def list_all(client: Any, operation: str, key: str) -> list[Any]:
    """Every item of a listing, across pages when the operation paginates."""
    if client.can_paginate(operation):
        return [item for page in client.get_paginator(operation).paginate() for item in page.get(key, [])]
    items: list[Any] = getattr(client, operation)().get(key, [])
    return items
