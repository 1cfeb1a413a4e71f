"""FalconHttpxAuth under concurrency, against the emulator: real tasks, threads and event loops.

The wire contract (scope, redirects, one re-send, replay, cookies) is in ``test_auth_wire.py``,
shared with every front end; this module holds what only an async front end must show. Tasks
are synchronised with ``anyio.wait_all_tasks_blocked`` (every other task is parked), the
emulator's token gate and its counters; nothing waits on a timer.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Callable

import anyio
import anyio.abc
import anyio.to_thread
import httpx
import pytest
from support import tokens_of

from requests_falcon_auth import CredentialsError, FalconAuth, _async_tokens
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.testing import FalconEmulator, ManualClock, TokenGate
from requests_falcon_auth.testing.pytest_plugin import EmulatedFalcon, running_emulator

DEVICES = "/devices/queries/devices/v1"
GATE_TIMEOUT = 20.0  # a safety net for a broken build, never reached by a passing one


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def falcon() -> Iterator[EmulatedFalcon]:
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def auth(falcon: EmulatedFalcon) -> Iterator[FalconAuth]:
    with FalconAuth(falcon.client_id, falcon.client_secret, clouds=falcon.clouds) as auth:
        yield auth


def url_of(falcon: FalconEmulator) -> str:
    return falcon.base_url("us-1") + DEVICES


@contextlib.contextmanager
def held_tokens(falcon: FalconEmulator) -> Iterator[TokenGate]:
    """Holds the emulator's token answers; a timer releases them after GATE_TIMEOUT, so a
    broken build fails its asserts instead of hanging with tasks parked behind the gate."""
    with falcon.hold_token_requests() as gate:
        safety = threading.Timer(GATE_TIMEOUT, gate.release)
        safety.start()
        try:
            yield gate
        finally:
            safety.cancel()


async def wait_in_thread(wait: Callable[[int, float], bool], n: int) -> None:
    """Runs a blocking ``wait_for_held``-style wait without blocking the event loop."""
    assert await anyio.to_thread.run_sync(wait, n, GATE_TIMEOUT)


def start_calls(
    tasks: anyio.abc.TaskGroup, client: httpx.AsyncClient, url: str, n: int, statuses: list[int]
) -> None:
    """Starts ``n`` tasks that each GET ``url`` and note the status it got."""

    async def call() -> None:
        statuses.append((await client.get(url)).status_code)

    for _ in range(n):
        tasks.start_soon(call)


@pytest.mark.anyio
async def test_two_hundred_cold_tasks_make_one_token_request(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    statuses: list[int] = []
    with held_tokens(falcon) as gate:
        client = httpx.AsyncClient(auth=FalconHttpxAuth(auth))
        async with client, anyio.create_task_group() as tasks:
            start_calls(tasks, client, url_of(falcon), 200, statuses)
            await anyio.wait_all_tasks_blocked()
            await wait_in_thread(gate.wait_for_held, 1)
            assert statuses == []  # all 200 in flight, the token answer held
            gate.release()
    assert statuses == [200] * 200
    assert falcon.counters.token_requests == 1


@pytest.mark.anyio
async def test_a_cancelled_task_leaves_the_fetch_to_the_others_and_nothing_locked(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    """The task that started the fetch is cancelled while the token answer is held: the
    others still get the token of that one request, and later calls find nothing locked."""
    statuses: list[int] = []
    cancelled: list[bool] = []
    with held_tokens(falcon) as gate:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as client:

            async def first_call(scope: anyio.CancelScope) -> None:
                with scope:
                    statuses.append((await client.get(url_of(falcon))).status_code)
                cancelled.append(scope.cancel_called)

            async with anyio.create_task_group() as tasks:
                first = anyio.CancelScope()
                tasks.start_soon(first_call, first)
                await anyio.wait_all_tasks_blocked()
                await wait_in_thread(gate.wait_for_held, 1)  # the first task's fetch is out
                start_calls(tasks, client, url_of(falcon), 20, statuses)
                await anyio.wait_all_tasks_blocked()
                first.cancel()
                await anyio.wait_all_tasks_blocked()
                assert cancelled == [True]
                gate.release()
            assert statuses == [200] * 20
            assert (await client.get(url_of(falcon))).status_code == 200
    assert falcon.counters.token_requests == 1
    lock = auth.cache.lock(tokens_of(auth).key)
    assert lock.acquire(blocking=False)
    lock.release()


@pytest.mark.anyio
async def test_when_every_waiter_is_cancelled_the_fetch_still_lands(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    with held_tokens(falcon) as gate:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as client:
            async with anyio.create_task_group() as tasks:
                for _ in range(10):
                    tasks.start_soon(client.get, url_of(falcon))
                await anyio.wait_all_tasks_blocked()
                await wait_in_thread(gate.wait_for_held, 1)
                tasks.cancel_scope.cancel()
            gate.release()
            # The abandoned worker thread stores the token; the next call is served from it.
            assert (await client.get(url_of(falcon))).status_code == 200
    assert falcon.counters.token_requests == 1


async def get_within(scope: anyio.CancelScope, client: httpx.AsyncClient, url: str) -> None:
    """GETs ``url`` until ``scope`` is cancelled."""
    with scope:
        await client.get(url)


@pytest.mark.anyio
async def test_tasks_cancelled_one_after_another_leave_one_thread_on_the_fetch(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    """300 tasks, each cancelled while the token answer is held: each later one joins the
    first one's worker thread instead of parking a thread of its own (301 threads before)."""
    with held_tokens(falcon) as gate:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as client:
            async with anyio.create_task_group() as tasks:
                first = anyio.CancelScope()
                tasks.start_soon(get_within, first, client, url_of(falcon))
                await wait_in_thread(gate.wait_for_held, 1)  # its fetch is out, on its thread
                threads = threading.active_count()
                first.cancel()
                for _ in range(299):
                    scope = anyio.CancelScope()
                    tasks.start_soon(get_within, scope, client, url_of(falcon))
                    await anyio.wait_all_tasks_blocked()
                    scope.cancel()
                await anyio.wait_all_tasks_blocked()
            assert threading.active_count() - threads <= 2
            assert (gate.held, falcon.counters.token_requests) == (1, 1)
            gate.release()
            assert (await client.get(url_of(falcon))).status_code == 200
    assert falcon.counters.token_requests == 1


