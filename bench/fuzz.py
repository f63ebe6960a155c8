"""Schemathesis against a running gateway: every operation of its ``/openapi.json``, fuzzed.

Shared by ``tests/app/test_schemathesis.py`` (``make test``, a small budget) and the ``fuzz``
scenario of ``python -m bench`` (``make bench``, a large one), so both run the same thing:

* :func:`gateway_env` — the settings the fuzzed gateway gets: every credential configured (VAPI
  shared secret, admin token, LLM key, metrics token), short budgets so a turn is quick, RunPod
  rate caps lifted (a fuzzer submits far faster than a real caller);
* :func:`fuzz` — loads the document from ``{base_url}/openapi.json`` over HTTP and, for each
  operation and each generation mode (positive: data the document allows; negative: data it
  forbids), draws ``max_examples`` cases with Hypothesis, sends each with the operation's valid
  credential (so the fuzzer reaches the parsers, not just the auth check) and runs
  :data:`CHECKS` on the response. Failures are counted, not raised, so one finding does not stop
  the run, and every request's status is tallied;
* :func:`probe_unauthenticated` — the same cases without credentials: every protected operation
  must answer 401 with a JSON body;
* :func:`log_problems` — the gateway's JSON log lines at level error/critical, or carrying an
  exception: an unhandled exception shows up there (uvicorn's "Exception in ASGI application",
  the dispatcher's last-resort ``log.exception``), even when the client saw a 200.

:func:`run_isolated` runs either pass as ``python -m bench.fuzz`` in a fresh interpreter and
returns its JSON summary; the test and the benchmark call that. Hypothesis mixes the literals of
the project modules already imported into what it draws, so an in-process run would draw
differently depending on what else the process had loaded (the rest of a pytest session): in a
process of its own, derandomized, the same document, budget and gateway behaviour send the same
requests every time. A ``seed`` draws a different, reproducible sample instead.

    python -m bench.fuzz http://127.0.0.1:8000 --max-examples 50 [--seed N] [--unauthenticated]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRETS = {
    "VAPI_SECRET": "fuzz-vapi-secret-0c4e",
    "ADMIN_TOKEN": "fuzz-admin-token-7b21",
    "LLM_API_KEY": "fuzz-llm-key-93fa",
    "METRICS_TOKEN": "fuzz-metrics-token-5d08",
}
BUDGETS = {
    "TOOL_BUDGET_MS": "1500",
    "TURN_BUDGET_MS": "1500",
    "FIRST_TOKEN_BUDGET_MS": "1000",
    "STREAM_GAP_MS": "1000",
    "STREAM_POLL_MS": "10",
    "CHAT_BUDGET_MS": "1500",
    "ASSISTANT_REQUEST_BUDGET_MS": "1500",
    "RUNPOD_POLL_INITIAL_MS": "10",
    "RUNPOD_POLL_MAX_MS": "50",
    "HEALTH_POLL_S": "0.5",
}
LIFTED = "10000000"
# The credential each security scheme of the document takes (app/openapi.py _SECURITY).
SCHEME_HEADERS = {
    "vapiSecret": ("x-vapi-secret", "{VAPI_SECRET}"),
    "adminToken": ("Authorization", "Bearer {ADMIN_TOKEN}"),
    "llmKey": ("Authorization", "Bearer {LLM_API_KEY}"),
    "metricsToken": ("Authorization", "Bearer {METRICS_TOKEN}"),
}
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)
# Operations that accept some data their schema forbids, on purpose, and the check that says so.
LENIENT = {
    ("POST /vapi/webhook", "negative_data_rejection"): (
        "VAPI's message fields are read when well-formed and ignored otherwise (app/openapi.py"
        " VapiMessage): a reshaped optional field must not bounce a live call's message"
    ),
}
MODES = ("positive", "negative")
MAX_SAMPLES = 3  # failure samples kept per (check, operation)


def gateway_env() -> dict[str, str]:
    """Gateway settings for a fuzz run (add RUNPOD_ENDPOINT_URL and RUNPOD_API_KEY)."""
    env = {**SECRETS, **BUDGETS, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    for op in ("RUNSYNC", "RUN", "STATUS", "STREAM", "CANCEL"):
        env[f"RUNPOD_{op}_RATE_PER_10S"] = LIFTED
    return env


def credentials(operation: Any) -> dict[str, str]:
    """The headers that authenticate one operation (its first security requirement)."""
    for requirement in operation.definition.raw.get("security", []):
        for scheme in requirement:
            name, template = SCHEME_HEADERS[scheme]
            return {name: template.format(**SECRETS)}
    return {}


@dataclass
class FuzzReport:
    """What one run sent and saw; ``failures`` maps check name → number of failed responses."""

    operations: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    max_examples: int = 0
    seed: int | None = None
    examples: int = 0
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    not_generated: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.by_status.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        from schemathesis import __version__

        return {
            "schemathesis_version": __version__,
            "operations": len(self.operations),
            "operation_labels": self.operations,
            "modes": self.modes,
            "max_examples_per_operation_and_mode": self.max_examples,
            "seed": self.seed,
            "examples": self.examples,
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_operation": {
                label: {str(k): v for k, v in sorted(c.items())}
                for label, c in self.by_operation.items()
            },
            "server_errors": self.server_errors,
            "failures_by_check": dict(sorted(self.failures.items())),
            "failure_samples": self.samples[:20],
            "not_generated": self.not_generated,
            "transport_errors": len(self.transport_errors),
            "transport_error_samples": self.transport_errors[:5],
            "duration_s": round(self.duration_s, 1),
            "problems": self.problems(),
        }

    def problems(self) -> list[str]:
        """Human-readable reasons this run is not clean (empty when it is)."""
        out = [f"{n} response(s) failed {check}" for check, n in sorted(self.failures.items())]
        if self.server_errors:
            out.append(f"{self.server_errors} 5xx response(s)")
        out += [f"transport error: {e}" for e in self.transport_errors[:5]]
        return out + self.samples[:5]


def load_schema(base_url: str) -> Any:
    """The gateway's document, loaded over HTTP, every operation in it selected.

    Schemathesis leaves out the operation that served the document (``GET /openapi.json``)
    unless a filter names it: the catch-all include puts it back.
    """
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    return schema.include(path_regex="^/")


def _operations(schema: Any, only: Sequence[str] | None) -> list[Any]:
    ops = [result.ok() for result in schema.get_all_operations()]
    return [op for op in ops if not only or op.label in only]


def _check_functions(names: Iterable[str]) -> list[Any]:
    from schemathesis import checks as core
    from schemathesis.specs.openapi import checks as openapi

    return [getattr(core, name, None) or getattr(openapi, name) for name in names]


def _settings(max_examples: int, seed: int | None) -> Any:
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        phases=[Phase.explicit, Phase.generate],  # nothing is raised, so nothing to shrink
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
    )


def fuzz(
    base_url: str,
    *,
    max_examples: int,
    modes: Sequence[str] = MODES,
    seed: int | None = None,
    only: Sequence[str] | None = None,
    checks: Sequence[str] = CHECKS,
    timeout_s: float = 30.0,
) -> FuzzReport:
    """Fuzz every operation (or those labelled in ``only``) of the gateway at ``base_url``."""
    import requests
    from hypothesis import given
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.core.failures import FailureGroup

    started = time.monotonic()
    schema = load_schema(base_url)
    operations = _operations(schema, only)
    report = FuzzReport(
        operations=[op.label for op in operations], modes=list(modes),
        max_examples=max_examples, seed=seed,
    )  # fmt: skip
    session = requests.Session()

    def sender(op: Any, statuses: Counter[int]) -> Any:
        applied = [c for c in checks if (op.label, c) not in LENIENT]
        check_functions = dict(zip(applied, _check_functions(applied), strict=True))

        def one(case: Any) -> None:
            report.examples += 1
            try:
                response = case.call(session=session, timeout=timeout_s)
            except requests.RequestException as exc:
                report.transport_errors.append(f"{op.label}: {exc!r}")
                return
            report.requests += 1
            report.by_status[response.status_code] += 1
            statuses[response.status_code] += 1
            for name, check in check_functions.items():  # one at a time: failures by check
                try:
                    case.validate_response(response, checks=[check])
                except FailureGroup as group:
                    _record(report, name, op.label, case, response, group)

        return one

    with session:
        for op in operations:
            statuses = report.by_operation.setdefault(op.label, Counter())
            headers = credentials(op)
            for mode in modes:
                strategy = op.as_strategy(GenerationMode(mode), headers=headers or None)

                test = given(case=strategy)(sender(op, statuses))
                test = _settings(max_examples, seed)(test)
                if seed is not None:
                    test = hypothesis_seed(seed)(test)
                try:
                    test()
                except Unsatisfiable:  # negative mode, nothing to negate (no body, no parameter)
                    report.not_generated.append(f"{op.label} ({mode})")
    report.duration_s = time.monotonic() - started
    return report


def _record(
    report: FuzzReport, name: str, label: str, case: Any, response: Any, group: Any
) -> None:
    report.failures[name] += 1
    for failure in group.exceptions:
        mine = [s for s in report.samples if s.startswith(f"[{name}] {label}:")]
        if len(mine) < MAX_SAMPLES:
            body = response.content[:300].decode("utf-8", "replace")
            report.samples.append(
                f"[{name}] {label}: {failure.title}: {str(failure.message)[:300]}"
                f" | HTTP {response.status_code} {body!r}"
                f" | {case.as_curl_command()[:600]}"
            )


@dataclass
class AuthProbe:
    """The unauthenticated pass: statuses of protected operations sent without credentials."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    not_401_json: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "not_401_json": len(self.not_401_json),
            "samples": self.not_401_json[:5],
        }


