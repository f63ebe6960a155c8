"""Run each keyed computation once: coalesce concurrent duplicates, cache the result for a TTL.

Why: VAPI retries a webhook whose reply was slow or lost (``backoffPlan``, vapi.md §5) and a
custom-LLM turn can be re-sent; a duplicate must not start a second RunPod job (a turn run twice
is billed twice and may act twice, e.g. file two maintenance requests). Keys are built by the
caller from what identifies the work: ``tool-calls`` → ``call.id`` + ``toolCallId``;
``assistant-request`` → ``call.id`` (peers.md: vapi-concurrency-gateway is idempotent on
``call.id``). :func:`make_key` hashes the parts so no caller text ends up in keys or logs.

Contract of :meth:`IdempotencyStore.run_once` ``(key, compute) -> (value, shared)``:

* the first caller for ``key`` starts ``compute()``; callers arriving while it runs wait for the
  same computation; callers within ``ttl_s`` after it succeeded get the cached value at once.
  ``shared`` is False only for the caller whose call started the computation.
* an exception is not cached: every caller waiting on that computation gets it, and the next
  call for the key computes again.
* the computation runs in its own task, so a waiter that is cancelled (VAPI hung up, the
  deadline fired) neither cancels it nor loses it for the retry that is coming.
* every caller gets the *same* value object: treat it as immutable (copy before editing).

:class:`InMemoryIdempotencyStore` keeps at most ``max_entries`` finished results (least recently
used evicted first) for ``ttl_s`` seconds on an injectable monotonic clock. It is per process.

Several gateway instances need a shared store implementing the same Protocol, e.g. on Redis:

1. ``SET idem:{key} <owner-token> NX PX <lease_ms>``: whoever sets it computes. A lease (a few
   seconds, renewed while computing) rather than the TTL, so a crashed owner frees the key.
2. The owner stores the JSON result with ``SET idem:{key} {"v": result} XX PX <ttl_ms>`` and
   ``PUBLISH idem:{key}`` to wake waiters; on failure it deletes the key only if it still holds
   its token (a compare-and-delete Lua script) and publishes, so the next caller recomputes.
3. Others ``SUBSCRIBE`` then ``GET`` (to close the race) and wait for the value or the key's
   disappearance, bounded by their own deadline; on a vanished key they try step 1 again.

Results must then be JSON-serialisable; ``shared`` keeps its meaning across instances.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class IdempotencyStore(Protocol):
    async def run_once(self, key: str, compute: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``compute()``'s value for ``key`` and whether it was shared (joined or cached)."""
        ...


def make_key(*parts: object) -> str:
    """A fixed-length key from parts (length-prefixed, so ``("a:b", "c")`` ≠ ``("a", "b:c")``)."""
    digest = hashlib.sha256()
    for part in parts:
        data = str(part).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


@dataclass(slots=True)
class _Done(Generic[T]):
    value: T
    expires_at: float


class InMemoryIdempotencyStore:
    """Per-process :class:`IdempotencyStore`: bounded LRU of results with a TTL."""

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if not ttl_s > 0:
            raise ValueError("ttl_s must be positive")
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._done: OrderedDict[str, _Done[Any]] = OrderedDict()
        self._running: dict[str, asyncio.Task[Any]] = {}

    def __len__(self) -> int:
        """Finished results held (expired ones included until they are next touched)."""
        return len(self._done)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def run_once(self, key: str, compute: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        done = self._done.get(key)
        if done is not None:
            if done.expires_at > self._clock():
                self._done.move_to_end(key)
                return done.value, True
            del self._done[key]
        task = self._running.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.ensure_future(self._compute(key, compute))
            self._running[key] = task
        # shield: a cancelled waiter must not cancel the computation others (or a retry) await.
        return await asyncio.shield(task), shared

    def forget(self, key: str) -> None:
        """Drop a cached result (an in-flight computation still finishes and is cached)."""
        self._done.pop(key, None)

    async def _compute(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await compute()
        finally:
            self._running.pop(key, None)
        self._done[key] = _Done(value, self._clock() + self._ttl_s)
        self._done.move_to_end(key)
        self._evict()
        return value

    def _evict(self) -> None:
        now = self._clock()
        while self._done:
            oldest_key, oldest = next(iter(self._done.items()))
            if oldest.expires_at > now and len(self._done) <= self._max_entries:
                break
            del self._done[oldest_key]
