"""Flow 8: the demo ``devkit up`` runs after apply, on the session's deployment."""

from __future__ import annotations

import datetime as dt

from devkit.demo import Platform, run_demo
from ops.core.links import flatten
from tests.support.stack import Deployment


def test_demo_runs_and_prints_report_and_links(deployment: Deployment, platform: Platform) -> None:
    lines: list[str] = []
    result = run_demo(deployment.outputs, deployment.env, lines.append)
    outcomes = result["transactions"]
    assert sorted(outcomes.values()).count("COMPLETED") == 3
    assert list(outcomes.values()).count("REJECTED") == 1
    failed = [txn for txn, outcome in outcomes.items() if outcome.startswith("FAILED")]
    assert len(failed) == 1 and failed[0] in platform.dlq_transaction_ids()
    printed = "\n".join(lines)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert f"$ ops report --date {today}" in printed and "$ ops links" in printed
    # The demo client's request is ready to paste: the real key and the secret, no placeholder.
    try_it = printed.split("Try it as the demo client", 1)[1]
    assert f"x-api-key: {platform.api_key()}" in try_it and "Authorization: Bearer " in try_it
    assert "<" not in try_it.split("\n", 2)[1]
    missing = [link.url for link in flatten(platform.outputs["oncall_links"]) if link.url not in printed]
    assert not missing, missing[:3]
    assert platform.processor_endpoint() != "http://127.0.0.1:9/"
