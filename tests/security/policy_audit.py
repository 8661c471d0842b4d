"""Audit every policy document of a plan against AWS's IAM service reference with ``parliament``.

``parliament`` (pinned in pyproject.toml) ships AWS's service authorization reference: which
resource types each action accepts, which condition keys exist for it and of which type. It
audits offline. This module finds the documents, prepares them for it and runs it:

* **Which documents.** Every attribute of a planned managed resource whose name ends in
  ``policy``/``policy_document``/``policies`` (role trust and inline policies, managed policies,
  key, bucket, topic, queue, event-bus, endpoint and log resource policies, nested
  ``inline_policy`` blocks, ...) - found by walking the plan, so a resource type added later
  is audited without a change here. A value unknown at plan time is recovered from the
  ``aws_iam_policy_document`` data source it comes from (the plan records its arguments).
* **Unknown values.** Resources created by the same apply have ARNs that are unknown at plan
  time, so a statement may read ``"Resource": ["(known after apply)"]``. Such a value is always
  one concrete ARN of a resource this module creates, never ``"*"``. It is replaced by one
  placeholder ARN per resource type the statement's actions require, in the shape AWS documents
  for that type (``arn:aws:dynamodb:<region>:<account>:table/unknown-at-plan``): parliament then
  still checks the actions, the condition keys and their types, every ARN that *is* known, and
  that an action AWS authorizes only on ``"*"`` is not given a concrete resource (the placeholder
  is concrete, as the real ARN will be). What it cannot check at plan time is whether the
  unknown ARN is of the type the action needs: that is ``test_iam.py``'s resource checks and the
  apply suite's business. Unknown principals become a role ARN of the account, unknown
  condition values an ARN or a string as the condition key's documented type requires.
* **Trust policies** have no ``Resource`` (the resource is the role itself), which parliament
  reports as malformed: the role's own ARN is set as the resource, so the principal, the
  ``sts:`` actions and the conditions are audited like any other statement.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import parliament
from parliament.statement import get_global_key_type, get_privilege_info

from .plan_model import UNKNOWN, Plan, _document_from_data_source, as_list, parse_address

PLACEHOLDER = "unknown-at-plan"
WILDCARD_ISSUE = "ACTION_WILDCARD"  # this module's own check, next to parliament's
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
# An attribute holding a policy document: policy, assume_role_policy, policy_document,
# access_policies, ... but not policy_arn / policy_name / policy_type.
_POLICY_KEY = re.compile(r"(^|_)(policy|policy_document|policies)$")
# JSON attributes named like a policy that are not IAM documents (only consulted when the value
# is unknown at plan time; a known value is recognised by its "Statement").
NOT_IAM_DOCUMENTS = frozenset(
    {"redrive_policy", "redrive_allow_policy", "delivery_policy", "filter_policy", "lifecycle_policy"}
)


@dataclass(frozen=True)
class Document:
    owner: str  # address of the resource that carries the policy
    attribute: str  # path of the attribute, e.g. "policy" or "inline_policy.0.policy"
    kind: str  # "identity" | "resource" | "trust"
    original: dict[str, Any]
    audited: dict[str, Any]  # with the placeholders parliament is given


@dataclass(frozen=True)
class Finding:
    owner: str
    attribute: str
    kind: str
    issue: str
    severity: str
    sid: str
    detail: str

    def line(self) -> str:
        return f"{self.severity} {self.issue} {self.owner} [{self.sid}]: {self.detail}"


@dataclass(frozen=True)
class Context:
    partition: str
    region: str
    account: str


# ------------------------------------------------------------------------------------------
# Finding the documents


def context_of(plan: Plan) -> Context:
    found = {"partition": "aws", "region": "us-east-1", "account": "123456789012"}
    for address, values in plan.resources("aws_partition", "aws_region", "aws_caller_identity", mode="data"):
        type_ = parse_address(address).type
        key, attr = {
            "aws_partition": ("partition", "partition"),
            "aws_region": ("region", "name"),
            "aws_caller_identity": ("account", "account_id"),
        }[type_]
        if isinstance(values.get(attr), str) and values[attr] != UNKNOWN:
            found[key] = values[attr]
    return Context(**found)


def _policy_attributes(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            if _POLICY_KEY.search(key) and isinstance(child, str):
                yield (*path, key), child
            elif isinstance(child, dict | list):
                yield from _policy_attributes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _policy_attributes(child, (*path, str(index)))


def _from_data_source(plan: Plan, address: str, path: tuple[str, ...]) -> dict[str, Any] | None:
    config_path = tuple(step for step in path if not step.isdigit())
    sources = [
        origin
        for origin in plan.origins(address, config_path)
        if origin.startswith("data.aws_iam_policy_document.") or ".data.aws_iam_policy_document." in origin
    ]
    if len(sources) != 1 or sources[0] not in plan.values:
        return None
    values = plan.values[sources[0]]
    if values.get("json") not in (None, UNKNOWN):
        document: dict[str, Any] = json.loads(values["json"])
        return document
    return _document_from_data_source(values)


def documents(plan: Plan) -> tuple[list[Document], list[str]]:
    """Every policy document of the plan's managed resources (as written and as audited), and
    the attributes whose document cannot be read at plan time."""
    context = context_of(plan)
    found: list[Document] = []
    unreadable: list[str] = []
    for address, values in plan.resources():
        for path, raw in _policy_attributes(values):
            attribute = ".".join(path)
            document: dict[str, Any] | None = None
            if raw == UNKNOWN:
                config_path = tuple(step for step in path if not step.isdigit())
                if path[-1] in NOT_IAM_DOCUMENTS or plan.expression(address, config_path) is None:
                    continue  # not an IAM document, or computed: a separate *_policy resource sets it
                document = _from_data_source(plan, address, path)
                if document is None:
                    unreadable.append(f"{address}.{attribute}")
                    continue
            else:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    continue  # not a JSON document (a name, an ARN, ...)
                if not isinstance(parsed, dict) or "Statement" not in parsed:
                    continue
                document = parsed
            kind = _kind(path, document)
            audited = prepare(document, kind, context, _role_name(values) if kind == "trust" else None)
            found.append(Document(address, attribute, kind, document, audited))
    return found, unreadable


def _kind(path: tuple[str, ...], document: Mapping[str, Any]) -> str:
    if path[-1] == "assume_role_policy":
        return "trust"
    statements = as_list(document.get("Statement"))
    if any(isinstance(s, dict) and ("Principal" in s or "NotPrincipal" in s) for s in statements):
        return "resource"
    return "identity"


def _role_name(values: Mapping[str, Any]) -> str:
    name = values.get("name")
    return name if isinstance(name, str) and name != UNKNOWN else PLACEHOLDER


# ------------------------------------------------------------------------------------------
# Placeholders for values unknown at plan time


def _fill(arn_format: str, context: Context) -> str:
    known = {"Partition": context.partition, "Region": context.region, "Account": context.account}
    return re.sub(r"\$\{(\w+)\}", lambda m: known.get(m.group(1), PLACEHOLDER), arn_format)


def _required_formats(actions: list[str], context: Context) -> list[str]:
    """One placeholder ARN per resource type the actions require (in AWS's documented shape)."""
    formats: list[str] = []
    for action in actions:
        if action == UNKNOWN:
            continue
        try:
            expanded = parliament.expand_action(action)
        except (parliament.UnknownActionException, parliament.UnknownPrefixException, ValueError):
            continue  # parliament reports the action itself
        for item in expanded:
            info = get_privilege_info(item["service"], item["action"])
            arns = {r["resource"]: r["arn"] for r in info["service_resources"]}
            for resource_type in info["resource_types"]:
                name = resource_type["resource_type"]
                if name.endswith("*") and name[:-1] in arns:
                    arn = _fill(arns[name[:-1]], context)
                    if arn not in formats:
                        formats.append(arn)
    return formats


def _condition_placeholder(operator: str, key: str, context: Context) -> str:
    if operator.lower().startswith(("arn", "forallvalues:arn", "foranyvalue:arn")) or (
        (get_global_key_type(key) or "").lower() == "arn"
    ):
        return f"arn:{context.partition}:iam::{context.account}:role/{PLACEHOLDER}"
    return PLACEHOLDER


def prepare(
    document: Mapping[str, Any], kind: str, context: Context, role_name: str | None = None
) -> dict[str, Any]:
    """The document as parliament gets it: unknown values replaced by placeholders of the
    right shape, trust statements given their role as resource (see the module docstring)."""
    prepared = copy.deepcopy(dict(document))
    for statement in as_list(prepared.get("Statement")):
        if not isinstance(statement, dict):
            continue
        if kind == "trust" and "Resource" not in statement and "NotResource" not in statement:
            statement["Resource"] = f"arn:{context.partition}:iam::{context.account}:role/{role_name}"
        _fill_resources(statement, context)
        _fill_principals(statement, context)
        _fill_conditions(statement, context)
    return prepared


def _fill_resources(statement: dict[str, Any], context: Context) -> None:
    actions = [str(a) for a in as_list(statement.get("Action") or statement.get("NotAction"))]
    for element in ("Resource", "NotResource"):
        values = as_list(statement.get(element))
        if UNKNOWN not in values:
            continue
        service = actions[0].split(":")[0] if actions and ":" in actions[0] else "iam"
        placeholders = _required_formats(actions, context) or [
            # Only "*"-scoped actions: the real value is still one concrete ARN.
            f"arn:{context.partition}:{service}:{context.region}:{context.account}:{PLACEHOLDER}"
        ]
        known = [v for v in values if v != UNKNOWN]
        statement[element] = known + [p for p in placeholders if p not in known]


def _fill_principals(statement: dict[str, Any], context: Context) -> None:
    for element in ("Principal", "NotPrincipal"):
        principal = statement.get(element)
        if not isinstance(principal, dict):
            continue
        for type_, ids in principal.items():
            replacement = (
                f"arn:{context.partition}:iam::{context.account}:role/{PLACEHOLDER}"
                if type_ == "AWS"
                else f"{PLACEHOLDER}.amazonaws.com"
            )
            principal[type_] = [replacement if i == UNKNOWN else i for i in as_list(ids)]


def _fill_conditions(statement: dict[str, Any], context: Context) -> None:
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return
    for operator, block in condition.items():
        if not isinstance(block, dict):
            continue
        for key, values in block.items():
            filler = _condition_placeholder(operator, key, context)
            filled = [filler if v == UNKNOWN else v for v in as_list(values)]
            # One value is written as a scalar, as the provider renders it (parliament reads a
            # Bool condition's value as a scalar).
            block[key] = filled[0] if len(filled) == 1 else filled


# ------------------------------------------------------------------------------------------
# Running parliament


def audit(document: Document) -> list[Finding]:
    """parliament's findings on one document: its own checks against AWS's reference, as its
    CLI runs them by default. The optional community auditors (privilege escalation, permissions
    management, ...) are not run: they judge intent rather than validity, flag AWS's default key
    policy and the VPC endpoint filters, and least privilege is test_iam.py's subject."""
    try:
        policy = parliament.analyze_policy_string(
            json.dumps(document.audited), ignore_private_auditors=True, include_community_auditors=False
        )
        raws = policy.findings
    except Exception as exc:  # a document parliament cannot even read is a finding, not a crash
        return [
            Finding(
                document.owner, document.attribute, document.kind, "EXCEPTION", "CRITICAL", "-", repr(exc)
            )
        ]
    findings = _wildcard_findings(document)
    for raw in raws:
        enhanced = parliament.enhance_finding(raw)
        findings.append(
            Finding(
                owner=document.owner,
                attribute=document.attribute,
                kind=document.kind,
                issue=enhanced.issue,
                severity=str(enhanced.severity),
                sid=_sid(document.audited, enhanced.location),
                detail=_detail(enhanced.detail),
            )
        )
    return findings


_SERVICE_WILDCARD = re.compile(r"^(\*|\*:\*|[a-z0-9-]+:\*)$")


def _wildcard_findings(document: Document) -> list[Finding]:
    """``*`` or ``service:*`` allowed. parliament reports such an action only when one of the
    service's actions cannot use the statement's resources (``logs:*`` on a log group), not when
    the resource is ``*`` (``xray:*``): every widened action is a finding here (HIGH)."""
    found = []
    statements = as_list(document.audited.get("Statement"))
    for index, statement in enumerate(statements):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement.get("Action")):
            if isinstance(action, str) and _SERVICE_WILDCARD.match(action.lower()):
                found.append(
                    Finding(
                        document.owner,
                        document.attribute,
                        document.kind,
                        WILDCARD_ISSUE,
                        "HIGH",
                        str(statement.get("Sid") or f"#{index}"),
                        f"{action} allows every action of the service",
                    )
                )
    return found


def _sid(document: Mapping[str, Any], location: Any) -> str:
    """The Sid (or position) of the statement a finding points at: parliament gives a column in
    the one-line JSON it parsed, or nothing for a finding on the whole policy."""
    column = location.get("column") if isinstance(location, dict) else None
    if not isinstance(column, int):
        return "-"
    text = json.dumps(dict(document))
    start = 0
    for index, statement in enumerate(as_list(document.get("Statement"))):
        piece = json.dumps(statement)
        begin = text.find(piece, start)
        if begin < 0:
            break
        end = begin + len(piece)
        if begin <= column - 1 < end or begin <= column < end:
            sid = statement.get("Sid") if isinstance(statement, dict) else None
            return str(sid) if sid else f"#{index}"
        start = end
    return "-"


def _detail(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "action" in item:
                parts.append(f"{item['action']} needs {item.get('required_format')}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail or "")


def audit_all(docs: list[Document]) -> list[Finding]:
    findings: list[Finding] = []
    for document in docs:
        findings.extend(audit(document))
    return findings


def at_least(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity.upper()) >= SEVERITIES.index(threshold)


# ------------------------------------------------------------------------------------------
# The gate: nothing above LOW unless an allow-list entry names the AWS page that makes it right


@dataclass(frozen=True)
class Allowance:
    issue: str
    owner_type: str  # Terraform resource type carrying the document
    sid: str
    detail: str  # regex on the finding's detail
    why: str
    aws_doc: str  # the AWS documentation page that makes the finding a false positive

    def matches(self, finding: Finding) -> bool:
        return (
            finding.issue == self.issue
            and parse_address(finding.owner).type == self.owner_type
            and finding.sid == self.sid
            and re.search(self.detail, finding.detail) is not None
        )


ALLOWED: tuple[Allowance, ...] = (
    Allowance(
        "UNKNOWN_CONDITION_FOR_ACTION",
        "aws_kms_key",
        "AllowCloudWatchLogs",
        r"kms:EncryptionContext:aws:logs:arn for action kms:Describe",
        "the logs key lets logs.<region>.amazonaws.com use it only for this account's log groups; "
        "AWS's key policy for CloudWatch Logs puts kms:Describe* under that encryption-context "
        "condition, which the reference does not list for the Describe actions",
        "Amazon CloudWatch Logs User Guide, 'Encrypt log data in CloudWatch Logs using AWS Key "
        "Management Service' (key policy and encryption context)",
    ),
    Allowance(
        "MISMATCHED_TYPE",
        "aws_kms_key",
        "AllowCloudWatchLogs",
        r"ArnLike requires a value of type Arn but given String",
        "kms:EncryptionContext:aws:logs:arn holds the log group's ARN and AWS compares it with an "
        "ARN operator; the reference types the whole kms:EncryptionContext:<key> family as String",
        "Amazon CloudWatch Logs User Guide, 'Encrypt log data in CloudWatch Logs using AWS Key "
        "Management Service' (key policy and encryption context)",
    ),
    Allowance(
        WILDCARD_ISSUE,
        "aws_kms_key",
        "EnableIAMPolicies",
        r"^kms:\* ",
        "the account root's kms:* on the key is what lets IAM policies grant use of the key at "
        "all; the roles' own policies stay scoped (test_iam.py)",
        "AWS KMS Developer Guide, 'Default key policy' (Allows access to the AWS account and "
        "enables IAM policies)",
    ),
    Allowance(
        WILDCARD_ISSUE,
        "aws_vpc_endpoint",
        "OwnAccountResourcesOnly",
        r"^\* ",
        "an endpoint policy grants nothing: it narrows AWS's default endpoint policy (Action *, "
        "Principal *) to this account's resources (aws:ResourceAccount); IAM still decides",
        "Amazon VPC / AWS PrivateLink Guide, 'Control access to VPC endpoints using endpoint "
        "policies' (default endpoint policy; an endpoint policy does not replace identity-based "
        "or resource-based policies)",
    ),
    Allowance(
        WILDCARD_ISSUE,
        "aws_vpc_endpoint",
        "AwsDefaultEndpointPolicy",
        r"^\* ",
        "logs, monitoring and xray act on no per-account resource an endpoint policy could match, so "
        "their endpoints carry AWS's default endpoint policy, written out to be reviewed at plan "
        "time; it grants nothing, IAM still decides (the other endpoints: OwnAccountResourcesOnly)",
        "Amazon VPC / AWS PrivateLink Guide, 'Control access to VPC endpoints using endpoint "
        "policies' (the default endpoint policy allows full access through the endpoint)",
    ),
)


def gate(findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(findings above LOW not allowed, findings above LOW allowed)."""
    failing: list[Finding] = []
    allowed: list[Finding] = []
    for finding in findings:
        if not at_least(finding.severity, "MEDIUM"):
            continue
        (allowed if any(a.matches(finding) for a in ALLOWED) else failing).append(finding)
    return failing, allowed


def report(findings: list[Finding]) -> str:
    """Markdown: every finding, grouped by issue and statement (for docs/security-scan.md)."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for finding in findings:
        key = (finding.severity, finding.issue, finding.sid, finding.detail)
        groups.setdefault(key, []).append(finding.owner)
    lines = ["| severity | issue | statement | detail | documents |", "|---|---|---|---|---|"]
    for (severity, issue, sid, detail), owners in sorted(
        groups.items(), key=lambda item: (-SEVERITIES.index(item[0][0]), item[0][1:])
    ):
        shown = ", ".join(f"`{o}`" for o in sorted(owners)[:3]) + (
            f" and {len(owners) - 3} more" if len(owners) > 3 else ""
        )
        lines.append(f"| {severity} | `{issue}` | `{sid}` | {detail} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.security.policy_audit PLAN_JSON``: the findings table; exit 1 when the
    gate fails. PLAN_JSON is a saved ``terraform show -json`` (as ``PAYMENT_PLAN_JSON``)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m tests.security.policy_audit PLAN_JSON\n")
        return 2
    with open(args[0], encoding="utf-8") as handle:
        plan = Plan(json.load(handle))
    docs, unreadable = documents(plan)
    findings = audit_all(docs)
    failing, _ = gate(findings)
    sys.stdout.write(f"{len(docs)} documents, {len(findings)} findings\n\n{report(findings)}")
    for line in unreadable:
        sys.stdout.write(f"unreadable: {line}\n")
    return 1 if failing or unreadable else 0


if __name__ == "__main__":
    raise SystemExit(main())
