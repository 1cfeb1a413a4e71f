"""Running one function in many threads that start together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

__all__ = ["together"]

T = TypeVar("T")
A = TypeVar("A")

_JOIN_TIMEOUT = 600.0


def together(work: Callable[[A], T], args: Sequence[A]) -> tuple[list[T], float]:
    """Runs ``work(arg)`` in one thread per arg, all released at once by a barrier.

    Returns:
        The results in ``args`` order, and the ``perf_counter`` reading at the release.

    Raises:
        Exception: the first one a thread raised (after every thread has ended).
    """
    released: list[float] = []
    barrier = threading.Barrier(len(args), action=lambda: released.append(time.perf_counter()))
    results: list[T | None] = [None] * len(args)
    errors: list[BaseException] = []

    def run(index: int, arg: A) -> None:
        try:
            barrier.wait()
            results[index] = work(arg)
        except BaseException as exc:  # noqa: BLE001 -- raised again in the calling thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i, arg)) for i, arg in enumerate(args)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_JOIN_TIMEOUT)
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"threads still running after {_JOIN_TIMEOUT:.0f} s")
    return cast(list[T], results), released[0]
