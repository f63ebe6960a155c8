"""The circuit breaker opens on upstream failures only, and recovers through one probe."""

from __future__ import annotations

from app.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    """Four failures keep it closed; the fifth opens it and turns are refused."""
    clock = Clock()
    states: list[str] = []
    b = CircuitBreaker(failures=5, reset_s=15, clock=clock, on_change=states.append)
    for _ in range(4):
        assert b.allow()
        b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow() and states == ["open"]


def test_a_success_resets_the_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    b = CircuitBreaker(failures=2, reset_s=15, clock=Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    """After the reset time exactly one probe goes upstream; its success closes the breaker."""
    clock = Clock()
    b = CircuitBreaker(failures=1, reset_s=15, clock=clock)
    b.record_failure()
    clock.now += 15
    assert b.state == "half_open"
    assert b.allow() and not b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow()


def test_a_failed_probe_reopens_for_another_reset_period() -> None:
    """A failing probe re-opens the breaker and the clock starts again."""
    clock = Clock()
    b = CircuitBreaker(failures=1, reset_s=15, clock=clock)
    b.record_failure()
    clock.now += 15
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    clock.now += 14.9
    assert not b.allow()


def test_a_probe_that_ran_out_of_budget_frees_the_slot() -> None:
    """The caller's own deadline is no verdict on RunPod: the next turn may probe."""
    clock = Clock()
    b = CircuitBreaker(failures=1, reset_s=1, clock=clock)
    b.record_failure()
    clock.now += 1
    assert b.allow()
    b.release_probe()
    assert b.allow()
