"""The port for async front ends: the event loop never waits on the network or on a lock.

:func:`begin` and :func:`settle` are the async twins of ``Port.begin`` and ``Port.settle``:
the same flow, with every token the flow asks for awaited instead of fetched in place.

The token engine (``_provider.py``) is built on threads: a fetch blocks its caller, and callers
that find no token wait on a lock for the one that fetches. An async caller must do neither on
its event loop, so:

- it first *peeks*: a cached token that the store can hand over without I/O (the in-memory
  store; the Redis store's local copy) is returned at once. That is the warm path, every call
  but the first and those after a rejection; a token in its renew window is renewed on the
  engine's background thread, as for every other caller;
- otherwise one task per event loop runs the engine's blocking call on a worker thread (anyio's
  ``to_thread``) and the loop's other tasks wait for its outcome on an ``anyio.Event``. Tasks
  of other event loops, and plain threads, meet in the engine's own single flight: however
  many loops and threads are cold at once, one token request goes out.

Cancellation: a task cancelled while it waits stops waiting at once. If it was the one that
started the worker thread, the thread is abandoned, not interrupted: the fetch completes, stores
its token and hands it to the loop itself, so the flight outlives the task that started it. A
task that arrives while the thread runs joins that flight; however many tasks are cancelled one
after another, one thread works on the errand (not one more parked thread each). Only worker
threads ever hold the engine's lock, and they always finish, so a cancellation leaves nothing
locked.

Works wherever anyio does: asyncio, and trio.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from ._flow import NEED_TOKEN, REWIND, Attach, Flow, NeedFreshToken, Pause, Reply, Step, advance
from ._port import Begun, Port
from .errors import FalconAuthError
from .token import Token

if TYPE_CHECKING:
    from ._sources import TokenSource

__all__ = ["begin", "close", "fresh_token", "settle", "token"]


@dataclass
class _Flight:
    """One worker thread's errand, awaited by the tasks of one event loop.

    Landed (``done`` set) on the loop's thread only: by the task that started it, or by the
    worker thread through the loop when that task was cancelled. Landed with neither a token
    nor an error, it was given up (its thread never began, or failed unexpectedly): a waiter
    starts another.
    """

    done: anyio.Event = field(default_factory=anyio.Event)
    token: Token | None = None
    error: FalconAuthError | None = None
    # Taken once: by the worker thread as it begins, or by its starter giving up before that.
    _claim: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> bool:
        """True for the first caller only: the thread that will run it, or the one giving up."""
        return self._claim.acquire(blocking=False)


# Per event loop (an anyio.Event belongs to the loop it was made on), per engine, per errand.
_FLIGHTS: RunVar[weakref.WeakKeyDictionary[TokenSource, dict[str, _Flight]]] = RunVar(
    "requests_falcon_auth_flights"
)


async def begin(port: Port, method: str, url: str) -> Begun:
    """A request's flow, with the token it needs awaited (``Port.begin`` for an event loop)."""
    begun = port.warm(method, url)
    if begun is not None:
        return begun
    flow, step = port.start(method, url)
    if step is NEED_TOKEN:
        step = advance(flow, await token(port))
    if not isinstance(step, Attach):
        return Begun(flow, None)
    if not port.budget.clear:  # near the limit: a look in the store, off the loop
        await _pause(port, await anyio.to_thread.run_sync(port.budget.pause))
    return Begun(flow, step)


async def settle(port: Port, flow: Flow, reply: Reply, rewind: Callable[[], bool]) -> Step | None:
    """The flow's verdict on ``reply``, a fresh token and any wait for the account's budget
    awaited (``Port.settle`` for a loop)."""
    step = advance(flow, reply)
    while step is REWIND or isinstance(step, (NeedFreshToken, Pause)):
        if isinstance(step, NeedFreshToken):
            step = advance(flow, await fresh_token(port, step.rejected))
        elif isinstance(step, Pause):
            await anyio.to_thread.run_sync(port.budget.share, step.until)
            await _pause(port, step.seconds)
            step = advance(flow, None)
        else:
            step = advance(flow, rewind())
    return step


