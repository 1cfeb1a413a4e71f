"""At most one WARNING of a kind per interval: a failing shared store must not flood the logs.

The Redis and file stores warn when their store fails or holds something unreadable; a hot
loop would otherwise log the same line thousands of times a second. Repeats within the interval
go to DEBUG, so nothing is lost for whoever looks.

``logging`` is imported by the first line logged: a store that never warns (``falcon-auth
token`` reading a cached token) does not pay for it.
"""

from __future__ import annotations

import threading

from .token import Clock

__all__ = ["WarningThrottle"]


class WarningThrottle:
    """Logs a WARNING per kind at most once per ``interval`` seconds of ``clock``; DEBUG else.

    Args:
        logger: the name of the logger the lines go to.
        interval: seconds between two warnings of one kind.
        clock: the monotonic clock (the store's).
    """

    def __init__(self, logger: str, interval: float, clock: Clock) -> None:
        self._logger = logger
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._warned_at: dict[str, float] = {}

    def warn(self, kind: str, message: str, *args: object) -> None:
        """Logs ``message % args`` at WARNING, or at DEBUG if ``kind`` warned lately."""
        now = self._clock()
        with self._lock:
            last = self._warned_at.get(kind)
            quiet = last is not None and now - last < self.interval
            if not quiet:
                self._warned_at[kind] = now
        import logging

        level = logging.DEBUG if quiet else logging.WARNING
        logging.getLogger(self._logger).log(level, message, *args)
