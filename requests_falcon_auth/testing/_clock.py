"""A monotonic clock that moves only when told, for FalconAuth, its caches and the emulator."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """``clock()`` reads ``now``; :meth:`advance` moves it forward. Hand the same clock to
    :class:`~requests_falcon_auth.FalconAuth` (``clock=``) and to
    :class:`~requests_falcon_auth.testing.FalconEmulator` (``clock=``) to show token expiry and
    renewal without waiting. Many threads may read and advance it; a test may also set
    ``now`` directly.

    Args:
        now: the starting reading, in seconds (default 1000.0).
    """

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Moves the clock forward by ``seconds``; returns the new reading."""
        with self._lock:
            self.now += seconds
            return self.now

    def __repr__(self) -> str:
        return f"ManualClock(now={self.now!r})"
