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


# ------------------------------------------------------------------------------------------
# Alert subscriptions: who the alerts topic reaches, and whether each has confirmed.

CONFIRMED = "confirmed"
PENDING = "pending confirmation"


@dataclass(frozen=True)
class Subscription:
    protocol: str
    endpoint: str
    state: str  # CONFIRMED or PENDING
    arn: str | None  # None while pending: SNS names it "PendingConfirmation" until then


def subscription_states(sns: Any, topic_arn: str) -> list[Subscription]:
    """Every subscription of ``topic_arn`` with its confirmation state, ordered by protocol and endpoint.

    SNS lists a subscription that has not confirmed with ``SubscriptionArn = "PendingConfirmation"``
    (an e-mail nobody clicked, an HTTPS endpoint that did not answer); a confirmed one can still
    report ``PendingConfirmation = "true"`` in its attributes right after creation, so both are read.
    """
    subscriptions: list[Subscription] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for entry in page.get("Subscriptions", []):
            arn = str(entry.get("SubscriptionArn") or "")
            pending = not arn.startswith("arn:")
            if not pending:
                attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
                pending = str(attributes.get("PendingConfirmation", "false")).lower() == "true"
            subscriptions.append(
                Subscription(
                    protocol=str(entry.get("Protocol", "")),
                    endpoint=str(entry.get("Endpoint", "")),
                    state=PENDING if pending else CONFIRMED,
                    arn=arn if arn.startswith("arn:") else None,
                )
            )
    return sorted(subscriptions, key=lambda s: (s.protocol, s.endpoint))
