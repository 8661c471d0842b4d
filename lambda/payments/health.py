"""Platform health: DynamoDB tables, queue depths, the DLQ and alarm state.

Each check reports ``ok``, ``warn`` or ``fail`` with detail; the platform is
``unhealthy`` if any check fails (a table or queue unreachable / not active),
``degraded`` if any warns (messages in the DLQ, a backlog, alarms firing), else ``healthy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from payments.clock import iso_from_ms, now_ms
from payments.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

FAILED_QUEUE_BACKLOG_WARN = 100
_ALARM_PAGES = 10
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


@dataclass
class HealthChecker:
    settings: Settings
    ddb: DynamoDBClient
    sqs: SQSClient
    cloudwatch: CloudWatchClient

    def _guard(self, check: Callable[[], dict[str, Any]], on_error: str = "fail") -> dict[str, Any]:
        try:
            return check()
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
            return {"status": on_error, "error": code or type(exc).__name__}

    def _tables(self) -> dict[str, Any]:
        tables: dict[str, Any] = {}
        worst = "ok"
        for name in (
            self.settings.transactions_table,
            self.settings.audit_table,
            self.settings.idempotency_table,
        ):
            try:
                status = self.ddb.describe_table(TableName=name)["Table"].get("TableStatus", "UNKNOWN")
            except (ClientError, BotoCoreError) as exc:
                code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
                tables[name] = {"status": "fail", "error": code or type(exc).__name__}
                worst = "fail"
                continue
            # UPDATING (e.g. a GSI backfill) still serves reads and writes.
            state = "ok" if status in ("ACTIVE", "UPDATING") else "fail"
            tables[name] = {"status": state, "table_status": status}
            if state == "fail":
                worst = "fail"
        return {"status": worst, "tables": tables}

    def _depth(self, url: str) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        }

    def _queues(self) -> dict[str, Any]:
        audit_depth = self._depth(self.settings.audit_queue_url)
        failed_depth = self._depth(self.settings.failed_queue_url)
        status = "warn" if failed_depth["visible"] >= FAILED_QUEUE_BACKLOG_WARN else "ok"
        return {"status": status, "audit": audit_depth, "failed": failed_depth}

    def _dlq(self) -> dict[str, Any]:
        depth = self._depth(self.settings.dlq_url)
        messages = depth["visible"] + depth["in_flight"]
        return {"status": "warn" if messages else "ok", "messages": messages}

    def _alarms(self) -> dict[str, Any]:
        suffix = f"-{self.settings.environment_suffix}"
        firing: list[str] = []
        kwargs: dict[str, Any] = {"AlarmNamePrefix": self.settings.alarm_name_prefix, "StateValue": "ALARM"}
        for _ in range(_ALARM_PAGES):
            response = self.cloudwatch.describe_alarms(**kwargs)
            for alarm in [*response.get("MetricAlarms", []), *response.get("CompositeAlarms", [])]:
                name = str(alarm.get("AlarmName", ""))
                if name.endswith(suffix):
                    firing.append(name)
            token = response.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return {"status": "warn" if firing else "ok", "in_alarm": sorted(firing)}

    def run(self) -> dict[str, Any]:
        checks = {
            "dynamodb": self._guard(self._tables),
            "queues": self._guard(self._queues),
            "dlq": self._guard(self._dlq),
            # Not being able to read alarms says nothing about the payment path itself.
            "alarms": self._guard(self._alarms, on_error="warn"),
        }
        states = {c["status"] for c in checks.values()}
        if "fail" in states:
            overall = UNHEALTHY
        elif "warn" in states:
            overall = DEGRADED
        else:
            overall = HEALTHY
        return {
            "status": overall,
            "environment": self.settings.environment_suffix,
            "checked_at": iso_from_ms(now_ms()),
            "checks": checks,
        }


# ------------------------------------------------------------------------------------------
# /health is public (no key, no authorizer): each request must not cost seven AWS calls nor
# page anyone. The result is cached per container for a short time, and an alert is due only
# when this container sees the status become unhealthy (not on every unhealthy answer).

DEFAULT_CACHE_MS = 10_000


@dataclass
class HealthCache:
    """The last report of this container, reused for ``ttl_ms``; remembers the last status seen."""

    ttl_ms: int = DEFAULT_CACHE_MS
    _report: dict[str, Any] | None = None
    _checked_ms: int = 0
    _last_status: str | None = None

    def get(self, check: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """``(report, became_unhealthy)``: a fresh check when the cached one is older than ``ttl_ms``;
        ``became_unhealthy`` is true once per transition into ``unhealthy`` (an alert is due)."""
        now = now_ms()
        if self._report is not None and 0 <= now - self._checked_ms < self.ttl_ms:
            return {**self._report, "cached": True}, False
        report = check()
        status = report.get("status")
        became_unhealthy = status == UNHEALTHY and self._last_status != UNHEALTHY
        self._report, self._checked_ms, self._last_status = report, now, status
        return {**report, "cached": False}, became_unhealthy

    def clear(self) -> None:
        self._report, self._checked_ms, self._last_status = None, 0, None
