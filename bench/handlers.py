"""Benchmark of the payment handlers on moto (in-process). Not a test.

Measures, against the targets in the brief:

* AWS calls per create — POST /transactions through ``payments.handlers.intake``; every request
  counted with botocore ``before-call`` hooks (retries included). Target: 2
  (TransactWriteItems + StartExecution).
* handler overhead — wall time of each handler invocation minus the time spent inside the
  AWS calls it makes (``before-call`` → ``after-call``), p50/p99, for create, status read,
  the Validate step and a rejected (400) request.
* cold start of each handler module — its import plus the creation of its first AWS client, CPU
  time in a fresh interpreter — against the floor any Lambda using AWS pays: ``import
  botocore.session`` plus its first client, measured in the same run (fresh interpreters,
  interleaved, best of N). Target: every handler ≤ 1.25 times the floor.
* every handler as deployed — the built zip unpacked with its CPython 3.12 bytecode, on the
  runtime's Python 3.12 (only boto3 and its dependencies besides the zip) — against the same floor
  on that interpreter. Target ≤ 1.15 times.
* size of ``build/lambda/payment-app.zip`` if built. Target ≤ 5 MB.

Run: ``.venv/bin/python -m bench.handlers [--creates 500] [--imports 7]``; writes
``bench/results/handlers.md``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (str(ROOT / "lambda"), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from moto import mock_aws  # noqa: E402 - after sys.path setup

from tests.unit import awsenv  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "handlers.md"
ZIP = ROOT / "build" / "lambda" / "payment-app.zip"
TARGET_CALLS = 2
TARGET_COLD_START_RATIO = 1.25
TARGET_ZIP_MB = 5


class CallClock:
    """Counts AWS calls and the time spent inside them (botocore event hooks)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.aws_seconds = 0.0
        self._started: dict[int, float] = {}

    def before(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.removeprefix("before-call.")] += 1
        self._started[id(_.get("context"))] = time.perf_counter()

    def after(self, event_name: str, **kwargs: Any) -> None:
        started = self._started.pop(id(kwargs.get("context")), None)
        if started is not None:
            self.aws_seconds += time.perf_counter() - started

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self.before, unique_id="bench-before")
        client.meta.events.register("after-call", self.after, unique_id="bench-after")

    def reset(self) -> None:
        self.calls.clear()
        self.aws_seconds = 0.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(clock: CallClock, action: Callable[[int], Any], count: int) -> dict[str, Any]:
    totals, aws, overhead = [], [], []
    calls: Counter[str] = Counter()
    for i in range(count):
        clock.reset()
        started = time.perf_counter()
        action(i)
        elapsed = time.perf_counter() - started
        totals.append(elapsed * 1000)
        aws.append(clock.aws_seconds * 1000)
        overhead.append((elapsed - clock.aws_seconds) * 1000)
        calls.update(clock.calls)
    return {
        "n": count,
        "calls_per_op": sum(calls.values()) / count,
        "calls": {k: v / count for k, v in sorted(calls.items())},
        "total_p50": percentile(totals, 50),
        "total_p99": percentile(totals, 99),
        "aws_p50": percentile(aws, 50),
        "aws_p99": percentile(aws, 99),
        "overhead_p50": percentile(overhead, 50),
        "overhead_p99": percentile(overhead, 99),
    }


