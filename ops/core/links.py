"""On-call links from the root module's ``oncall_links`` output, flattened for display."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Display order: where on-call looks first.
GROUP_ORDER = ("api", "dashboard", "alarms", "queues", "workflow", "logs")


@dataclass(frozen=True)
class Link:
    group: str
    name: str
    url: str


def flatten(oncall_links: Mapping[str, Any]) -> list[Link]:
    """``{"dashboard": url, "alarms": {name: url}, ...}`` → ordered ``Link`` rows."""
    rank = {group: i for i, group in enumerate(GROUP_ORDER)}
    links: list[Link] = []
    for group in sorted(oncall_links, key=lambda g: (rank.get(g, len(rank)), g)):
        value = oncall_links[group]
        if isinstance(value, Mapping):
            links.extend(Link(group, str(name), str(url)) for name, url in sorted(value.items()) if url)
        elif isinstance(value, list | tuple):
            links.extend(Link(group, f"{group}[{i}]", str(url)) for i, url in enumerate(value) if url)
        elif value:
            links.append(Link(group, group, str(value)))
    return links


def stage_link(api_invoke_url: Any) -> list[Link]:
    """The API stage's base URL (the ``api_invoke_url`` output) as the ``api`` group, when known: on a
    local stack it is the loopback URL that answers ``curl``."""
    return [Link("api", "stage", str(api_invoke_url))] if api_invoke_url else []


def grouped(links: list[Link]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for link in links:
        out.setdefault(link.group, {})[link.name] = link.url
    return out
