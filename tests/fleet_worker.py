"""Worker processes that share one token store, whatever it is kept in, and what starts them.

A worker is a separate process ("spawn": it inherits no threads, locks, sockets or descriptors
from pytest) that builds its own store, FalconAuth and session from a picklable job, as a
process of a real fleet or host would. The module imports little, so that children start fast;
the Redis client is imported only by workers of a Redis store.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests
from support import tokens_of

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.cache import TokenCache
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.token import Clock

__all__ = [
    "FileSpec",
    "FleetJob",
    "Processes",
    "RedisSpec",
    "fleet_worker",
    "renewing_worker",
]


@dataclass(frozen=True)
class RedisSpec:
    """A RedisTokenCache on a new client of the redis-server at ``port``.

    ``lock_ttl``: how long the lock of a holder that died outlives it.
    """

    port: int
    lock_ttl: float = 30.0

    @contextmanager
    def open(self, wall_clock: Clock = time.time) -> Iterator[TokenCache]:
        import redis

        from requests_falcon_auth.redis import RedisTokenCache

        client = redis.Redis(port=self.port, socket_timeout=30)
        try:
            yield RedisTokenCache(client, lock_ttl=self.lock_ttl, wall_clock=wall_clock)
        finally:
            client.close()


@dataclass(frozen=True)
class FileSpec:
    """A FileTokenCache on ``directory`` (the kernel frees the lock of a holder that died)."""

    directory: str

    @contextmanager
    def open(self, wall_clock: Clock = time.time) -> Iterator[TokenCache]:
        yield FileTokenCache(self.directory, wall_clock=wall_clock)


@dataclass(frozen=True)
class FleetJob:
    """What one worker process does: build its own store, auth and session, then GET ``url``."""

    store: RedisSpec | FileSpec
    clouds: dict[str, str]
    client_id: str
    client_secret: str
    url: str
    calls: int

    def auth(self, cache: TokenCache, clock: Clock = time.monotonic) -> FalconAuth:
        return FalconAuth(
            self.client_id,
            self.client_secret,
            cloud="us-1",
            clouds=self.clouds,
            cache=cache,
            clock=clock,
        )


def fleet_worker(job: FleetJob, start: Any, go: Any, results: Any) -> None:
    """Runs ``job`` after ``start`` (a Barrier) and ``go`` (an Event), if given; reports its
    statuses, or the error, on ``results``."""
    outcome: list[object] = []
    try:
        with job.store.open() as cache, requests.Session() as session:
            job.auth(cache).attach(session)
            if start is not None:
                start.wait(60)
            if go is not None and not go.wait(60):
                raise TimeoutError("never told to go")
            for _ in range(job.calls):
                outcome.append(session.get(job.url, timeout=60).status_code)
    except Exception as exc:
        outcome.append(f"{type(exc).__name__}: {exc}")
    finally:
        results.put(outcome)


def renewing_worker(
    job: FleetJob, offset: Any, ready: Any, go: Any, done: Any, results: Any
) -> None:
    """A worker whose clocks run ``offset`` seconds ahead (the test moves them into the renew
    window). Reports its statuses in the window, then after ``done``, one more."""
    try:
        # Both clocks move by the offset, as they would together in the real world.
        with (
            job.store.open(wall_clock=lambda: time.time() + offset.value) as cache,
            requests.Session() as session,
        ):
            auth = job.auth(cache, clock=lambda: time.monotonic() + offset.value)
            auth.attach(session)
            first = session.get(job.url, timeout=60).status_code
            ready.wait(60)
            if not go.wait(60):
                raise TimeoutError("never told to go")
            window = [session.get(job.url, timeout=60).status_code for _ in range(job.calls)]
            results.put([first, *window])
            if not done.wait(60):
                raise TimeoutError("never told the renewal was let through")
            tokens_of(auth).wait_for_renewal(60)
            results.put([session.get(job.url, timeout=60).status_code])
    except Exception as exc:
        results.put([f"{type(exc).__name__}: {exc}"])


class Processes:
    """Starts processes in the "spawn" context, with one queue they report on (``results``);
    at the end of the block kills and reaps any left, so a failed test leaves none behind."""

    def __init__(self) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.results = self.context.Queue()
        self._started: list[multiprocessing.process.BaseProcess] = []

    def collect(self, count: int) -> list[Any]:
        """The next ``count`` reports on ``results`` (a worker that never reports fails this
        after two minutes, instead of hanging the suite)."""
        return [self.results.get(timeout=120) for _ in range(count)]

    def start(self, target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
        process = self.context.Process(target=target, args=args, daemon=True)
        process.start()
        self._started.append(process)
        return process

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in self._started:
            if process.is_alive():
                process.kill()
            process.join(30)
            process.close()
        self.results.close()
        self.results.join_thread()