def run_handlers(creates: int) -> dict[str, dict[str, Any]]:
    os.environ.update(awsenv.process_env())
    from payments.handlers import (  # noqa: PLC0415 - needs the environment first
        _runtime,
        intake,
        status,
        validator,
    )

    _runtime.reset()
    results: dict[str, dict[str, Any]] = {}
    ctx = awsenv.FakeContext()
    with mock_aws():
        awsenv.build()
        services = _runtime.services()
        clock = CallClock()
        for client in (services.repo.ddb, services.sqs, services.sns, services.s3, services.sfn):
            clock.attach(client)
        body = awsenv.payment()
        created: list[str] = []

        def create(i: int) -> None:
            event = awsenv.api_event("POST", "/transactions", body, idempotency_key=f"bench-{i}")
            response = intake.handler(event, ctx)
            assert response["statusCode"] == 202, response["body"]
            created.append(json.loads(response["body"])["transaction_id"])

        # Warm the container first (clients, compiled schema), as a warm Lambda would be.
        for i in range(5):
            create(-1 - i)
        created.clear()
        results["create (POST /transactions)"] = measure(clock, create, creates)

        def replay(i: int) -> None:
            event = awsenv.api_event("POST", "/transactions", body, idempotency_key=f"bench-{i}")
            assert intake.handler(event, ctx)["statusCode"] == 202

        results["idempotent replay"] = measure(clock, replay, min(creates, 200))

        def read(i: int) -> None:
            event = awsenv.api_event("GET", "/transactions/{id}", path_parameters={"id": created[i]})
            assert status.handler(event, ctx)["statusCode"] == 200

        results["status (GET /transactions/{id})"] = measure(clock, read, min(creates, 300))

        def validate(i: int) -> None:
            validator.handler({"transaction_id": created[i]}, ctx)

        results["Validate step"] = measure(clock, validate, min(creates, 300))

        bad = awsenv.payment(amount="10.001")

        def refuse(i: int) -> None:
            event = awsenv.api_event("POST", "/transactions", bad, idempotency_key=f"bad-{i}")
            assert intake.handler(event, ctx)["statusCode"] == 400

        results["refused request (400)"] = measure(clock, refuse, min(creates, 300))
    _runtime.reset()
    return results


# One cold start in a fresh interpreter: import the module, then create the first AWS client the
# way that module does. Prints CPU and wall ms of the import and of import + first client.
_COLD_START_PROBE = """
import importlib, sys, time
cpu, wall = time.process_time(), time.perf_counter()
importlib.import_module(sys.argv[1])
import_cpu, import_wall = time.process_time() - cpu, time.perf_counter() - wall
exec(sys.argv[2])
total_cpu, total_wall = time.process_time() - cpu, time.perf_counter() - wall
print(import_cpu * 1000, import_wall * 1000, total_cpu * 1000, total_wall * 1000)
"""
FLOOR = "botocore"
# The first client each kind of module creates: the floor's plain botocore client, the handlers'
# ``payments.clients`` (botocore, tuned config), the jobs' ``payments.jobs.runtime`` (batch config).
_FIRST_CLIENT = {
    FLOOR: "import botocore.session\n"
    "botocore.session.get_session().create_client('dynamodb', region_name='us-east-1')",
    "clients": "from payments import clients; clients.dynamodb()",
    "jobs": "from payments.jobs import runtime; runtime.client('dynamodb')",
}
JOB_HANDLERS = frozenset({"report", "cleanup"})
TRACED = "intake"  # measured again with the X-Ray SDK opted in
TRACED_LABEL = f"{TRACED} + X-Ray SDK"
# As deployed: the built zip unpacked (its own 3.12 bytecode, read-only), on the runtime's Python
# (CPython 3.12 with only boto3 and its dependencies, devkit.emulator.runtimes), against the same
# floor on that interpreter.
DEPLOYED_SUFFIX = ", as deployed"
FLOOR_DEPLOYED = f"{FLOOR} on the runtime's Python"
TARGET_DEPLOYED_RATIO = 1.15


@dataclass(frozen=True)
class Probe:
    label: str
    module: str
    first_client: str
    path: Path
    sdk_tracing: bool = False
    python: str = sys.executable
    floor: str = FLOOR


