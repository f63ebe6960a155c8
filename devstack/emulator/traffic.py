"""Request accounting per operation, and the optional RunPod-style limits (runpod.md §1.8).

:class:`Traffic` counts requests and response codes per operation and tracks how many requests of
each operation are in flight, keeping the peak: a bench reads ``peak_in_flight["runsync"]`` to
see how many turns the gateway really had open at RunPod at once.

:class:`Limiter` admits a request when its endpoint and operation are under the configured rate
(a sliding window of ``per_s`` seconds) and concurrency; otherwise the caller answers 429.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from typing import Any

from devstack.emulator.config import OpLimit


class Traffic:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()
        self.responses: defaultdict[str, Counter[int]] = defaultdict(Counter)

    @contextlib.contextmanager
    def track(self, op: str) -> Iterator[None]:
        self.requests[op] += 1
        self.in_flight[op] += 1
        self.peak_in_flight[op] = max(self.peak_in_flight[op], self.in_flight[op])
        try:
            yield
        finally:
            self.in_flight[op] -= 1

    def record(self, op: str, status_code: int) -> None:
        self.responses[op][status_code] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "in_flight": {op: n for op, n in self.in_flight.items() if n},
            "peak_in_flight": dict(self.peak_in_flight),
            "responses": {
                op: {str(k): v for k, v in c.items()} for op, c in self.responses.items()
            },
        }

    def reset(self) -> None:
        """Zero the counts; requests still open keep counting as in flight (and as the peak)."""
        self.requests.clear()
        self.responses.clear()
        self.peak_in_flight = Counter({op: n for op, n in self.in_flight.items() if n})


class Limiter:
    def __init__(self) -> None:
        self._windows: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._open: Counter[tuple[str, str]] = Counter()

    def admit(self, endpoint_id: str, op: str, limit: OpLimit | None) -> bool:
        """Count the request in and return True, or return False (answer 429, do not release)."""
        if limit is None:
            return True
        key = (endpoint_id, op)
        if limit.concurrent is not None and self._open[key] >= limit.concurrent:
            return False
        if limit.rate is not None:
            now = time.monotonic()
            window = self._windows[key]
            while window and window[0] <= now - limit.per_s:
                window.popleft()
            if len(window) >= limit.rate:
                return False
            window.append(now)
        self._open[key] += 1
        return True

    def release(self, endpoint_id: str, op: str) -> None:
        key = (endpoint_id, op)
        if self._open[key] > 0:
            self._open[key] -= 1

    def reset(self) -> None:
        self._windows.clear()
