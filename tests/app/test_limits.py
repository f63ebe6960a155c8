"""Upstream limits: never more in flight, or more per 10 s, than the configured caps."""

from __future__ import annotations

import asyncio

import pytest

from app.budget import Deadline
from app.errors import BudgetExceeded
from app.limits import UpstreamLimits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_concurrency_cap_refuses_without_waiting() -> None:
    """try_acquire grants up to the cap, then refuses until a slot is released."""
    limits = UpstreamLimits({"runsync": 2}, {})
    assert limits.try_acquire("runsync") and limits.try_acquire("runsync")
    assert not limits.try_acquire("runsync")
    limits.release("runsync")
    assert limits.try_acquire("runsync")
    assert limits.snapshot()["runsync"]["peak"] == 2


def test_rate_window_slides() -> None:
    """At most N starts in any 10 s window; room returns as old starts age out."""
    clock = Clock()
    limits = UpstreamLimits({}, {"status": 3}, clock=clock)
    for _ in range(3):
        assert limits.try_acquire("status")
        limits.release("status")
    assert not limits.try_acquire("status")
    clock.now = 9.99
    assert not limits.try_acquire("status")
    clock.now = 10.0
    assert limits.try_acquire("status")


def test_unknown_ops_are_unlimited() -> None:
    """An op without a configured cap is never held back."""
    limits = UpstreamLimits({}, {})
    assert all(limits.try_acquire("health") for _ in range(1000))


async def test_waiters_get_a_slot_when_one_frees() -> None:
    """acquire waits for a released slot within its deadline."""
    limits = UpstreamLimits({"run": 1}, {})
    await limits.acquire("run", Deadline.after_ms(1000))
    waiter = asyncio.create_task(limits.acquire("run", Deadline.after_ms(1000)))
    await asyncio.sleep(0.02)
    assert not waiter.done()
    limits.release("run")
    await asyncio.wait_for(waiter, 1)


async def test_waiting_gives_up_at_the_deadline() -> None:
    """A waiter whose budget runs out gets BudgetExceeded instead of waiting forever."""
    limits = UpstreamLimits({"run": 1}, {})
    await limits.acquire("run", Deadline.after_ms(1000))
    with pytest.raises(BudgetExceeded):
        await limits.acquire("run", Deadline.after_ms(60))
