"""Tokens for async front ends: the event loop never waits on the network or on a lock.

The token engine (``provider.py``) is built on threads: a fetch blocks its caller, and callers
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
started the worker thread, the thread is abandoned, not interrupted: the fetch completes and
stores its token, and the loop's remaining waiters pick it up (one of them asks the engine again,
which by then answers from the cache). Only worker threads ever hold the engine's lock, and they
always finish, so a cancellation leaves nothing locked.

Works wherever anyio does: asyncio, and trio.
"""

from __future__ import annotations

import copy
import functools
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from .errors import FalconAuthError
from .token import Token

if TYPE_CHECKING:
    from .auth import FalconAuth
    from .provider import TokenProvider

__all__ = ["close", "fresh_token", "token"]


@dataclass
class _Flight:
    """One worker thread's errand, awaited by the tasks of one event loop."""

    done: anyio.Event = field(default_factory=anyio.Event)
    token: Token | None = None
    error: FalconAuthError | None = None


# Per event loop (an anyio.Event belongs to the loop it was made on), per engine, per errand.
_FLIGHTS: RunVar[weakref.WeakKeyDictionary[TokenProvider, dict[str, _Flight]]] = RunVar(
    "requests_falcon_auth_flights"
)


async def token(auth: FalconAuth) -> Token:
    """The token to attach, as ``FalconAuth``'s blocking answer gives it, without blocking.

    Raises:
        FalconAuthError: no token could be had.
    """
    ready = auth._provider.peek()
    if ready is not None:
        return ready
    return await _in_flight(auth, "", auth._token)


async def fresh_token(auth: FalconAuth, rejected: Token) -> Token:
    """A usable token after the API rejected ``rejected`` (which is dropped if still cached).

    Raises:
        FalconAuthError: no fresh token could be had.
    """
    auth._disown(rejected)
    ready = auth._provider.peek()
    if ready is not None and ready.access_token != rejected.access_token:
        return ready  # another task or thread replaced it already
    return await _in_flight(auth, rejected.access_token, functools.partial(auth._replace, rejected))


async def close(auth: FalconAuth) -> None:
    """``auth.close()`` (revoke, bounded to seconds, never raises) on a worker thread."""
    await anyio.to_thread.run_sync(auth.close)


async def _in_flight(auth: FalconAuth, errand: str, work: Callable[[], Token]) -> Token:
    """Runs ``work`` on a worker thread once per event loop and errand; every task waits for it."""
    flights = _flights_of(auth._provider)
    while (flight := flights.get(errand)) is not None:
        await flight.done.wait()
        if flight.token is not None:
            return flight.token
        if flight.error is not None:
            raise copy.copy(flight.error)
        # The task that ran it was cancelled; its thread goes on, and the engine knows.
    flight = flights[errand] = _Flight()
    try:
        flight.token = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
    except FalconAuthError as exc:
        flight.error = exc
        raise
    finally:
        del flights[errand]
        flight.done.set()
    return flight.token


def _flights_of(provider: TokenProvider) -> dict[str, _Flight]:
    try:
        loop_flights = _FLIGHTS.get()
    except LookupError:
        loop_flights = weakref.WeakKeyDictionary()
        _FLIGHTS.set(loop_flights)
    return loop_flights.setdefault(provider, {})
