"""SQS: queue attributes moto 5.2.5 drops, re-formats or wipes, so the provider plans a diff forever."""

from __future__ import annotations

import json
from typing import Any

from moto.sqs.models import Queue, SQSBackend

from devkit.emulator.shims._base import ShimError, patch, require


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

    original_attributes = require(Queue, "attributes")
    original_get = require(SQSBackend, "get_queue_attributes")
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

    patch(Queue, "attributes", property(attributes))
    patch(SQSBackend, "get_queue_attributes", get_queue_attributes)


def shim_sqs_compact_redrive_policy() -> None:
    """moto 5.2.5 returns ``RedrivePolicy`` as ``json.dumps`` output with spaces
    (``{"deadLetterTargetArn": "...", "maxReceiveCount": 3}``) and the provider compares it verbatim
    with its compact ``jsonencode`` value: a perpetual diff on ``redrive_policy``. AWS answers
    compact JSON; so does the shim (sorted keys, as ``jsonencode`` writes them).

    Must be installed after ``shim_sqs_redrive_allow_policy`` (it wraps the same property).
    """

    current = require(Queue, "attributes")
    if not isinstance(current, property) or current.fget is None:
        raise ShimError("moto.sqs.models.Queue.attributes is no longer a property")
    getter = current.fget

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = getter(self)
        if result.get("RedrivePolicy"):
            result["RedrivePolicy"] = _compact_json(result["RedrivePolicy"])
        return result

    patch(Queue, "attributes", property(attributes))


def shim_sqs_keep_policy_on_set_attributes() -> None:
    """moto 5.2.5's ``Queue._set_attributes`` assigns ``self.policy = attributes.get("Policy")`` on
    every SetQueueAttributes, so setting any other attribute (the provider re-applies a changed
    ``redrive_policy`` or visibility timeout) wipes the queue policy that ``aws_sqs_queue_policy``
    set. AWS leaves attributes that are not in the request alone; so does the shim. An explicit
    empty ``Policy`` still clears it, as on AWS.
    """

    original = require(Queue, "_set_attributes")
    require(Queue, "policy")

    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        if "Policy" not in attributes and hasattr(self, "_policy_json"):
            kept = self.policy
            original(self, attributes, now)
            self.policy = kept
            return
        original(self, attributes, now)

    patch(Queue, "_set_attributes", _set_attributes)
