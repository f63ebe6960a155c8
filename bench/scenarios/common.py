"""Load specs and result arithmetic shared by the scenarios."""

from __future__ import annotations

from typing import Any

from app.settings import DEFAULT_FALLBACK
from bench.harness import API_KEY, Bench
from bench.payloads import chat_body, direct_job_body
from bench.procs import ForeignLoad, Proc, cpu_seconds
from bench.stats import summary

OK = ("model",)


def toolcalls_spec(bench: Bench, server: Proc, **kw: Any) -> dict[str, Any]:
    return {
        "kind": "toolcalls",
        "url": f"{server.url}/vapi/webhook",
        "hmac_secret": bench.hmac_secret,
        "fallbacks": [DEFAULT_FALLBACK],
        "prefix": f"{server.name}-{kw.pop('tag', 'x')}",
        **kw,
    }


def direct_spec(emulator: Proc, budget_ms: int = 6000, **kw: Any) -> dict[str, Any]:
    return {
        "kind": "direct",
        "url": f"{emulator.url}/runsync?wait={budget_ms - 250}",
        "headers": {"Authorization": f"Bearer {API_KEY}"},
        "body": direct_job_body(budget_ms),
        **kw,
    }


def chat_spec(url: str, *, key: str | None, model: str, stream: bool, **kw: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return {
        "kind": "chat_stream" if stream else "chat",
        "url": url,
        "headers": headers,
        "body": chat_body(model=model, stream=stream, max_tokens=kw.pop("max_tokens", None)),
        "fallbacks": [DEFAULT_FALLBACK],
        **kw,
    }


def ok_latencies(result: dict[str, Any], column: str = "lat") -> list[float]:
    values = result.get(column) or []
    return [v for v, c in zip(values, result["cls"], strict=False) if c in OK and v is not None]


def errors(result: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in result.get("classes", {}).items() if k not in OK}


def rate(result: dict[str, Any]) -> float | None:
    """Successful turns per second over the run's wall time."""
    ok = sum(1 for c in result["cls"] if c in OK)
    return round(ok / result["elapsed_s"], 1) if result.get("elapsed_s") else None


def closed(
    bench: Bench, spec: dict[str, Any], *, label: str, server: Proc | None = None
) -> dict[str, Any]:
    """Run one closed-loop spec; adds ``rate``, ``summary``, ``errors`` and server CPU use."""
    spec = {"mode": "closed", **spec}
    marks: dict[str, float] = {}
    foreign = ForeignLoad()

    def window(edge: str) -> None:
        if server is not None:
            marks[edge] = cpu_seconds(server.pid)
        if edge == "start":
            foreign.start()
        else:
            foreign.stop()

    result = bench.loadgen.run(spec, label=label, total=spec.get("requests"), on_window=window)
    result["foreign_cores"] = foreign.cores
    if server is not None:
        cpu = marks.get("end", 0.0) - marks.get("start", 0.0)
        result["server_cpu_s"] = round(cpu, 3)
        result["server_cpu_util"] = round(cpu / result["elapsed_s"], 3)
        ok = sum(1 for c in result["cls"] if c in OK)
        result["server_cpu_ms_per_turn"] = round(cpu * 1000 / ok, 4) if ok else None
    result["rate"] = rate(result)
    result["summary"] = summary(ok_latencies(result))
    result["errors"] = errors(result)
    return result


def slim(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its per-request columns (for the JSON file)."""
    return {k: v for k, v in result.items() if k not in ("t", "lat", "sched", "cls", "ttft")}
