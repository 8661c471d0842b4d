"""Compatibility shims that let the Terraform AWS provider 5.100 apply the platform to moto 5.2.5.

Each shim is one small function whose docstring names the exact moto behaviour it works around
(measured with the provider against moto server, see /work/shared/EMULATOR.md and the apply test).
They patch moto classes in-process and must run before the server handles its first request.

Every patch goes through ``_require``: if moto changes (a different version, a renamed attribute),
start-up fails with a clear message instead of a shim silently doing nothing. Shims only touch
test emulation; nothing here is production code.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import moto
import moto.xray.urls as xray_urls
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, BaseResponse
from moto.ec2.exceptions import InvalidRouteError
from moto.ec2.models.security_groups import SecurityGroupRule
from moto.ec2.models.vpcs import VPCBackend
from moto.ec2.responses import EC2Response
from moto.scheduler.responses import EventBridgeSchedulerResponse
from moto.sqs.models import Queue, SQSBackend
from moto.ssm.models import SimpleSystemManagerBackend
from moto.stepfunctions.responses import StepFunctionResponse
from moto.xray.models import xray_backends

PINNED_MOTO_VERSION = "5.2.5"
# "module.Class.attribute" of every patch installed in this process.
PATCHED: list[str] = []


class ShimError(RuntimeError):
    """moto does not look like the version these shims were written against."""


def _require(owner: Any, name: str) -> Any:
    """Return ``owner.name`` or fail loudly: a shim must never silently stop applying."""
    if not hasattr(owner, name):
        raise ShimError(
            f"moto shim target {getattr(owner, '__name__', owner)}.{name} no longer exists; "
            f"review devkit/emulator/shims.py against moto {_moto_version()}"
        )
    return getattr(owner, name)


def _absent(owner: Any, name: str) -> None:
    """Fail loudly if moto grew a real implementation we would otherwise shadow."""
    if hasattr(owner, name):
        raise ShimError(
            f"moto now implements {getattr(owner, '__name__', owner)}.{name}; drop the shim in "
            "devkit/emulator/shims.py instead of shadowing it"
        )


def _patch(owner: Any, name: str, value: Any) -> None:
    """Install one patched attribute on a moto class (recorded for diagnostics)."""
    setattr(owner, name, value)
    PATCHED.append(f"{owner.__module__}.{owner.__name__}.{name}")


def _moto_version() -> str:
    return str(moto.__version__)


def check_moto_version(expected: str = PINNED_MOTO_VERSION) -> None:
    """The shims patch moto internals: refuse to start on any other version than the pinned one."""
    found = _moto_version()
    if found != expected:
        raise ShimError(
            f"moto {found} is installed but the emulator shims are written for moto=={expected}; "
            f"install the pinned version (pip install 'moto[server]=={expected}')"
        )


# --------------------------------------------------------------------------- Step Functions


def shim_sfn_validate_state_machine_definition() -> None:
    """moto 5.2.5 has no ``ValidateStateMachineDefinition`` (answers 500 NotImplementedError).

    The provider calls it before every create/update of ``aws_sfn_state_machine``; the shim parses
    the definition as JSON and answers ``OK`` without diagnostics (moto's own CreateStateMachine does
    the rest), or ``FAIL`` with one ERROR diagnostic when the definition is not JSON.
    """

    _absent(StepFunctionResponse, "validate_state_machine_definition")

    def validate_state_machine_definition(self: Any) -> ActionResult:
        definition = self._get_param("definition") or ""
        try:
            parsed = json.loads(definition)
        except ValueError as exc:
            return ActionResult(
                {
                    "result": "FAIL",
                    "diagnostics": [
                        {
                            "severity": "ERROR",
                            "code": "INVALID_JSON_DESCRIPTION",
                            "message": f"Definition is not valid JSON: {exc}",
                            "location": "/",
                        }
                    ],
                    "truncated": False,
                }
            )
        if not isinstance(parsed, dict) or "States" not in parsed or "StartAt" not in parsed:
            return ActionResult(
                {
                    "result": "FAIL",
                    "diagnostics": [
                        {
                            "severity": "ERROR",
                            "code": "SCHEMA_VALIDATION_FAILED",
                            "message": "Definition must be an object with StartAt and States",
                            "location": "/",
                        }
                    ],
                    "truncated": False,
                }
            )
        return ActionResult({"result": "OK", "diagnostics": [], "truncated": False})

    _patch(StepFunctionResponse, "validate_state_machine_definition", validate_state_machine_definition)


def shim_sfn_list_state_machine_versions() -> None:
    """moto 5.2.5 has no ``ListStateMachineVersions`` (500), which the provider calls on every read
    of ``aws_sfn_state_machine`` (plan, apply, destroy). The shim lists the versions moto does keep
    (``StateMachine.versions``, filled by ``publish=true``): an empty list for unpublished machines,
    ``StateMachineDoesNotExist`` for unknown ARNs, as AWS does.
    """

    _absent(StepFunctionResponse, "list_state_machine_versions")
    _require(StepFunctionResponse, "stepfunction_backend")

    def list_state_machine_versions(self: Any) -> ActionResult:
        arn = self._get_param("stateMachineArn")
        machine = self.stepfunction_backend.describe_state_machine(arn)
        versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: -v.version)
        return ActionResult(
            {
                "stateMachineVersions": [
                    {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions
                ]
            }
        )

    _patch(StepFunctionResponse, "list_state_machine_versions", list_state_machine_versions)


# --------------------------------------------------------------------------- X-Ray control plane


@dataclass
class _XRayControlPlane:
    """Per account/region X-Ray control-plane state, kept on moto's XRayBackend instance so that
    moto's reset (``/moto-api/reset``) clears it together with everything else."""

    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    encryption: dict[str, Any] = field(default_factory=lambda: {"Type": "NONE", "Status": "ACTIVE"})
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_DEFAULT_SAMPLING_RULE = {
    "RuleName": "Default",
    "ResourceARN": "*",
    "Priority": 10000,
    "FixedRate": 0.05,
    "ReservoirSize": 1,
    "ServiceName": "*",
    "ServiceType": "*",
    "Host": "*",
    "HTTPMethod": "*",
    "URLPath": "*",
    "Version": 1,
    "Attributes": {},
}

