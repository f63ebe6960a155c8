"""The emulator's settings: one frozen :class:`EmulatorConfig`, also readable from a JSON file.

Defaults follow runpod.md: retention 30 min for ``/run`` and 1 min for ``/runsync`` results (§0.5),
``policy.ttl`` 24 h and ``policy.executionTimeout`` 10 min with their documented bounds (§1.7),
20 MB / 10 MB request bodies (§1.8). Rate and concurrency limits are off unless configured;
``"limits": "runpod"`` in JSON selects the documented per-operation table (§1.8).

JSON form (every key optional; ``virtual: true`` runs jobs in-process with default or
fault-mix behaviours instead of waiting for real workers)::

    {"endpoint_ids": ["local"], "api_key": "...", "worker_api_key": null, "virtual": false,
     "virtual_concurrency": 0, "faults": {...FaultMix...}, "limits": "runpod" | {op: {...}},
     "paused": false, "take_hold_s": 3, "stop_hold_s": 3, "stream_hold_ms": 0,
     "run_retention_s": 1800, "runsync_retention_s": 60, "clamp_policy": true,
     "runsync_failed_status": 200, "worker_stale_s": 5}
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.emulator.behavior import Behavior, default_behavior, json_object
from devstack.emulator.faults import FaultMix

VirtualWorker = Callable[[Mapping[str, Any]], Behavior]

CLIENT_OPS: tuple[str, ...] = (
    "run",
    "runsync",
    "status",
    "status-sync",
    "stream",
    "cancel",
    "retry",
    "purge-queue",
    "health",
)
MB = 1024 * 1024
TTL_BOUNDS_MS = (10_000, 7 * 86_400_000)  # runpod.md §1.7
EXECUTION_TIMEOUT_BOUNDS_MS = (5_000, 7 * 86_400_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpLimit:
    """Per endpoint: at most ``rate`` requests per ``per_s`` seconds, ``concurrent`` at once."""

    rate: int | None = None
    per_s: float = 10.0
    concurrent: int | None = None
    retry_after_s: float | None = None

    @classmethod
    def from_json(cls, value: Any) -> OpLimit:
        if not isinstance(value, Mapping):
            raise ValueError("a limit is an object {rate, per_s, concurrent, retry_after_s}")
        return cls(**value)


# runpod.md §1.8, "Rate limits, per endpoint and operation" (base values, no worker scaling).
RUNPOD_LIMITS: Mapping[str, OpLimit] = {
    "runsync": OpLimit(rate=2000, concurrent=400),
    "run": OpLimit(rate=1000, concurrent=200),
    "status": OpLimit(rate=2000, concurrent=400),
    "status-sync": OpLimit(rate=2000, concurrent=400),
    "stream": OpLimit(rate=2000, concurrent=400),
    "cancel": OpLimit(rate=100, concurrent=20),
    "purge-queue": OpLimit(rate=2),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    endpoint_ids: tuple[str, ...] = ("local",)
    api_key: str = "emulator-key"
    # None accepts any worker key (the SDK sends RUNPOD_AI_API_KEY raw, runpod.md §2.11)
    worker_api_key: str | None = None
    virtual_worker: VirtualWorker | None = None
    virtual_concurrency: int = 0  # 0 = unlimited in-process jobs at once
    faults: FaultMix | None = None
    limits: Mapping[str, OpLimit] = field(default_factory=dict)
    paused: bool = False  # jobs queue up but nobody picks them up until un-paused
    take_hold_s: float = 3.0
    stop_hold_s: float = 3.0
    stream_hold_ms: int = 0
    run_retention_s: float = 1800.0
    runsync_retention_s: float = 60.0
    default_ttl_ms: int = 86_400_000
    default_execution_timeout_ms: int = 600_000
    clamp_policy: bool = True  # False lets tests use a ttl/executionTimeout below the minimum
    runsync_failed_status: int = 200
    worker_stale_s: float = 5.0
    max_run_bytes: int = 10 * MB
    max_runsync_bytes: int = 20 * MB

    def __post_init__(self) -> None:
        if not self.endpoint_ids or not all(self.endpoint_ids):
            raise ValueError("at least one non-empty endpoint id is needed")
        unknown = sorted(set(self.limits) - set(CLIENT_OPS))
        if unknown:
            raise ValueError(f"limits for unknown operation(s): {', '.join(unknown)}")
        if self.take_hold_s < 0 or self.stop_hold_s < 0 or self.stream_hold_ms < 0:
            raise ValueError("hold times must be >= 0")

    def replace(self, **changes: Any) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)

    def public_view(self) -> dict[str, Any]:
        """The effective settings as JSON (the API key masked)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("api_key", "worker_api_key"):
                value = "***" if value else value
            elif f.name == "virtual_worker":
                value = value is not None
            elif f.name == "faults":
                value = value.to_dict() if value is not None else None
            elif f.name == "limits":
                value = {op: dataclasses.asdict(limit) for op, limit in value.items()}
            elif f.name == "endpoint_ids":
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> EmulatorConfig:
        """The JSON form (module docstring); keyword overrides win (the CLI flags)."""
        return cls(**{**config_changes(data), **overrides})

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> EmulatorConfig:
        return cls.from_dict(json.loads(Path(path).read_text()), **overrides)


def config_changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON settings → EmulatorConfig keyword arguments; raises ValueError on unknown keys."""
    names = {f.name for f in dataclasses.fields(EmulatorConfig)} - {"virtual_worker"}
    data = json_object(data, names | {"virtual"}, what="the emulator config", key="config")
    changes: dict[str, Any] = {k: v for k, v in data.items() if k != "virtual"}
    if "virtual" in data:
        changes["virtual_worker"] = default_behavior if data["virtual"] else None
    if "endpoint_ids" in changes:
        changes["endpoint_ids"] = tuple(changes["endpoint_ids"])
    if "faults" in changes and changes["faults"] is not None:
        changes["faults"] = FaultMix.from_dict(changes["faults"])
    if "limits" in changes:
        changes["limits"] = parse_limits(changes["limits"])
    return changes


def parse_limits(value: Any) -> Mapping[str, OpLimit]:
    if value == "runpod":
        return dict(RUNPOD_LIMITS)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError('limits must be "runpod", null or {op: {rate, per_s, concurrent}}')
    return {op: OpLimit.from_json(limit) for op, limit in value.items()}


def policy_ms(policy: Mapping[str, Any], cfg: EmulatorConfig) -> tuple[int, int]:
    """A job's ``(ttl, executionTimeout)`` in ms: its policy, else the defaults, within bounds.

    Out-of-range values are clamped (what RunPod does is UNCONFIRMED, runpod.md §1.7) unless
    ``clamp_policy`` is off, which lets tests use a 300 ms ttl.
    """
    ttl = int(policy.get("ttl", cfg.default_ttl_ms))
    execution = int(policy.get("executionTimeout", cfg.default_execution_timeout_ms))
    if not cfg.clamp_policy:
        return max(1, ttl), max(1, execution)
    low, high = TTL_BOUNDS_MS
    ttl = min(max(ttl, low), high)
    low, high = EXECUTION_TIMEOUT_BOUNDS_MS
    return ttl, min(max(execution, low), high)