async def _pause(port: Port, seconds: float) -> None:
    """Waits for the account's budget without blocking the loop, counted in its stats:
    ``seconds``, then for any cooldown that began meanwhile (a look in the store, off the loop)."""
    while seconds > 0:
        await anyio.sleep(seconds)
        port.budget.waited(seconds)
        seconds = await anyio.to_thread.run_sync(functools.partial(port.budget.pause, again=True))


async def token(port: Port) -> Token:
    """The token to attach, as ``Port.token`` gives it, without blocking.

    Raises:
        FalconAuthError: no token could be had.
    """
    ready = port.peek()
    if ready is not None:
        return ready
    return await _in_flight(port, "", port.token)


async def fresh_token(port: Port, rejected: Token) -> Token:
    """A usable token after the API rejected ``rejected``: ``Port.replace`` (dropping it from
    the store is I/O for a shared one) on a worker thread, unless another task or thread has
    replaced it already (and dropped it).

    Raises:
        FalconAuthError: no fresh token could be had.
    """
    ready = port.peek()
    if ready is not None and ready.access_token != rejected.access_token:
        return ready
    return await _in_flight(port, rejected.access_token, functools.partial(port.replace, rejected))


async def close(close_auth: Callable[[], None]) -> None:
    """Closes (revoke, bounded to seconds, never raises) on a worker thread."""
    await anyio.to_thread.run_sync(close_auth)


async def _in_flight(port: Port, errand: str, work: Callable[[], Token]) -> Token:
    """Runs ``work`` on a worker thread once per event loop and errand; every task waits for it."""
    flights = _flights_of(port.tokens)
    while (flight := flights.get(errand)) is not None:
        await flight.done.wait()
        if flight.token is not None:
            return flight.token
        if flight.error is not None:
            raise copy.copy(flight.error)
    flight = flights[errand] = _Flight()
    land = functools.partial(_land, flights, errand, flight)
    on_loop = _from_thread_soon()

    def run() -> Token | None:
        if not flight.claim():
            return None  # its starter gave up before the thread began
        try:
            token = work()
        except FalconAuthError as exc:
            on_loop(land, None, exc)
            raise
        except BaseException:
            on_loop(land, None, None)
            raise
        on_loop(land, token, None)
        return token

    try:
        token = await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    except FalconAuthError as exc:
        land(None, exc)
        raise
    except BaseException:
        if flight.claim():  # the thread never began, and never will: nobody else lands it
            land(None, None)
        raise
    assert token is not None  # run() returns None only after this task claimed the flight
    land(token, None)
    return token


def _land(
    flights: dict[str, _Flight],
    errand: str,
    flight: _Flight,
    token: Token | None,
    error: FalconAuthError | None,
) -> None:
    """Ends ``flight`` with its outcome, once (on the loop's thread): its waiters wake."""
    if flight.done.is_set():
        return
    if flights.get(errand) is flight:
        del flights[errand]
    flight.token, flight.error = token, error
    flight.done.set()


def _from_thread_soon() -> Callable[..., None]:
    """A function any thread may call to run a callback on the current event loop, without
    waiting for it (a worker thread that blocked on a loop that stopped would never end).
    Once the loop is closed, it does nothing."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # anyio runs on asyncio or trio: this is trio
        import trio

        token = trio.lowlevel.current_trio_token()

        def on_trio(callback: Callable[..., object], *args: object) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(callback, *args)

        return on_trio

    def on_asyncio(callback: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed
            loop.call_soon_threadsafe(callback, *args)

    return on_asyncio


def _flights_of(tokens: TokenSource) -> dict[str, _Flight]:
    try:
        loop_flights = _FLIGHTS.get()
    except LookupError:
        loop_flights = weakref.WeakKeyDictionary()
        _FLIGHTS.set(loop_flights)
    return loop_flights.setdefault(tokens, {})
