"""Deadlines: one per turn, created when the request arrives and passed to every await.

A :class:`Deadline` is an absolute point on the monotonic clock. Every upstream call derives its
own timeout from it (`timeout(cap)`), sleeps are clipped to it (`sleep`), and the RunPod client
turns it into ``/runsync``'s ``wait`` (runpod.md §5).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float  # time.monotonic() seconds

    @classmethod
    def after_ms(cls, ms: float) -> Deadline:
        return cls(time.monotonic() + ms / 1000)

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - time.monotonic())

    def remaining_ms(self) -> int:
        return int(self.remaining() * 1000)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def timeout(self, cap: float | None = None) -> float:
        """A per-call timeout: what is left, or ``cap`` seconds if that is sooner."""
        left = self.remaining()
        return left if cap is None else min(cap, left)

    async def sleep(self, seconds: float) -> None:
        """Sleep, but never past the deadline."""
        await asyncio.sleep(min(seconds, self.remaining()))
