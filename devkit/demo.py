"""The demo ``devkit up`` runs after apply, and the flow helpers the end-to-end suite shares with it.

:class:`Platform` drives a deployed platform the way a client and an on-call engineer would: payments
through the API (:class:`devkit.emulator.apigw_client.ApiClient`, moto or LocalStack), reads through boto3,
the ops CLI for reports and links. :func:`run_demo` sends a few payments — settled ones, one fraud
rejection and one whose settlement fails until it lands in the DLQ — then prints the day's
``ops report`` and the on-call links.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shlex
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.config import Config
from payments.states import TERMINAL, Status

from devkit.emulator.apigw_client import ApiClient, Response, detect_backend
from ops.core.clients import ClientStore

Progress = Callable[[str], None]

# What the demo waits for: a finished payment, or one that failed (retryable, so not TERMINAL).
TERMINAL_STATUSES = frozenset({*TERMINAL, Status.FAILED})
DEFAULT_TIER = "partner"
# An address nothing listens on: settlement's POST is refused at once (interfaces.md "Processor endpoint").
UNREACHABLE_PROCESSOR = "https://127.0.0.1:9/v1/charges"
# The demo client: a partner acting for the merchants the demo and the end-to-end flows pay.
DEMO_MERCHANTS = ("m_demo_store", "m_backdated")


class FlowError(RuntimeError):
    """A flow did not reach the expected state in time."""


def wait_for(probe: Callable[[], Any], *, timeout: float, interval: float = 0.5, what: str) -> Any:
    """Poll ``probe`` until it returns something truthy; FlowError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise FlowError(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")


class Platform:
    """A deployed platform, addressed by its Terraform outputs and an AWS environment."""

    def __init__(
        self,
        outputs: Mapping[str, Any],
        env: Mapping[str, str],
        *,
        backend: str | None = None,
        api: ApiClient | None = None,
    ) -> None:
        self.outputs = dict(outputs)
        self.env = dict(env)
        self.endpoint_url = self.env.get("AWS_ENDPOINT_URL")
        self.region = str(self.outputs.get("region") or self.env.get("AWS_REGION") or "us-east-1")
        self.session = boto3.session.Session(
            aws_access_key_id=self.env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=self.env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=self.region,
        )
        self.api = api or ApiClient.from_outputs(
            self.outputs,
            endpoint_url=self.endpoint_url,
            backend=backend or detect_backend(self.endpoint_url, {**os.environ, **self.env}),
        )
        self._clients: dict[str, Any] = {}
        self._token: str | None = None

    # -- plumbing -----
    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
        return self._clients[service]

    def table(self, key: str) -> Any:
        return self.session.resource("dynamodb", endpoint_url=self.endpoint_url).Table(
            self.outputs[f"{key}_table_name"]
        )

    def api_key(self, tier: str = DEFAULT_TIER) -> str:
        return str(self.outputs["api_key_values"][tier])

    def api_key_id(self, tier: str = DEFAULT_TIER) -> str:
        return str(self.outputs["api_key_ids"][tier])

    def clients(self) -> ClientStore:
        return ClientStore(
            self.client("dynamodb"), self.outputs["clients_table_name"], self.outputs["audit_table_name"]
        )

    def token(self) -> str:
        """The demo client's ``<key id>.<secret>`` (created, as ``ops clients add`` would, on first use)."""
        if self._token is None:
            self._token = self.clients().add("demo", DEMO_MERCHANTS, "partner", "devkit demo").token
        return self._token

    def credentials(self, tier: str = DEFAULT_TIER) -> dict[str, str]:
        """What a client sends: its usage-plan API key and its secret."""
        return {"x-api-key": self.api_key(tier), "Authorization": f"Bearer {self.token()}"}

    def write_outputs_file(self, directory: Path) -> Path:
        """The outputs as a JSON file, for ``ops --outputs-file`` (owner-only: it holds API keys)."""
        path = Path(directory) / "outputs.json"
        path.write_text(json.dumps(self.outputs, indent=2, default=str) + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    # -- the API -----
    @staticmethod
    def payment(amount: str = "25.00", currency: str = "USD", **fields: Any) -> dict[str, Any]:
        """A valid create-transaction body; a fresh customer each time keeps velocity rules quiet."""
        body: dict[str, Any] = {
            "merchant_id": "m_demo_store",
            "customer_id": f"c_{uuid.uuid4().hex[:12]}",
            "amount": amount,
            "currency": currency,
            "payment_method": {"type": "card", "token": f"tok_{uuid.uuid4().hex[:16]}"},
        }
        body.update(fields)
        return body

    def create(
        self,
        body: Any,
        *,
        tier: str = DEFAULT_TIER,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        sent = {**self.credentials(tier), "Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        sent.update(headers or {})
        return self.api.post("/transactions", body, sent)

    def get_transaction(
        self, transaction_id: str, *, tier: str = DEFAULT_TIER, route: str = "transactions"
    ) -> Response:
        return self.api.get(f"/{route}/{transaction_id}", self.credentials(tier))

    def wait_for_status(
        self,
        transaction_id: str,
        statuses: frozenset[str] | set[str] = TERMINAL_STATUSES,
        *,
        timeout: float = 120,
        tier: str = DEFAULT_TIER,
    ) -> dict[str, Any]:
        """Poll GET /transactions/{id} until the status is one of ``statuses``; the last body."""

        def probe() -> dict[str, Any] | None:
            response = self.get_transaction(transaction_id, tier=tier)
            body = response.json if response.status == 200 else None
            return body if body and body.get("status") in statuses else None

        found: dict[str, Any] = wait_for(
            probe, timeout=timeout, what=f"{transaction_id} to reach one of {sorted(statuses)}"
        )
        return found

    # -- state behind the API -----
    def item(self, transaction_id: str) -> dict[str, Any] | None:
        items = self.table("transactions").query(
            KeyConditionExpression=Key("transaction_id").eq(transaction_id)
        )
        found = items.get("Items") or []
        return dict(found[0]) if found else None

    def audit(self, transaction_id: str) -> list[dict[str, Any]]:
        items = self.table("audit").query(KeyConditionExpression=Key("transaction_id").eq(transaction_id))
        return sorted((dict(i) for i in items.get("Items", [])), key=lambda i: str(i["event_id"]))

    def execution_arn(self, transaction_id: str) -> str:
        machine = str(self.outputs["state_machine_arn"])
        return machine.replace(":stateMachine:", ":execution:") + f":{transaction_id}"

    def wait_for_execution(self, transaction_id: str, *, timeout: float = 120) -> dict[str, Any]:
        sfn = self.client("stepfunctions")

        def probe() -> dict[str, Any] | None:
            try:
                found = sfn.describe_execution(executionArn=self.execution_arn(transaction_id))
            except sfn.exceptions.ExecutionDoesNotExist:
                return None
            return found if found["status"] != "RUNNING" else None

        done: dict[str, Any] = wait_for(probe, timeout=timeout, what=f"the workflow of {transaction_id}")
        return done

    def processor_endpoint(self) -> str:
        name = self.outputs["ssm_parameter_names"]["processor_endpoint"]
        return str(self.client("ssm").get_parameter(Name=name)["Parameter"]["Value"])

    def set_processor_endpoint(self, value: str) -> None:
        name = self.outputs["ssm_parameter_names"]["processor_endpoint"]
        self.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    @contextlib.contextmanager
    def broken_processor(self) -> Iterator[None]:
        """Point settlement at an unreachable processor; the original endpoint comes back on exit."""
        original = self.processor_endpoint()
        self.set_processor_endpoint(UNREACHABLE_PROCESSOR)
        try:
            yield
        finally:
            self.set_processor_endpoint(original)

    @contextlib.contextmanager
    def fast_retries(self, visibility_seconds: int = 2) -> Iterator[None]:
        """Shorten the failed queue's visibility timeout (6 minutes deployed) while a flow waits for the
        retry consumer's three receives; the deployed value comes back on exit. Works the same on moto
        and on LocalStack, whose own poller honours the queue setting."""
        sqs = self.client("sqs")
        url = self.outputs["failed_queue_url"]
        original = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"][
            "VisibilityTimeout"
        ]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(visibility_seconds)})
        try:
            yield
        finally:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": original})

    def queue_counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def dlq_transaction_ids(self) -> set[str]:
        """Transaction ids in the DLQ, peeked without consuming (visibility 0)."""
        sqs = self.client("sqs")
        seen: set[str] = set()
        for _ in range(10):
            batch = sqs.receive_message(
                QueueUrl=self.outputs["dlq_url"],
                MaxNumberOfMessages=10,
                VisibilityTimeout=0,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            before = len(seen)
            seen.update(str(json.loads(m["Body"]).get("transaction_id")) for m in batch)
            if not batch or len(seen) == before:
                break
        return seen

    def wait_dead_lettered(self, transaction_ids: Iterable[str], *, timeout: float) -> list[dict[str, Any]]:
        """Wait until every transaction's retries are spent: each is in the DLQ, failed-transactions
        is empty (a transaction may have had two messages there: RecordFailure's and the safety
        net's) and each item is FAILED (an attempt still in flight when the last message left holds
        SETTLING until it ends). The items, in the order given."""
        ids = list(transaction_ids)
        wait_for(
            lambda: set(ids) <= self.dlq_transaction_ids()
            and self.queue_counts(self.outputs["failed_queue_url"]) == (0, 0),
            timeout=timeout,
            interval=2,
            what=f"{', '.join(ids)} in the DLQ and failed-transactions empty",
        )

        items: list[dict[str, Any]] = []
        for transaction_id in ids:

            def failed(tid: str = transaction_id) -> dict[str, Any] | None:
                item = self.item(tid)
                return item if item is not None and item.get("status") == "FAILED" else None

            items.append(wait_for(failed, timeout=90, interval=2, what=f"{transaction_id} FAILED"))
        return items

    # -- the ops CLI -----
    def cli_args(self, outputs_file: Path) -> list[str]:
        args = ["--outputs-file", str(outputs_file), "--region", self.region]
        if self.endpoint_url:
            args += ["--endpoint-url", self.endpoint_url]
        return args


def _step(progress: Progress, message: str) -> None:
    progress(f"demo: {message}")


# The body of the printed create request (`make up`'s next steps and the demo's "Try it").
CURL_BODY = (
    '{"merchant_id": "m_demo_store", "customer_id": "c_curl", "amount": "42.00", "currency": "USD", '
    '"payment_method": {"type": "card", "token": "tok_curl_demo"}}'
)


def _headers(key: str, token: str | None) -> str:
    auth = f" -H {shlex.quote('Authorization: Bearer ' + token)}" if token else ""
    return f"-H {shlex.quote('x-api-key: ' + key)}{auth}"


def curl_create(api_url: str, key: str, token: str | None = None) -> str:
    """One shell line that creates a payment (a fresh Idempotency-Key each time it is pasted)."""
    return (
        f"curl -sS -X POST {shlex.quote(api_url.rstrip('/') + '/transactions')} "
        f"{_headers(key, token)} -H 'Content-Type: application/json' "
        '-H "Idempotency-Key: curl-$(date +%s%N)" '
        f"-d {shlex.quote(CURL_BODY)}"
    )


def curl_status(api_url: str, key: str, transaction_id: str, token: str | None = None) -> str:
    """One shell line that reads a payment's status."""
    url = f"{api_url.rstrip('/')}/transactions/{transaction_id}"
    return f"curl -sS {shlex.quote(url)} {_headers(key, token)}"


def run_demo(outputs: Mapping[str, Any], env: Mapping[str, str], progress: Progress) -> dict[str, Any]:
    """Payments (settled, rejected, failed into the DLQ), then today's ``ops report`` and ``ops links``."""
    platform = Platform(outputs, env)
    created: dict[str, str] = {}
    token = platform.token()
    _step(progress, f"demo client {token.split('.', 1)[0]} (partner for {', '.join(DEMO_MERCHANTS)}) created")

    def send(label: str, body: dict[str, Any]) -> str:
        response = platform.create(body)
        if response.status != 202:
            raise FlowError(f"{label}: POST /transactions answered {response.status}: {response.body}")
        transaction_id = str(response.json["transaction_id"])
        created[transaction_id] = label
        _step(progress, f"{label}: {transaction_id} accepted (202)")
        return transaction_id

    for label, body in [
        ("card payment USD 25.00", Platform.payment("25.00", "USD")),
        ("card payment EUR 100.50", Platform.payment("100.50", "EUR", country="DE")),
        (
            "wallet payment JPY 5000",
            Platform.payment("5000", "JPY", payment_method={"type": "wallet", "token": "tok_wallet_demo"}),
        ),
        ("over the fraud threshold USD 25000", Platform.payment("25000.00", "USD")),
    ]:
        send(label, body)
    outcomes = {}
    for transaction_id, label in list(created.items()):
        outcomes[transaction_id] = platform.wait_for_status(transaction_id)["status"]
        _step(progress, f"{label}: {outcomes[transaction_id]}")

    _step(progress, f"processor endpoint -> {UNREACHABLE_PROCESSOR} (settlement will fail)")
    with platform.broken_processor(), platform.fast_retries():
        failing = send("payment while the processor is down", Platform.payment("42.00", "USD"))
        platform.wait_for_status(failing, {"FAILED"})
        _step(progress, f"{failing}: FAILED; waiting for the retry consumer to give up (DLQ)")
        wait_for(
            lambda: failing in platform.dlq_transaction_ids(),
            timeout=180,
            interval=1,
            what=f"{failing} in the DLQ",
        )
    outcomes[failing] = "FAILED (in the DLQ; `ops redrive` moves it back)"
    _step(progress, "processor endpoint restored")

    from click.testing import CliRunner  # noqa: PLC0415 - the CLI stack loads only for the printout

    from ops.cli.main import cli  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="ops-demo-") as scratch:
        outputs_file = platform.write_outputs_file(Path(scratch))
        today = dt.datetime.now(dt.UTC).date().isoformat()
        runner = CliRunner()
        for title, args in [
            (f"ops report --date {today}", ["report", "--date", today, *platform.cli_args(outputs_file)]),
            ("ops links --format plain", ["links", "--format", "plain", *platform.cli_args(outputs_file)]),
        ]:
            # Wide enough that console URLs print whole instead of folded across table rows.
            result = runner.invoke(cli, args, env={"COLUMNS": "320", **env}, catch_exceptions=False)
            progress(f"$ {title}\n{result.output.rstrip()}")
            if result.exit_code != 0:
                raise FlowError(f"{title} exited {result.exit_code}")
    url = platform.outputs.get("api_invoke_url")
    if url:
        # The secret is printed once, here, in a request ready to paste (the table holds only its hash).
        progress(
            "Try it as the demo client (its secret is shown only now):\n  "
            + curl_create(str(url), platform.api_key(), token)
        )
    return {"transactions": outcomes}