@pytest.mark.anyio
async def test_a_failure_reaches_the_tasks_that_joined_a_cancelled_tasks_fetch(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    """The worker thread hands its error to the loop itself: the task awaiting it is gone."""
    failures: list[str] = []
    falcon.fail_token_requests(1, status=403)
    with held_tokens(falcon) as gate:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as client:

            async def joined() -> None:
                with pytest.raises(CredentialsError) as caught:
                    await client.get(url_of(falcon))
                failures.append(caught.value.message)

            async with anyio.create_task_group() as tasks:
                first = anyio.CancelScope()
                tasks.start_soon(get_within, first, client, url_of(falcon))
                await wait_in_thread(gate.wait_for_held, 1)
                tasks.start_soon(joined)
                await anyio.wait_all_tasks_blocked()
                first.cancel()
                await anyio.wait_all_tasks_blocked()
                gate.release()
    assert len(failures) == 1
    assert failures[0].startswith("Falcon refused the token request (403: ")
    assert falcon.counters.token_requests == 1


@pytest.mark.anyio
async def test_a_task_cancelled_before_its_thread_began_leaves_no_flight_behind(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    """Cancelled at its first checkpoint, the worker thread never runs: the task that started
    the flight ends it, or the next task would wait for a thread that will never land."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await _async_tokens.token(auth.port)
    assert scope.cancelled_caught
    with anyio.fail_after(GATE_TIMEOUT):  # a safety net for a broken build
        assert (await _async_tokens.token(auth.port)).access_token
    assert falcon.counters.token_requests == 1


def test_two_event_loops_in_two_threads_share_one_token(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    """An asyncio loop and a trio loop, each with 50 cold tasks, meet in one token request."""
    statuses: list[int] = []
    parked = threading.Barrier(3)

    async def fifty_calls() -> None:
        client = httpx.AsyncClient(auth=FalconHttpxAuth(auth))
        async with client, anyio.create_task_group() as tasks:
            start_calls(tasks, client, url_of(falcon), 50, statuses)
            await anyio.wait_all_tasks_blocked()
            await anyio.to_thread.run_sync(parked.wait, GATE_TIMEOUT)

    failures: list[BaseException] = []

    def run(backend: str) -> None:
        try:
            anyio.run(fifty_calls, backend=backend)
        except BaseException as exc:  # reported by the test thread below
            failures.append(exc)
            parked.abort()

    with held_tokens(falcon) as gate:
        loops = [threading.Thread(target=run, args=(b,)) for b in ("asyncio", "trio")]
        for loop in loops:
            loop.start()
        parked.wait(GATE_TIMEOUT)  # both loops have all their tasks in flight
        assert gate.wait_for_held(1, GATE_TIMEOUT)
        gate.release()
        for loop in loops:
            loop.join(GATE_TIMEOUT)
    assert failures == []
    assert statuses == [200] * 100
    assert falcon.counters.token_requests == 1


@pytest.mark.anyio
async def test_the_event_loop_keeps_running_while_a_token_answer_is_held(
    falcon: EmulatedFalcon, auth: FalconAuth
) -> None:
    """A ticker task keeps ticking while the only token request hangs. Were the fetch done on
    the loop, the ticker would stop until the safety timer released the gate, and the ticks
    counted while it was held would be zero. (The lag in milliseconds is in benchmarks/.)"""
    ticks_while_held = 0
    with held_tokens(falcon) as gate:
        client = httpx.AsyncClient(auth=FalconHttpxAuth(auth))
        async with client, anyio.create_task_group() as tasks:
            response: list[httpx.Response] = []

            async def call() -> None:
                response.append(await client.get(url_of(falcon)))

            tasks.start_soon(call)
            await wait_in_thread(gate.wait_for_held, 1)
            while ticks_while_held < 50 and not gate.released:
                await anyio.sleep(0.001)
                ticks_while_held += 1
            gate.release()
    assert ticks_while_held == 50
    assert response[0].status_code == 200


@pytest.mark.anyio
async def test_a_token_in_its_renew_window_is_renewed_off_the_callers_path(
    falcon: EmulatedFalcon,
) -> None:
    clock = ManualClock()
    auth = FalconAuth(falcon.client_id, falcon.client_secret, clouds=falcon.clouds, clock=clock)
    async with FalconHttpxAuth(auth) as httpx_auth, httpx.AsyncClient(auth=httpx_auth) as client:
        first = await client.get(url_of(falcon))
        clock.now += 1799 - 60  # inside the 120 s renew window, not expired
        with held_tokens(falcon) as gate:
            during = await client.get(url_of(falcon))  # answered while the renewal is held
            await wait_in_thread(gate.wait_for_held, 1)
            gate.release()
        assert await anyio.to_thread.run_sync(tokens_of(auth).wait_for_renewal, GATE_TIMEOUT)
        after = await client.get(url_of(falcon))
    bearer = [r.request.headers["Authorization"] for r in (first, during, after)]
    assert bearer[0] == bearer[1] != bearer[2]
    assert falcon.counters.token_requests == 2


@pytest.mark.anyio
async def test_async_with_revokes_at_exit(falcon: EmulatedFalcon) -> None:
    auth = FalconAuth(falcon.client_id, falcon.client_secret, clouds=falcon.clouds)
    async with FalconHttpxAuth(auth) as httpx_auth, httpx.AsyncClient(auth=httpx_auth) as client:
        assert (await client.get(url_of(falcon))).status_code == 200
    assert falcon.counters.revokes == 1


def test_with_revokes_at_exit(falcon: EmulatedFalcon) -> None:
    auth = FalconAuth(falcon.client_id, falcon.client_secret, clouds=falcon.clouds)
    with FalconHttpxAuth(auth) as httpx_auth, httpx.Client(auth=httpx_auth) as client:
        assert client.get(url_of(falcon)).status_code == 200
    assert falcon.counters.revokes == 1


@pytest.mark.anyio
async def test_a_revoke_that_fails_at_aclose_is_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_emulator() as falcon:
        auth = FalconAuth(falcon.client_id, falcon.client_secret, clouds=falcon.clouds)
        httpx_auth = FalconHttpxAuth(auth)
        async with httpx.AsyncClient(auth=httpx_auth) as client:
            assert (await client.get(url_of(falcon))).status_code == 200
    with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        await httpx_auth.aclose()  # the emulator is gone
    assert "Could not revoke the Falcon token at close" in caplog.text


@pytest.mark.anyio
async def test_a_failed_fetch_reaches_every_waiting_task_as_its_error(
    falcon: EmulatedFalcon,
) -> None:
    """Wrong credentials: one token request, and each of the tasks gets the CredentialsError."""
    from requests_falcon_auth import CredentialsError

    auth = FalconAuth(falcon.client_id, "not-the-secret", clouds=falcon.clouds)
    errors: list[type[BaseException]] = []
    async with FalconHttpxAuth(auth) as httpx_auth, httpx.AsyncClient(auth=httpx_auth) as client:

        async def call() -> None:
            try:
                await client.get(url_of(falcon))
            except CredentialsError as exc:
                errors.append(type(exc))

        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(call)
    assert errors == [CredentialsError] * 20
    assert falcon.counters.token_requests == 1


def test_the_default_falcon_auth_comes_from_the_environment(
    falcon: EmulatedFalcon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALCON_CLIENT_ID", falcon.client_id)
    monkeypatch.setenv("FALCON_CLIENT_SECRET", falcon.client_secret)
    monkeypatch.setenv("FALCON_CLOUD", "us-1")
    httpx_auth = FalconHttpxAuth()
    assert httpx_auth.falcon.client_id == falcon.client_id
    assert falcon.client_secret not in repr(httpx_auth)
    httpx_auth.close()


@pytest.mark.parametrize("missing", ["httpx", "anyio"])
def test_a_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    for module in ("requests_falcon_auth.httpx", "requests_falcon_auth._async_tokens"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=r"pip install 'requests-falcon-auth\[httpx\]'"):
        importlib.import_module("requests_falcon_auth.httpx")
