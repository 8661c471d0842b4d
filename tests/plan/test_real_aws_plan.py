"""What the emulator cannot see: quotas, KMS grants, time budgets, template semantics and
account-wide settings that would make ``terraform apply`` fail on a real account, or the platform
misbehave there, although the emulator accepts them. Each test names the AWS rule it encodes;
docs/security-findings.md lists them with the finding they close.

The default plan is the session's (``environment_suffix = "plantest"``); a few tests make their
own plan with other variables (the production example, refused inputs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from devkit.terraform import REPO_ROOT, Terraform, TerraformError

# slow (its own plans and refused plans, ~30 s each): `make test` runs it, `make check` leaves it out.
pytestmark = pytest.mark.slow

SUFFIX = "plantest"
PRODUCTION_TFVARS = REPO_ROOT / "examples" / "production.tfvars"
EXPRESS_MAX_SECONDS = 300


# ------------------------------------------------------------------------------------------
# helpers


def _resources(plan_json: dict[str, Any]) -> list[dict[str, Any]]:
    from devkit.terraform import planned_resources

    return planned_resources(plan_json)


def _one(resources: list[dict[str, Any]], address: str) -> dict[str, Any]:
    found = [r["values"] for r in resources if r["address"] == address]
    assert len(found) == 1, f"{address} is planned {len(found)} times"
    values: dict[str, Any] = found[0]
    return values


def _of_type(resources: list[dict[str, Any]], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == resource_type]


def _read_document(plan_json: dict[str, Any], address: str) -> dict[str, Any]:
    """Arguments of an aws_iam_policy_document read during the plan (its key ARN is unknown)."""
    for change in plan_json["resource_changes"]:
        if change["address"] == address:
            after: dict[str, Any] = change["change"]["after"] or {}
            return after
    raise AssertionError(f"{address} is not in the plan")


def _statements(policy: str) -> list[dict[str, Any]]:
    statements = json.loads(policy)["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _plan(tf: Terraform, *args: str) -> dict[str, Any]:
    planfile = Path(tf.tfdir) / "real-aws.tfplan"
    tf.run_retrying("plan", "-input=false", "-no-color", f"-out={planfile.name}", *args)
    try:
        shown = tf.run("show", "-json", "-no-color", planfile.name)
    finally:
        planfile.unlink(missing_ok=True)
    plan: dict[str, Any] = json.loads(shown.out)
    return plan


def _refused(tf: Terraform, *args: str) -> str:
    """The plan fails; its error text with Terraform's box drawing and line wrapping removed."""
    with pytest.raises(TerraformError) as caught:
        tf.run_retrying("plan", "-input=false", "-no-color", "-lock=false", *args)
    return re.sub(r"\s+", " ", str(caught.value).replace("│", " "))


def _var(name: str, value: Any) -> list[str]:
    rendered = json.dumps(value) if isinstance(value, dict | list | bool) else str(value)
    return ["-var", f"{name}={rendered}"]


def _tfvars_map(text: str, name: str) -> dict[str, int]:
    """A flat ``name = { key = number ... }`` block of a .tfvars file."""
    block = re.search(rf"^{name}\s*=\s*\{{(.*?)^\}}", text, re.S | re.M)
    assert block, f"{name} not found"
    return {k: int(v) for k, v in re.findall(r"^\s*([a-z-]+)\s*=\s*(\d+)", block.group(1), re.M)}


@pytest.fixture(scope="module")
def production_plan(tf_workdir: Terraform) -> dict[str, Any]:
    return _plan(tf_workdir, f"-var-file={PRODUCTION_TFVARS}")


# ------------------------------------------------------------------------------------------
# 1. Reserved concurrency: nothing by default, production values checked against the quota


