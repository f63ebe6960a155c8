"""Deadlines and the RunPod wait/policy arithmetic derived from them (runpod.md §5)."""

from __future__ import annotations

import time

import pytest

from app.budget import Deadline
from app.runpod_wire import job_policy, runsync_wait_ms


def test_deadline_counts_down_and_never_goes_negative() -> None:
    """remaining() shrinks with time and is clipped at zero once the deadline passes."""
    d = Deadline.after_ms(50)
    assert 0 < d.remaining() <= 0.05
    assert d.timeout(cap=0.01) == pytest.approx(0.01)
    past = Deadline(time.monotonic() - 1)
    assert past.remaining() == 0 and past.expired


async def test_sleep_is_clipped_to_the_deadline() -> None:
    """A long sleep requested near the deadline returns when the deadline does."""
    d = Deadline.after_ms(30)
    start = time.monotonic()
    await d.sleep(5)
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize(
    ("remaining", "margin", "expected"),
    [
        (6000, 250, 5750),
        (1250, 250, 1000),
        (1249, 250, None),  # under RunPod's 1 s minimum: use /run + polling
        (900_000, 250, 300_000),  # clamped to RunPod's maximum
    ],
    ids=["typical", "exact-minimum", "below-minimum", "clamped-maximum"],
)
def test_runsync_wait_fits_the_budget(remaining: int, margin: int, expected: int | None) -> None:
    """wait = remaining − margin, inside RunPod's 1000–300000 ms range, or None."""
    assert runsync_wait_ms(remaining, margin) == expected


def test_job_policy_respects_runpod_minimums() -> None:
    """ttl ≥ 10 s and executionTimeout ≥ 5 s, and both grow with the budget."""
    assert job_policy(100) == {"ttl": 30_100, "executionTimeout": 5_000}
    assert job_policy(60_000) == {"ttl": 90_000, "executionTimeout": 60_000}
