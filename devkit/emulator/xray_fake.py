"""The X-Ray control plane moto 5.2.5 lacks: sampling rules, groups, encryption config and tags.

moto's X-Ray has only the trace data plane (PutTraceSegments, GetTraceSummaries...), so
``aws_xray_sampling_rule``, ``aws_xray_group`` and ``aws_xray_encryption_config`` fail with 404 there.
This module emulates the missing half of the service in memory, per account and region, and
:func:`install` routes its REST paths into moto's X-Ray URL map. ``devkit.emulator.server.configure_moto``
installs it together with the shims (:mod:`devkit.emulator.shims`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import moto.xray.urls as xray_urls
from moto.core.exceptions import JsonRESTError
from moto.core.responses import BaseResponse
from moto.xray.models import xray_backends

from devkit.emulator.shims import ShimError, require


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

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_XRayControlPlane]:
        """This account and region's control-plane state, under its lock."""
        state = self.state
        with state.lock:
            yield state

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
        with self._locked() as state:
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
        with self._locked() as state:
            self._ensure_default_rule(state)
            records = list(state.rules.values())
        return _json({"SamplingRuleRecords": records})

    def update_sampling_rule(self) -> JsonResponse:
        update = dict(self.params.get("SamplingRuleUpdate") or {})
        with self._locked() as state:
            self._ensure_default_rule(state)
            record = self._find_rule(state, update)
            for key, value in update.items():
                if key not in ("RuleName", "RuleARN") and value is not None:
                    record["SamplingRule"][key] = value
            record["ModifiedAt"] = time.time()
        return _json({"SamplingRuleRecord": record})

    def delete_sampling_rule(self) -> JsonResponse:
        with self._locked() as state:
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
        with self._locked() as state:
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
        with self._locked() as state:
            return _json({"Group": self._find_group(state, self.params)})

    def get_groups(self) -> JsonResponse:
        with self._locked() as state:
            return _json({"Groups": list(state.groups.values())})

    def update_group(self) -> JsonResponse:
        params = self.params
        with self._locked() as state:
            group = self._find_group(state, params)
            if params.get("FilterExpression") is not None:
                group["FilterExpression"] = params["FilterExpression"]
            if params.get("InsightsConfiguration"):
                group["InsightsConfiguration"].update(params["InsightsConfiguration"])
        return _json({"Group": group})

    def delete_group(self) -> JsonResponse:
        with self._locked() as state:
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
        with self._locked() as state:
            state.encryption = config
        return _json({"EncryptionConfig": config})

    def get_encryption_config(self) -> JsonResponse:
        with self._locked() as state:
            return _json({"EncryptionConfig": state.encryption})

    # Tags ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _tagged_resource(self) -> Iterator[tuple[_XRayControlPlane, str, dict[str, Any]]]:
        """The state (locked), the request's ResourceARN and its parameters, once the ARN names a rule
        or a group."""
        params = self.params
        with self._locked() as state:
            arn = params.get("ResourceARN", "")
            known = {r["SamplingRule"]["RuleARN"] for r in state.rules.values()} | {
                g["GroupARN"] for g in state.groups.values()
            }
            if arn not in known:
                raise JsonRESTError("ResourceNotFoundException", f"Resource not found: {arn}")
            yield state, arn, params

    def tag_resource(self) -> JsonResponse:
        with self._tagged_resource() as (state, arn, params):
            self._set_tags(state, arn, params.get("Tags"))
        return _json({})

    def untag_resource(self) -> JsonResponse:
        with self._tagged_resource() as (state, arn, params):
            current = state.tags.get(arn, {})
            for key in params.get("TagKeys") or []:
                current.pop(key, None)
        return _json({})

    def list_tags_for_resource(self) -> JsonResponse:
        with self._tagged_resource() as (state, arn, _):
            tags = state.tags.get(arn, {})
            return _json({"Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]})


def install() -> None:
    """moto 5.2.5's X-Ray has only the trace data plane (PutTraceSegments, GetTraceSummaries...):
    ``aws_xray_sampling_rule``, ``aws_xray_group`` and ``aws_xray_encryption_config`` fail with 404.

    Routes the control-plane REST paths (CreateSamplingRule, GetSamplingRules,
    UpdateSamplingRule, DeleteSamplingRule, CreateGroup, GetGroup, Groups, UpdateGroup, DeleteGroup,
    PutEncryptionConfig, EncryptionConfig, TagResource, UntagResource, ListTagsForResource) to a small
    in-memory backend per account/region (with AWS's undeletable ``Default`` sampling rule).
    """

    url_paths = require(xray_urls, "url_paths")
    response_cls = XRayControlPlaneResponse
    for path in XRAY_CONTROL_PLANE_PATHS:
        key = "{0}/" + path + "$"
        if key in url_paths and getattr(url_paths[key], "__self__", None) is not response_cls:
            raise ShimError(f"moto now routes X-Ray /{path}; drop devkit.emulator.xray_fake")
        url_paths[key] = response_cls.dispatch
