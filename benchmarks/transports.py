"""``requests`` transport adapters the rows mount on the peers' sessions.

- :class:`NullAdapter` answers without a network, so what a request costs is ``requests`` plus
  the auth: the warm-overhead row compares auths on it.
- :class:`TokenCallLog` is an ordinary HTTP adapter that notes when each token request starts
  and ends, so the renewal row can tell which user requests ran while a renewal was in flight.
- :func:`pooled` sizes a connection pool for a session that many threads share.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict

__all__ = ["NullAdapter", "TokenCallLog", "pooled"]

_EMPTY_ENVELOPE = b'{"meta": {}, "resources": [], "errors": []}'


class NullAdapter(BaseAdapter):
    """Answers every request 200 with an empty Falcon envelope, in process."""

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.reason = "OK"
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response._content = _EMPTY_ENVELOPE
        response.encoding = "utf-8"
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        """Nothing to release."""


class TokenCallLog(HTTPAdapter):
    """An HTTP adapter that records the (start, end) ``perf_counter`` of every request it sends.

    Mount it at the token URL of the session a library fetches tokens with.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._calls: list[tuple[float, float]] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().send(request, *args, **kwargs)
        finally:
            ended = time.perf_counter()
            with self._lock:
                self._calls.append((started, ended))

    def calls(self, since: float = float("-inf")) -> list[tuple[float, float]]:
        """The token requests that started at or after ``since``, by start time."""
        with self._lock:
            return sorted(call for call in self._calls if call[0] >= since)


def pooled(session: requests.Session, connections: int) -> requests.Session:
    """Gives ``session`` pools of ``connections`` for threads that share it, and returns it.

    requests' default keeps 10 connections per host and discards (with a warning) the ones
    that more threads open: the figures would measure that, not the auth.
    """
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, connections))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
