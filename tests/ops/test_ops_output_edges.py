"""Output a 3 a.m. user reads: links that stay clickable in a narrow terminal, a redrive fallback
told in one line instead of an endpoint's HTML error page."""

from __future__ import annotations

import json
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from ops_testkit import Platform

from ops.cli.redrive import one_line

HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>501 Not Implemented</title><style>body{margin:0}</style></head>"
    "<body><h1>Not Implemented</h1>\n<p>The server does not support the action requested.</p></body></html>"
)


def _link_urls(platform: Platform) -> dict[str, str]:
    links = json.loads(platform.outputs_file.read_text())["oncall_links"]["value"]
    urls = {"dashboard": links["dashboard"]}
    for group in ("alarms", "logs", "queues", "workflow"):
        urls.update(links[group])
    return urls


def test_links_plain_prints_one_unbroken_line_per_link(run: Any, platform: Platform) -> None:
    result = run("links", "--format", "plain", env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    expected = _link_urls(platform)
    assert len(lines) == len(expected)
    assert sorted(lines) == sorted(f"{name}  {url}" for name, url in expected.items())


def test_links_switch_to_plain_in_a_narrow_terminal_and_keep_the_table_in_a_wide_one(run: Any) -> None:
    narrow = run("links", env={"COLUMNS": "80"})
    assert narrow.exit_code == 0
    assert "On-call links" not in narrow.stdout
    assert all(line.split("  ", 1)[1].startswith("https://") for line in narrow.stdout.splitlines())

    wide = run("links", env={"COLUMNS": "400"})
    assert "On-call links" in wide.stdout


def _answer_501_with_html(client: Any) -> None:
    if client.meta.service_model.service_name != "sqs":
        return

    def start(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        response = AWSResponse("https://sqs", 501, HTTPHeaders(), None)
        return response, {
            "Error": {"Code": "501", "Message": HTML_PAGE},
            "ResponseMetadata": {"HTTPStatusCode": 501},
        }

    client.meta.events.register("before-call.sqs.StartMessageMoveTask", start)


def test_redrive_fallback_is_one_line_naming_what_was_unavailable_and_the_mode_run(
    run: Any, platform: Platform, client_hooks: Any
) -> None:
    for n in range(3):
        platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=json.dumps({"n": n}))
    client_hooks(_answer_501_with_html)

    result = run("redrive", "--max-redrives", "0", "--wait-seconds", "0", "--quiet")
    assert result.exit_code == 0, result.output
    # --quiet keeps notes off: the table alone; without it, one line about the fallback.
    assert "native redrive unavailable" not in result.stderr

    for n in range(2):
        platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody=json.dumps({"m": n}))
    result = run("redrive", "--max-redrives", "0", "--wait-seconds", "0")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "native redrive unavailable" in line]
    assert notes == [
        "native redrive unavailable (501: 501 Not Implemented); ran the receive/send/delete loop instead"
    ]
    assert "<" not in result.stderr
    assert platform.queue_counts(platform.dlq_url) == (0, 0)


def test_native_only_redrive_error_is_one_line(run: Any, platform: Platform, client_hooks: Any) -> None:
    platform.sqs.send_message(QueueUrl=platform.dlq_url, MessageBody="{}")
    client_hooks(_answer_501_with_html)
    result = run("redrive", "--mode", "native", "--max-redrives", "0")
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line == "Error: native redrive unavailable here (501: 501 Not Implemented); use --mode loop"
    assert "<" not in result.stderr


def test_one_line_keeps_plain_messages_and_bounds_long_ones() -> None:
    assert one_line("InvalidAction: not here") == "InvalidAction: not here"
    assert one_line("a  b\n c") == "a b c"
    long = one_line("x" * 500)
    assert len(long) == 120 and long.endswith("…")
