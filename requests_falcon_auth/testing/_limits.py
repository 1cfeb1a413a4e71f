"""Falcon's rate budgets: sliding one-minute windows keyed by source IP or CID."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ._checks import duration, whole

__all__ = ["Decision", "RateLimits", "SlidingWindow", "epoch_seconds_after"]


@dataclass(frozen=True)
class RateLimits:
    """The emulator's rate budgets (Falcon's published ones by default).

    Args:
        token_per_ip: ``/oauth2/token`` requests per window per source IP, failed ones included.
        api_per_cid: API calls with a valid token per window per CID (shared by its clients).
        bad_token_per_ip: API calls with a missing or invalid token per window per source IP;
            past it they get 429 instead of 401.
        window: the sliding window, in seconds of the emulator's clock.
    """

    token_per_ip: int = 300
    api_per_cid: int = 6000
    bad_token_per_ip: int = 15
    window: float = 60.0

    def __post_init__(self) -> None:
        for name in ("token_per_ip", "api_per_cid", "bad_token_per_ip"):
            whole(getattr(self, name), f"RateLimits.{name}", 1, meaning="a positive int")
        duration(self.window, "RateLimits.window", positive=True)


class Decision(NamedTuple):
    """A budget's answer to one request."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # seconds until a slot frees up; 0 when allowed


class SlidingWindow:
    """A sliding-window log per key. Not thread-safe: the service uses it under the state's lock."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float], *, enforce: bool = True
    ) -> None:
        self.limit = limit
        self._window = window
        self._clock = clock
        self._enforce = enforce
        self._hits: dict[str, deque[float]] = {}

    def acquire(self, key: str) -> Decision:
        """Spends one unit of ``key``'s budget if any is left.

        A refused request spends nothing, so the retry time it is told stays true.
        """
        if not self._enforce:
            return Decision(True, self.limit, self.limit, 0.0)
        now = self._clock()
        hits = self._prune(key, now)
        if len(hits) >= self.limit:
            return Decision(False, self.limit, 0, max(0.0, hits[0] + self._window - now))
        hits.append(now)
        return Decision(True, self.limit, self.limit - len(hits), 0.0)

    def peek(self, key: str) -> Decision:
        """The budget's state for ``key`` without spending any of it."""
        if not self._enforce:
            return Decision(True, self.limit, self.limit, 0.0)
        hits = self._prune(key, self._clock())
        return Decision(len(hits) < self.limit, self.limit, self.limit - len(hits), 0.0)

    def reset(self) -> None:
        """Forgets every request seen."""
        self._hits.clear()

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        horizon = now - self._window
        while hits and hits[0] <= horizon:
            hits.popleft()
        return hits


def epoch_seconds_after(delay: float, wall_clock: Callable[[], float]) -> int:
    """The epoch second by which ``delay`` seconds will have passed (X-Ratelimit-Retryafter)."""
    return math.ceil(wall_clock() + delay)
