"""Read a ``terraform show -json`` plan the way a security reviewer does.

Two things make a plan of a fresh deployment awkward to audit:

* ARNs of resources that do not exist yet are unknown, so a policy JSON that mentions one
  is unknown as a whole. Policies built with ``data "aws_iam_policy_document"`` are
  recovered from the data source's *arguments*, which the plan does record (actions,
  principals and conditions are known; an unknown ARN becomes ``UNKNOWN``).
* Which key encrypts what is an unknown ARN too. ``plan["configuration"]`` records, for
  every argument, the references it was built from; following ``var.x`` up through the
  module calls and ``module.m.output`` down into the module's outputs ends at the
  resource that provides the value (``module.kms.aws_kms_key.this``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNKNOWN = "(known after apply)"

_INDEX_RE = re.compile(r'\[("(?:[^"\\]|\\.)*"|\d+)\]')


@dataclass(frozen=True)
class Address:
    module: str  # "" for the root, else 'module.functions' (instance keys stripped)
    mode: str  # "managed" | "data"
    type: str
    name: str
    key: str | int | None

    @property
    def config_address(self) -> str:
        prefix = "data." if self.mode == "data" else ""
        return f"{prefix}{self.type}.{self.name}"


def parse_address(address: str) -> Address:
    parts: list[str] = []
    rest = address
    module_parts: list[str] = []
    while rest.startswith("module."):
        rest = rest[len("module.") :]
        name, _, rest = rest.partition(".")
        module_parts.append("module." + _INDEX_RE.sub("", name))
    mode = "managed"
    if rest.startswith("data."):
        mode, rest = "data", rest[len("data.") :]
    type_, _, name_key = rest.partition(".")
    match = _INDEX_RE.search(name_key)
    key: str | int | None = None
    if match:
        raw = match.group(1)
        key = json.loads(raw) if raw.startswith('"') else int(raw)
        name_key = name_key[: match.start()]
    parts = module_parts
    return Address(".".join(parts), mode, type_, name_key, key)


def _mark_unknown(value: Any, unknown: Any) -> Any:
    """Merge ``after`` with ``after_unknown``: unknown leaves become UNKNOWN."""
    if unknown is True:
        return UNKNOWN
    if isinstance(value, dict):
        unknown_map = unknown if isinstance(unknown, dict) else {}
        merged = {k: _mark_unknown(v, unknown_map.get(k)) for k, v in value.items()}
        for k, u in unknown_map.items():
            if k not in merged and u is True:
                merged[k] = UNKNOWN
        return merged
    if isinstance(value, list):
        unknown_list = unknown if isinstance(unknown, list) else []
        return [
            _mark_unknown(v, unknown_list[i] if i < len(unknown_list) else None) for i, v in enumerate(value)
        ]
    if value is None and isinstance(unknown, dict | list):
        return _mark_unknown({} if isinstance(unknown, dict) else [None] * len(unknown), unknown)
    return value


class Plan:
    """Index over a plan JSON: values (with unknowns marked) and configuration references."""

    def __init__(self, plan: Mapping[str, Any]) -> None:
        self.raw = plan
        self.values: dict[str, dict[str, Any]] = {}
        self.sensitive: dict[str, Any] = {}
        self.types: dict[str, str] = {}
        for change in plan.get("resource_changes", []):
            if "delete" in change["change"]["actions"] and "create" not in change["change"]["actions"]:
                continue
            after = change["change"].get("after") or {}
            marked = _mark_unknown(after, change["change"].get("after_unknown") or {})
            self.values[change["address"]] = marked
            self.sensitive[change["address"]] = change["change"].get("after_sensitive") or {}
            self.types[change["address"]] = change["type"]
        # Data sources read during plan are in prior_state, not in resource_changes.
        for module in _walk_modules(plan.get("prior_state", {}).get("values", {}).get("root_module", {})):
            for res in module.get("resources", []):
                self.values.setdefault(res["address"], res.get("values", {}))
                self.types.setdefault(res["address"], res["type"])
        self.config_modules: dict[str, dict[str, Any]] = {}
        self.module_calls: dict[str, dict[str, Any]] = {}
        self._index_config(plan.get("configuration", {}).get("root_module", {}), "")

    def _index_config(self, module: Mapping[str, Any], path: str) -> None:
        self.config_modules[path] = {r["address"]: r for r in module.get("resources", [])}
        self.config_modules[path]["__outputs__"] = module.get("outputs", {})
        for name, call in module.get("module_calls", {}).items():
            child = f"{path}.module.{name}" if path else f"module.{name}"
            self.module_calls[child] = call
            self._index_config(call.get("module", {}), child)

    # -- values ------------------------------------------------------------------------------
    def resources(self, *types: str, mode: str = "managed") -> Iterator[tuple[str, dict[str, Any]]]:
        for address, values in sorted(self.values.items()):
            parsed = parse_address(address)
            if parsed.mode == mode and (not types or parsed.type in types):
                yield address, values

    # -- configuration references ---------------------------------------------------------------
    def expression(self, address: str, path: tuple[str, ...]) -> dict[str, Any] | None:
        """The configuration expression of an argument (path into nested blocks, e.g.
        ('server_side_encryption', 'kms_key_arn'))."""
        parsed = parse_address(address)
        config = self.config_modules.get(parsed.module, {}).get(parsed.config_address)
        if config is None:
            return None
        node: Any = config.get("expressions", {})
        for step in path:
            if isinstance(node, list):
                node = node[0] if node else None
            if not isinstance(node, dict):
                return None
            node = node.get(step)
        if isinstance(node, list):
            node = node[0] if node else None
        return node if isinstance(node, dict) else None

    def origins(self, address: str, path: tuple[str, ...]) -> set[str]:
        """Resource addresses (config-level, instance key of the referring resource applied
        when it refers with ``[each.key]``) an argument's value comes from, through variables,
        module calls and module outputs. Constants resolve to ``const:<value>``."""
        parsed = parse_address(address)
        expression = self.expression(address, path)
        if expression is None:
            return set()
        found = self._resolve(expression, parsed.module, parsed.key, depth=0)
        # Configuration addresses carry no module instance keys ("module.edge"); a module called
        # with count/for_each plans its resources as "module.edge[0]....": put the referrer's
        # instance back on what resolved inside its own module, so plan values can be looked up.
        instance_prefix = _module_instance_prefix(address)
        if parsed.module and instance_prefix != parsed.module:
            found = {
                instance_prefix + o[len(parsed.module) :] if o.startswith(parsed.module + ".") else o
                for o in found
            }
        return found

    def _resolve(self, expression: Mapping[str, Any], module: str, key: Any, depth: int) -> set[str]:
        if depth > 20:
            return set()
        if "constant_value" in expression:
            return {f"const:{json.dumps(expression['constant_value'])}"}
        found: set[str] = set()
        references = expression.get("references", [])
        # Terraform records "x.this[each.key]" as the two references "x.this" and "each.key".
        uses_each = "each.key" in references
        for ref in _most_specific(references):
            found |= self._resolve_reference(ref, module, key if uses_each else None, depth)
        return found

    def _resolve_reference(  # noqa: PLR0911 - one return per kind of reference
        self, ref: str, module: str, key: Any, depth: int
    ) -> set[str]:
        if ref.startswith("var."):
            name = ref[4:].split(".")[0].split("[")[0]
            call = self.module_calls.get(module)
            if call is None:
                return {f"{module}:var.{name}" if module else f"var.{name}"}
            parent = module.rsplit(".module.", 1)[0] if ".module." in module else ""
            expr = call.get("expressions", {}).get(name)
            if expr is None:
                return {f"{module}:default-of:var.{name}"}
            return self._resolve(expr, parent, None, depth + 1)
        if ref.startswith("module."):
            name = ref.split(".")[1].split("[")[0]
            child = f"{module}.module.{name}" if module else f"module.{name}"
            output_name = ref.split(".")[2].split("[")[0] if ref.count(".") >= 2 else None
            if output_name is None:
                return {child}
            outputs = self.config_modules.get(child, {}).get("__outputs__", {})
            output = outputs.get(output_name)
            if output is None:
                return {f"{child}:output.{output_name}"}
            resolved = self._resolve(output.get("expression", {}), child, None, depth + 1)
            # module.kms.key_arns["data"]: a map output keyed like the for_each it is built
            # from ({for k, v in aws_kms_key.this : k => v.arn}) -> that instance.
            match = _INDEX_RE.search(ref.split(".", 2)[2])
            if match:
                resolved = {
                    r + match.group(0) if ":" not in r and not r.endswith("]") else r for r in resolved
                }
            return resolved
        if ref.startswith(("local.", "each.", "count.", "path.", "terraform.", "self.")):
            return {f"{module}:{ref}"} if ref.startswith("local.") else set()
        # resource or data source reference: "aws_kms_key.this[each.key].arn"
        each_key = key is not None
        ref = ref.replace("[each.key]", "").replace("[count.index]", "")
        parts = ref.split(".")
        base = ".".join(parts[:3]) if parts[0] == "data" else ".".join(parts[:2])
        base_no_index = _INDEX_RE.sub("", base)
        instance = ""
        match = _INDEX_RE.search(base)
        if each_key and key is not None:
            instance = f"[{json.dumps(key)}]"
        elif match:
            instance = match.group(0)
        prefix = f"{module}." if module else ""
        return {f"{prefix}{base_no_index}{instance}"}


def _module_instance_prefix(address: str) -> str:
    """'module.edge[0]' of 'module.edge[0].aws_x.y' (module path with instance keys; '' at root)."""
    prefix: list[str] = []
    rest = address
    while rest.startswith("module."):
        name, _, rest = rest[len("module.") :].partition(".")
        prefix.append("module." + name)
    return ".".join(prefix)


def _most_specific(references: list[str]) -> list[str]:
    """Terraform lists every prefix of a traversal ("a.b[k].arn", "a.b[k]", "a.b"); keep the
    longest of each family."""
    keep = []
    for ref in references:
        if not any(other != ref and other.startswith(ref) for other in references):
            keep.append(ref)
    return keep


def _walk_modules(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield module
    for child in module.get("child_modules", []):
        yield from _walk_modules(child)


# ------------------------------------------------------------------------------------------
# Policy documents


@dataclass(frozen=True)
class PolicyDocument:
    owner: str  # address of the resource that carries the policy
    attribute: str  # assume_role_policy, policy, ...
    document: dict[str, Any]
    source: str  # "value" | "aws_iam_policy_document <address>"

    def statements(self) -> list[dict[str, Any]]:
        statements = self.document.get("Statement", [])
        return [statements] if isinstance(statements, dict) else list(statements)


# Every resource argument that holds a policy document.
POLICY_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "aws_iam_role": ("assume_role_policy",),
    "aws_iam_role_policy": ("policy",),
    "aws_iam_policy": ("policy",),
    "aws_iam_user_policy": ("policy",),
    "aws_iam_group_policy": ("policy",),
    "aws_kms_key": ("policy",),
    "aws_sqs_queue": ("policy",),
    "aws_sqs_queue_policy": ("policy",),
    "aws_sns_topic": ("policy",),
    "aws_sns_topic_policy": ("policy",),
    "aws_s3_bucket_policy": ("policy",),
    "aws_api_gateway_rest_api": ("policy",),
    "aws_api_gateway_rest_api_policy": ("policy",),
    "aws_cloudwatch_log_resource_policy": ("policy_document",),
    "aws_lambda_function": (),
}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _document_from_data_source(values: Mapping[str, Any]) -> dict[str, Any]:  # noqa: PLR0912
    """IAM JSON equivalent of an aws_iam_policy_document's arguments."""
    statements: list[dict[str, Any]] = []
    for source in as_list(values.get("source_policy_documents")) + as_list(
        values.get("override_policy_documents")
    ):
        if isinstance(source, str) and source != UNKNOWN and source:
            statements.extend(as_list(json.loads(source).get("Statement")))
        elif source == UNKNOWN:
            statements.append({"Effect": "Allow", "Action": UNKNOWN, "Resource": UNKNOWN})
    for block in as_list(values.get("statement")):
        statement: dict[str, Any] = {"Effect": block.get("effect") or "Allow"}
        if block.get("sid"):
            statement["Sid"] = block["sid"]
        for arg, key in (
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ):
            if block.get(arg) not in (None, [], UNKNOWN):
                statement[key] = sorted(block[arg]) if isinstance(block[arg], list) else block[arg]
            elif block.get(arg) == UNKNOWN:
                statement[key] = UNKNOWN
        for arg, key in (("principals", "Principal"), ("not_principals", "NotPrincipal")):
            principals: dict[str, list[str]] = {}
            for principal in as_list(block.get(arg)):
                identifiers = as_list(principal.get("identifiers"))
                if principal.get("type") == "*":
                    statement[key] = "*"
                    continue
                principals.setdefault(principal.get("type", UNKNOWN), []).extend(identifiers)
            if principals:
                statement[key] = principals
        conditions: dict[str, dict[str, list[str]]] = {}
        for condition in as_list(block.get("condition")):
            conditions.setdefault(condition.get("test", UNKNOWN), {}).setdefault(
                condition.get("variable", UNKNOWN), []
            ).extend(as_list(condition.get("values")))
        if conditions:
            statement["Condition"] = conditions
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def policy_documents(plan: Plan) -> tuple[list[PolicyDocument], list[str]]:
    """Every policy document in the plan, and the owners whose document cannot be read."""
    documents: list[PolicyDocument] = []
    unreadable: list[str] = []
    for address, values in plan.resources(*POLICY_ATTRIBUTES):
        type_ = parse_address(address).type
        for attribute in POLICY_ATTRIBUTES[type_]:
            raw = values.get(attribute)
            if raw in (None, ""):
                continue
            if raw != UNKNOWN:
                documents.append(PolicyDocument(address, attribute, json.loads(str(raw)), "value"))
                continue
            if plan.expression(address, (attribute,)) is None:
                continue  # computed, not configured here: a separate *_policy resource sets it
            sources = [
                o
                for o in plan.origins(address, (attribute,))
                if o.startswith("data.aws_iam_policy_document.") or ".data.aws_iam_policy_document." in o
            ]
            if len(sources) == 1 and sources[0] in plan.values:
                data_values = plan.values[sources[0]]
                if data_values.get("json") not in (None, UNKNOWN):
                    document = json.loads(data_values["json"])
                else:
                    document = _document_from_data_source(data_values)
                documents.append(
                    PolicyDocument(address, attribute, document, f"aws_iam_policy_document {sources[0]}")
                )
            else:
                unreadable.append(f"{address}.{attribute} (built from {sorted(sources) or 'jsonencode'})")
    return documents, unreadable


def statement_actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def statement_resources(statement: Mapping[str, Any]) -> list[str]:
    return [str(r) for r in as_list(statement.get("Resource"))]


def principals(statement: Mapping[str, Any]) -> dict[str, list[str]]:
    principal = statement.get("Principal")
    if principal is None:
        return {}
    if principal == "*":
        return {"*": ["*"]}
    return {k: [str(v) for v in as_list(vs)] for k, vs in principal.items()}


# ------------------------------------------------------------------------------------------
# Dynamic blocks


def dynamic_block_origins(plan: Plan, address: str, block: str, repo_root: Path) -> set[str]:
    """Origins of a ``dynamic "<block>"``'s content (the plan's configuration omits dynamic
    blocks): the module variables the block's source text references, resolved through the
    module call like any other reference."""
    parsed = parse_address(address)
    call = plan.module_calls.get(parsed.module)
    if call is None:
        return set()
    source = repo_root / call.get("source", "")
    body = ""
    for tf in sorted(source.glob("*.tf")):
        text = tf.read_text(encoding="utf-8")
        for match in re.finditer(rf'dynamic\s+"{re.escape(block)}"\s*\{{', text):
            depth, end = 1, match.end()
            while depth and end < len(text):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            body += text[match.end() : end]
    found: set[str] = set()
    for name in sorted(set(re.findall(r"\bvar\.(\w+)", body))):
        expression = call.get("expressions", {}).get(name)
        if expression is not None:
            parent = parsed.module.rsplit(".module.", 1)[0] if ".module." in parsed.module else ""
            found |= plan._resolve(expression, parent, None, depth=1)
    return found


