"""Ctrl-C stops ``ops cleanup --yes``: SIGINT sent to a real ``ops`` process (a subprocess talking
to a moto server on 127.0.0.1) ends the run at the next group of deletes, prints the partial
summary, exits 130, and leaves every deleted row archived exactly once (``--verify`` agrees)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from ops_testkit import BUCKET, REGION, TABLE, create_transactions_table, cutoff_ms_90d, txn_item

# slow (a real process interrupted mid-run): `make test` runs it, `make check` leaves it out.
pytestmark = pytest.mark.slow

ROWS = 2000
CHUNK = 20


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPS_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_ENDPOINT_URL=endpoint,
    )
    return env


def _ops(*args: str) -> list[str]:
    return [sys.executable, "-c", "from ops.cli.main import cli; cli()", *args]


def test_sigint_stops_the_cleanup_with_a_partial_summary_and_exit_130(
    moto_server: str, tmp_path: Path
) -> None:
    clients: dict[str, Any] = {
        name: boto3.client(
            name,
            region_name=REGION,
            endpoint_url=moto_server,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for name in ("dynamodb", "s3")
    }
    dynamodb, s3 = clients["dynamodb"], clients["s3"]
    create_transactions_table(dynamodb)
    s3.create_bucket(Bucket=BUCKET)
    cutoff = cutoff_ms_90d()
    rows = [txn_item(i, cutoff - 1 - i) for i in range(ROWS)]
    for start in range(0, ROWS, 25):
        dynamodb.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": r}} for r in rows[start : start + 25]]}
        )
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"transactions_table_name": TABLE, "archive_bucket_name": BUCKET}))
    args = ("--outputs-file", str(outputs), "cleanup", "--yes", "--json", "--segments", "1")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv
        _ops(*args, "--chunk-size", str(CHUNK)),
        env=_env(moto_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until a few chunks are done, then Ctrl-C
            listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="cleanup/").get("Contents", [])
            if sum(o["Key"].endswith(".manifest.json") for o in listed) >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the cleanup did not get going")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["complete"] is False
    assert "Ctrl-C" in stderr and "interrupted" in stderr
    left = dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"]
    deleted = ROWS - left
    assert 0 < summary["deleted"] == deleted < ROWS  # stopped early, and says how far it got
    assert deleted <= summary["archive_objects"] * CHUNK

    # Every deleted row is archived exactly once, and --verify agrees.
    owners: Counter[str] = Counter()
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="cleanup/")["Contents"]:
        if obj["Key"].endswith(".jsonl"):
            body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
            owners.update(json.loads(line)["Item"]["transaction_id"]["S"] for line in body.splitlines())
    assert sum(owners.values()) == deleted and set(owners.values()) == {1}
    date = summary["cutoff"][:10]
    verify = subprocess.run(  # noqa: S603 - fixed argv
        _ops("--outputs-file", str(outputs), "cleanup", "--verify", date, "--json"),
        env=_env(moto_server),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["deleted_rows_verified"] == deleted