def probe_unauthenticated(base_url: str, *, max_examples: int) -> AuthProbe:
    """Send valid (positive) cases of every protected operation with no credential at all."""
    import requests
    from hypothesis import given
    from schemathesis import GenerationMode

    schema = load_schema(base_url)
    probe = AuthProbe()
    session = requests.Session()

    def sender(label: str) -> Any:
        def one(case: Any) -> None:
            # as generated (a random, wrong credential where the scheme has one), then bare
            _expect_401(probe, label, case.call(session=session, timeout=30))
            for name in ("Authorization", "x-vapi-secret"):
                if case.headers:
                    case.headers.pop(name, None)
            _expect_401(probe, label, case.call(session=session, timeout=30))

        return one

    with session:
        for op in _operations(schema, None):
            if not credentials(op):
                continue
            strategy = op.as_strategy(GenerationMode.POSITIVE)

            _settings(max_examples, None)(given(case=strategy)(sender(op.label)))()
    return probe


def _expect_401(probe: AuthProbe, label: str, response: Any) -> None:
    probe.requests += 1
    probe.by_status[response.status_code] += 1
    ctype = _content_type(response)
    ok = response.status_code == 401 and ctype.startswith("application/json")
    if ok:
        try:
            ok = isinstance(json.loads(response.content), dict)
        except ValueError:
            ok = False
    if not ok:
        body = response.content[:200].decode("utf-8", "replace")
        probe.not_401_json.append(f"{label}: HTTP {response.status_code} {ctype} {body!r}")


