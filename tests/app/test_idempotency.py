"""app.idempotency: a duplicate webhook never runs a turn twice."""

from __future__ import annotations

import asyncio

import pytest

from app.idempotency import IdempotencyStore, InMemoryIdempotencyStore, make_key


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Computation:
    """Counts calls; each call waits for ``release`` and then returns (or raises) its value."""

    def __init__(self, value: object = "result", *, fail: bool = False) -> None:
        self.calls = 0
        self.value = value
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self) -> object:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("job failed")
        return f"{self.value}-{self.calls}"


def _store(**kwargs: object) -> tuple[InMemoryIdempotencyStore, FakeClock]:
    clock = FakeClock()
    return InMemoryIdempotencyStore(clock=clock, **kwargs), clock  # type: ignore[arg-type]


def test_in_memory_store_satisfies_the_protocol() -> None:
    """The in-memory store is an IdempotencyStore (a Redis one would slot in the same way)."""
    store: IdempotencyStore = InMemoryIdempotencyStore()
    assert callable(store.run_once)


async def test_concurrent_duplicates_share_one_computation() -> None:
    """Ten concurrent callers of one key run the computation once and all get its value."""
    store, _ = _store()
    compute = Computation()
    compute.release.clear()
    tasks = [asyncio.create_task(store.run_once("k", compute)) for _ in range(10)]
    await asyncio.sleep(0)
    assert store.in_flight == 1
    compute.release.set()
    results = await asyncio.gather(*tasks)
    assert compute.calls == 1
    assert {value for value, _ in results} == {"result-1"}
    assert sorted(shared for _, shared in results) == [False] + [True] * 9


async def test_result_is_cached_for_the_ttl() -> None:
    """A retry within the TTL gets the cached value without computing again."""
    store, clock = _store(ttl_s=60)
    compute = Computation()
    assert await store.run_once("k", compute) == ("result-1", False)
    clock.now += 59
    assert await store.run_once("k", compute) == ("result-1", True)
    assert compute.calls == 1


async def test_result_expires_after_the_ttl() -> None:
    """After the TTL the key computes again."""
    store, clock = _store(ttl_s=60)
    compute = Computation()
    await store.run_once("k", compute)
    clock.now += 60
    assert await store.run_once("k", compute) == ("result-2", False)
    assert compute.calls == 2


async def test_different_keys_do_not_share() -> None:
    """Each key has its own computation."""
    store, _ = _store()
    compute = Computation()
    assert (await store.run_once("a", compute))[0] == "result-1"
    assert (await store.run_once("b", compute))[0] == "result-2"


async def test_failures_are_not_cached() -> None:
    """A failed computation raises for its waiters and the next call computes again."""
    store, _ = _store()
    failing = Computation(fail=True)
    failing.release.clear()
    tasks = [asyncio.create_task(store.run_once("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    failing.release.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert failing.calls == 1
    assert len(store) == 0 and store.in_flight == 0
    assert await store.run_once("k", Computation("fixed")) == ("fixed-1", False)


async def test_lru_bound() -> None:
    """At most max_entries results are kept; the least recently used goes first."""
    store, _ = _store(max_entries=2)
    compute = Computation()
    await store.run_once("a", compute)
    await store.run_once("b", compute)
    await store.run_once("a", compute)  # a is now most recently used
    await store.run_once("c", compute)  # evicts b
    assert len(store) == 2
    assert (await store.run_once("a", compute))[1] is True
    assert (await store.run_once("b", compute))[1] is False
    assert compute.calls == 4


async def test_expired_entries_are_evicted_on_insert() -> None:
    """Old results do not pile up: an insert clears expired ones at the front."""
    store, clock = _store(ttl_s=10)
    compute = Computation()
    for key in "abc":
        await store.run_once(key, compute)
    clock.now += 11
    await store.run_once("d", compute)
    assert len(store) == 1


async def test_cancelled_waiter_does_not_cancel_the_computation() -> None:
    """A caller that gives up (deadline, hang-up) leaves the job running for the retry."""
    store, _ = _store()
    compute = Computation()
    compute.release.clear()
    first = asyncio.create_task(store.run_once("k", compute))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    retry = asyncio.create_task(store.run_once("k", compute))
    await asyncio.sleep(0)
    compute.release.set()
    assert await retry == ("result-1", True)
    assert compute.calls == 1


async def test_failure_with_no_waiters_left_is_not_reported_as_unretrieved() -> None:
    """A computation failing after every waiter left warns about nothing and is not cached."""
    store, _ = _store()
    failing = Computation(fail=True)
    failing.release.clear()
    waiter = asyncio.create_task(store.run_once("k", failing))
    await asyncio.sleep(0)
    waiter.cancel()
    failing.release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert store.in_flight == 0 and len(store) == 0


async def test_forget_drops_a_cached_result() -> None:
    """forget() makes the next call compute again."""
    store, _ = _store()
    compute = Computation()
    await store.run_once("k", compute)
    store.forget("k")
    assert await store.run_once("k", compute) == ("result-2", False)


@pytest.mark.parametrize(
    "kwargs", [{"max_entries": 0}, {"ttl_s": 0}, {"ttl_s": -1}], ids=["size", "ttl", "negative"]
)
def test_invalid_bounds_are_refused(kwargs: dict[str, float]) -> None:
    """A store without room or without a lifetime is a configuration error."""
    with pytest.raises(ValueError):
        InMemoryIdempotencyStore(**kwargs)  # type: ignore[arg-type]


def test_make_key_is_unambiguous_and_opaque() -> None:
    """Keys are fixed-length hashes; part boundaries matter; no caller text shows through."""
    assert make_key("a:b", "c") != make_key("a", "b:c")
    assert make_key("call-1", "tool-1") == make_key("call-1", "tool-1")
    key = make_key("call-1", "my rent balance please")
    assert len(key) == 64 and "rent" not in key
