"""Every front end past the account's budget, against the emulator with a small one.

Contract: no call fails on the account's 429 (each waits for the second the gateway names and
goes again), the cooldown is one for every caller of the account (the gateway sends few 429s,
not one per caller), and an event loop keeps running while its tasks wait.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.testing import FalconEmulator, RateLimits
from requests_falcon_auth.urllib3 import AuthorizedPoolManager

DEVICES = "/devices/queries/devices/v1"
# A second: Retryafter names a whole epoch second, so a shorter window would wait no less.
WINDOW = 1.0
LIMIT = 12
CALLERS = 4
CALLS = 8  # 32 calls in all: a burst, then two more windows' worth
# About one a window (two are seen); a caller waking into each cooldown on its own would
# spend one of its own each window.
MOST_429S = CALLERS


@pytest.fixture
def emulator() -> Iterator[FalconEmulator]:
    limits = RateLimits(api_per_cid=LIMIT, window=WINDOW)
    with FalconEmulator(rate_limits=limits) as emulator:
        emulator.add_client("budget-client", "budget-secret")
        yield emulator


@pytest.fixture
def auth(emulator: FalconEmulator) -> Iterator[FalconAuth]:
    with FalconAuth(
        "budget-client", "budget-secret", clouds=emulator.clouds, rate_limit_window=WINDOW
    ) as auth:
        yield auth


def url_of(emulator: FalconEmulator) -> str:
    return emulator.base_url("us-1") + DEVICES


def in_threads(send: Callable[[], int]) -> list[int]:
    """CALLERS threads, started together, each making CALLS calls; every status."""
    barrier = threading.Barrier(CALLERS)
    statuses: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        barrier.wait()
        for _ in range(CALLS):
            status = send()
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return statuses


def assert_every_call_served(
    emulator: FalconEmulator, auth: FalconAuth, statuses: list[int]
) -> None:
    assert statuses == [200] * (CALLERS * CALLS)
    counters = emulator.counters
    assert counters.api_ok == CALLERS * CALLS
    assert 0 < counters.api_429 <= MOST_429S
    stats = auth.rate_limits
    assert stats.gave_up == 0
    assert stats.resent == counters.api_429  # every 429 the gateway sent was waited out
    assert stats.limit == LIMIT


def test_requests(emulator: FalconEmulator, auth: FalconAuth) -> None:
    local = threading.local()

    def send() -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.auth = auth
        return int(local.session.get(url_of(emulator)).status_code)

    assert_every_call_served(emulator, auth, in_threads(send))


def test_urllib3(emulator: FalconEmulator, auth: FalconAuth) -> None:
    with AuthorizedPoolManager(auth) as http:
        statuses = in_threads(lambda: int(http.request("GET", url_of(emulator)).status))
    assert_every_call_served(emulator, auth, statuses)


def test_httpx(emulator: FalconEmulator, auth: FalconAuth) -> None:
    with httpx.Client(auth=FalconHttpxAuth(auth)) as client:
        statuses = in_threads(lambda: client.get(url_of(emulator)).status_code)
    assert_every_call_served(emulator, auth, statuses)


def test_httpx_async_tasks_wait_while_the_loop_runs(
    emulator: FalconEmulator, auth: FalconAuth
) -> None:
    """The tasks of one loop share the cooldown, and the loop's other work goes on while they
    wait: the longest gap between a ticker's ticks stays far below the waits."""
    gaps: list[float] = []

    async def ticker(done: asyncio.Event) -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def main() -> list[int]:
        done = asyncio.Event()
        ticking = asyncio.create_task(ticker(done))
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as client:

            async def caller() -> list[int]:
                return [(await client.get(url_of(emulator))).status_code for _ in range(CALLS)]

            results = await asyncio.gather(*(caller() for _ in range(CALLERS)))
        done.set()
        await ticking
        return [status for statuses in results for status in statuses]

    assert_every_call_served(emulator, auth, asyncio.run(main()))
    stats = auth.rate_limits
    assert stats.waited >= 1.0  # the tasks waited seconds in all...
    assert max(gaps) < 0.25  # ...and the loop never stood still for a fraction of that
