"""The account's rate-limit cooldown, shared through the token store with FalconAuth objects
that share no memory: store objects of their own on one backend in one process, processes of a
host on a FileTokenCache directory, a fleet on a redis-server or on a Redis Cluster of three
(all started here, all real).

The emulator runs on the real clock with its budget scaled down, since the client waits in
wall-clock time, and each FalconAuth is told the window (``rate_limit_window``). Processes are
real ("spawn", :class:`fleet_worker.Processes`), each building its own store, FalconAuth and
sessions from a picklable :class:`Job`. They start together on a barrier; the test waits for the
store to hold a cooldown by polling it with a deadline (nothing announces it), never by sleeping
(one test waits for the start of a wall-clock second: see :func:`early_in_a_second`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import redis
import requests
from fleet_worker import Processes
from redis.cluster import RedisCluster

from requests_falcon_auth import FalconAuth
from requests_falcon_auth._ratelimit import RateLimitStats, account_of
from requests_falcon_auth.cache import TokenCache
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.testing import FalconEmulator, RateLimits

CLIENT_ID = "cooldown-client-id-8a1f"
SECRET = "cooldown-client-secret-4c3e"
DEVICES = "/devices/queries/devices/v1"

# Small enough to spend in a few calls: a quarter left (2) is "low", so a FalconAuth that sees
# it reads the store before each call. A whole number of seconds: see ``early_in_a_second``.
SMALL = RateLimits(api_per_cid=8, window=2.0)


# -- the stores ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreSpec:
    """Where the shared store is kept; each ``open`` is another store object on it, as another
    process would build one: a FileTokenCache on ``directory``, or a RedisTokenCache on a new
    client of the redis-server or of the cluster at ``port`` (a node's)."""

    kind: str
    directory: str = ""
    port: int = 0

    @contextmanager
    def open(self) -> Iterator[TokenCache]:
        if self.kind == "file":
            yield FileTokenCache(self.directory)
            return
        client: redis.Redis | RedisCluster
        if self.kind == "cluster":
            client = RedisCluster(host="127.0.0.1", port=self.port, socket_timeout=30)
        else:
            client = redis.Redis(port=self.port, socket_timeout=30)
        try:
            yield RedisTokenCache(client)
        finally:
            client.close()


@pytest.fixture(params=["file", "redis", "cluster"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSpec:
    if request.param == "file":
        return StoreSpec("file", directory=str(tmp_path / "tokens"))
    if request.param == "cluster":
        ports: list[int] = request.getfixturevalue("redis_cluster").ports
    else:
        ports = [request.getfixturevalue("redis_server").port]
    for port in ports:
        with redis.Redis(port=port, socket_timeout=5) as node:
            node.flushall()
    return StoreSpec(request.param, port=ports[0])


@pytest.fixture
def processes() -> Iterator[Processes]:
    with Processes() as started:
        yield started


# -- calls -----------------------------------------------------------------------------------------


@contextmanager
def falcon(limits: RateLimits) -> Iterator[FalconEmulator]:
    """The emulator, on the real clock, with ``limits`` as its budgets."""
    with FalconEmulator(regions=("us-1",), rate_limits=limits) as emulator:
        emulator.add_client(CLIENT_ID, SECRET)
        yield emulator


@dataclass(frozen=True)
class Job:
    """What a process does: open its own store on ``store``, build a FalconAuth on it, fetch
    (or read) the token, wait for ``start`` with the others, then ``threads`` threads each GET
    ``url`` ``calls`` times."""

    store: StoreSpec
    clouds: dict[str, str]
    client_id: str
    client_secret: str
    url: str
    window: float
    threads: int = 1
    calls: int = 1
    rate_limit_wait: float = 65.0

    def auth(self, cache: TokenCache) -> FalconAuth:
        return FalconAuth(
            self.client_id,
            self.client_secret,
            cloud="us-1",
            clouds=self.clouds,
            cache=cache,
            rate_limit_wait=self.rate_limit_wait,
            rate_limit_window=self.window,
        )


def job(store: StoreSpec, emulator: FalconEmulator, window: float, **kwargs: Any) -> Job:
    url = emulator.clouds["us-1"] + DEVICES
    return Job(store, emulator.clouds, CLIENT_ID, SECRET, url, window, **kwargs)


class Report(NamedTuple):
    """What a process saw: every status its callers got, the ``X-Ratelimit-Retryafter`` of each
    429 among them, and its FalconAuth's rate-limit counters."""

    statuses: list[int]
    retry_after: list[str]
    stats: RateLimitStats


def get(session: requests.Session, url: str, count: int) -> list[requests.Response]:
    responses = []
    for _ in range(count):
        response = session.get(url, timeout=60)
        response.close()
        responses.append(response)
    return responses


def statuses(auth: FalconAuth, url: str, count: int = 1) -> list[int]:
    """``count`` GETs one after another on a session of ``auth``'s; their statuses."""
    with requests.Session() as session:
        session.auth = auth
        return [response.status_code for response in get(session, url, count)]


def calling_process(work: Job, start: Any, go: Any, results: Any) -> None:
    """Runs ``work`` after ``start`` (a Barrier) and ``go`` (an Event), if given; puts a
    :class:`Report`, or the error, on ``results``."""
    try:
        with work.store.open() as cache, work.auth(cache) as auth:
            auth.get_token()  # the token is no API call: it spends none of the budget

            def calls() -> list[requests.Response]:
                with requests.Session() as session:
                    session.auth = auth
                    return get(session, work.url, work.calls)

            if start is not None:
                start.wait(60)
            if go is not None and not go.wait(60):
                raise TimeoutError("never told to go")
            with ThreadPoolExecutor(work.threads) as pool:
                running = [pool.submit(calls) for _ in range(work.threads)]
                responses = [response for call in running for response in call.result()]
            results.put(
                Report(
                    [r.status_code for r in responses],
                    [
                        r.headers["X-Ratelimit-Retryafter"]
                        for r in responses
                        if r.status_code == 429
                    ],
                    auth.rate_limits,
                )
            )
    except Exception as exc:
        if start is not None:
            start.abort()
        results.put(f"{type(exc).__name__}: {exc}")


def account(auth: FalconAuth) -> str:
    """The name the stores keep ``auth``'s account under."""
    assert auth.oauth2 is not None
    assert auth.client_id is not None
    return account_of(auth.oauth2.entry_url, auth.client_id, auth.member_cid)


def recorded(read: Callable[[], float], timeout: float = 30.0) -> float:
    """``read()`` once it is a cooldown (above 0.0), polled: no store announces one."""
    deadline = time.monotonic() + timeout
    while (until := read()) <= 0.0:
        assert time.monotonic() < deadline, "no cooldown recorded"
        threading.Event().wait(0.005)
    return until


def early_in_a_second() -> None:
    """Returns in the first tenth of a wall-clock second.

    Falcon's ``X-Ratelimit-Retryafter`` is a whole epoch second, the one by which the window's
    oldest call frees: rounded up. A burst begun early in a second is all free by then (with a
    window of whole seconds); begun late, only the calls of the fraction left would be, and two
    callers going at the cooldown's end could meet one free slot. Not a synchronisation: the
    time the wall clock shows decides it.
    """
    fraction = time.time() % 1.0
    if fraction > 0.1:
        time.sleep(1.0 - fraction)


# -- two store objects, one process ----------------------------------------------------------------


def test_a_store_of_its_own_on_the_backend_waits_for_the_cooldown_another_set(
    shared: StoreSpec,
) -> None:
    """A spends the budget and gets the 429 (waited out, re-sent); B, on a store object of its
    own, has seen the budget low, so its next call reads the cooldown A recorded and waits for
    it, instead of getting a 429 of its own."""
    with falcon(SMALL) as emulator, ExitStack() as stack:
        spec = job(shared, emulator, SMALL.window)
        view = stack.enter_context(shared.open())  # the test's own look at the backend
        a = stack.enter_context(spec.auth(stack.enter_context(shared.open())))
        b = stack.enter_context(spec.auth(stack.enter_context(shared.open())))
        a.get_token()
        b.get_token()  # read from the backend: no API call yet
        early_in_a_second()
        assert statuses(a, spec.url, 5) == [200] * 5
        assert statuses(b, spec.url) == [200]
        assert b.rate_limits.remaining == 2  # low: B reads the store before its calls now
        assert statuses(a, spec.url, 2) == [200] * 2
        assert a.rate_limits.remaining == 0
        with ThreadPoolExecutor(1) as pool:
            spending = pool.submit(statuses, a, spec.url)  # a 429, waited out and re-sent
            until = recorded(lambda: view.rate_cooldown(account(a)))
            assert emulator.counters.api_429 == 1
            assert time.time() < until  # A is still waiting when B calls
            assert statuses(b, spec.url) == [200]
            assert time.time() >= until
            assert spending.result(timeout=60) == [200]
        counters = emulator.counters
        assert (counters.api_ok, counters.api_429) == (10, 1)
        assert a.rate_limits.resent == 1
        stats = b.rate_limits
        assert (stats.waits, stats.resent, stats.gave_up) == (1, 0, 0)


# -- processes -------------------------------------------------------------------------------------

PROCESSES = 3
THREADS = 3
CALLS = 8  # each thread's: 72 in all, three windows of the budget
# A second: Retryafter names a whole epoch second, so a shorter window would wait no less.
FLEET = RateLimits(api_per_cid=30, window=1.0)


def test_processes_past_the_budget_all_succeed_with_few_429s(
    shared: StoreSpec, processes: Processes
) -> None:
    """Three processes of three threads each, on one store, make 72 calls against 30 a second
    (three windows): no 429 reaches a caller, and few are spent, at most two a process for
    each window. The ones that remain are calls no cooldown can stop: calls a process had on
    the way before its answers said the budget was low, and calls at the slots the processes
    share. Each process spaces only its own calls, from when it turned low or woke from the
    cooldown, and they all do that at once: at the slot where the budget is gone, every process
    sends before any 429 of it can be in the store."""
    total = PROCESSES * THREADS * CALLS
    with falcon(FLEET) as emulator:
        work = job(shared, emulator, FLEET.window, threads=THREADS, calls=CALLS)
        start = processes.context.Barrier(PROCESSES + 1)
        for _ in range(PROCESSES):
            processes.start(calling_process, work, start, None, processes.results)
        start.wait(120)  # every process has built its store, FalconAuth and token
        reports = processes.collect(PROCESSES)
    assert all(isinstance(report, Report) for report in reports), reports
    assert [report.statuses for report in reports] == [[200] * THREADS * CALLS] * PROCESSES
    assert sum(report.stats.gave_up for report in reports) == 0
    counters = emulator.counters
    assert counters.api_ok == total
    windows = math.ceil(total / FLEET.api_per_cid)
    assert counters.api_429 <= PROCESSES * 2 * windows


def test_a_process_that_never_waits_returns_its_429_and_still_shares_the_cooldown(
    shared: StoreSpec, processes: Processes
) -> None:
    """With ``rate_limit_wait=0`` a process's 429 goes to its caller at once, and the cooldown
    it names is in the store: B, in another process, has seen the budget low, reads it and
    waits instead of getting a 429 of its own."""
    with falcon(SMALL) as emulator, shared.open() as cache:
        spec = job(shared, emulator, SMALL.window)
        impatient = job(shared, emulator, SMALL.window, calls=3, rate_limit_wait=0.0)
        ready, go = processes.context.Barrier(2), processes.context.Event()
        processes.start(calling_process, impatient, ready, go, processes.results)
        with spec.auth(cache) as b:
            ready.wait(120)  # the other process is built: the window starts with B's calls
            assert statuses(b, spec.url, 6) == [200] * 6
            assert b.rate_limits.remaining == 2  # low
            go.set()  # the other process spends the rest, and gets a 429
            (report,) = processes.collect(1)
            assert isinstance(report, Report), report
            assert report.statuses == [200, 200, 429]
            assert (report.stats.waits, report.stats.resent, report.stats.gave_up) == (0, 0, 1)
            (retry_after,) = report.retry_after
            with shared.open() as view:
                until = view.rate_cooldown(account(b))
            assert until == pytest.approx(float(retry_after), abs=0.001)
            assert time.time() < until
            assert statuses(b, spec.url) == [200]
            assert time.time() >= until
            assert b.rate_limits.waits == 1
            assert (b.rate_limits.resent, b.rate_limits.gave_up) == (0, 0)
        counters = emulator.counters
        assert (counters.api_ok, counters.api_429) == (9, 1)
