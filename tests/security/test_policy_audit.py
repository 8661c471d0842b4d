"""Every policy document of the plan audited against AWS's IAM service reference (parliament):
resource types each action accepts, condition keys and their types, principals, plus ``*`` /
``service:*`` actions. Nothing above LOW may remain unless an allow-list entry names the AWS
documentation page that makes it right (policy_audit.ALLOWED).

The tests without the ``plan`` marker run the same audit on small documents written here: they
pin down what the gate catches, so a parliament upgrade that stopped catching it fails them.
"""

from __future__ import annotations

from typing import Any

import pytest

from . import policy_audit
from .plan_model import UNKNOWN, Plan, parse_address, policy_documents
from .policy_audit import Context, Document, Finding

CONTEXT = Context(partition="aws", region="us-east-1", account="123456789012")


@pytest.fixture(scope="module")
def audited(plan: Plan) -> tuple[list[Document], list[str], list[Finding]]:
    documents, unreadable = policy_audit.documents(plan)
    return documents, unreadable, policy_audit.audit_all(documents)


def _document(statements: list[dict[str, Any]], kind: str = "identity", owner: str = "") -> Document:
    original = {"Version": "2012-10-17", "Statement": statements}
    owner = owner or "module.x.aws_iam_role_policy.example"
    return Document(owner, "policy", kind, original, policy_audit.prepare(original, kind, CONTEXT, "example"))


def _gate(document: Document) -> list[str]:
    failing, _ = policy_audit.gate(policy_audit.audit(document))
    return [f.line() for f in failing]


# ------------------------------------------------------------------------------------------
# The plan


@pytest.mark.plan
def test_every_policy_document_of_the_plan_is_audited(
    plan: Plan, audited: tuple[list[Document], list[str], list[Finding]]
) -> None:
    documents, unreadable, _ = audited
    assert not unreadable, "policy documents unknown at plan time (not auditable):\n" + "\n".join(unreadable)
    owners = {d.owner for d in documents}
    # At least every document the rest of the security gate reads, found here by walking the plan.
    expected = {d.owner for d in policy_documents(plan)[0]}
    assert expected <= owners, f"not audited: {sorted(expected - owners)}"
    kinds = {d.kind for d in documents}
    assert kinds == {"identity", "resource", "trust"}, kinds
    types = {parse_address(o).type for o in owners}
    for needed in ("aws_iam_role", "aws_iam_role_policy", "aws_kms_key", "aws_s3_bucket_policy"):
        assert needed in types, f"no {needed} document audited"
    # A placeholder never survives into what is reported as the plan's own document.
    assert all(UNKNOWN not in str(d.audited) for d in documents)


@pytest.mark.plan
def test_no_finding_above_low_outside_the_allow_list(
    audited: tuple[list[Document], list[str], list[Finding]],
) -> None:
    _, _, findings = audited
    failing, _ = policy_audit.gate(findings)
    assert not failing, (
        f"{len(failing)} parliament finding(s) above LOW (fix the policy, or add an allow-list entry "
        "naming the AWS page that makes it right):\n" + "\n".join(sorted(f.line() for f in failing))
    )


@pytest.mark.plan
def test_every_allow_list_entry_is_still_needed(
    audited: tuple[list[Document], list[str], list[Finding]],
) -> None:
    _, _, findings = audited
    unused = [a for a in policy_audit.ALLOWED if not any(a.matches(f) for f in findings)]
    assert not unused, "allow-list entries that match no finding (remove them):\n" + "\n".join(
        f"{a.issue} {a.owner_type} [{a.sid}]" for a in unused
    )


# ------------------------------------------------------------------------------------------
# The gate itself, on documents written here


def test_allow_list_entries_give_a_reason_and_an_aws_page() -> None:
    assert 0 < len(policy_audit.ALLOWED) <= 8, "the allow-list is meant to stay short"
    for allowance in policy_audit.ALLOWED:
        assert len(allowance.why) > 40, allowance
        assert allowance.aws_doc.startswith(("AWS ", "Amazon ")) and "'" in allowance.aws_doc, allowance


