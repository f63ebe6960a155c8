"""A circuit breaker per RunPod endpoint (issue #4; peers.md §4: separate upstream failures from
the caller's own deadline expiries).

Closed: every turn goes upstream. After ``failures`` consecutive upstream failures (5xx, FAILED,
TIMED_OUT, connect errors — never a turn's own budget running out) it opens: turns get the
fallback at once without touching RunPod. After ``reset_s`` it is half-open: one probe turn goes
upstream; success closes it, failure re-opens it for another ``reset_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures: int = 5,
        reset_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probe_in_flight = False
        self.opened_total = 0

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def allow(self) -> bool:
        """May this turn go upstream? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive = 0
        self._probe_in_flight = False
        if self._opened_at is not None:
            self._opened_at = None
            self._notify("closed")

    def record_failure(self) -> None:
        self._consecutive += 1
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        if was_probe or (self._opened_at is None and self._consecutive >= self.threshold):
            self._opened_at = self._clock()
            self.opened_total += 1
            self._notify("open")

    def release_probe(self) -> None:
        """A probe that ended without a verdict (the caller's own deadline) frees the slot."""
        self._probe_in_flight = False

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state,
            "consecutive_failures": self._consecutive,
            "threshold": self.threshold,
            "reset_s": self.reset_s,
            "opened_total": self.opened_total,
        }

    def _notify(self, state: State) -> None:
        if self._on_change is not None:
            self._on_change(state)
