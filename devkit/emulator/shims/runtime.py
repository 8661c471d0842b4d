"""Run-time compatibility shims for moto 5.2.5: behaviour the deployed code meets, not the apply.

Installed by :func:`devkit.emulator.shims.install_runtime`, which ``devkit.emulator.server.configure_moto``
and :func:`devkit.emulator.lambda_runtime.install` call. Each shim names the moto behaviour it replaces
and fails loudly (:class:`~devkit.emulator.shims.ShimError`) when the patched attribute is not where it
was.

* :func:`shim_sfn_definite_jsonpath` — a Choice on ``$.checks[0].valid`` never matches on stock moto.
* :func:`shim_s3_bucket_policy_conditions` — stock moto applies a bucket policy's Deny statements
  whatever their Condition says (it only understands ``StringEquals``), so the usual TLS-only
  statement (``Bool aws:SecureTransport false``) denies every PutObject/GetObject. This shim evaluates
  the conditions, so a policy that would refuse the platform's own writes on AWS refuses them here too.
* :func:`shim_cloudwatch_describe_alarms_filters` — DescribeAlarms honours only one filter.
* :func:`shim_dynamodb_restore_overrides` — RestoreTableToPointInTime drops the KMS key and billing
  mode it is asked for.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any

from jsonpath_ng.ext import parse
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.iam.access_control import PermissionResult
from moto.s3.models import FakeBucket
from moto.s3.responses import S3Response
from moto.stepfunctions.parser.asl.utils import json_path

from devkit.emulator.shims._base import ShimError

log = logging.getLogger(__name__)


def _own_attribute(owner: Any, name: str) -> Any:
    """``owner``'s own ``name`` (a class's, not an inherited one); :class:`ShimError` when it is gone."""
    value = vars(owner).get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if value is None:
        label = getattr(owner, "__qualname__", getattr(owner, "__name__", repr(owner)))
        raise ShimError(f"hook point moved: {getattr(owner, '__module__', '?')}.{label}.{name} is gone")
    return value


# -- Step Functions -----

# Paths with a wildcard, slice, filter, union or recursive descent select a list; everything else is definite.
_INDEFINITE_JSONPATH = re.compile(r"\*|\.\.|\?\(|\[[^\]]*[:,][^\]]*\]")


def shim_sfn_definite_jsonpath() -> None:
    """moto 5.2.5's ASL interpreter returns a one-element *list* for a definite path whose parent is an
    array element (``$.checks[0].valid`` → ``[false]``; its fix for getmoto/moto#7825 in
    ``asl/utils/json_path.extract_json``), so a Choice rule on ``$.checks[0].valid`` or
    ``$.checks[1].decision`` after a Parallel state never matches. AWS resolves a definite path (no
    ``*``, slice, filter, union or ``..``) to the single value. The shim does that for definite paths and
    leaves every other path to moto. Applied to the defining module and to every already-imported
    module of the interpreter that bound the function by name.
    """
    original = _own_attribute(json_path, "extract_json")
    if getattr(original, "_definite_path_shim", False):
        return

    def extract_json(path: str, data: Any) -> Any:
        if not _INDEFINITE_JSONPATH.search(path):
            matches = parse(path).find(data)
            if len(matches) == 1:
                return matches[0].value
        return original(path, data)

    extract_json._definite_path_shim = True  # type: ignore[attr-defined]
    json_path.extract_json = extract_json
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json  # type: ignore[attr-defined]


# -- S3 bucket policies -----

_request = threading.local()


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _match_any(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in _values(patterns))


def condition_holds(operator: str, expected: Any, actual: str | None) -> bool | None:
    """One IAM condition test against the request context; ``None`` for operators not emulated.

    Absent keys follow IAM: ``Null`` checks presence; ``...IfExists`` and negated operators hold;
    every other operator fails.
    """
    base = operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: on single-valued keys
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    wanted = _values(expected)
    if base == "Null":
        return (actual is None) == (wanted[0].lower() == "true")
    negated = "Not" in base
    if actual is None:
        return if_exists or negated
    if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        hit = actual in wanted if base.startswith("String") else _match_any(wanted, actual)
    elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        hit = actual.lower() in {w.lower() for w in wanted}
    elif base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        hit = _match_any(wanted, actual)
    elif base == "Bool":
        hit = actual.lower() in {w.lower() for w in wanted}
    else:
        return None
    return not hit if negated else hit


def _principal_is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in _values(principal.get("AWS", []))


def evaluate_policy(
    policy: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str | None]
) -> PermissionResult:
    """Explicit deny wins, then allow, else neutral — for the statements that name everyone as principal
    (the emulator cannot tell who signed a request, as moto's own evaluation cannot)."""
    allowed = False
    for statement in policy.get("Statement", []):
        if not _principal_is_everyone(statement.get("Principal")):
            continue
        if "NotAction" in statement:
            if _match_any(statement["NotAction"], action):
                continue
        elif not _match_any(statement.get("Action", []), action):
            continue
        if "NotResource" in statement:
            if _match_any(statement["NotResource"], resource):
                continue
        elif not _match_any(statement.get("Resource", []), resource):
            continue
        results = [
            condition_holds(operator, expected, context.get(key))
            for operator, tests in (statement.get("Condition") or {}).items()
            for key, expected in tests.items()
        ]
        if None in results:
            log.warning(
                "bucket policy statement %s uses an operator the emulator does not evaluate; skipped",
                statement.get("Sid"),
            )
            continue
        if not all(results):
            continue
        if statement.get("Effect") == "Deny":
            return PermissionResult.DENIED
        allowed = True
    return PermissionResult.PERMITTED if allowed else PermissionResult.NEUTRAL


def _request_context() -> dict[str, str | None]:
    headers = getattr(_request, "headers", None) or {}
    lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
    return {
        # The emulator stands in for S3's HTTPS endpoint: requests to it count as TLS.
        "aws:SecureTransport": "true",
        "s3:x-amz-server-side-encryption": lowered.get("x-amz-server-side-encryption"),
        "s3:x-amz-server-side-encryption-aws-kms-key-id": lowered.get(
            "x-amz-server-side-encryption-aws-kms-key-id"
        ),
    }


def shim_s3_bucket_policy_conditions() -> None:
    """moto 5.2.5's ``FakeBucket.get_permission`` (used for object GET/PUT/HEAD/DELETE) ignores every
    condition operator except ``StringEquals``, so a Deny with ``Bool aws:SecureTransport false`` applies
    to every request. The shim evaluates the policy with IAM's condition semantics against a request
    context of ``aws:SecureTransport=true`` and the request's ``x-amz-server-side-encryption*`` headers,
    captured by wrapping ``S3Response._key_response``.
    """
    original_get_permission = _own_attribute(FakeBucket, "get_permission")
    original_key_response = _own_attribute(S3Response, "_key_response")
    if getattr(original_get_permission, "_conditions_shim", False):
        return

    def get_permission(bucket: Any, action: str, resource: str) -> Any:
        if bucket.policy is None:
            return PermissionResult.NEUTRAL
        raw = bucket.policy.decode() if isinstance(bucket.policy, bytes) else str(bucket.policy)
        return evaluate_policy(json.loads(raw), action, resource, _request_context())

    def key_response(response: Any, request: Any, full_url: str) -> Any:
        _request.headers = getattr(request, "headers", None)
        try:
            return original_key_response(response, request, full_url)
        finally:
            _request.headers = None

    get_permission._conditions_shim = True  # type: ignore[attr-defined]
    FakeBucket.get_permission = get_permission  # type: ignore[method-assign,assignment]
    S3Response._key_response = key_response  # type: ignore[method-assign,assignment]


# -- CloudWatch -----


def shim_cloudwatch_describe_alarms_filters() -> None:
    """moto 5.2.5's ``DescribeAlarms`` applies only the first of ActionPrefix, AlarmNamePrefix,
    AlarmNames and StateValue it finds, so ``AlarmNamePrefix=payment-, StateValue=ALARM`` (what the
    health check asks) returns every platform alarm whatever its state. AWS applies all of them; so
    does the shim.
    """
    original = _own_attribute(CloudWatchResponse, "describe_alarms")
    if getattr(original, "_all_filters_shim", False):
        return

    def describe_alarms(response: Any) -> Any:
        action_prefix = response._get_param("ActionPrefix")
        name_prefix = response._get_param("AlarmNamePrefix")
        names = set(response._get_param("AlarmNames", []) or [])
        state = response._get_param("StateValue")
        alarms = [
            alarm
            for alarm in response.cloudwatch_backend.describe_alarms()
            if (not action_prefix or any(str(a).startswith(action_prefix) for a in alarm.alarm_actions or []))
            and (not name_prefix or alarm.name.startswith(name_prefix))
            and (not names or alarm.name in names)
            and (not state or alarm.state_value == state)
        ]
        return ActionResult(
            {
                "MetricAlarms": [a for a in alarms if a.rule is None],
                "CompositeAlarms": [a for a in alarms if a.rule is not None],
            }
        )

    describe_alarms._all_filters_shim = True  # type: ignore[attr-defined]
    CloudWatchResponse.describe_alarms = describe_alarms  # type: ignore[method-assign,assignment]


# -- DynamoDB -----


def shim_dynamodb_restore_overrides() -> None:
    """moto 5.2.5's ``RestoreTableToPointInTime`` copies the source's keys, indexes and current items
    but drops ``SSESpecificationOverride`` and ``BillingModeOverride``: the copy comes back without
    encryption and without a billing mode. AWS applies both (``ops restore`` passes the source's CMK
    and billing mode), so does the shim. The copy still holds the source's *current* items: moto keeps
    no history and ignores ``RestoreDateTime`` (the drill's time semantics are unit-tested with
    recorded items in ``tests/ops/test_ops_restore.py``).
    """
    original = _own_attribute(DynamoHandler, "restore_table_to_point_in_time")
    if getattr(original, "_overrides_shim", False):
        return

    def restore_table_to_point_in_time(handler: Any) -> Any:
        result = original(handler)
        body = handler.body
        table = handler.dynamodb_backend.get_table(body["TargetTableName"])
        sse = body.get("SSESpecificationOverride") or {}
        if sse.get("Enabled"):
            table.sse_specification = {"Enabled": True, "SSEType": sse.get("SSEType", "KMS"), **sse}
        if body.get("BillingModeOverride"):
            table.billing_mode = body["BillingModeOverride"]
        return DynamoResult(table.describe()) if sse or body.get("BillingModeOverride") else result

    restore_table_to_point_in_time._overrides_shim = True  # type: ignore[attr-defined]
    DynamoHandler.restore_table_to_point_in_time = restore_table_to_point_in_time  # type: ignore[method-assign,assignment]
