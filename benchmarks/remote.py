"""The Falcon emulator in a process of its own, driven from the benchmark process.

The emulator plays a remote service: in the benchmark's own process its server threads would
share the GIL with the clients being measured and blur their latencies and throughput. One
server process (a ``multiprocessing`` manager) hosts each row's emulator; the row gets a small
typed handle whose calls (counters, fault injection) travel over a pipe and return plain values.
"""

from __future__ import annotations

import itertools
import multiprocessing
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.managers import BaseManager
from types import TracebackType
from typing import Any, Final

from requests_falcon_auth.testing import FalconEmulator, RateLimits

from . import loopback
from .clock import SharedClock

__all__ = ["Lab", "RemoteEmulator", "Tally", "Target"]

FALCON_TOKEN_TTL: Final = 1799


@dataclass(frozen=True)
class Target:
    """Where a client points: the emulator's base URL and one API client's credentials."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def token_url(self) -> str:
        """Falcon's token endpoint."""
        return f"{self.base_url}/oauth2/token"


@dataclass(frozen=True)
class Tally:
    """The emulator's counters that the rows read, as plain numbers."""

    token_requests: int
    tokens_issued: int
    api_calls: int
    api_ok: int
    api_401: int
    api_429: int
    revokes: int

    def __sub__(self, earlier: Tally) -> Tally:
        return Tally(
            *(getattr(self, name) - getattr(earlier, name) for name in self.__dataclass_fields__)
        )


class _EmulatorService:
    """Runs in the server process: one us-1 emulator, answering with picklable values."""

    def __init__(
        self, token_ttl: int, clock: SharedClock | None, rate_limits: bool | RateLimits
    ) -> None:
        # Falcon's budgets are on unless a row says otherwise (and says so beside its figure):
        # 300 token requests a minute per IP, 6,000 API calls per CID, 15 bad-token calls per IP;
        # a RateLimits scales them (row 13 fills a CID's budget in seconds, not minutes).
        emulator = FalconEmulator(
            regions=("us-1",),
            token_ttl=token_ttl,
            rate_limits=rate_limits,
            clock=clock if clock is not None else time.monotonic,
        )
        self._emulator = emulator.start()
        self._clients = itertools.count(1)

    def new_target(self) -> Target:
        client_id = f"bench-client-{next(self._clients)}"
        secret = secrets.token_urlsafe(24)
        self._emulator.add_client(client_id, secret, region="us-1")
        return Target(self._emulator.base_url("us-1"), client_id, secret)

    def tally(self) -> Tally:
        c = self._emulator.counters
        return Tally(
            c.token_requests,
            c.tokens_issued,
            c.api_calls,
            c.api_ok,
            c.api_401,
            c.api_429,
            c.revokes,
        )

    def invalidate_all_tokens(self) -> None:
        self._emulator.invalidate_all_tokens()

    def delay_token_requests(self, seconds: float) -> None:
        self._emulator.delay_token_requests(seconds)

    def stop(self) -> None:
        self._emulator.stop()


class _Manager(BaseManager):
    pass


def _prepare_server_process() -> None:
    """Runs first in the server process."""
    loopback.install()


_Manager.register("Emulator", _EmulatorService)


class RemoteEmulator:
    """A typed handle on one emulator in the server process."""

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    def new_target(self) -> Target:
        """Registers a fresh API client (so no trial inherits another's token) and returns it."""
        target: Target = self._proxy.new_target()
        return target

    def tally(self) -> Tally:
        """The counters now."""
        tally: Tally = self._proxy.tally()
        return tally

    def invalidate_all_tokens(self) -> None:
        """Every token issued so far gets 401 from now on (a secret reset)."""
        self._proxy.invalidate_all_tokens()

    def delay_token_requests(self, seconds: float) -> None:
        """Every token answer waits ``seconds`` first (0 to stop)."""
        self._proxy.delay_token_requests(seconds)

    def stop(self) -> None:
        """Stops the emulator's servers."""
        self._proxy.stop()


class Lab:
    """The emulator server process, for the whole run: ``with Lab() as lab:``."""

    def __init__(self) -> None:
        self._manager = _Manager(ctx=multiprocessing.get_context("spawn"))
        self._started = False

    def __enter__(self) -> Lab:
        self._manager.start(initializer=_prepare_server_process)
        self._started = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started:
            self._manager.shutdown()
            self._started = False

    @contextmanager
    def emulator(
        self,
        *,
        token_ttl: int = FALCON_TOKEN_TTL,
        clock: SharedClock | None = None,
        rate_limits: bool | RateLimits = True,
    ) -> Iterator[RemoteEmulator]:
        """A running emulator for one row (Falcon's rate budgets on, or the ``RateLimits``
        given), stopped at the end."""
        remote = RemoteEmulator(self._manager.Emulator(token_ttl, clock, rate_limits))  # type: ignore[attr-defined]
        try:
            yield remote
        finally:
            remote.stop()
