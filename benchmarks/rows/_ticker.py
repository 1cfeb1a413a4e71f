"""A ticker on the running event loop: how late the loop wakes a task that only sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Final

__all__ = ["ticking"]

_SETTLE_TICKS: Final = 20  # ticks before the measured part, so the ticker is in its stride


@contextlib.asynccontextmanager
async def ticking(tick: float) -> AsyncIterator[list[tuple[float, float]]]:
    """Runs a task that sleeps ``tick`` seconds at a time and notes the ``perf_counter``
    reading at the start and end of each sleep; the block is entered once the ticker is in its
    stride and the ticker stops when it ends. Yields the (start, end) list, filled as it runs:
    ``end - start - tick`` is how late the loop woke the ticker."""
    gaps: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            began = time.perf_counter()
            await asyncio.sleep(tick)
            gaps.append((began, time.perf_counter()))

    task = asyncio.create_task(ticker())
    try:
        while len(gaps) < _SETTLE_TICKS:
            await asyncio.sleep(tick)
        yield gaps
    finally:
        stop.set()
        await task
