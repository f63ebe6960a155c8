"""The issue's goals (#7 item 3), checked against a run's results: measured, goal, pass/miss.

Each goal reads one figure out of the results dict. A goal whose scenario did not run is
``not run`` (not a miss). These are benchmark goals, not timed tests: nothing fails the build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    unit: str
    target: float | bool
    kind: str  # "max" (measured <= target), "min" (measured >= target), "true"
    read: Callable[[dict[str, Any]], Any]

    def check(self, results: dict[str, Any]) -> dict[str, Any]:
        value = self.read(results)
        if value is None:
            verdict = "not run"
        elif self.kind == "max":
            verdict = "pass" if value <= self.target else "miss"
        elif self.kind == "min":
            verdict = "pass" if value >= self.target else "miss"
        else:
            verdict = "pass" if value is True else "miss"
        sign = {"max": "≤", "min": "≥", "true": ""}[self.kind]
        target = "yes" if self.kind == "true" else f"{sign} {self.target:g} {self.unit}".strip()
        return {"goal": self.name, "measured": value, "target": target, "verdict": verdict}


def _s(name: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    return lambda r: dig(r, "scenarios", name)


def _max_round(rounds: Any, key: str, sub: str | None = None) -> float | None:
    values = []
    for r in rounds or []:
        v = r.get(key)
        if sub is not None:
            v = v.get(sub) if isinstance(v, dict) else None
        if v is not None:
            values.append(v)
    return max(values) if values else None


GOALS = (
    Goal(
        "Sequential overhead over direct, p50 (median of rounds)", "ms", 0.5, "max",
        lambda r: dig(r, "scenarios", "overhead", "cases", "1", "delta_p50_ms", "median"),
    ),
    Goal(
        "Sequential overhead over direct, p99 (median of rounds)", "ms", 2.0, "max",
        lambda r: dig(r, "scenarios", "overhead", "cases", "1", "delta_p99_ms", "median"),
    ),
    Goal(
        "Turns/s per gateway process at 16 concurrent, all features on", "turns/s", 3000, "min",
        lambda r: dig(r, "scenarios", "throughput", "cases", "16", "gateway-aiohttp",
                      "turns_per_s", "median"),
    ),
    Goal(
        "Throughput vs minimal reference gateway at 16 concurrent", "×", 0.9, "min",
        lambda r: dig(r, "scenarios", "throughput", "cases", "16",
                      "ratio_gateway_to_reference", "median"),
    ),
    Goal(
        "Throughput vs LiteLLM proxy 1.108.7 at 16 concurrent", "×", 25, "min",
        lambda r: dig(r, "scenarios", "peers", "ratio_ours_to_litellm", "median"),
    ),
    Goal(
        "2,000 in-flight turns (2 s jobs): every turn answered", "", True, "true",
        lambda r: dig(r, "scenarios", "scale", "all_answered"),
    ),
    Goal(
        "2,000 in-flight turns: peak RSS of the gateway (worst round)", "MB", 250, "max",
        lambda r: _max_round(dig(r, "scenarios", "scale", "rounds"), "rss_peak_mb"),
    ),
    Goal(
        "2,000 in-flight turns: event-loop lag p99 (worst round)", "ms", 20, "max",
        lambda r: _max_round(dig(r, "scenarios", "scale", "rounds"), "lag_ms", "p99"),
    ),
    Goal(
        "Fault mix: share of turns answered within budget", "%", 100, "min",
        lambda r: (
            None if (v := dig(r, "scenarios", "faults", "within_budget_share")) is None
            else round(v * 100, 2)
        ),
    ),
    Goal(
        "Soak near capacity: errors", "errors", 0, "max",
        lambda r: dig(r, "scenarios", "soak", "soak", "error_count"),
    ),
    Goal(
        "Soak: RSS growth over the second half", "MB/min", 1.0, "max",
        lambda r: dig(r, "scenarios", "soak", "soak", "rss_slope_mb_per_min_second_half"),
    ),
    Goal(
        "Fuzzing: 5xx responses = 0", "responses", 0, "max",
        lambda r: dig(r, "scenarios", "fuzz", "server_errors"),
    ),
    Goal(
        "Fuzzing: unhandled exceptions = 0", "exceptions", 0, "max",
        lambda r: dig(r, "scenarios", "fuzz", "unhandled_exceptions"),
    ),
)  # fmt: skip


def check(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [goal.check(results) for goal in GOALS]
