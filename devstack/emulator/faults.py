"""A seeded random mix of job behaviours: :class:`FaultMix` draws one :class:`Behavior` per job.

The mix models what runpod.md §4.3–§4.4 reports from production: mostly warm jobs with a
latency distribution, some cold starts of seconds to tens of seconds (FlashBoot: 563 ms–42 s),
a few failures, timeouts and stalled streams, and transient HTTP errors (§1.8). Outcome draws
are mutually exclusive per category (one of failed / timed out / stalled; one of 429 / 5xx /
dropped / malformed on the submit), and every draw happens in a fixed order, so the same seed
and the same submission order give the same behaviours.

JSON form (config file, ``POST /_emulator/config``)::

    {"seed": 7, "run": {"median_s": 0.3, "p95_s": 1.2}, "queue": 0.05,
     "cold_start_rate": 0.1, "cold_start_s": [2, 30], "failure_rate": 0.05,
     "timeout_rate": 0.0, "stall_rate": 0.02, "stream_pieces": 4,
     "submit_429_rate": 0.01, "submit_5xx_rate": 0.0, "retry_after_s": 1,
     "status_5xx_rate": 0.0, "drop_rate": 0.0, "malformed_rate": 0.0}
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from devstack.emulator.behavior import Behavior, default_output, json_object, stream_text

Sampler = Callable[[Mapping[str, Any]], Behavior]
_Z95 = 1.6448536269514722  # standard normal quantile at 0.95


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """A per-job duration: log-normal with this median and 95th percentile (constant if no p95)."""

    median_s: float = 0.0
    p95_s: float | None = None

    def __post_init__(self) -> None:
        if self.median_s < 0 or (self.p95_s is not None and self.p95_s < self.median_s):
            raise ValueError("latency needs 0 <= median_s <= p95_s")

    def sample(self, rng: random.Random) -> float:
        if self.median_s == 0 or self.p95_s is None or self.p95_s == self.median_s:
            return self.median_s
        sigma = math.log(self.p95_s / self.median_s) / _Z95
        return rng.lognormvariate(math.log(self.median_s), sigma)

    @classmethod
    def from_json(cls, value: Any) -> Latency:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls(median_s=float(value))
        if isinstance(value, Mapping):
            return cls(**value)
        raise ValueError("a latency is a number of seconds or {median_s, p95_s}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultMix:
    """Rates are probabilities per submitted job; durations are seconds."""

    seed: int = 0
    run: Latency = field(default_factory=lambda: Latency(median_s=0.05))
    queue: Latency = field(default_factory=Latency)
    cold_start_rate: float = 0.0
    cold_start_s: tuple[float, float] = (2.0, 30.0)
    failure_rate: float = 0.0
    timeout_rate: float = 0.0
    stall_rate: float = 0.0
    stream_pieces: int = 0
    submit_429_rate: float = 0.0
    submit_5xx_rate: float = 0.0
    retry_after_s: float | None = None
    status_5xx_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0

    def __post_init__(self) -> None:
        outcome = self.failure_rate + self.timeout_rate + self.stall_rate
        http = self.submit_429_rate + self.submit_5xx_rate + self.drop_rate + self.malformed_rate
        rates = [getattr(self, f.name) for f in fields(self) if f.name.endswith("_rate")]
        if any(not 0 <= r <= 1 for r in rates) or outcome > 1 or http > 1:
            raise ValueError("rates must be within 0..1 and each category must sum to <= 1")
        low, high = self.cold_start_s
        if not 0 <= low <= high:
            raise ValueError("cold_start_s must be [low, high] with 0 <= low <= high")

    def sampler(self) -> Sampler:
        """A thread-safe callable drawing one Behavior per job from this mix's own seeded RNG."""
        rng = random.Random(self.seed)
        lock = threading.Lock()

        def draw(job_input: Mapping[str, Any]) -> Behavior:
            with lock:
                return self.draw(rng, job_input)

        return draw

    def draw(self, rng: random.Random, job_input: Mapping[str, Any]) -> Behavior:
        # Always consume the same number of draws, whatever the outcome, so one job's
        # outcome never shifts the next job's stream of random numbers.
        queue_s = self.queue.sample(rng)
        cold = rng.random() < self.cold_start_rate
        cold_s = rng.uniform(*self.cold_start_s)
        run_s = self.run.sample(rng)
        outcome = rng.random()
        http = rng.random()
        status_errors = 1 + int(rng.random() * 2)
        status_faulty = rng.random() < self.status_5xx_rate

        kwargs: dict[str, Any] = {
            "queue_s": queue_s + (cold_s if cold else 0.0),
            "run_s": run_s,
        }
        if self.stream_pieces > 0:
            text = default_output(job_input)["text"]
            kwargs["stream"] = stream_text(text, pieces=self.stream_pieces, total_s=run_s)
        if outcome < self.failure_rate:
            kwargs["status"] = "FAILED"
        elif outcome < self.failure_rate + self.timeout_rate:
            kwargs["status"] = "TIMED_OUT"
        elif outcome < self.failure_rate + self.timeout_rate + self.stall_rate:
            kwargs["stall"] = True
        kwargs.update(self._http_fault(http))
        if status_faulty:
            kwargs["status_errors"] = status_errors
        return Behavior(**kwargs)

    def _http_fault(self, roll: float) -> dict[str, Any]:
        edge = self.submit_429_rate
        if roll < edge:
            return {"submit_status": 429, "retry_after": self.retry_after_s}
        edge += self.submit_5xx_rate
        if roll < edge:
            return {"submit_status": 503, "retry_after": self.retry_after_s}
        edge += self.drop_rate
        if roll < edge:
            return {"drop_connection": True}
        if roll < edge + self.malformed_rate:
            return {"malformed": True}
        return {}

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cold_start_s"] = list(self.cold_start_s)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> FaultMix:
        """The JSON form (module docstring); raises ValueError naming unknown keys."""
        values = json_object(data, {f.name for f in fields(cls)}, what="faults", key="fault")
        for key in ("run", "queue"):
            if key in values:
                values[key] = Latency.from_json(values[key])
        if "cold_start_s" in values:
            low, high = values["cold_start_s"]
            values["cold_start_s"] = (float(low), float(high))
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
