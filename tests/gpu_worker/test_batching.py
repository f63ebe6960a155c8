"""Stream batching: first item at once, then at most one batch per window, source closed."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from gpu_worker.batching import batched


class Ticker:
    """A source yielding ``n`` items every ``gap`` seconds; records whether it was closed."""

    def __init__(self, n: int, gap: float, *, first: float = 0.0) -> None:
        self.n, self.gap, self.first = n, gap, first
        self.closed = False

    async def items(self) -> AsyncIterator[int]:
        try:
            await asyncio.sleep(self.first)
            for i in range(self.n):
                if i:
                    await asyncio.sleep(self.gap)
                yield i
        finally:
            self.closed = True


async def _collect(source, **kw):
    started = time.monotonic()
    out = []
    async for batch in batched(source, **kw):
        out.append((time.monotonic() - started, batch))
    return out


async def test_first_item_alone_then_windows():
    """The first item is flushed alone and at once; the rest in few window-sized batches."""
    ticker = Ticker(40, 0.005, first=0.05)
    out = await _collect(ticker.items(), window_s=0.05, max_items=1000)
    assert out[0][1] == [0] and 0.04 <= out[0][0] < 0.09
    assert [i for _, b in out for i in b] == list(range(40))
    assert len(out) <= 8  # ~0.2 s of items in 50 ms windows, not 40 yields
    middle = out[:-1]  # the last batch goes out as soon as the source ends
    assert all(b - a >= 0.045 for (a, _), (b, _) in itertools.pairwise(middle))


async def test_max_items_caps_a_batch():
    """A fast source is cut into batches of at most max_items."""
    ticker = Ticker(50, 0.0)
    out = await _collect(ticker.items(), window_s=10, max_items=16)
    assert [len(b) for _, b in out] == [1, 16, 16, 16, 1]


async def test_a_silent_source_still_flushes_on_time():
    """Buffered items go out when the window ends, even if the source has gone quiet."""

    async def bursty() -> AsyncIterator[str]:
        for item in ("a", "b", "c"):
            yield item
        await asyncio.sleep(0.5)
        yield "d"

    out = await _collect(bursty(), window_s=0.05, max_items=100)
    assert [b for _, b in out] == [["a"], ["b", "c"], ["d"]]
    assert out[1][0] < 0.15


async def test_deadline_raises_timeout_and_closes_the_source():
    """Past the deadline the batcher raises TimeoutError and closes its source."""
    ticker = Ticker(3, 10.0)
    deadline = asyncio.get_running_loop().time() + 0.1
    with pytest.raises(TimeoutError):
        await _collect(ticker.items(), window_s=0.05, max_items=10, deadline=deadline)
    assert ticker.closed


async def test_cancelling_the_consumer_closes_the_source():
    """Cancelling whoever reads the batches cancels the pending read and closes the source."""
    ticker = Ticker(100, 0.01)
    task = asyncio.create_task(_collect(ticker.items(), window_s=0.05, max_items=10))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ticker.closed