def test_production_example_reserves_the_spec_values_and_fits_its_account_limit(
    production_plan: dict[str, Any],
) -> None:
    """AWS keeps 100 executions unreserved (Lambda quotas page): the example's total + 100 fits
    the limit it states, and the precondition let the plan through."""
    text = PRODUCTION_TFVARS.read_text(encoding="utf-8")
    reserved = _tfvars_map(text, "reserved_concurrency")
    assert reserved["validator"] == 100
    assert all(reserved[r] == 50 for r in ("fraud-check", "settlement", "notification", "intake", "status"))
    assert reserved["cleanup"] == 1, "one cleanup run at a time"
    assert reserved["sweeper"] == 1, "one sweep at a time"
    limit = int(re.search(r"^account_concurrency_limit\s*=\s*(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    assert sum(reserved.values()) + 100 <= limit
    functions = {
        r["values"]["function_name"]: r["values"]["reserved_concurrent_executions"]
        for r in _of_type(_resources(production_plan), "aws_lambda_function")
    }
    assert functions == {f"payment-{role}-prod": n for role, n in reserved.items()}


def test_reservations_beyond_the_account_limit_fail_the_plan(tf_workdir: Terraform) -> None:
    production = _tfvars_map(PRODUCTION_TFVARS.read_text(encoding="utf-8"), "reserved_concurrency")
    total = sum(production.values())
    error = _refused(
        tf_workdir,
        *_var("environment_suffix", SUFFIX),
        *_var("reserved_concurrency", production),
        *_var("account_concurrency_limit", total + 99),
    )
    assert "AWS keeps 100 unreserved" in error, error
    assert f"reserves {total} executions" in error, error


# ------------------------------------------------------------------------------------------
# 2. Scheduler decrypts its own encrypted schedule with the execution role


def test_each_schedule_role_can_decrypt_its_own_schedule(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]]
) -> None:
    """A schedule with kms_key_arn is decrypted at run time by its execution role under the
    encryption context aws:scheduler:schedule:arn (Scheduler "Encryption at rest")."""
    schedules = _of_type(planned_resources, "aws_scheduler_schedule")
    assert {s["address"] for s in schedules} == {
        f'module.schedules.aws_scheduler_schedule.this["{job}"]' for job in ("report", "cleanup", "sweeper")
    }
    for schedule in schedules:
        values = schedule["values"]
        key = schedule["address"].split("[", 1)[1].rstrip("]")
        arn = f"arn:aws:scheduler:us-east-1:123456789012:schedule/{values['group_name']}/{values['name']}"
        document = _read_document(plan_json, f"module.schedules.data.aws_iam_policy_document.this[{key}]")
        decrypt = [
            s
            for s in document["statement"]
            if "kms:Decrypt" in s["actions"]
            and any(
                c["variable"] == "kms:EncryptionContext:aws:scheduler:schedule:arn" for c in s["condition"]
            )
        ]
        assert len(decrypt) == 1, f"{values['name']}: no kms:Decrypt for its own schedule"
        [condition] = decrypt[0]["condition"]
        assert condition["test"] == "StringEquals" and condition["values"] == [arn]
        # The same key the schedule is encrypted with (both wait for the same key ARN).
        assert values.get("kms_key_arn") is None or decrypt[0]["resources"] == [values["kms_key_arn"]]


# ------------------------------------------------------------------------------------------
# 3. Workflow budget and the safety net


def _retry_cost(state: dict[str, Any]) -> float:
    """Worst case of a task: every attempt runs to TimeoutSeconds, plus the back-off waits."""
    assert "TimeoutSeconds" in state, "a task without TimeoutSeconds waits up to a year"
    attempts, waits = 0, 0.0
    for retrier in state.get("Retry", []):
        if {"States.ALL", "States.Timeout"} & set(retrier["ErrorEquals"]):
            count = int(retrier.get("MaxAttempts", 3))
            interval = float(retrier.get("IntervalSeconds", 1))
            rate = float(retrier.get("BackoffRate", 2.0))
            attempts = max(attempts, count)
            waits = max(waits, sum(interval * rate**i for i in range(count)))
    return float(state["TimeoutSeconds"]) * (1 + attempts) + waits


def _worst(states: dict[str, Any], name: str, depth: int = 0) -> float:
    """Longest time from entering ``name`` to the end of the execution, over every route
    (Next, Choice branches and Default, Catch targets); Parallel costs its slowest branch."""
    assert depth < 50, "cycle in the definition"
    state = states[name]
    if state["Type"] == "Task":
        cost = _retry_cost(state)
    elif state["Type"] == "Parallel":
        cost = max(_worst(b["States"], b["StartAt"], depth + 1) for b in state["Branches"])
    else:
        cost = 0.0
    successors = [state.get("Next"), state.get("Default")]
    successors += [c.get("Next") for c in state.get("Choices", [])]
    successors += [c.get("Next") for c in state.get("Catch", [])]
    return cost + max([_worst(states, s, depth + 1) for s in successors if s] or [0.0])


def _tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        for branch in state.get("Branches", []):
            found.update(_tasks(branch["States"]))
    return found


@pytest.mark.parametrize("which", ["default", "production"])
def test_every_route_of_the_workflow_fits_its_execution_budget(
    which: str, planned_resources: list[dict[str, Any]], production_plan: dict[str, Any]
) -> None:
    """An execution-level States.Timeout cannot be caught: RecordFailure would never run. So
    every task's worst case (TimeoutSeconds x attempts + back-off), summed along the longest
    route, fits in TimeoutSeconds, which fits EXPRESS's 300 s; each task ceiling is above its
    function's timeout so the function's own (retried) time-out fires first."""
    resources = planned_resources if which == "default" else _resources(production_plan)
    machine = next(r["values"] for r in resources if r["type"] == "aws_sfn_state_machine")
    definition = json.loads(machine["definition"])
    worst = _worst(definition["States"], definition["StartAt"])
    assert worst <= definition["TimeoutSeconds"] <= EXPRESS_MAX_SECONDS, (worst, definition["TimeoutSeconds"])
    timeouts = {
        r["values"]["function_name"]: r["values"]["timeout"]
        for r in _of_type(resources, "aws_lambda_function")
    }
    for name, task in _tasks(definition["States"]).items():
        function = task["Parameters"]["FunctionName"].split(":function:")[1]
        assert task["TimeoutSeconds"] > timeouts[function], name


