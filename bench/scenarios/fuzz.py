"""Fuzz: schemathesis against the gateway's ``/openapi.json`` at a large budget (issue #7).

The same run as ``tests/app/test_schemathesis.py`` (:mod:`bench.fuzz`), only bigger: the gateway
(``python -m bench.server``, JSON logs to a file) in front of the emulator's virtual worker, every
operation of the document fuzzed with positive and negative data under its valid credential,
``fuzz_examples`` examples per operation and mode (300 in the full profile), then the protected
operations once more without credentials. Recorded: operations, examples, requests, statuses,
5xx, failures by check, and the unhandled exceptions the gateway logged (error/critical lines or
any line carrying a traceback, read from its log file after it stopped).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench import fuzz
from bench.harness import Bench
from bench.procs import http_get

PROBE_SHARE = 10  # unauthenticated pass: examples per protected operation = budget ÷ this


def wait_ready(url: str, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status, _ = http_get(f"{url}/readyz", timeout=1.0)
        if status == 200:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the gateway at {url} did not become ready within {within_s:g} s")


def run(bench: Bench) -> dict[str, Any]:
    n = bench.profile.fuzz_examples
    emulator = bench.start_emulator("emulator-fuzz", virtual=True)
    gateway = bench.start_gateway("gateway-fuzz", emulator.url, **fuzz.gateway_env())
    with bench.running(gateway, emulator):
        wait_ready(gateway.url)
        bench.say(f"fuzz: {n} examples per operation and mode")
        report = fuzz.run_isolated(gateway.url, max_examples=n)
        probe = fuzz.run_isolated(
            gateway.url, max_examples=max(2, n // PROBE_SHARE), unauthenticated=True
        )
    # the gateway has stopped: its log is complete (shutdown included)
    lines = gateway.extra["log_file"].read_text(encoding="utf-8", errors="replace").splitlines()
    lines += [x for x in gateway.log.read_text(errors="replace").splitlines()
              if not x.startswith("READY ")]  # fmt: skip
    problems = fuzz.log_problems(lines)
    statuses = Counter({int(k): v for k, v in report["by_status"].items()})
    statuses.update({int(k): v for k, v in probe["by_status"].items()})
    requests = report["requests"] + probe["requests"]
    bench.say(
        f"fuzz: {requests} requests, statuses {dict(statuses)},"
        f" failures {report['failures_by_check']}, unhandled exceptions {len(problems)}"
    )
    return {
        **report,
        "requests": requests,
        "fuzz_requests": report["requests"],
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "unhandled_exceptions": len(problems),
        "log_lines": len(lines),
        "exception_samples": [_brief(p) for p in problems[:5]],
        "unauthenticated": probe,
        "checks": list(fuzz.CHECKS),
        "lenient": [
            f"{op}: {check} not applied ({why})" for (op, check), why in fuzz.LENIENT.items()
        ],
    }


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record.get(k) for k in ("level", "event", "logger", "request_id") if k in record}
    if "exception" in record:
        out["exception"] = str(record["exception"])[-1500:]
    if "line" in record:
        out["line"] = record["line"]
    return out
