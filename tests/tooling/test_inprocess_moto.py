"""In-process moto beside the embedded emulator: fresh accounts without AWS managed policies (the
cost ``tests.support.inprocess`` removes), and the emulator keeping them; one way in for every test."""

from __future__ import annotations

import io
import json
import re
import tokenize
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from devkit.emulator.server import Emulator
from tests.support.aws import trust_policy
from tests.support.inprocess import in_process_aws

TESTS = Path(__file__).resolve().parents[1]
MANAGED = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.fixture
def embedded(emulator: Any) -> Emulator:
    if not isinstance(emulator, Emulator):
        pytest.skip("the embedded moto server shares this process's backends; LocalStack does not")
    emulator.client("iam").list_roles()  # its IAM backend exists, with the managed policies
    return emulator


def test_an_in_process_account_builds_no_managed_policies_beside_the_emulator(embedded: Emulator) -> None:
    from moto.iam.models import iam_backends
    from moto.settings import load_iam_aws_managed_policies

    assert load_iam_aws_managed_policies(), "the embedded emulator loads AWS managed policies"
    with in_process_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        assert iam.list_policies(Scope="AWS")["Policies"] == []
        assert not load_iam_aws_managed_policies()
        assert all(not backend.aws_managed_policies for _, _, backend in iam_backends.iter_backends())
    assert load_iam_aws_managed_policies(), "the switch is back on for the emulator"


def test_the_emulator_attaches_managed_policies_after_an_in_process_account(embedded: Emulator) -> None:
    with in_process_aws():
        boto3.client("iam", region_name="us-east-1").list_roles()
    iam = embedded.client("iam")
    role = f"after-inprocess-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust_policy()))
    iam.attach_role_policy(RoleName=role, PolicyArn=MANAGED)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [MANAGED]


def _string_lines(text: str) -> set[int]:
    """The line numbers inside string literals (a script a test runs in a fresh interpreter)."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def test_every_in_process_test_goes_through_in_process_aws() -> None:
    """``mock_aws`` itself only in tests/support/inprocess.py, or in the text of a script that a test
    runs in a fresh interpreter (where no emulator shares the process)."""
    direct = re.compile(r"^\s*(from moto import .*\bmock_aws\b|with (moto\.)?mock_aws\()", re.MULTILINE)
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        relative = path.relative_to(TESTS).as_posix()
        if relative.startswith("mutants/") or relative == "support/inprocess.py":
            continue
        text = path.read_text(encoding="utf-8")
        matches = list(direct.finditer(text))
        if not matches:
            continue
        in_strings = _string_lines(text)
        for match in matches:
            line = text.count("\n", 0, match.start()) + 1
            if line not in in_strings:
                offenders.append(f"{relative}:{line}")
    assert offenders == []


def test_the_rule_sees_a_direct_mock_aws_and_not_one_in_a_script() -> None:
    planted = 'from moto import mock_aws\n\nSCRIPT = """\nwith mock_aws():\n    pass\n"""\n'
    assert _string_lines(planted) == {3, 4, 5, 6}
