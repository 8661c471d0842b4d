"""The static call analysis behind the least-privilege test, on small synthetic code bases:
what it must find (so roles are never under-granted) and what it must not invent (so roles
are not over-granted to satisfy it)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from .code_calls import CodeModel, iam_actions, lambda_code_model

REPO_ROOT = Path(__file__).resolve().parents[2]


def _model(tmp_path: Path, files: dict[str, str]) -> CodeModel:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    packages = {Path(name).parts[0] for name in files}
    return CodeModel((tmp_path, tmp_path / package) for package in sorted(packages))


def test_client_calls_map_to_iam_actions_with_the_documented_exceptions() -> None:
    assert iam_actions("stepfunctions", "StartExecution") == ("states:StartExecution",)
    assert iam_actions("s3", "ListObjectsV2") == ("s3:ListBucket",)
    assert iam_actions("sqs", "SendMessageBatch") == ("sqs:SendMessage",)
    assert iam_actions("lambda", "Invoke") == ("lambda:InvokeFunction",)


def test_only_calls_reachable_from_the_handler_count(tmp_path: Path) -> None:
    model = _model(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/repo.py": """
                class Repo:
                    def __init__(self, client):
                        self.client = client

                    def get(self, key):
                        return self.client.get_item(TableName="t", Key=key)

                    def purge(self):
                        return self.client.delete_item(TableName="t", Key={})
            """,
            "app/handler.py": """
                from app.repo import Repo

                def handler(event, context):
                    repo = Repo(object())
                    return repo.get(event.get("id"))
            """,
        },
    )
    actions = model.actions("app.handler:handler")
    assert set(actions) == {"dynamodb:GetItem"}
    assert actions["dynamodb:GetItem"][0].endswith("repo.py:7")


def test_generic_method_names_do_not_pull_in_unrelated_methods(tmp_path: Path) -> None:
    """``event.get(...)`` must not make every ``get`` method of our classes reachable."""
    model = _model(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/repo.py": """
                class Repo:
                    def get(self, key):
                        return self.client.get_item(TableName="t", Key=key)
            """,
            "app/handler.py": """
                import app.repo

                def handler(event, context):
                    return {"id": event.get("id")}
            """,
        },
    )
    assert model.actions("app.handler:handler") == {}


def test_transactions_callbacks_paginators_and_dataclass_attributes(tmp_path: Path) -> None:
    model = _model(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/store.py": """
                from dataclasses import dataclass
                from typing import Any

                class Store:
                    def __init__(self, ddb: Any) -> None:
                        self.ddb = ddb

                    def create(self, item):
                        items = [{"Put": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}]
                        self.ddb.transact_write_items(TransactItems=items)

                    def sweep(self, segment):
                        for page in self.ddb.get_paginator("scan").paginate(Segment=segment):
                            self._drop(page)

                    def _drop(self, page):
                        with self.ddb.batch_writer() as batch:
                            batch.delete_item(Key={})

                @dataclass
                class Services:
                    store: Store
            """,
            "app/handler.py": """
                from concurrent.futures import ThreadPoolExecutor
                from app.store import Services, Store

                def services() -> Services:
                    return Services(store=Store(None))

                def handler(event, context):
                    services().store.create(event)
                    store = Store(None)
                    with ThreadPoolExecutor() as pool:
                        list(pool.map(store.sweep, range(4)))
            """,
        },
    )
    assert set(model.actions("app.handler:handler")) == {
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
    }


def test_import_time_code_counts_for_every_importer(tmp_path: Path) -> None:
    model = _model(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/settings.py": """
                import boto3

                RULES = boto3.client("ssm").get_parameter(Name="/rules")
            """,
            "app/handler.py": """
                from app import settings

                def handler(event, context):
                    return settings.RULES
            """,
        },
    )
    assert set(model.actions("app.handler:handler")) == {"ssm:GetParameter"}


def test_every_deployed_handler_is_analysable() -> None:
    """Each of the twelve handlers exists and resolves to at least one AWS call."""
    model = lambda_code_model(REPO_ROOT)
    handlers = [
        "intake",
        "status",
        "validator",
        "fraud_check",
        "settlement",
        "notification",
        "retry",
        "health",
        "report",
        "cleanup",
        "sweeper",
        "authorizer",
    ]
    empty = [h for h in handlers if not model.actions(f"payments.handlers.{h}:handler")]
    assert not empty, f"handlers whose AWS calls the analysis cannot see: {empty}"
