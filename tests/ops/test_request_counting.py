"""Request counting is one rule in one module (payments.jobs.calls): every job's ``requests`` comes
from botocore's own ``before-call`` event, so paginated, failed and later-added calls are counted
and nothing is counted twice."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from payments.jobs.calls import RequestCounter

from tests.support.inprocess import in_process_aws

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clients() -> Iterator[tuple[Any, Any]]:
    with in_process_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield s3, sqs


def test_calls_are_counted_per_operation_with_the_client_prefix(clients: tuple[Any, Any]) -> None:
    s3, sqs = clients
    counter = RequestCounter()
    with counter.watching((s3, "s3_"), sqs):
        s3.create_bucket(Bucket="counted-bucket")
        for n in range(3):
            s3.put_object(Bucket="counted-bucket", Key=f"k{n}", Body=b"x")
        # Paginated calls are counted per page, failed calls too.
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="counted-bucket", MaxKeys=1))
        with pytest.raises(ClientError):
            s3.get_object(Bucket="counted-bucket", Key="missing")
        sqs.list_queues()
    assert len(pages) == 3
    assert counter.counts == {
        "s3_create_bucket": 1,
        "s3_put_object": 3,
        "s3_list_objects_v2": 3,
        "s3_get_object": 1,
        "list_queues": 1,
    }


def test_counting_stops_with_the_block_and_two_counters_do_not_mix(clients: tuple[Any, Any]) -> None:
    s3, _ = clients
    first, second = RequestCounter(), RequestCounter()
    with first.watching(s3):
        s3.create_bucket(Bucket="counted-bucket")
        with second.watching(s3):
            s3.list_buckets()
    s3.list_buckets()  # a shared client's later work is nobody's
    assert first.counts == {"create_bucket": 1, "list_buckets": 1}
    assert second.counts == {"list_buckets": 1}


def test_threads_sharing_a_counter_lose_no_count(clients: tuple[Any, Any]) -> None:
    s3, _ = clients
    s3.create_bucket(Bucket="counted-bucket")
    counter = RequestCounter()
    with counter.watching(s3):

        def heads() -> None:
            for _ in range(25):
                s3.head_bucket(Bucket="counted-bucket")

        workers = [threading.Thread(target=heads) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert counter.counts == {"head_bucket": 100}


def test_no_other_module_counts_requests_by_hand() -> None:
    """The rule lives in payments.jobs.calls only: no other module of payments or ops registers a
    botocore hook or keeps a per-operation tally of its own."""
    offenders = []
    for path in [*(REPO / "lambda" / "payments").rglob("*.py"), *(REPO / "ops").rglob("*.py")]:
        if path.name == "calls.py" and path.parent.name == "jobs":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"events", "on_request", "count_request"}:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Constant) and str(node.value).startswith("req_"):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders
