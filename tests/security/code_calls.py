"""Derive, from the source, the AWS API actions each Lambda handler can make.

The Lambda code receives its boto3 clients as plain parameters (typed ``Any``), so the
receiver of ``client.put_item(...)`` is rarely known statically. What *is* known is the
method name: botocore's service models map every snake_case client method back to exactly
one operation of one service for the services this platform uses (the few names shared
between services, e.g. ``tag_resource``, are never data-plane calls a handler makes).

For each handler the analysis walks a call graph, not just an import graph, so a shared
module (the repository, ``payments.jobs``) only contributes the calls a handler can reach:

* roots: ``payments.handlers.<module>.handler`` plus the top-level code of every module the handler
  imports, transitively (import-time code runs in every cold start);
* edges: calls and references (callbacks, dispatch tables) to functions and classes of our
  own modules, resolved through imports; ``self.m()`` resolves within the class and its
  bases; ``obj.m()`` on a receiver of unknown type resolves to every method ``m`` of our
  classes unless ``m`` is a generic container/str method name (an over-approximation that
  can only add actions, never hide one);
* AWS calls: attribute calls whose name is a boto3 operation (``put_item``,
  ``transact_write_items``, ``start_execution``, ``publish``...), paginators
  (``get_paginator("query")``), the resource/transfer helpers (``batch_writer``,
  ``upload_file``) and AWS Lambda Powertools utilities that call AWS themselves.

Operations map to IAM actions with the documented exceptions (S3 listing is
``s3:ListBucket``, a DynamoDB transaction is authorised per item action, ``*_batch``
calls are authorised as the single call).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
from botocore import xform_name

# boto3 service name -> IAM action prefix, for every service the platform's code may call.
IAM_PREFIX = {
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "sns": "sns",
    "stepfunctions": "states",
    "ssm": "ssm",
    "s3": "s3",
    "cloudwatch": "cloudwatch",
    "kms": "kms",
    "sts": "sts",
    "logs": "logs",
    "lambda": "lambda",
    "xray": "xray",
    "secretsmanager": "secretsmanager",
    "scheduler": "scheduler",
    "events": "events",
    "apigateway": "apigateway",
}

# Operations whose IAM action differs from the operation name (AWS service authorization
# reference). A DynamoDB transaction is authorised per item: see _transact_actions.
ACTION_OVERRIDES: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "ListObjectsV2"): ("ListBucket",),
    ("s3", "ListObjects"): ("ListBucket",),
    ("s3", "HeadBucket"): ("ListBucket",),
    ("s3", "HeadObject"): ("GetObject",),
    ("s3", "DeleteObjects"): ("DeleteObject",),
    ("s3", "ListObjectVersions"): ("ListBucketVersions",),
    ("s3", "CopyObject"): ("GetObject", "PutObject"),
    ("s3", "CreateMultipartUpload"): ("PutObject",),
    ("s3", "UploadPart"): ("PutObject",),
    ("s3", "CompleteMultipartUpload"): ("PutObject",),
    ("dynamodb", "TransactGetItems"): ("GetItem",),
    ("sqs", "SendMessageBatch"): ("SendMessage",),
    ("sqs", "DeleteMessageBatch"): ("DeleteMessage",),
    ("sqs", "ChangeMessageVisibilityBatch"): ("ChangeMessageVisibility",),
    ("sns", "PublishBatch"): ("Publish",),
    ("lambda", "Invoke"): ("InvokeFunction",),
}

# boto3 helpers that are not operations but issue them.
# The data-access layer's one TransactWriteItems call and the builders of its operations
# (payments.store.write): a caller of ``transact`` needs the item actions it builds.
TRANSACT_HELPER = "payments.store.write:transact"
TRANSACT_BUILDERS = {
    "transact_put": "PutItem",
    "transact_update": "UpdateItem",
    "transact_delete": "DeleteItem",
    "transact_condition_check": "ConditionCheckItem",
    # CleanupLock.fence_check (payments.jobs.lock) returns the lock's transact_condition_check:
    # the cleanup's delete groups carry it from another module, out of the builders' sight.
    "fence_check": "ConditionCheckItem",
}

HELPER_METHODS: dict[str, tuple[str, ...]] = {
    "batch_writer": ("dynamodb:BatchWriteItem",),
    "upload_file": ("s3:PutObject",),
    "upload_fileobj": ("s3:PutObject",),
    "download_file": ("s3:GetObject",),
    "download_fileobj": ("s3:GetObject",),
    # Powertools BaseProvider.get_multiple (SSM: by path).
    "get_multiple": ("ssm:GetParametersByPath",),
}

# AWS Lambda Powertools utilities that call AWS with the function's role.
POWERTOOLS_CALLS: dict[str, tuple[str, ...]] = {
    "DynamoDBPersistenceLayer": (
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ),
}
POWERTOOLS_PARAMETER_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "get_parameter": ("ssm:GetParameter",),
    "get_parameters": ("ssm:GetParametersByPath",),
    "get_parameters_by_name": ("ssm:GetParameters",),
    "get_secret": ("secretsmanager:GetSecretValue",),
}

# Receiver-agnostic method names too common to resolve to our own methods by name alone
# (dict/list/str/set/datetime/Decimal/Logger methods): a call like ``event.get(...)`` must
# not pull a repository's ``get`` into every handler's closure.
GENERIC_METHODS = frozenset(
    (
        "get",
        "items",
        "keys",
        "values",
        "append",
        "extend",
        "update",
        "pop",
        "popitem",
        "setdefault",
        "copy",
        "add",
        "remove",
        "discard",
        "clear",
        "insert",
        "index",
        "count",
        "sort",
        "reverse",
        "join",
        "split",
        "rsplit",
        "strip",
        "lstrip",
        "rstrip",
        "format",
        "replace",
        "encode",
        "decode",
        "lower",
        "upper",
        "startswith",
        "endswith",
        "read",
        "write",
        "close",
        "send",
        "put",
        "isoformat",
        "hexdigest",
        "digest",
        "total_seconds",
        "quantize",
        "normalize",
        "to_integral_value",
        "info",
        "debug",
        "warning",
        "error",
        "exception",
        "critical",
        "append_keys",
        "inject_lambda_context",
        "capture_lambda_handler",
        "capture_method",
        "log_metrics",
        "add_metric",
        "add_dimension",
        "add_metadata",
        "timestamp",
        "astimezone",
        "strftime",
        "strptime",
        "fromisoformat",
        "utcnow",
        "now",
        "date",
        "time",
        "replace",
        "splitlines",
        "zfill",
        "casefold",
        "as_integer_ratio",
        "is_finite",
        "is_nan",
        "exp",
        "log",
        "run",
        "dumps",
        "loads",
        "load",
        "dump",
        "match",
        "search",
        "fullmatch",
        "sub",
        "findall",
        "group",
        "groups",
        "result",
        "submit",
        "map",
        "shutdown",
        "__init__",
        "__call__",
        "__enter__",
        "__exit__",
        "__post_init__",
    )
)

# Generic boto3 client methods that are not API calls.
CLIENT_NON_OPERATIONS = frozenset({"get_paginator", "get_waiter", "can_paginate", "close"})


@functools.cache
def operation_index() -> dict[str, tuple[tuple[str, str], ...]]:
    """snake_case method -> ((boto3 service, OperationName), ...) over IAM_PREFIX services."""
    session = botocore.session.get_session()
    index: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for service in IAM_PREFIX:
        for operation in session.get_service_model(service).operation_names:
            index[xform_name(operation)].append((service, operation))
    return {name: tuple(ops) for name, ops in index.items()}


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    prefix = IAM_PREFIX[service]
    names = ACTION_OVERRIDES.get((service, operation), (operation,))
    return tuple(f"{prefix}:{name}" for name in names)


@dataclass(frozen=True)
class AwsCall:
    action: str
    where: str  # path:line, for the failure message

    def __str__(self) -> str:
        return f"{self.action} ({self.where})"


@dataclass
class _Function:
    key: str  # "module:Class.name" / "module:name" / "module:<module>"
    module: str
    cls: str | None
    node: ast.AST
    edges: set[str] = field(default_factory=set)
    aws: list[AwsCall] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    unresolved_methods: set[str] = field(default_factory=set)


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    # local name -> fully qualified target ("pkg.mod" for modules, "pkg.mod:obj" for objects,
    # "ext:<dotted>" for anything outside the analysed code)
    scope: dict[str, str] = field(default_factory=dict)
    top_imports: set[str] = field(default_factory=set)
    classes: dict[str, list[str]] = field(default_factory=dict)  # class -> base names


def _walk(function: _Function) -> Iterator[ast.AST]:
    """Nodes of a function body (nested defs included: they run as part of it); for the
    module pseudo-function, import-time code only (decorators and defaults, not bodies)."""
    stack: list[ast.AST] = [function.node]
    top_level = isinstance(function.node, ast.Module)
    while stack:
        node = stack.pop()
        yield node
        if top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stack.extend(node.decorator_list)
            stack.extend(node.args.defaults)
            stack.extend(d for d in node.args.kw_defaults if d is not None)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class CodeModel:
    """Call graph over the Python packages that ship in the Lambda zip."""

    def __init__(self, sources: Iterable[tuple[Path, Path]]) -> None:
        """``sources``: (sys.path root, package directory or file), e.g. (lambda/, lambda/payments)."""
        self.modules: dict[str, _Module] = {}
        for root, package in sources:
            for path in [package] if package.is_file() else sorted(package.rglob("*.py")):
                name = _module_name(root, path)
                tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
                self.modules[name] = _Module(name=name, path=path, tree=tree)
        self.functions: dict[str, _Function] = {}
        self.methods_by_name: dict[str, set[str]] = defaultdict(set)
        for module in self.modules.values():
            self._index(module)
        self._attr_types: dict[str, dict[str, str]] = {}
        self._module_types: dict[str, dict[str, str]] = {}
        for module in self.modules.values():
            self._module_types[module.name] = self._types(module, self.functions[f"{module.name}:<module>"])
        for module in self.modules.values():
            self._analyse_module(module)

    # -- indexing ---------------------------------------------------------------------------
    def _index(self, module: _Module) -> None:
        for stmt in module.tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                key = f"{module.name}:{stmt.name}"
                self.functions[key] = _Function(key, module.name, None, stmt)
                module.scope[stmt.name] = key
            elif isinstance(stmt, ast.ClassDef):
                module.scope[stmt.name] = f"{module.name}:{stmt.name}"
                module.classes[stmt.name] = [b.id for b in stmt.bases if isinstance(b, ast.Name)]
                for item in stmt.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        key = f"{module.name}:{stmt.name}.{item.name}"
                        self.functions[key] = _Function(key, module.name, stmt.name, item)
                        self.methods_by_name[item.name].add(key)
        key = f"{module.name}:<module>"
        self.functions[key] = _Function(key, module.name, None, module.tree)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._bind_import(module, node)

    def _resolve_from(self, module: _Module, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        package = module.name.split(".")
        is_package = module.path.name == "__init__.py"
        base = package if is_package else package[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def _bind_import(self, module: _Module, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                local = alias.asname or alias.name.split(".")[0]
                bound = target if alias.asname else target.split(".")[0]
                module.scope.setdefault(local, bound if bound in self.modules else f"ext:{bound}")
            return
        source = self._resolve_from(module, node)
        for alias in node.names:
            local = alias.asname or alias.name
            submodule = f"{source}.{alias.name}"
            if submodule in self.modules:
                module.scope.setdefault(local, submodule)
            elif source in self.modules:
                module.scope.setdefault(local, f"{source}:{alias.name}")
            else:
                module.scope.setdefault(local, f"ext:{source}.{alias.name}")

    # -- analysis ---------------------------------------------------------------------------
    def _analyse_module(self, module: _Module) -> None:
        for function in [f for f in self.functions.values() if f.module == module.name]:
            self._analyse_function(module, function)
        # Top-level imports of a module run when it is imported.
        init = self.functions[f"{module.name}:<module>"]
        module.top_imports = set(init.imports)

    def _target_of(self, module: _Module, dotted: str) -> str | None:  # noqa: PLR0911
        """Resolve a module-scope object reference ("pkg.mod:obj") to a function/class key."""
        if ":" not in dotted or dotted.startswith("ext:"):
            return None
        mod_name, obj = dotted.split(":", 1)
        target_module = self.modules.get(mod_name)
        if target_module is None:
            return None
        # Follow re-exports (from .repository import Repository in a package __init__).
        seen = 0
        while seen < 10:
            seen += 1
            bound = target_module.scope.get(obj)
            if bound is None:
                return None
            if bound == f"{target_module.name}:{obj}":
                return bound
            if ":" not in bound or bound.startswith("ext:"):
                return None
            mod_name, obj = bound.split(":", 1)
            next_module = self.modules.get(mod_name)
            if next_module is None:
                return None
            target_module = next_module
        return None

    def _class_targets(self, class_key: str) -> set[str]:
        """Everything constructing an instance runs: __init__/__post_init__ of the class and bases."""
        module_name, cls = class_key.split(":", 1)
        targets: set[str] = set()
        for klass in self._mro(module_name, cls):
            for special in ("__init__", "__post_init__", "__call__"):
                key = f"{klass}.{special}"
                if key in self.functions:
                    targets.add(key)
        return targets

    def _mro(self, module_name: str, cls: str) -> list[str]:
        order: list[str] = []
        pending = [(module_name, cls)]
        while pending and len(order) < 20:
            mod_name, name = pending.pop(0)
            module = self.modules.get(mod_name)
            if module is None or name not in module.classes:
                continue
            order.append(f"{mod_name}:{name}")
            for base in module.classes[name]:
                resolved = self._target_of(module, module.scope.get(base, ""))
                if resolved:
                    pending.append(tuple(resolved.split(":", 1)))  # type: ignore[arg-type]
        return order

    def _method(self, class_key: str, name: str) -> set[str]:
        module_name, cls = class_key.split(":", 1)
        for klass in self._mro(module_name, cls):
            key = f"{klass}.{name}"
            if key in self.functions:
                return {key}
        return set()

    def _reference(self, module: _Module, node: ast.expr) -> tuple[str, str] | None:  # noqa: PLR0911
        """('module'|'object', target) for a Name/Attribute naming our module or object."""
        if isinstance(node, ast.Name):
            bound = module.scope.get(node.id)
            if bound is None or bound.startswith("ext:"):
                return None
            if ":" not in bound:
                return ("module", bound)
            target = self._target_of(module, bound)
            return ("object", target) if target else None
        if isinstance(node, ast.Attribute):
            base = self._reference(module, node.value)
            if base is None:
                return None
            kind, target = base
            if kind == "module":
                sub = f"{target}.{node.attr}"
                if sub in self.modules:
                    return ("module", sub)
                resolved = self._target_of(self.modules[target], f"{target}:{node.attr}")
                return ("object", resolved) if resolved else None
            if target in self.functions:
                return None
            method = self._method(target, node.attr)
            return ("object", next(iter(method))) if method else None
        return None

    def _edges_for_object(self, target: str) -> set[str]:
        if target in self.functions:
            return {target}
        return self._class_targets(target)

    def _is_external(self, module: _Module, node: ast.expr) -> str | None:
        """Dotted external name of a receiver bound by an import (json, boto3, powertools...)."""
        if isinstance(node, ast.Name):
            bound = module.scope.get(node.id, "")
            return bound[4:] if bound.startswith("ext:") else None
        if isinstance(node, ast.Attribute):
            base = self._is_external(module, node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _where(self, module: _Module, node: ast.AST) -> str:
        return f"{module.path}:{getattr(node, 'lineno', 0)}"

    def _aws_call(self, module: _Module, function: _Function, call: ast.Call, name: str) -> bool:
        where = self._where(module, call)
        if name in HELPER_METHODS:
            function.aws.extend(AwsCall(a, where) for a in HELPER_METHODS[name])
            return True
        if name == "get_paginator" and call.args and isinstance(call.args[0], ast.Constant):
            name = str(call.args[0].value)
        elif name in CLIENT_NON_OPERATIONS:
            return True
        candidates = operation_index().get(name)
        if not candidates:
            return False
        for service, operation in candidates:
            if (service, operation) == ("dynamodb", "TransactWriteItems"):
                actions: tuple[str, ...] = self._transact_actions(module, function)
            else:
                actions = iam_actions(service, operation)
            function.aws.extend(AwsCall(a, where) for a in actions)
        return True

    @staticmethod
    def _transact_actions(
        module: _Module, function: _Function, builders_only: bool = False
    ) -> tuple[str, ...]:
        """Item actions of a TransactWriteItems: the Put/Update/Delete/ConditionCheck keys the
        calling function builds, or the store's builders it calls (``write.transact_put``...),
        itself or through the functions of its module it calls (e.g. a method that returns one
        item), else its module, else all four (items built out of sight). The store's own
        ``transact`` builds nothing: its callers are charged with what they build."""
        if TRANSACT_HELPER.endswith(f"{module.name}:{function.node.name}") and not builders_only:
            return ()
        item_action = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        defined = {
            node.name: node
            for node in ast.walk(module.tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }

        def builders(root: ast.AST) -> list[ast.AST]:
            scopes, todo, seen = [], [root], set()
            while todo:
                scope = todo.pop()
                if id(scope) in seen:
                    continue
                seen.add(id(scope))
                scopes.append(scope)
                for node in ast.walk(scope):
                    if isinstance(node, ast.Call):
                        callee = node.func
                        name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
                        if name in defined:
                            todo.append(defined[name])
            return scopes

        def built(scopes: list[ast.AST]) -> set[str]:
            keys = {
                item_action[str(key.value)]
                for scope in scopes
                for node in ast.walk(scope)
                if isinstance(node, ast.Dict)
                for key in node.keys
                if isinstance(key, ast.Constant) and key.value in item_action
            }
            calls = {
                TRANSACT_BUILDERS[name]
                for scope in scopes
                for node in ast.walk(scope)
                if isinstance(node, ast.Call)
                for name in [getattr(node.func, "attr", None) or getattr(node.func, "id", None)]
                if name in TRANSACT_BUILDERS
            }
            return keys | calls

        found: set[str] = set()
        for scopes in (builders(function.node), [module.tree]):
            found = built(scopes)
            if found:
                break
        return tuple(f"dynamodb:{a}" for a in sorted(found or item_action.values()))

    # -- light type inference: which of our classes a receiver is an instance of -----------
    def _annotation_class(self, module: _Module, annotation: ast.expr | None) -> str | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp):  # "Repository | None"
            return self._annotation_class(module, annotation.left) or self._annotation_class(
                module, annotation.right
            )
        if isinstance(annotation, ast.Subscript):  # Optional[Repository]
            return self._annotation_class(module, annotation.slice)
        ref = self._reference(module, annotation)
        if ref and ref[0] == "object" and ref[1] not in self.functions:
            return ref[1]
        return None

    def _value_class(  # noqa: PLR0911
        self, module: _Module, value: ast.expr | None, types: dict[str, str]
    ) -> str | None:
        """Class of the instance an expression evaluates to, when it is one of ours."""
        if isinstance(value, ast.BoolOp):  # client or Repository(...)
            for operand in value.values:
                found = self._value_class(module, operand, types)
                if found:
                    return found
            return None
        if isinstance(value, ast.Name):
            return types.get(value.id)
        if not isinstance(value, ast.Call):
            return None
        ref = self._reference(module, value.func)
        if ref is None or ref[0] != "object":
            return None
        if ref[1] not in self.functions:
            return ref[1]  # a constructor call
        node = self.functions[ref[1]].node
        returns = getattr(node, "returns", None)
        target_module = self.modules[self.functions[ref[1]].module]
        return self._annotation_class(target_module, returns)

    def _types(self, module: _Module, function: _Function) -> dict[str, str]:
        types = dict(self._module_types.get(module.name, {}))
        node = function.node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                found = self._annotation_class(module, arg.annotation)
                if found:
                    types[arg.arg] = found
        for sub in _walk(function):
            if isinstance(sub, ast.Assign):
                found = self._value_class(module, sub.value, types)
                for target in sub.targets:
                    if found and isinstance(target, ast.Name):
                        types[target.id] = found
            elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                found = self._annotation_class(module, sub.annotation) or self._value_class(
                    module, sub.value, types
                )
                if found:
                    types[sub.target.id] = found
            elif isinstance(sub, ast.With | ast.AsyncWith):
                for item in sub.items:
                    found = self._value_class(module, item.context_expr, types)
                    if found and isinstance(item.optional_vars, ast.Name):
                        types[item.optional_vars.id] = found
        return types

    def _attribute_types(self, module: _Module, class_name: str) -> dict[str, str]:
        """self.<attr> -> class, from class-level annotations (dataclasses) and assignments."""
        key = f"{module.name}:{class_name}"
        if key in self._attr_types:
            return self._attr_types[key]
        found: dict[str, str] = {}
        self._attr_types[key] = found
        for stmt in module.tree.body:
            if not (isinstance(stmt, ast.ClassDef) and stmt.name == class_name):
                continue
            for node in ast.walk(stmt):
                if isinstance(node, ast.AnnAssign):
                    cls = self._annotation_class(module, node.annotation)
                    annotated = node.target
                    name = annotated.id if isinstance(annotated, ast.Name) else None
                    if isinstance(annotated, ast.Attribute) and isinstance(annotated.value, ast.Name):
                        name = annotated.attr
                    if cls and name:
                        found[name] = cls
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        if (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == "self"
                        ):
                            cls = self._value_class(module, node.value, {})
                            if cls:
                                found[target.attr] = cls
        return found

    def _receiver_class(
        self, module: _Module, function: _Function, receiver: ast.expr, types: dict[str, str]
    ) -> str | None:
        if isinstance(receiver, ast.Name):
            if receiver.id == "self" and function.cls:
                return f"{module.name}:{function.cls}"
            return types.get(receiver.id)
        if isinstance(receiver, ast.Attribute):
            # services().repo / self.repo: the attribute's declared or assigned class
            owner = self._receiver_class(module, function, receiver.value, types)
            if owner is None:
                return None
            owner_module, owner_cls = owner.split(":", 1)
            for klass in self._mro(owner_module, owner_cls):
                mod_name, cls = klass.split(":", 1)
                found = self._attribute_types(self.modules[mod_name], cls).get(receiver.attr)
                if found:
                    return found
            return None
        return self._value_class(module, receiver, types)

    def _analyse_function(self, module: _Module, function: _Function) -> None:  # noqa: PLR0912
        types = self._types(module, function)
        for node in _walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    source = self._resolve_from(module, node)
                    names = [source] + [f"{source}.{a.name}" for a in node.names]
                for name in names:
                    parts = name.split(".")
                    for i in range(1, len(parts) + 1):
                        if ".".join(parts[:i]) in self.modules:
                            function.imports.add(".".join(parts[:i]))
            elif isinstance(node, ast.Call):
                self._analyse_call(module, function, node, types)
            elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                ref = self._reference(module, node)
                if ref and ref[0] == "object":
                    function.edges |= self._edges_for_object(ref[1])
                elif ref and ref[0] == "module":
                    function.imports.add(ref[1])
                if isinstance(node, ast.Attribute) and ref is None:
                    # A bound method passed as a callback: pool.map(run.segment, ...)
                    owner = self._receiver_class(module, function, node.value, types)
                    if owner:
                        function.edges |= self._method(owner, node.attr)

    def _analyse_call(
        self, module: _Module, function: _Function, call: ast.Call, types: dict[str, str]
    ) -> None:
        func = call.func
        external = self._is_external(module, func)
        if external:
            leaf = external.rsplit(".", 1)[-1]
            if leaf in POWERTOOLS_CALLS and external.startswith("aws_lambda_powertools"):
                where = self._where(module, call)
                function.aws.extend(AwsCall(a, where) for a in POWERTOOLS_CALLS[leaf])
            elif leaf in POWERTOOLS_PARAMETER_FUNCTIONS and "powertools.utilities.parameters" in external:
                where = self._where(module, call)
                function.aws.extend(AwsCall(a, where) for a in POWERTOOLS_PARAMETER_FUNCTIONS[leaf])
            return
        if not isinstance(func, ast.Attribute):
            return
        reference = self._reference(module, func)
        if reference is not None:
            if reference == ("object", TRANSACT_HELPER):
                # The store's one TransactWriteItems runs what its caller built: the caller's
                # builders say which item actions (the helper's own body names none).
                where = self._where(module, call)
                actions = self._transact_actions(module, function, builders_only=True)
                function.aws.extend(AwsCall(a, where) for a in actions)
            return  # our own module function / class / method: handled as a reference
        receiver = func.value
        if (
            isinstance(receiver, ast.Name)
            and receiver.id in {"self", "cls"}
            and function.cls
            and self._method(f"{module.name}:{function.cls}", func.attr)
        ):
            return
        receiver_class = self._receiver_class(module, function, receiver, types)
        if receiver_class:
            method = self._method(receiver_class, func.attr)
            if method:
                function.edges |= method
                return
        self._aws_call(module, function, call, func.attr)
        if func.attr not in GENERIC_METHODS and func.attr in self.methods_by_name:
            function.unresolved_methods.add(func.attr)
            function.edges |= self.methods_by_name[func.attr]

    # -- queries ----------------------------------------------------------------------------
    def _package_chain(self, module_name: str) -> Iterator[str]:
        parts = module_name.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in self.modules:
                yield name

    def reachable(self, entry: str) -> set[str]:
        """Function keys reachable from ``entry`` ("payments.handlers.intake:handler"), import-time
        code included."""
        if entry not in self.functions:
            raise KeyError(f"{entry} is not defined in the analysed code")
        seen: set[str] = set()
        loaded: set[str] = set()
        pending = [entry]
        pending.extend(f"{m}:<module>" for m in self._package_chain(entry.split(":")[0]))
        while pending and len(seen) < 10_000:
            key = pending.pop()
            if key in seen or key not in self.functions:
                continue
            seen.add(key)
            function = self.functions[key]
            pending.extend(function.edges)
            for imported in function.imports | {function.module}:
                for module_name in self._package_chain(imported):
                    if module_name not in loaded:
                        loaded.add(module_name)
                        pending.append(f"{module_name}:<module>")
        return seen

    def call_path(self, entry: str, target: str) -> list[str]:
        """One chain of edges from ``entry`` to ``target`` (explains a derived action)."""
        parents: dict[str, str | None] = {entry: None}
        pending = [entry]
        pending += [f"{m}:<module>" for m in self._package_chain(entry.split(":")[0])]
        for key in pending[1:]:
            parents[key] = entry
        loaded: set[str] = set()
        index = 0
        while index < len(pending) and index < 10_000:
            key = pending[index]
            index += 1
            if key == target:
                chain = [key]
                while parents.get(chain[-1]):
                    chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                return chain[::-1]
            function = self.functions.get(key)
            if function is None:
                continue
            successors = sorted(function.edges)
            for imported in sorted(function.imports | {function.module}):
                for module_name in self._package_chain(imported):
                    if module_name not in loaded:
                        loaded.add(module_name)
                        successors.append(f"{module_name}:<module>")
            for successor in successors:
                if successor not in parents:
                    parents[successor] = key
                    pending.append(successor)
        return []

    def aws_calls(self, entry: str) -> list[AwsCall]:
        calls: list[AwsCall] = []
        for key in sorted(self.reachable(entry)):
            calls.extend(self.functions[key].aws)
        return calls

    def actions(self, entry: str) -> dict[str, list[str]]:
        """IAM action -> where the code calls it, for the handler ``entry``."""
        found: dict[str, list[str]] = defaultdict(list)
        for call in self.aws_calls(entry):
            found[call.action].append(call.where)
        return dict(found)


def lambda_code_model(repo_root: Path) -> CodeModel:
    """The Python code of the deployment zip: the ``payments`` package (from lambda/), handlers and
    jobs included (see docs/interfaces.md "Lambda package")."""
    lambda_root = repo_root / "lambda"
    return CodeModel([(lambda_root, lambda_root / "payments")])