# ------------------------------------------------------------------------------------------
# Lambda environment from the configuration source


_LITERAL = re.compile(r'^"((?:[^"\\$]|\\.)*)"$')
_VAR = re.compile(r"^(?:tostring\()?var\.(\w+)\)?$")


def _block_body(text: str, opening: re.Match[str]) -> str:
    depth, end = 1, opening.end()
    while depth and end < len(text):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        end += 1
    return text[opening.end() : end - 1]


def lambda_environment_source(plan: Plan, repo_root: Path) -> dict[str, tuple[str, Any]]:
    """NAME -> (HCL expression, value when it is a literal or a root variable, else UNKNOWN)
    for the common Lambda environment map.

    The plan cannot show it: a map with any unknown element (queue URLs, topic ARNs) makes
    the whole ``environment.variables`` unknown. The root passes the map to the functions
    module as ``environment = local.<name>``; that local's literal map is read here.
    """
    call = next(
        (c for path, c in plan.module_calls.items() if "environment" in c.get("expressions", {})),
        None,
    )
    if call is None:
        return {}
    references = call["expressions"]["environment"].get("references", [])
    local = next((r.split(".")[1] for r in references if r.startswith("local.")), None)
    if local is None:
        return {}
    variables = plan.raw.get("variables", {})
    found: dict[str, tuple[str, Any]] = {}
    for tf in sorted(repo_root.glob("*.tf")):
        text = tf.read_text(encoding="utf-8")
        for opening in re.finditer(rf"(?m)^\s*{re.escape(local)}\s*=\s*\{{", text):
            for line in _block_body(text, opening).splitlines():
                match = re.match(r"\s*([A-Z][A-Z0-9_]*)\s*=\s*(.+?)\s*$", line)
                if not match:
                    continue
                name, expression = match.groups()
                value: Any = UNKNOWN
                literal = _LITERAL.match(expression)
                variable = _VAR.match(expression)
                if literal:
                    value = literal.group(1)
                elif variable and variable.group(1) in variables:
                    value = variables[variable.group(1)].get("value")
                    value = str(value) if not isinstance(value, list | dict) else value
                found[name] = (expression, value)
    return found


def first_block(values: Any, name: str) -> dict[str, Any]:
    """The first ``name { ... }`` block of a resource's values; {} when absent or unknown at plan
    time (an unknown block is one the configuration did not set: the provider/AWS decides it)."""
    blocks = values.get(name) if isinstance(values, dict) else None
    if isinstance(blocks, list) and blocks and isinstance(blocks[0], dict):
        return blocks[0]
    return {}