# REST path (as the SDK sends it) → handler method name on the response class.
XRAY_CONTROL_PLANE_PATHS: dict[str, str] = {
    "CreateSamplingRule": "create_sampling_rule",
    "GetSamplingRules": "get_sampling_rules",
    "UpdateSamplingRule": "update_sampling_rule",
    "DeleteSamplingRule": "delete_sampling_rule",
    "CreateGroup": "create_group",
    "GetGroup": "get_group",
    "Groups": "get_groups",
    "UpdateGroup": "update_group",
    "DeleteGroup": "delete_group",
    "PutEncryptionConfig": "put_encryption_config",
    "EncryptionConfig": "get_encryption_config",
    "TagResource": "tag_resource",
    "UntagResource": "untag_resource",
    "ListTagsForResource": "list_tags_for_resource",
}


JsonResponse = tuple[str, dict[str, Any]]


def _json(payload: Any) -> JsonResponse:
    """A JSON body with the content type X-Ray's REST-JSON protocol uses."""
    return json.dumps(payload), {"Content-Type": "application/json"}


def invalid(message: str) -> JsonRESTError:
    """X-Ray's error for bad or unknown input (400)."""
    return JsonRESTError("InvalidRequestException", message)


class XRayControlPlaneResponse(BaseResponse):
    """Sampling rules, groups, encryption config and tags: what moto's X-Ray lacks."""

    def __init__(self) -> None:
        super().__init__(service_name="xray")

    def _get_action(self) -> str:
        path = urlsplit(self.uri).path.strip("/")
        return XRAY_CONTROL_PLANE_PATHS.get(path, path)

    @property
    def state(self) -> _XRayControlPlane:
        backend = xray_backends[self.current_account][self.region]
        existing = backend.__dict__.get("_control_plane")
        if existing is None:
            existing = backend.__dict__.setdefault("_control_plane", _XRayControlPlane())
        assert isinstance(existing, _XRayControlPlane)  # noqa: S101 - internal invariant
        return existing

    @property
    def params(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.body or "{}")
        except ValueError as exc:
            raise invalid("Request body is not valid JSON") from exc
        return loaded if isinstance(loaded, dict) else {}

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:xray:{self.region}:{self.current_account}:{kind}/{name}"

    def _ensure_default_rule(self, state: _XRayControlPlane) -> None:
        if "Default" not in state.rules:
            now = time.time()
            rule = dict(_DEFAULT_SAMPLING_RULE, RuleARN=self._arn("sampling-rule", "Default"))
            state.rules["Default"] = {"SamplingRule": rule, "CreatedAt": now, "ModifiedAt": now}

    def _set_tags(self, state: _XRayControlPlane, arn: str, tags: list[dict[str, str]] | None) -> None:
        if tags:
            state.tags.setdefault(arn, {}).update({t["Key"]: t["Value"] for t in tags})

    def _find_rule(self, state: _XRayControlPlane, params: dict[str, Any]) -> dict[str, Any]:
        name, arn = params.get("RuleName"), params.get("RuleARN")
        for record in state.rules.values():
            rule = record["SamplingRule"]
            if (name and rule["RuleName"] == name) or (arn and rule["RuleARN"] == arn):
                return record
        raise invalid(f"Sampling rule does not exist: {name or arn}")

    def _find_group(self, state: _XRayControlPlane, params: dict[str, Any]) -> dict[str, Any]:
        name, arn = params.get("GroupName"), params.get("GroupARN")
        for group in state.groups.values():
            if (name and group["GroupName"] == name) or (arn and group["GroupARN"] == arn):
                return group
        raise invalid("Group not found")

    # Sampling rules ---------------------------------------------------------------

    def create_sampling_rule(self) -> JsonResponse:
        params = self.params
        rule = dict(params.get("SamplingRule") or {})
        name = rule.get("RuleName")
        if not name:
            raise invalid("SamplingRule.RuleName is required")
        state = self.state
        with state.lock:
            self._ensure_default_rule(state)
            if name in state.rules:
                raise invalid(f"Sampling rule already exists: {name}")
            rule["RuleARN"] = self._arn("sampling-rule", name)
            rule.setdefault("Attributes", {})
            now = time.time()
            record = {"SamplingRule": rule, "CreatedAt": now, "ModifiedAt": now}
            state.rules[name] = record
            self._set_tags(state, rule["RuleARN"], params.get("Tags"))
        return _json({"SamplingRuleRecord": record})

    def get_sampling_rules(self) -> JsonResponse:
        state = self.state
        with state.lock:
            self._ensure_default_rule(state)
            records = list(state.rules.values())
        return _json({"SamplingRuleRecords": records})

    def update_sampling_rule(self) -> JsonResponse:
        update = dict(self.params.get("SamplingRuleUpdate") or {})
        state = self.state
        with state.lock:
            self._ensure_default_rule(state)
            record = self._find_rule(state, update)
            for key, value in update.items():
                if key not in ("RuleName", "RuleARN") and value is not None:
                    record["SamplingRule"][key] = value
            record["ModifiedAt"] = time.time()
        return _json({"SamplingRuleRecord": record})

    def delete_sampling_rule(self) -> JsonResponse:
        state = self.state
        with state.lock:
            self._ensure_default_rule(state)
            record = self._find_rule(state, self.params)
            rule = record["SamplingRule"]
            if rule["RuleName"] == "Default":
                raise invalid("The default sampling rule cannot be deleted")
            del state.rules[rule["RuleName"]]
            state.tags.pop(rule["RuleARN"], None)
        return _json({"SamplingRuleRecord": record})

    # Groups -----------------------------------------------------------------------

    def create_group(self) -> JsonResponse:
        params = self.params
        name = params.get("GroupName")
        if not name:
            raise invalid("GroupName is required")
        state = self.state
        with state.lock:
            if name in state.groups:
                raise invalid(f"Group already exists: {name}")
            group = {
                "GroupName": name,
                "GroupARN": self._arn("group", f"{name}/{uuid.uuid4().hex.upper()[:26]}"),
                "FilterExpression": params.get("FilterExpression", ""),
                "InsightsConfiguration": {
                    "InsightsEnabled": False,
                    "NotificationsEnabled": False,
                    **(params.get("InsightsConfiguration") or {}),
                },
            }
            state.groups[name] = group
            self._set_tags(state, group["GroupARN"], params.get("Tags"))
        return _json({"Group": group})

    def get_group(self) -> JsonResponse:
        state = self.state
        with state.lock:
            return _json({"Group": self._find_group(state, self.params)})

    def get_groups(self) -> JsonResponse:
        state = self.state
        with state.lock:
            return _json({"Groups": list(state.groups.values())})

    def update_group(self) -> JsonResponse:
        params = self.params
        state = self.state
        with state.lock:
            group = self._find_group(state, params)
            if params.get("FilterExpression") is not None:
                group["FilterExpression"] = params["FilterExpression"]
            if params.get("InsightsConfiguration"):
                group["InsightsConfiguration"].update(params["InsightsConfiguration"])
        return _json({"Group": group})

    def delete_group(self) -> JsonResponse:
        state = self.state
        with state.lock:
            group = self._find_group(state, self.params)
            del state.groups[group["GroupName"]]
            state.tags.pop(group["GroupARN"], None)
        return _json({})

    # Encryption config ------------------------------------------------------------

    def put_encryption_config(self) -> JsonResponse:
        params = self.params
        enc_type = params.get("Type")
        if enc_type not in ("KMS", "NONE"):
            raise invalid("Type must be KMS or NONE")
        config: dict[str, Any] = {"Type": enc_type, "Status": "ACTIVE"}
        if enc_type == "KMS":
            if not params.get("KeyId"):
                raise invalid("KeyId is required when Type is KMS")
            config["KeyId"] = params["KeyId"]
        state = self.state
        with state.lock:
            state.encryption = config
        return _json({"EncryptionConfig": config})

    def get_encryption_config(self) -> JsonResponse:
        state = self.state
        with state.lock:
            return _json({"EncryptionConfig": state.encryption})

    # Tags ---------------------------------------------------------------------------

    def _known_arn(self, state: _XRayControlPlane, arn: str) -> None:
        known = {r["SamplingRule"]["RuleARN"] for r in state.rules.values()} | {
            g["GroupARN"] for g in state.groups.values()
        }
        if arn not in known:
            raise JsonRESTError("ResourceNotFoundException", f"Resource not found: {arn}")

    def tag_resource(self) -> JsonResponse:
        params = self.params
        state = self.state
        with state.lock:
            self._known_arn(state, params.get("ResourceARN", ""))
            self._set_tags(state, params["ResourceARN"], params.get("Tags"))
        return _json({})

    def untag_resource(self) -> JsonResponse:
        params = self.params
        state = self.state
        with state.lock:
            self._known_arn(state, params.get("ResourceARN", ""))
            current = state.tags.get(params["ResourceARN"], {})
            for key in params.get("TagKeys") or []:
                current.pop(key, None)
        return _json({})

    def list_tags_for_resource(self) -> JsonResponse:
        params = self.params
        state = self.state
        with state.lock:
            self._known_arn(state, params.get("ResourceARN", ""))
            tags = state.tags.get(params["ResourceARN"], {})
            return _json({"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})


def shim_xray_control_plane() -> None:
    """moto 5.2.5's X-Ray has only the trace data plane (PutTraceSegments, GetTraceSummaries...):
    ``aws_xray_sampling_rule``, ``aws_xray_group`` and ``aws_xray_encryption_config`` fail with 404.

    The shim routes the control-plane REST paths (CreateSamplingRule, GetSamplingRules,
    UpdateSamplingRule, DeleteSamplingRule, CreateGroup, GetGroup, Groups, UpdateGroup, DeleteGroup,
    PutEncryptionConfig, EncryptionConfig, TagResource, UntagResource, ListTagsForResource) to a small
    in-memory backend per account/region (with AWS's undeletable ``Default`` sampling rule).
    """

    url_paths = _require(xray_urls, "url_paths")
    response_cls = XRayControlPlaneResponse
    for path in XRAY_CONTROL_PLANE_PATHS:
        key = "{0}/" + path + "$"
        if key in url_paths and getattr(url_paths[key], "__self__", None) is not response_cls:
            raise ShimError(f"moto now routes X-Ray /{path}; drop the X-Ray shim")
        url_paths[key] = response_cls.dispatch


# --------------------------------------------------------------------------- SQS


def _compact_json(value: Any) -> str:
    """AWS's canonical form: no whitespace, keys sorted (what jsonencode() produces)."""
    loaded = json.loads(value) if isinstance(value, str) else value
    return json.dumps(loaded, separators=(",", ":"), sort_keys=True)


def shim_sqs_redrive_allow_policy() -> None:
    """moto 5.2.5 stores ``RedriveAllowPolicy`` (SetQueueAttributes/CreateQueue) but never returns it
    and rejects it as an attribute name in GetQueueAttributes (``InvalidAttributeName``); the
    provider's ``aws_sqs_queue_redrive_allow_policy`` then waits 20 minutes for it to appear.

    The shim answers it (compact JSON) when asked by name or with ``All``.
    """

    original_attributes = _require(Queue, "attributes")
    original_get = _require(SQSBackend, "get_queue_attributes")
    if not isinstance(original_attributes, property) or original_attributes.fget is None:
        raise ShimError("moto.sqs.models.Queue.attributes is no longer a property")
    attributes_getter = original_attributes.fget

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = attributes_getter(self)
        allow = getattr(self, "redrive_allow_policy", None)
        if allow:
            result["RedriveAllowPolicy"] = _compact_json(allow)
        return result

    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        wanted_allow = "RedriveAllowPolicy" in attribute_names
        names = [n for n in attribute_names if n != "RedriveAllowPolicy"]
        result: dict[str, Any] = original_get(self, queue_name, names) if names else {}
        if wanted_allow:
            allow = self.get_queue(queue_name).attributes.get("RedriveAllowPolicy")
            if allow:
                result["RedriveAllowPolicy"] = allow
        return result

    _patch(Queue, "attributes", property(attributes))
    _patch(SQSBackend, "get_queue_attributes", get_queue_attributes)


def shim_sqs_compact_redrive_policy() -> None:
    """moto 5.2.5 returns ``RedrivePolicy`` as ``json.dumps`` output with spaces
    (``{"deadLetterTargetArn": "...", "maxReceiveCount": 3}``) and the provider compares it verbatim
    with its compact ``jsonencode`` value: a perpetual diff on ``redrive_policy``. AWS answers
    compact JSON; so does the shim (sorted keys, as ``jsonencode`` writes them).

    Must be installed after ``shim_sqs_redrive_allow_policy`` (it wraps the same property).
    """

    current = _require(Queue, "attributes")
    if not isinstance(current, property) or current.fget is None:
        raise ShimError("moto.sqs.models.Queue.attributes is no longer a property")
    getter = current.fget

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = getter(self)
        if result.get("RedrivePolicy"):
            result["RedrivePolicy"] = _compact_json(result["RedrivePolicy"])
        return result

    _patch(Queue, "attributes", property(attributes))


def shim_sqs_keep_policy_on_set_attributes() -> None:
    """moto 5.2.5's ``Queue._set_attributes`` assigns ``self.policy = attributes.get("Policy")`` on
    every SetQueueAttributes, so setting any other attribute (the provider re-applies a changed
    ``redrive_policy`` or visibility timeout) wipes the queue policy that ``aws_sqs_queue_policy``
    set. AWS leaves attributes that are not in the request alone; so does the shim. An explicit
    empty ``Policy`` still clears it, as on AWS.
    """

    original = _require(Queue, "_set_attributes")
    _require(Queue, "policy")

    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        if "Policy" not in attributes and hasattr(self, "_policy_json"):
            kept = self.policy
            original(self, attributes, now)
            self.policy = kept
            return
        original(self, attributes, now)

    _patch(Queue, "_set_attributes", _set_attributes)


# --------------------------------------------------------------------------- EC2


def shim_ec2_security_group_rule_description() -> None:
    """moto 5.2.5's ``SecurityGroupRule.description`` reads only ``ip_range["Description"]``: the
    description of a rule that references a prefix list (``aws_vpc_security_group_egress_rule`` with
    ``prefix_list_id``, e.g. to the S3/DynamoDB gateway endpoints) or another security group
    (``referenced_security_group_id``) is dropped, so DescribeSecurityGroupRules returns none and the
    provider plans ``+ description`` forever. The shim keeps the description given with the prefix
    list or group reference and returns it.
    """
    original_init = _require(SecurityGroupRule, "__init__")
    current = _require(SecurityGroupRule, "description")
    if not isinstance(current, property) or current.fget is None:
        raise ShimError("moto.ec2 SecurityGroupRule.description is no longer a property")
    getter = current.fget

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # Positional layout of moto 5.2.5: (backend, protocol, group_id, from, to, ip_range,
        # source_group, prefix_list_id, ...).
        source_group = kwargs.get("source_group", args[6] if len(args) > 6 else None) or {}
        prefix_list = kwargs.get("prefix_list_id", args[7] if len(args) > 7 else None) or {}
        self.shim_reference_description = prefix_list.get("Description") or source_group.get("Description")

    def description(self: Any) -> str | None:
        own: str | None = getter(self)
        return own or getattr(self, "shim_reference_description", None)

    _patch(SecurityGroupRule, "__init__", __init__)
    _patch(SecurityGroupRule, "description", property(description))


def shim_ec2_gateway_endpoint_delete_without_its_route() -> None:
    """moto 5.2.5's ``DeleteVpcEndpoints`` removes a gateway endpoint's prefix-list route from each
    route table and answers ``InvalidRoute.NotFound`` when that route is already gone, leaving the
    endpoint in place (seen intermittently on ``terraform destroy`` of the e2e stack, when route
    changes and the two gateway endpoints' deletions are served concurrently). AWS removes the
    endpoint's routes itself and never fails the deletion over a route that no longer exists. The
    shim removes what routes remain, ignores missing ones, then lets moto mark the endpoint deleted.
    """
    original = _require(VPCBackend, "delete_vpc_endpoints")

    def delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> None:
        for vpce_id in vpce_ids or []:
            endpoint = self.vpc_end_points.get(vpce_id)
            if endpoint is None or str(endpoint.vpc_endpoint_type).lower() == "interface":
                continue
            for route_table_id in list(endpoint.route_table_ids):
                # A route already gone is the end state AWS reaches too.
                with contextlib.suppress(InvalidRouteError):
                    self.delete_route(route_table_id, endpoint.destination_prefix_list_id)
            endpoint.route_table_ids = []
        original(self, vpce_ids)

    _patch(VPCBackend, "delete_vpc_endpoints", delete_vpc_endpoints)


# --------------------------------------------------------------------------- idempotency tokens


# (response class, account, region, action, token) -> (request parameters, response) of a success.
_TOKEN_RESPONSES: dict[tuple[str, str, str, str, str], tuple[str, Any]] = {}
_token_lock = threading.Lock()


def _idempotent_call_action(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def call_action(self: Any) -> Any:
        token = self._get_param("ClientToken")
        if not token:
            return original(self)
        action = self._get_action()
        key = (type(self).__name__, str(self.current_account), str(self.region), action, str(token))
        params = json.dumps(
            {k: v for k, v in self._get_params().items() if k != "ClientToken"}, sort_keys=True, default=str
        )
        with _token_lock:
            seen = _TOKEN_RESPONSES.get(key)
            if seen is None:
                response = original(self)
                if 200 <= int(response[0]) < 300:
                    _TOKEN_RESPONSES[key] = (params, response)
                return response
        if seen[0] != params:
            return 400, {"status": 400}, _idempotency_mismatch(self, action)
        return seen[1]

    return call_action


def _idempotency_mismatch(response: Any, action: str) -> str:
    message = f"The client token of this {action} request was used before with different parameters"
    if getattr(response, "service_name", "") == "ec2":
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>IdempotentParameterMismatch</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>idempotency</RequestID></Response>"
        )
    return json.dumps({"__type": "ConflictException", "message": message})


def shim_client_token_idempotency() -> None:
    """moto 5.2.5 ignores ``ClientToken`` (its own docstrings say "not yet implemented"), so a
    create call that the AWS SDK repeats with the same token after losing the first response
    creates twice or fails: ``CreateFlowLogs`` answered ``FlowLogAlreadyExists`` and failed a CI
    apply, after the SDK for Go retried it (the SDK fills ``ClientToken`` itself and keeps it across
    its retries). AWS answers a repeated token with the first call's result, and a token reused with
    different parameters with ``IdempotentParameterMismatch``. The shim does the same for EC2 and
    EventBridge Scheduler, the services in this stack whose create calls take a token.
    """
    for owner in (EC2Response, EventBridgeSchedulerResponse):
        original = getattr(owner, "call_action", BaseResponse.call_action)
        _patch(owner, "call_action", _idempotent_call_action(original))


# --------------------------------------------------------------------------- Lambda


def _logging_config(
    requested: dict[str, Any] | None, function_name: str, current: dict[str, Any] | None = None
) -> dict[str, Any]:
    """AWS's effective LoggingConfig: defaults filled in the way GetFunctionConfiguration shows them."""
    config = dict(current or {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"})
    config.update({k: v for k, v in (requested or {}).items() if v is not None})
    if config.get("LogFormat") == "JSON":
        config.setdefault("ApplicationLogLevel", "INFO")
        config.setdefault("SystemLogLevel", "INFO")
    else:
        config.pop("ApplicationLogLevel", None)
        config.pop("SystemLogLevel", None)
    return config


def shim_lambda_logging_config() -> None:
    """moto 5.2.5 ignores ``LoggingConfig`` on CreateFunction/UpdateFunctionConfiguration and never
    returns it, so ``aws_lambda_function.logging_config`` (JSON log format, log group, log levels)
    shows ``+ logging_config`` on every plan. The shim stores it and returns it with the defaults
    AWS reports (Text format and ``/aws/lambda/<name>`` when not configured).
    """
    original_init = _require(LambdaFunction, "__init__")
    original_get = _require(LambdaFunction, "get_configuration")
    original_update = _require(LambdaFunction, "update_configuration")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # moto 5.2.5 signature: (account_id, spec, region, version=1).
        spec = kwargs.get("spec", args[1] if len(args) > 1 else None) or {}
        self.shim_logging_config = _logging_config(spec.get("LoggingConfig"), self.function_name)

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config: dict[str, Any] = original_get(self, *args, **kwargs)
        logging_config = getattr(self, "shim_logging_config", None)
        if logging_config:
            config["LoggingConfig"] = dict(logging_config)
        return config

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if config_updates.get("LoggingConfig") is not None:
            self.shim_logging_config = _logging_config(
                config_updates["LoggingConfig"],
                self.function_name,
                getattr(self, "shim_logging_config", None),
            )
        result: dict[str, Any] = original_update(self, config_updates)
        return result

    _patch(LambdaFunction, "__init__", __init__)
    _patch(LambdaFunction, "get_configuration", get_configuration)
    _patch(LambdaFunction, "update_configuration", update_configuration)


def _function_ref(ref: str) -> str:
    """``name``, ``name:qualifier``, partial or full ARN → ``name[:qualifier]``."""
    if ":function:" in ref:
        return ref.split(":function:", 1)[1]
    return ref


def shim_lambda_event_source_mappings_by_name() -> None:
    """moto 5.2.5's ``ListEventSourceMappings(FunctionName=...)`` compares the argument verbatim with
    what CreateEventSourceMapping was given: the provider creates mappings with the function ARN, so
    listing by function name (what the console, the CLI and our tests do) returns nothing. AWS accepts
    a name, a partial ARN or an ARN either way; so does the shim.
    """
    original = _require(LambdaBackend, "list_event_source_mappings")

    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> list[Any]:
        mappings = list(original(self, event_source_arn, None))
        if not function_name:
            return mappings
        wanted = _function_ref(function_name)
        return [m for m in mappings if _function_ref(str(m.function_name)) == wanted]

    _patch(LambdaBackend, "list_event_source_mappings", list_event_source_mappings)


_ssm_lock = threading.RLock()


def shim_ssm_parameters_thread_safe() -> None:
    """moto 5.2.5's SSM backend keeps parameters in a plain dict that DescribeParameters and
    GetParametersByPath iterate while PutParameter/DeleteParameter of a concurrent request add or remove
    entries: under Terraform's parallel apply/destroy (many ``aws_ssm_parameter``) a request fails with
    HTTP 500 "RuntimeError: dictionary changed size during iteration". Serialize the calls that mutate or
    iterate the parameter dict (each is in-memory and fast)."""

    def serialized(name: str) -> None:
        original = _require(SimpleSystemManagerBackend, name)

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _ssm_lock:
                return original(self, *args, **kwargs)

        call.__name__ = name
        _patch(SimpleSystemManagerBackend, name, call)

    for name in (
        "put_parameter",
        "delete_parameter",
        "delete_parameters",
        "describe_parameters",
        "get_parameters_by_path",
    ):
        serialized(name)


# --------------------------------------------------------------------------- install

SHIMS: tuple[Callable[[], None], ...] = (
    shim_sfn_validate_state_machine_definition,
    shim_sfn_list_state_machine_versions,
    shim_xray_control_plane,
    shim_sqs_redrive_allow_policy,
    shim_sqs_compact_redrive_policy,
    shim_sqs_keep_policy_on_set_attributes,
    shim_ec2_security_group_rule_description,
    shim_ec2_gateway_endpoint_delete_without_its_route,
    shim_client_token_idempotency,
    shim_lambda_logging_config,
    shim_lambda_event_source_mappings_by_name,
    shim_ssm_parameters_thread_safe,
)

_install_lock = threading.Lock()
_installed = False


def install_all() -> list[str]:
    """Check the moto version and install every shim once per process; returns their names."""
    global _installed  # noqa: PLW0603 - process-wide patch state, guarded by a lock
    with _install_lock:
        if not _installed:
            check_moto_version()
            for shim in SHIMS:
                shim()
            _installed = True
    return [shim.__name__ for shim in SHIMS]