def test_a_short_execution_timeout_is_refused(emulator: Any, tmp_path: Path) -> None:
    """The budget guard itself: the workflow module refuses a TimeoutSeconds below its worst
    route (as a caller setting timeout_seconds = 60, the old value, would get)."""
    from devkit.terraform import render_override

    root = tmp_path / "short"
    root.mkdir()
    provider = render_override(emulator.endpoint_url).replace(
        'provider "aws" {\n', 'provider "aws" {\n  region = "us-east-1"\n', 1
    )
    (root / "provider.tf").write_text(provider, encoding="utf-8")
    (root / "versions.tf").write_text(
        (REPO_ROOT / "versions.tf").read_text(encoding="utf-8"), encoding="utf-8"
    )
    arn = "arn:aws:{}:us-east-1:123456789012:{}"
    steps = '["validator", "fraud-check", "settlement", "notification"]'
    function = arn.format("lambda", "function:payment-")
    (root / "main.tf").write_text(
        f"""
module "workflow" {{
  source            = "{REPO_ROOT / "modules" / "workflow"}"
  suffix            = "short"
  function_arns     = {{ for r in {steps} : r => "{function}${{r}}-short" }}
  function_timeouts = {{ validator = 15, fraud-check = 15, settlement = 20, notification = 15 }}
  logs_kms_key_arn  = "{arn.format("kms", "key/00000000-0000-0000-0000-000000000000")}"
  kms_key_arn       = "{arn.format("kms", "key/00000000-0000-0000-0000-000000000000")}"
  failed_queue_arn  = "{arn.format("sqs", "failed-transactions-short")}"
  timeout_seconds   = 60
}}
""",
        encoding="utf-8",
    )
    tf = Terraform(root, timeout=600, log_path=tmp_path / "terraform.log")
    tf.init_dir()
    error = _refused(tf)
    assert "below the workflow's worst case" in error, error


LEASE_TOO_SHORT = "settlement_lease_seconds must exceed the settlement and retry functions' timeouts"
STUCK_TOO_SOON = "stuck_after_seconds must exceed the workflow's execution budget plus the settlement lease"


@pytest.mark.parametrize(
    ("variable", "message", "other"),
    [
        ("settlement_lease_seconds", LEASE_TOO_SHORT, STUCK_TOO_SOON),
        ("stuck_after_seconds", STUCK_TOO_SOON, LEASE_TOO_SHORT),
    ],
    ids=["lease", "stuck"],
)
def test_a_lease_or_stuck_threshold_no_longer_than_the_work_it_guards_is_refused(
    tf_workdir: Terraform,
    plan_json: dict[str, Any],
    planned_resources: list[dict[str, Any]],
    variable: str,
    message: str,
    other: str,
) -> None:
    """outputs.tf's timing preconditions, each at its boundary: a lease exactly as long as the
    longer of the settlement and retry functions' timeouts (it could expire while its holder still
    runs, and a second actor settle), and a stuck threshold exactly the workflow's TimeoutSeconds
    plus the lease (the sweeper would fail a transaction still in progress). Each plan is refused
    with its own message only."""
    timeouts = {
        role: _one(planned_resources, f'module.functions.aws_lambda_function.this["{role}"]')["timeout"]
        for role in ("settlement", "retry")
    }
    machine = next(r["values"] for r in planned_resources if r["type"] == "aws_sfn_state_machine")
    budget = json.loads(machine["definition"])["TimeoutSeconds"]
    lease = plan_json["variables"]["settlement_lease_seconds"]["value"]
    boundary = {
        "settlement_lease_seconds": max(timeouts["settlement"], timeouts["retry"]),
        "stuck_after_seconds": budget + lease,
    }[variable]

    error = _refused(tf_workdir, *_var("environment_suffix", SUFFIX), *_var(variable, boundary))

    assert message in error, error
    assert other not in error, error


