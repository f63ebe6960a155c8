"""Stream batching: engine tokens → few, timely pieces (runpod.md §2.4: one HTTP POST per yield).

:func:`batched` reads an async iterator and yields lists of its items. The first item goes out
alone, as soon as it arrives (time to first token is what a caller hears); after that a batch is
flushed when ``window_s`` has passed since the previous flush (even if the source is silent in
between) or when ``max_items`` have piled up, so a worker never yields once per token.

The source is read by a pending ``anext`` task that survives across windows, so flushing on time
never cancels an engine read. Closing or cancelling the batcher cancels that task and closes the
source, which closes the engine's HTTP stream. ``deadline`` (a ``loop.time()`` value) bounds the
whole stream: past it, :class:`TimeoutError` is raised.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def batched(
    source: AsyncIterator[T],
    *,
    window_s: float,
    max_items: int,
    deadline: float | None = None,
) -> AsyncIterator[list[T]]:
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[T] | None = None
    buffer: list[T] = []
    last_flush = -math.inf
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            now = loop.time()
            waits = [deadline - now] if deadline is not None else []
            if buffer:
                waits.append(last_flush + window_s - now)
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, min(waits)) if waits else None)
            now = loop.time()
            if not done:
                if deadline is not None and now >= deadline:
                    raise TimeoutError("the engine did not finish in time")
                yield buffer
                buffer, last_flush = [], now
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                break
            buffer.append(item)
            if len(buffer) >= max_items or now - last_flush >= window_s:
                yield buffer
                buffer, last_flush = [], loop.time()
        if buffer:
            yield buffer
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # consumed: an error racing the cancel is not news
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
