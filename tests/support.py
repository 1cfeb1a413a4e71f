"""Test doubles shared by the suite: a fake monotonic clock and an observable token cache."""

from __future__ import annotations

import threading
from collections.abc import Callable

from requests_falcon_auth.cache import MemoryTokenCache, Timing, TokenLock


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bound_cache(clock: Callable[[], float]) -> MemoryTokenCache:
    """A memory cache already on ``clock`` (as its FalconAuth would leave it)."""
    cache = MemoryTokenCache()
    cache.bind(Timing(clock))
    return cache


class CountingCache(MemoryTokenCache):
    """Counts lock attempts so a test can wait until every thread is queued for the fetch."""

    def __init__(self, timer: Callable[[], float]) -> None:
        super().__init__()
        self.bind(Timing(timer))
        self.attempts = 0
        self.attempted = threading.Condition()

    def lock(self, key: str) -> TokenLock:
        inner = super().lock(key)
        outer = self

        class Counted:
            def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
                with outer.attempted:
                    outer.attempts += 1
                    outer.attempted.notify_all()
                return inner.acquire(blocking, timeout)

            def release(self) -> None:
                inner.release()

        return Counted()

    def wait_for_attempts(self, count: int) -> None:
        with self.attempted:
            assert self.attempted.wait_for(lambda: self.attempts >= count, timeout=30)
