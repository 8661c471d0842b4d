"""Reading a plan (``terraform show -json``): the managed resources it would create."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def planned_resources(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flat ``[{address, type, name, values}]`` over the root and every child module of planned_values."""
    found: list[dict[str, Any]] = []

    def walk(module: Mapping[str, Any]) -> None:
        for res in module.get("resources", []):
            if res.get("mode", "managed") != "managed":
                continue
            found.append(
                {
                    "address": res["address"],
                    "type": res["type"],
                    "name": res["name"],
                    "values": res.get("values", {}),
                }
            )
        for child in module.get("child_modules", []):
            walk(child)

    walk(plan.get("planned_values", {}).get("root_module", {}))
    return found
