"""Running one coroutine function in many asyncio tasks that start together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["together"]

T = TypeVar("T")
A = TypeVar("A")


async def together(work: Callable[[A], Awaitable[T]], args: Sequence[A]) -> tuple[list[T], float]:
    """Runs ``work(arg)`` in one task per arg on the running loop, all released at once.

    Every task is created and waiting on one event before it is set, as
    :func:`benchmarks.rows._threads.together` releases threads with a barrier.

    Returns:
        The results in ``args`` order, and the ``perf_counter`` reading at the release.

    Raises:
        Exception: the first one a task raised (after every task has ended).
    """
    gate = asyncio.Event()
    ready = 0

    async def run(arg: A) -> T:
        nonlocal ready
        ready += 1
        await gate.wait()
        return await work(arg)

    tasks = [asyncio.create_task(run(arg)) for arg in args]
    while ready < len(tasks):
        await asyncio.sleep(0)
    released = time.perf_counter()
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)], released
