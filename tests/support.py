"""Test doubles shared by the suite: an observable token cache, a forked child that reports
back, and small typed accessors. (The fake monotonic clock is :class:`requests_falcon_auth.testing.ManualClock`.)"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import requests

from requests_falcon_auth import FalconAuth
from requests_falcon_auth._sources import FetchedTokens, fetched
from requests_falcon_auth.cache import CacheKey, MemoryTokenCache, Timing, TokenLock
from requests_falcon_auth.testing import FalconEmulator
from requests_falcon_auth.token import Token


@contextlib.contextmanager
def sdk_emulator(
    client_id: str, secret: str, region: str, *, samples: bool = False, **client: Any
) -> Iterator[FalconEmulator]:
    """An emulator as CrowdStrike's SDKs and the tools on them use it, unmodified: one client
    in ``region`` (``client``: add_client's other arguments), no ``X-Cs-Region`` on token
    answers (falconpy would move to the public cloud it names), and the sample tenant loaded
    when ``samples``."""
    with FalconEmulator(regions=(region,), region_header=False) as emulator:
        emulator.add_client(client_id, secret, region=region, **client)
        if samples:
            emulator.load_samples()
        yield emulator


def present(token: Token | None) -> Token:
    """``token``, asserted to be there (a cache lookup that must hit)."""
    assert token is not None, "no token"
    return token


API = "https://api.crowdstrike.com"


def token(
    value: str = "tok-1",
    *,
    issued_at: float = 1000.0,
    expires_in: int = 1799,
    region: str | None = "us-1",
    base_url: str = API,
) -> Token:
    """A bearer token as Falcon's us-1 issues it, stamped ``issued_at`` on a test's clock."""
    return Token(value, "bearer", expires_in, region, base_url, issued_at)


def gets_at_once(auths: list[FalconAuth], url: str, threads: int = 16) -> list[int]:
    """``threads`` threads spread over ``auths`` start together (a barrier), each sending one GET
    to ``url`` on a session of its own; their statuses. Every auth is closed after."""
    start = threading.Barrier(threads)
    statuses: list[int] = []

    def work(auth: FalconAuth) -> None:
        with requests.Session() as session:
            session.auth = auth
            start.wait()
            statuses.append(session.get(url).status_code)

    workers = [threading.Thread(target=work, args=(auths[i % len(auths)],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for auth in auths:
        auth.close()
    return statuses


def tokens_of(auth: FalconAuth) -> FetchedTokens:
    """The token source of a FalconAuth built from credentials: its store key, its renewal."""
    return fetched(auth.port.tokens)


def form_of(body: object) -> dict[str, list[str]]:
    """A form-encoded request body (requests sends a ``data`` dict as text), parsed."""
    assert isinstance(body, str), body
    return parse_qs(body)


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

    def lock(self, key: CacheKey) -> TokenLock:
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


def in_child(body: Callable[[], object]) -> Callable[[], str]:
    """Runs ``body`` in a forked child (real ``os.fork``); returns a function that waits for
    the child and gives ``str(body())``, or ``crashed: <error>``. A wedged child is killed by
    an alarm after 60 s instead of hanging the suite, and never runs the rest of the suite."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:
        report = "crashed"
        try:
            signal.alarm(60)
            report = str(body())
        except BaseException as exc:  # reported to the parent
            report = f"crashed: {type(exc).__name__}"
        finally:
            os.write(write_end, report.encode())
            os._exit(0)
    os.close(write_end)

    def wait_for_report() -> str:
        try:
            return os.read(read_end, 4096).decode()
        finally:
            os.close(read_end)
            os.waitpid(pid, 0)

    return wait_for_report