def handler_modules() -> tuple[str, ...]:
    """Every Lambda entry point: the public modules of ``payments.handlers``."""
    folder = ROOT / "lambda" / "payments" / "handlers"
    return tuple(sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")))


def stage(workdir: Path) -> tuple[Path, Path | None]:
    """``lambda/payments`` copied and byte-compiled (like botocore and the installed libraries, so
    the rows compare what the code loads and runs), and the built zip extracted as the Lambda
    runtime gets it (with the bytecode it carries, nothing written), if built."""
    compiled = workdir / "compiled"
    shutil.copytree(
        ROOT / "lambda" / "payments",
        compiled / "payments",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    compileall.compile_dir(compiled, quiet=1)
    if not ZIP.exists():
        return compiled, None
    deployed = workdir / "zip"
    with zipfile.ZipFile(ZIP) as archive:
        archive.extractall(deployed)
    return compiled, deployed


def _probe_env(probe: Probe) -> dict[str, str]:
    """The environment of a deployed function (tracing not disabled, Lambda detected), the staged
    package first on ``sys.path``, and no bytecode written anywhere."""
    from payments.handlers._runtime import XRAY_SDK_ENV  # noqa: PLC0415 - after the environment is set

    env = {
        **os.environ,
        **awsenv.process_env(),
        "PYTHONPATH": str(probe.path),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env["AWS_LAMBDA_FUNCTION_NAME"] = "payment-bench"
    env["LAMBDA_TASK_ROOT"] = str(probe.path)
    if probe.sdk_tracing:
        env[XRAY_SDK_ENV] = "true"
    else:
        env.pop(XRAY_SDK_ENV, None)
    return env


def _cold_start(probe: Probe, env: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(  # noqa: S603 - fixed interpreter and arguments
        [probe.python, "-c", _COLD_START_PROBE, probe.module, probe.first_client],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=probe.path,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cold-start probe {probe.label} failed:\n{result.stderr}")
    import_cpu, import_wall, total_cpu, total_wall = (float(x) for x in result.stdout.split())
    return {"import_cpu": import_cpu, "import_wall": import_wall, "cpu": total_cpu, "wall": total_wall}


def runtime_python() -> str | None:
    """The functions' runtime interpreter (CPython 3.12 + boto3 only), or None when there is none."""
    from devkit.emulator.runtimes import (  # noqa: PLC0415 - devkit only when measuring deployed rows
        RuntimeNotAvailableError,
        declared_runtime,
    )
    from devkit.emulator.runtimes import runtime_python as make  # noqa: PLC0415

    try:
        return make(declared_runtime())
    except RuntimeNotAvailableError as exc:
        print(f"no as-deployed rows: {exc}", file=sys.stderr)
        return None


def plan(compiled: Path, deployed: Path | None) -> list[Probe]:
    probes = [Probe(FLOOR, "botocore.session", _FIRST_CLIENT[FLOOR], compiled)]
    for name in handler_modules():
        kind = "jobs" if name in JOB_HANDLERS else "clients"
        probes.append(Probe(name, f"payments.handlers.{name}", _FIRST_CLIENT[kind], compiled))
    traced = f"payments.handlers.{TRACED}"
    probes.append(Probe(TRACED_LABEL, traced, _FIRST_CLIENT["clients"], compiled, sdk_tracing=True))
    python = runtime_python() if deployed is not None else None
    if deployed is not None and python is not None:
        on_runtime = {"python": python, "floor": FLOOR_DEPLOYED}
        probes.append(Probe(FLOOR_DEPLOYED, "botocore.session", _FIRST_CLIENT[FLOOR], deployed, **on_runtime))
        for name in handler_modules():
            kind = "jobs" if name in JOB_HANDLERS else "clients"
            module = f"payments.handlers.{name}"
            probes.append(Probe(name + DEPLOYED_SUFFIX, module, _FIRST_CLIENT[kind], deployed, **on_runtime))
    return probes


def cold_starts(repeats: int) -> dict[str, dict[str, float]]:
    """Per row, ``repeats`` fresh interpreters, run round by round (every round runs each row once,
    the floor first) so that load on a shared machine hits every row alike; keeps the best (min)
    and the median CPU time of import + first client, and the best import alone."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as tmp:
        probes = plan(*stage(Path(tmp)))
        envs = {probe.label: _probe_env(probe) for probe in probes}
        runs: dict[str, list[dict[str, float]]] = {probe.label: [] for probe in probes}
        for _ in range(repeats):
            for probe in probes:
                runs[probe.label].append(_cold_start(probe, envs[probe.label]))
    floors = {probe.label: probe.floor for probe in probes}
    out: dict[str, dict[str, float]] = {}
    for label, samples in runs.items():
        cpus = [s["cpu"] for s in samples]
        out[label] = {
            "cpu": min(cpus),
            "cpu_median": statistics.median(cpus),
            "wall": min(s["wall"] for s in samples),
            "import_cpu": min(s["import_cpu"] for s in samples),
        }
    for label, t in out.items():
        floor = out[floors[label]]
        t["ratio"] = t["cpu"] / floor["cpu"]
        t["ratio_median"] = t["cpu_median"] / floor["cpu_median"]
    return out


def worst_ratio(imports: dict[str, dict[str, float]], *, deployed: bool = False) -> tuple[str, float]:
    """The slowest handler (default configuration) and its ratio to its floor: the byte-compiled
    checkout's rows, or (``deployed``) the as-deployed rows; ("", 0.0) when there are none."""
    ratios = {
        k: v["ratio"]
        for k, v in imports.items()
        if k not in (FLOOR, TRACED_LABEL, FLOOR_DEPLOYED) and k.endswith(DEPLOYED_SUFFIX) == deployed
    }
    if not ratios:
        return "", 0.0
    name = max(ratios, key=lambda k: ratios[k])
    return name, ratios[name]


def render(
    results: dict[str, dict[str, Any]], imports: dict[str, dict[str, float]], creates: int, repeats: int
) -> str:
    create = results["create (POST /transactions)"]
    lines = [
        "# Handler benchmark",
        "",
        f"Generated by `python -m bench.handlers` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"Python {host.python_version()}, {host.machine()}, {os.cpu_count()} CPUs; AWS = moto in-process.",
        "Timings on a shared CI box are noisy: compare rows within one run, not across runs.",
        "",
        "## Summary against targets",
        "",
        "| metric | measured | target | ok |",
        "|---|---|---|---|",
        f"| AWS calls per create | {create['calls_per_op']:.2f} | {TARGET_CALLS} | "
        f"{'yes' if create['calls_per_op'] <= TARGET_CALLS else 'NO'} |",
    ]
    worst, ratio = worst_ratio(imports)
    floor = imports[FLOOR]
    verdict = "yes" if ratio <= TARGET_COLD_START_RATIO else "NO"
    lines.append(
        f"| slowest handler cold start (import + first client, CPU) ÷ floor | {ratio:.2f} ({worst}: "
        f"{imports[worst]['cpu']:.0f} ms; floor, botocore + first client: {floor['cpu']:.0f} ms) "
        f"| ≤ {TARGET_COLD_START_RATIO} | {verdict} |"
    )
    worst, ratio = worst_ratio(imports, deployed=True)
    if worst:
        floor = imports[FLOOR_DEPLOYED]
        verdict = "yes" if ratio <= TARGET_DEPLOYED_RATIO else "NO"
        lines.append(
            f"| slowest handler as deployed (zip with its 3.12 bytecode, on the runtime's Python 3.12) "
            f"÷ floor on that Python | {ratio:.2f} ({worst.removesuffix(DEPLOYED_SUFFIX)}: "
            f"{imports[worst]['cpu']:.0f} ms; floor: {floor['cpu']:.0f} ms) "
            f"| ≤ {TARGET_DEPLOYED_RATIO} | {verdict} |"
        )
    else:
        lines.append(
            "| handlers as deployed ÷ floor | not measured (no zip or no Python 3.12) "
            f"| ≤ {TARGET_DEPLOYED_RATIO} | — |"
        )
    if ZIP.exists():
        size_mb = ZIP.stat().st_size / 1024 / 1024
        verdict = "yes" if size_mb <= TARGET_ZIP_MB else "NO"
        lines.append(f"| payment-app.zip | {size_mb:.2f} MB | ≤ {TARGET_ZIP_MB} MB | {verdict} |")
    else:
        lines.append(f"| payment-app.zip | not built (`make build`) | ≤ {TARGET_ZIP_MB} MB | — |")
    lines += [
        "",
        "## AWS calls and handler overhead (warm container)",
        "",
        "Overhead = handler wall time minus time inside AWS calls (moto answers in-process, so",
        '"AWS" here is botocore + moto; real AWS latency would be added to it, not to the overhead).',
        "",
        "| operation | n | AWS calls/op | calls | total p50 / p99 ms | AWS p50 / p99 ms "
        "| overhead p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        calls = ", ".join(f"{k} {v:g}" for k, v in r["calls"].items()) or "none"
        lines.append(
            f"| {name} | {r['n']} | {r['calls_per_op']:.2f} | {calls} "
            f"| {r['total_p50']:.2f} / {r['total_p99']:.2f} | {r['aws_p50']:.2f} / {r['aws_p99']:.2f} "
            f"| {r['overhead_p50']:.2f} / {r['overhead_p99']:.2f} |"
        )
    lines += [
        "",
        "The create is one TransactWriteItems (transaction + idempotency record + PENDING audit",
        "entry, all conditional; the transaction carries the claim on its one workflow start, since",
        "EXPRESS executions are not de-duplicated by name) and one StartExecution: the floor. The",
        "PENDING audit-stream message is sent by the Validate step together with VALIDATING (one",
        "SendMessageBatch). Only a replay after a refused start needs a conditional UpdateItem to claim",
        "the start again.",
        "",
        "## Cold start: import + first AWS client (fresh interpreters, CPU ms)",
        "",
        "| module | import | import + first client: best | median | ÷ floor (best) | ÷ floor (median) "
        "| wall, best |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, t in imports.items():
        if label == FLOOR:
            name = "floor: `import botocore.session` + client"
        elif label == FLOOR_DEPLOYED:
            name = "floor on the runtime's Python 3.12: `import botocore.session` + client"
        else:
            name = f"`{label}`"
        lines.append(
            f"| {name} | {t['import_cpu']:.0f} | {t['cpu']:.0f} | {t['cpu_median']:.0f} "
            f"| {t['ratio']:.2f} | {t['ratio_median']:.2f} | {t['wall']:.0f} |"
        )
    lines += [
        "",
        f"{repeats} fresh interpreters per row, run round by round (every round runs each row once,",
        "the floor first), in the environment of a deployed function (`AWS_LAMBDA_FUNCTION_NAME`,",
        "`LAMBDA_TASK_ROOT`, tracing not disabled), with a byte-compiled copy of `lambda/payments` first",
        "on `sys.path`: botocore and the installed libraries are byte-compiled too, so the rows compare",
        "what the code loads and runs. The first client is DynamoDB: a plain botocore client for the",
        "floor, `payments.clients` for the API and workflow handlers, `payments.jobs.runtime`",
        "(batch-tuned) for report and cleanup. CPU time is the stable figure on a shared machine; wall",
        "time includes waiting for a core.",
        "",
        "On top of the floor a handler loads Powertools Logger and Metrics and the `payments` modules",
        "it imports. Not at import nor with the first client: the X-Ray SDK (only with",
        f"`XRAY_SDK_SUBSEGMENTS=true`, row `{TRACED_LABEL}`: the SDK, its patching of botocore and",
        "http.client), boto3, the compiled request schema, SSM parameters and the other clients (each",
        "built on first use).",
        "",
        f"The rows from `{FLOOR_DEPLOYED}` on run what Lambda runs: the built zip unpacked, with the",
        "CPython 3.12 bytecode it carries (unchecked hash-based `.pyc`, used as they are; nothing is",
        "written, as the function's directory is read-only), on CPython 3.12 with only the runtime's",
        "libraries (boto3 and its dependencies, byte-compiled), each against the floor on that",
        "interpreter. Before the zip carried bytecode every cold start compiled `payments` and the",
        "vendored libraries: intake from the zip was 1.38-1.40 times the floor.",
        f"Creates measured: {creates}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=500, help="creates to time (default 500)")
    parser.add_argument("--imports", type=int, default=7, help="fresh interpreters per module (default 7)")
    args = parser.parse_args(argv)
    results = run_handlers(args.creates)
    imports = cold_starts(args.imports)
    report = render(results, imports, args.creates, args.imports)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    create = results["create (POST /transactions)"]
    ok = (
        create["calls_per_op"] <= TARGET_CALLS
        and worst_ratio(imports)[1] <= TARGET_COLD_START_RATIO
        and worst_ratio(imports, deployed=True)[1] <= TARGET_DEPLOYED_RATIO
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