def _content_type(response: Any) -> str:
    value = response.headers.get("content-type") or [""]
    return str(value[0] if isinstance(value, list) else value)


def log_problems(lines: Iterable[str]) -> list[dict[str, Any]]:
    """JSON log records at level error/critical or carrying an exception (non-JSON lines too)."""
    problems: list[dict[str, Any]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            problems.append({"event": "non-JSON log line", "line": line[:500]})
            continue
        if not isinstance(record, Mapping):
            problems.append({"event": "non-object log line", "line": line[:500]})
        elif record.get("level") in ("error", "critical") or "exception" in record:
            problems.append(dict(record))
    return problems


ROOT = Path(__file__).resolve().parent.parent


def run_isolated(
    base_url: str,
    *,
    max_examples: int,
    unauthenticated: bool = False,
    seed: int | None = None,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """One pass in a fresh ``python -m bench.fuzz`` process; its JSON summary."""
    cmd = [sys.executable, "-m", "bench.fuzz", base_url, "--max-examples", str(max_examples)]
    cmd += ["--unauthenticated"] if unauthenticated else []
    cmd += ["--seed", str(seed)] if seed is not None else []
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__)
    parser.add_argument("base_url", help="the gateway, e.g. http://127.0.0.1:8000")
    parser.add_argument("--max-examples", type=int, default=12)
    parser.add_argument("--seed", type=int, help="a seeded sample instead of the derandomized one")
    parser.add_argument(
        "--unauthenticated", action="store_true", help="the 401 pass instead of the fuzz pass"
    )
    args = parser.parse_args(argv)
    url = args.base_url.rstrip("/")
    if args.unauthenticated:
        summary = probe_unauthenticated(url, max_examples=args.max_examples).summary()
    else:
        summary = fuzz(url, max_examples=args.max_examples, seed=args.seed).summary()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