def test_list_action_scoped_to_a_log_group_fails_the_gate() -> None:
    scoped = _document(
        [
            {
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": ["arn:aws:logs:us-east-1:123456789012:log-group:*"],
            }
        ]
    )
    assert any(
        "RESOURCE_MISMATCH" in line and "logs:DescribeLogGroups needs *" in line for line in _gate(scoped)
    )
    on_star = _document([{"Effect": "Allow", "Action": ["logs:DescribeLogGroups"], "Resource": ["*"]}])
    assert _gate(on_star) == []


@pytest.mark.parametrize("action", ["xray:*", "logs:*", "*"])
def test_service_wildcard_fails_the_gate(action: str) -> None:
    document = _document(
        [
            {
                "Sid": "Widened",
                "Effect": "Allow",
                "Action": [action],
                "Resource": ["*"]
                if action != "logs:*"
                else ["arn:aws:logs:us-east-1:123456789012:log-group:x"],
            }
        ]
    )
    assert any(
        f"ACTION_WILDCARD {document.owner} [Widened]: {action} allows" in line for line in _gate(document)
    )


def test_unknown_resources_get_placeholders_of_the_shape_the_actions_need() -> None:
    document = _document(
        [
            {"Sid": "Table", "Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": [UNKNOWN]},
            {"Sid": "Objects", "Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [UNKNOWN]},
        ]
    )
    resources = [s["Resource"] for s in document.audited["Statement"]]
    assert resources[0] == ["arn:aws:dynamodb:us-east-1:123456789012:table/unknown-at-plan"]
    assert resources[1] == ["arn:aws:s3:::unknown-at-plan/unknown-at-plan"]
    assert _gate(document) == []


def test_unknown_resource_of_an_action_authorized_only_on_star_fails_the_gate() -> None:
    """An unknown value is always one concrete ARN of a resource the module creates, never "*"."""
    document = _document([{"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": [UNKNOWN]}])
    assert any(
        "RESOURCE_MISMATCH" in line and "xray:PutTraceSegments needs *" in line for line in _gate(document)
    )


def test_misspelled_condition_key_or_operator_fails_the_gate() -> None:
    document = _document(
        [
            {
                "Sid": "Key",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [UNKNOWN],
                "Condition": {"StringEquals": {"kms:ViaServices": ["sqs.us-east-1.amazonaws.com"]}},
            }
        ]
    )
    assert any(
        "UNKNOWN_CONDITION_FOR_ACTION" in line and "kms:ViaServices" in line for line in _gate(document)
    )


def test_trust_policies_are_audited_with_their_role_as_resource() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["sts:AssumeRole"],
        "Principal": {"Service": ["lambda.amazonaws.com"]},
        "Condition": {"StringEquals": {"aws:SourceAccount": [UNKNOWN]}},
    }
    good = _document([statement], kind="trust")
    assert good.audited["Statement"][0]["Resource"] == "arn:aws:iam::123456789012:role/example"
    assert _gate(good) == []
    typo = _document([{**statement, "Condition": {"StringEqual": {"aws:SourceAccount": "1"}}}], kind="trust")
    assert any("UNKNOWN_OPERATOR" in line for line in _gate(typo))


def test_allow_list_matches_only_its_own_statement() -> None:
    statement = {
        "Sid": "AllowCloudWatchLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
        "Action": ["kms:Describe*"],
        "Resource": "*",
        "Condition": {
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"
            }
        },
    }
    key = _document([statement], kind="resource", owner='module.kms.aws_kms_key.this["logs"]')
    findings = policy_audit.audit(key)
    assert any(f.issue == "UNKNOWN_CONDITION_FOR_ACTION" for f in findings)
    assert _gate(key) == []
    # The same pattern under another Sid, or in another kind of document, is not covered.
    other_sid = _document([{**statement, "Sid": "Other"}], kind="resource", owner=key.owner)
    assert any("UNKNOWN_CONDITION_FOR_ACTION" in line for line in _gate(other_sid))
    topic = _document([statement], kind="resource", owner='module.m.aws_sns_topic_policy.this["x"]')
    assert any("UNKNOWN_CONDITION_FOR_ACTION" in line for line in _gate(topic))