def test_stranded_executions_reach_the_failed_queue(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]]
) -> None:
    """The safety net: Step Functions "Execution Status Change" events for TIMED_OUT, ABORTED and
    FAILED executions of this state machine go to failed-transactions, transformed into the
    retry consumer's message; the queue and its key admit EventBridge for this rule only."""
    [rule] = [r["values"] for r in _of_type(planned_resources, "aws_cloudwatch_event_rule")]
    assert rule["name"] == f"payment-workflow-stranded-{SUFFIX}"
    state_machine_arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:payment-workflow-{SUFFIX}"
    assert json.loads(rule["event_pattern"]) == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [state_machine_arn], "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
    }
    rule_arn = f"arn:aws:events:us-east-1:123456789012:rule/{rule['name']}"
    [target] = [r["values"] for r in _of_type(planned_resources, "aws_cloudwatch_event_target")]
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:failed-transactions-{SUFFIX}"
    assert target["rule"] == rule["name"]
    if target.get("arn") is None:
        # The queue's ARN once created: the root passes the messaging module's output.
        call = plan_json["configuration"]["root_module"]["module_calls"]["workflow"]
        references = call["expressions"]["failed_queue_arn"]["references"]
        assert "module.messaging.failed_queue_arn" in references, references
    else:
        assert target["arn"] == queue_arn
    [transformer] = target["input_transformer"]
    assert transformer["input_paths"]["name"] == "$.detail.name"

    # The message EventBridge would send for AWS's sample event (execution name = transaction id).
    transaction_id = "txn_01JDQ3X4ZK8M2N5P7Q9R1S3T5V"
    event = {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-29T15:00:00Z",
        "region": "us-east-1",
        "resources": [f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{transaction_id}"],
        "detail": {
            "executionArn": f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{transaction_id}",
            "stateMachineArn": state_machine_arn,
            "name": transaction_id,
            "status": "TIMED_OUT",
            "startDate": 1764428400000,
            "stopDate": 1764428676000,
            "input": '{"timestamp":1764428400000,"transaction_id":"' + transaction_id + '"}',
            "output": None,
        },
    }
    message = json.loads(render_input_template(transformer, event))
    assert message["transaction_id"] == transaction_id
    assert message["execution_status"] == "TIMED_OUT"
    assert message["source"] == "workflow-safety-net"

    queue = next(
        r["values"]
        for r in _of_type(planned_resources, "aws_sqs_queue")
        if r["values"]["name"] == f"failed-transactions-{SUFFIX}"
    )
    send = [
        s
        for s in _statements(queue["policy"])
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert len(send) == 1 and _as_list(send[0]["Action"]) == ["sqs:SendMessage"]
    assert send[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    key = _one(planned_resources, 'module.kms.aws_kms_key.this["messaging"]')
    use = [s for s in _statements(key["policy"]) if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert len(use) == 1
    assert set(_as_list(use[0]["Action"])) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert use[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}


def render_input_template(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """EventBridge's input transformer for a JSON template: each ``<name>`` outside quotes is
    replaced by the JSON value at its path (strings quoted and escaped)."""

    def at(path: str) -> Any:
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        return value

    values = {name: json.dumps(at(path)) for name, path in transformer["input_paths"].items()}
    return re.sub(r"<([A-Za-z0-9_.]+)>", lambda m: values[m.group(1)], transformer["input_template"])


# ------------------------------------------------------------------------------------------
# 4. Step Functions logs under a customer managed key


def test_step_functions_log_delivery_can_use_the_state_machine_key(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]]
) -> None:
    """Step Functions "Data at rest encryption": with logging and a CMK, the execution role needs
    kms:GenerateDataKey under the logs encryption context and the key policy lets
    delivery.logs.amazonaws.com decrypt."""
    machine = _one(planned_resources, "module.workflow.aws_sfn_state_machine.this")
    assert machine["encryption_configuration"][0]["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    key = _one(planned_resources, 'module.kms.aws_kms_key.this["data"]')
    delivery = [
        s
        for s in _statements(key["policy"])
        if s["Effect"] == "Allow" and s.get("Principal") == {"Service": "delivery.logs.amazonaws.com"}
    ]
    assert len(delivery) == 1 and _as_list(delivery[0]["Action"]) == ["kms:Decrypt"]
    document = _read_document(plan_json, "module.workflow.data.aws_iam_policy_document.this")
    generate = [
        s
        for s in document["statement"]
        if s["actions"] == ["kms:GenerateDataKey"]
        and any(c["variable"] == "kms:EncryptionContext:SourceArn" for c in s["condition"])
    ]
    assert len(generate) == 1
    [condition] = generate[0]["condition"]
    assert condition["test"] == "StringLike"
    assert condition["values"] == ["arn:aws:logs:us-east-1:123456789012:*"]


# ------------------------------------------------------------------------------------------
# 5. Account-wide settings


def test_xray_encryption_is_left_to_the_account_by_default(planned_resources: list[dict[str, Any]]) -> None:
    """aws_xray_encryption_config is account- and region-wide; the default leaves it alone, and
    the logs key then admits no X-Ray use."""
    assert not _of_type(planned_resources, "aws_xray_encryption_config")
    key = _one(planned_resources, 'module.kms.aws_kms_key.this["logs"]')
    via = [
        v
        for s in _statements(key["policy"])
        for test in (s.get("Condition") or {}).values()
        for v in _as_list(test.get("kms:ViaService", []))
    ]
    assert not [v for v in via if v.startswith("xray.")], via


# ------------------------------------------------------------------------------------------
# 7. Gateway responses stay JSON whatever the message holds

HOSTILE = 'a "quoted" \\ back\\slash \\" and \n a newline </script>'
HTTP_TOKEN_CHARS = "GET!#$%&'*+-.^_`|~"  # RFC 9110 tchar: everything a method may contain but letters


def render_gateway_template(template: str, message: str) -> str:
    """API Gateway's plain substitution: $context.error.messageString is the message as a quoted
    JSON string; $context.httpMethod an HTTP token; any other variable is pasted raw."""
    text = template.replace("$context.error.messageString", json.dumps(message))
    text = text.replace("$context.httpMethod", HTTP_TOKEN_CHARS)
    return re.sub(r"\$\{?context\.[A-Za-z.]+\}?", lambda _m: message, text)


def test_every_gateway_response_is_json_whatever_the_error_message(
    planned_resources: list[dict[str, Any]],
) -> None:
    responses = [
        r
        for r in planned_resources
        if r["address"].startswith("module.api.aws_api_gateway_gateway_response.")
    ]
    assert len(responses) >= 10
    bad = []
    for response in responses:
        template = response["values"]["response_templates"]["application/json"]
        try:
            body = json.loads(render_gateway_template(template, HOSTILE))
        except json.JSONDecodeError as exc:
            bad.append(f"{response['address']}: {exc}: {template}")
            continue
        if "messageString" in template:
            assert body["error"]["message"] == HOSTILE, response["address"]
    assert not bad, "gateway responses that break on a message with quotes:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------------------
# 8. API Gateway's CloudWatch role: AWS's documented trust policy


def test_api_gateway_cloudwatch_role_trusts_api_gateway_without_conditions(
    planned_resources: list[dict[str, Any]],
) -> None:
    role = _one(planned_resources, "module.api.aws_iam_role.cloudwatch[0]")
    [statement] = _statements(role["assume_role_policy"])
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert _as_list(statement["Action"]) == ["sts:AssumeRole"]
    assert "Condition" not in statement, "API Gateway does not send aws:SourceAccount for this role"


# ------------------------------------------------------------------------------------------
# 9. Archive lifecycle by cost


def test_only_archives_large_enough_to_save_money_move_to_glacier(
    planned_resources: list[dict[str, Any]],
) -> None:
    """Glacier Flexible Retrieval bills ~40 KB extra per object (32 KB at its rate, 8 KB at
    Standard's): the ~1 KB transaction archives cost more there than in Standard. Only the
    cleanup batches are eligible (and AWS's default 128 KB minimum keeps small ones in Standard);
    the rule never covers transactions/ nor the whole bucket; noncurrent versions still expire
    for every object."""
    [lifecycle] = [r["values"] for r in _of_type(planned_resources, "aws_s3_bucket_lifecycle_configuration")]
    transitions = [rule for rule in lifecycle["rule"] if rule.get("transition")]
    assert transitions, "no transition rule"
    for rule in transitions:
        [flt] = rule["filter"]
        prefix = flt.get("prefix") or ""
        size = flt.get("object_size_greater_than") or 0
        assert prefix == "cleanup/" or size >= 131072, rule
        moves_small = "transactions/".startswith(prefix) and size < 131072
        assert not moves_small, f"the ~1 KB transaction archives would move: {rule}"
        assert {t["storage_class"] for t in rule["transition"]} == {"GLACIER"}
    expiring = [
        rule
        for rule in lifecycle["rule"]
        if rule.get("noncurrent_version_expiration")
        and not any(f.get("prefix") or f.get("object_size_greater_than") for f in rule["filter"])
    ]
    assert expiring, "noncurrent versions of small objects never expire"


# ------------------------------------------------------------------------------------------
# 10. The processor endpoint must be reachable from the functions


@pytest.mark.parametrize(
    "endpoint",
    ["http://processor.example.com/charge", "https://processor.example.com:8443/charge", "ftp://x"],
)
def test_processor_endpoints_the_functions_cannot_reach_are_refused(
    tf_workdir: Terraform, endpoint: str
) -> None:
    """Lambda egress is HTTPS on 443 only (security group), so http:// or another port would
    time out on every settlement."""
    error = _refused(tf_workdir, *_var("environment_suffix", SUFFIX), *_var("processor_endpoint", endpoint))
    assert "processor_endpoint must be sim://<mode> or an https:// URL on port 443" in error, error


def test_a_processor_outside_aws_needs_the_nat_gateway(tf_workdir: Terraform) -> None:
    error = _refused(
        tf_workdir,
        *_var("environment_suffix", SUFFIX),
        *_var("processor_endpoint", "https://api.processor.example.com/v1/charges"),
    )
    assert "set enable_nat_gateway = true" in error, error


def test_production_example_reaches_its_processor_through_nat(production_plan: dict[str, Any]) -> None:
    resources = _resources(production_plan)
    assert _of_type(resources, "aws_nat_gateway"), "the production processor is outside AWS"
    parameter = next(
        r["values"]
        for r in _of_type(resources, "aws_ssm_parameter")
        if r["values"]["name"].endswith("/processor/endpoint")
    )
    assert parameter["value"].startswith("https://")


# ==========================================================================================
# Round 2 (issue 23): what every emulator hides, checked against AWS's documentation.

SCHEMA_PATH = REPO_ROOT / "lambda" / "payments" / "schemas" / "create_transaction.json"
KB = 1024
# Quotas on the path of one payment (each cited in the test that uses it).
API_GATEWAY_PAYLOAD_MAX = 10 * KB * KB
LAMBDA_SYNC_PAYLOAD_MAX = 6 * KB * KB
DYNAMODB_ITEM_MAX = 400 * KB
SNS_MESSAGE_MAX = 256 * KB
SQS_MESSAGE_MAX = 256 * KB
# Four-byte UTF-8 characters, distinct so metadata keys stay unique.
WIDE = [chr(0x1F600 + i) for i in range(64)]


def _waf(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(resources, "module.edge[0].aws_wafv2_web_acl.this")


def _waf_rule(acl: dict[str, Any], name: str) -> dict[str, Any]:
    [rule] = [r for r in acl["rule"] if r["name"] == name]
    return rule


def largest_valid_body(schema: dict[str, Any], key_max: int) -> dict[str, Any]:
    """Every property present at its longest: pattern and enum fields in ASCII, free text in
    four-byte UTF-8 characters (JSON Schema's maxLength counts code points; RFC 8259 JSON text is
    UTF-8, where one code point takes up to four bytes)."""

    def longest(prop: dict[str, Any], salt: int = 0) -> str:
        if "enum" in prop:
            return str(max(prop["enum"], key=len))
        n = prop["maxLength"]
        if "pattern" in prop:
            prefix = "tok_" if prop["pattern"].startswith("^tok_") else ""
            digits = prop["pattern"].startswith("^-?[0-9]")
            return prefix + ("1" if digits else "A") * (n - len(prefix))
        return "".join(WIDE[(salt + i) % len(WIDE)] for i in range(n))

    body: dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        if "properties" in prop:
            body[name] = {k: longest(p) for k, p in prop["properties"].items()}
        elif prop.get("type") == "object":
            value = prop["additionalProperties"]
            body[name] = {
                WIDE[i] + longest({"maxLength": key_max - 1}, salt=i): longest(value, salt=i)
                for i in range(prop["maxProperties"])
            }
        else:
            body[name] = longest(prop)
    return body


def test_the_waf_admits_the_schemas_largest_valid_body_and_every_limit_on_the_path_holds(
    planned_resources: list[dict[str, Any]],
) -> None:
    """AWS WAF developer guide, "Baseline rule groups" (AWSManagedRulesCommonRuleSet):
    SizeRestrictions_BODY blocks request bodies over 8 KB; "Body" / "Managing body inspection":
    API Gateway forwards 16 KB to WAF by default, up to 64 KB (web ACL AssociationConfig).
    The largest body the request schema admits is derived from the schema itself; the WAF's size
    rule equals it, the CRS rule only counts, and every quota after the WAF holds it: API Gateway
    10 MB payload, Lambda 6 MB synchronous payload and the intake's own 64 KB cap, DynamoDB
    400 KB item, SNS 256 KB message, SQS 256 KB message (the failed queue, the events queue and
    the FIFO audit stream)."""
    import fastjsonschema
    from payments import validation

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    body = largest_valid_body(schema, validation.METADATA_KEY_MAX)
    fastjsonschema.compile(schema)(body)  # valid: the schema admits it
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))

    acl = _waf(planned_resources)
    rule = _waf_rule(acl, "body-size-limit")
    [constraint] = rule["statement"][0]["size_constraint_statement"]
    assert constraint["comparison_operator"] == "GT"
    assert constraint["size"] == size, "the WAF size rule is the schema's largest valid body"
    assert constraint["field_to_match"][0]["body"][0]["oversize_handling"] == "MATCH"
    assert rule["action"][0]["block"][0]["custom_response"][0]["response_code"] == 413

    crs = _waf_rule(acl, "AWSManagedRulesCommonRuleSet")
    overrides = crs["statement"][0]["managed_rule_group_statement"][0]["rule_action_override"]
    actions = [(o["name"], [a for a, v in o["action_to_use"][0].items() if v]) for o in overrides]
    assert actions == [("SizeRestrictions_BODY", ["count"])]
    assert _waf_rule(acl, "body-size-limit")["priority"] < crs["priority"]

    limit = acl["association_config"][0]["request_body"][0]["api_gateway"][0]["default_size_inspection_limit"]
    assert int(limit.removeprefix("KB_")) * KB >= size, "WAF must see the whole body to measure it"

    assert size > 8 * KB, "the Core rule set alone would have blocked it"
    assert size <= validation.MAX_BODY_BYTES <= LAMBDA_SYNC_PAYLOAD_MAX < API_GATEWAY_PAYLOAD_MAX
    # The stored item, the published event and the queued messages carry at most the body's
    # fields plus the platform's own (ids, status, timestamps, version: well under 4 KB).
    overhead = 4 * KB
    for quota in (DYNAMODB_ITEM_MAX, SNS_MESSAGE_MAX, SQS_MESSAGE_MAX):
        assert size + overhead <= quota
    # The SNS envelope delivered to the events queue JSON-escapes the message once more (\uXXXX
    # pairs: 12 bytes for a four-byte character, 3x): it still fits SQS's 256 KB.
    assert 3 * size + overhead <= SQS_MESSAGE_MAX


def test_health_has_its_own_lower_waf_rate_rule(planned_resources: list[dict[str, Any]]) -> None:
    """AWS WAF developer guide, "Rate-based rule statement": a scope-down statement limits which
    requests a rate rule counts. /health is unauthenticated and exempt from the general per-IP
    rule, so it gets its own, lower one (the function also caches its result and alerts only on a
    change: tests/unit/test_health.py)."""
    acl = _waf(planned_resources)
    general = _waf_rule(acl, "rate-limit-per-ip")["statement"][0]["rate_based_statement"][0]
    health = _waf_rule(acl, "rate-limit-health")["statement"][0]["rate_based_statement"][0]
    assert health["limit"] < general["limit"]
    assert health["aggregate_key_type"] == "IP"
    paths = {
        s["byte_match_statement"][0]["search_string"]
        for s in health["scope_down_statement"][0]["or_statement"][0]["statement"]
    }
    assert paths == {"/health", "/prod/health"}


def _check_status(plan: dict[str, Any], name: str) -> str:
    [check] = [c for c in plan.get("checks", []) if c["address"].get("name") == name]
    return str(check["status"])


def test_alerts_reach_explicit_machine_confirmed_subscribers(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]], production_plan: dict[str, Any]
) -> None:
    """Amazon SNS developer guide, "Email notifications": an e-mail subscription receives nothing
    until the recipient follows the confirmation link, which Terraform cannot do. No placeholder
    address is subscribed by default; the production example sends alerts to an HTTPS endpoint
    (an incident tool that confirms itself) and nothing subscribes by e-mail alone."""
    subs = _of_type(planned_resources, "aws_sns_topic_subscription")
    assert not [s for s in subs if s["values"]["protocol"].startswith("email")], "no e-mail by default"
    assert not [s for s in subs if "example.com" in str(s["values"].get("endpoint"))]
    # A stack without a subscriber plans, with a warning that alerts reach nobody.
    assert _check_status(plan_json, "alerts_reach_someone") == "fail"
    assert _check_status(production_plan, "alerts_reach_someone") == "pass"
    # The example's integration key is a placeholder that never confirms: said as a warning.
    assert _check_status(production_plan, "alert_endpoints_are_not_placeholders") == "fail"
    assert _check_status(plan_json, "alert_endpoints_are_not_placeholders") == "pass"

    production = [
        r["values"]
        for r in _resources(production_plan)
        if r["address"].startswith("module.messaging.aws_sns_topic_subscription.alerts[")
    ]
    assert production, "the production example names an alert subscriber"
    assert {s["protocol"] for s in production} & {"https", "sqs", "lambda", "sms"}
    for s in production:
        if s["protocol"] == "https":
            assert s["endpoint"].startswith("https://")
            assert s["endpoint_auto_confirms"] is True


def test_email_per_payment_is_refused_at_production_rate(tf_workdir: Terraform) -> None:
    """SNS e-mail delivery is limited to a few messages per second per account (Amazon SNS
    endpoints and quotas); one e-mail per payment at the stage's 10,000 rps cannot be delivered,
    and would put customer data in plaintext mail. It is an opt-in for low-volume stacks only."""
    text = _refused(tf_workdir, *_var("payment_event_email_subscriptions", ["ops@example.org"]))
    assert "sends one e-mail per payment" in text


def test_payment_events_reach_the_events_queue(planned_resources: list[dict[str, Any]]) -> None:
    """Amazon SNS developer guide, "Fanout to Amazon SQS queues" and "Encryption at rest": SNS
    sends to the queue as sns.amazonaws.com, which the queue policy must admit (aws:SourceArn =
    the topic), and which needs kms:GenerateDataKey/Decrypt on the queue's customer managed key."""
    subs = [
        r["values"]
        for r in planned_resources
        if r["address"].startswith("module.messaging.aws_sns_topic_subscription.events_queue[")
    ]
    assert sorted(s["protocol"] for s in subs) == ["sqs", "sqs"]
    topics = [
        f"arn:aws:sns:us-east-1:{_account(planned_resources)}:payment-{k}-{SUFFIX}"
        for k in ("events", "failed")
    ]

    queue = _one(planned_resources, "module.messaging.aws_sqs_queue.events")
    [send] = [s for s in _statements(queue["policy"]) if s.get("Sid") == "PaymentTopicsSend"]
    assert send["Principal"] == {"Service": "sns.amazonaws.com"}
    assert sorted(_as_list(send["Condition"]["ArnEquals"]["aws:SourceArn"])) == sorted(topics)

    key = _one(planned_resources, 'module.kms.aws_kms_key.this["messaging"]')
    [grant] = [s for s in _statements(key["policy"]) if s.get("Sid") == "AllowSnsToEncryptedQueues"]
    assert grant["Principal"] == {"Service": "sns.amazonaws.com"}
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= set(_as_list(grant["Action"]))
    assert sorted(_as_list(grant["Condition"]["ArnEquals"]["aws:SourceArn"])) == sorted(topics)


def _account(resources: list[dict[str, Any]]) -> str:
    dlq = _one(resources, "module.messaging.aws_sqs_queue.dlq")
    match = re.search(r":(\d{12}):", dlq["redrive_allow_policy"])
    assert match
    return match.group(1)


def test_event_source_queue_allows_five_receives_and_the_dlq_outlives_its_source(
    plan_json: dict[str, Any], planned_resources: list[dict[str, Any]]
) -> None:
    """AWS Lambda developer guide, "Using Lambda with Amazon SQS" (configuring the queue): set
    maxReceiveCount on the source queue's redrive policy to at least 5, so throttled polls do not
    dead-letter healthy messages. Amazon SQS developer guide, "Setting-up dead-letter queue
    retention": a standard queue keeps a message's original enqueue timestamp in the DLQ, so the
    DLQ's retention must be longer than the source's."""
    messaging = plan_json["configuration"]["root_module"]["module_calls"]["messaging"]["module"]
    assert messaging["variables"]["max_receive_count"]["default"] == 5
    failed = _one(planned_resources, "module.messaging.aws_sqs_queue.failed")
    dlq = _one(planned_resources, "module.messaging.aws_sqs_queue.dlq")
    assert dlq["message_retention_seconds"] > failed["message_retention_seconds"]


def test_the_failed_queue_hides_a_message_six_retry_timeouts(planned_resources: list[dict[str, Any]]) -> None:
    """AWS Lambda developer guide, "Using Lambda with Amazon SQS"
    (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), and Amazon SQS developer guide,
    "Configuring an Amazon SQS queue to trigger an AWS Lambda function": an event-source queue's
    visibility timeout is at least six times the function's timeout (plus the mapping's batching
    window), so that Lambda can retry a throttled batch before its messages reappear. The retry
    function consumes failed-transactions; the root derives the queue's timeout from the function's."""
    failed = _one(planned_resources, "module.messaging.aws_sqs_queue.failed")
    retry = _one(planned_resources, 'module.functions.aws_lambda_function.this["retry"]')
    mapping = _one(planned_resources, "module.functions.aws_lambda_event_source_mapping.retry")
    window = mapping.get("maximum_batching_window_in_seconds") or 0
    assert failed["visibility_timeout_seconds"] >= 6 * retry["timeout"] + window


def test_security_groups_are_named_by_prefix_and_deletes_wait_for_lambda_interfaces(
    planned_resources: list[dict[str, Any]],
) -> None:
    """Amazon EC2 API, CreateSecurityGroup: a group name is unique per VPC
    (InvalidGroup.Duplicate), so a create_before_destroy replacement needs name_prefix. AWS Lambda
    developer guide, "Giving Lambda functions access to resources in an Amazon VPC": Lambda's
    Hyperplane network interfaces are released up to 20-45 minutes after the functions are deleted
    and keep their security group and subnet until then, so deletes wait 45 minutes."""
    for name in ("lambda", "endpoints"):
        group = _one(planned_resources, f"module.network.aws_security_group.{name}")
        assert group["name_prefix"] == f"payment-{name}-{SUFFIX}-"
    lambda_group = _one(planned_resources, "module.network.aws_security_group.lambda")
    assert lambda_group["timeouts"]["delete"] == "45m"
    subnets = [
        r["values"]
        for r in planned_resources
        if r["address"].startswith("module.network.aws_subnet.private[")
    ]
    assert subnets and all(s["timeouts"]["delete"] == "45m" for s in subnets)


def test_interface_endpoints_reach_only_this_accounts_resources(
    planned_resources: list[dict[str, Any]],
) -> None:
    """AWS PrivateLink guide, "Control access to VPC endpoints using endpoint policies": without a
    policy an endpoint allows full access, to any account's resources. The SQS, SNS, SSM, KMS and
    Step Functions endpoints carry the own-account policy (aws:ResourceAccount), like the gateway
    endpoints."""
    account = _account(planned_resources)
    checked = 0
    for r in planned_resources:
        if not r["address"].startswith("module.network.aws_vpc_endpoint.interface["):
            continue
        service = r["values"]["service_name"].rsplit(".", 1)[-1]
        if service not in {"sqs", "sns", "ssm", "kms", "states"}:
            continue
        [statement] = _statements(r["values"]["policy"])
        assert statement["Condition"]["StringEquals"]["aws:ResourceAccount"] == account, service
        checked += 1
    assert checked == 4, "sqs, sns, ssm and states are in the default endpoint list"


def test_production_example_reaches_its_api_only_through_a_tls12_domain(
    production_plan: dict[str, Any],
) -> None:
    """API Gateway developer guide, "Disable the default endpoint for REST APIs" and "Choose a
    security policy for your custom domain": the execute-api endpoint accepts TLS 1.0 and bypasses
    a custom domain's policy unless disabled."""
    resources = _resources(production_plan)
    domain = _one(resources, "module.api.aws_api_gateway_domain_name.this[0]")
    assert domain["security_policy"] == "TLS_1_2"
    assert domain["endpoint_configuration"][0]["types"] == ["REGIONAL"]
    _one(resources, "module.api.aws_api_gateway_base_path_mapping.this[0]")
    assert _one(resources, "module.api.aws_api_gateway_rest_api.this")["disable_execute_api_endpoint"] is True


def test_production_example_gives_the_account_its_api_gateway_logging_role(
    production_plan: dict[str, Any],
) -> None:
    """API Gateway developer guide, "Set up CloudWatch logging for REST APIs": a stage cannot
    enable execution or access logging until the account has a CloudWatch Logs role; a new account
    has none, so the production example sets it."""
    resources = _resources(production_plan)
    _one(resources, "module.api.aws_api_gateway_account.this[0]")
