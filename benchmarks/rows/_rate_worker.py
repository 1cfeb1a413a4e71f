"""What one process of the rate-budget row does (kept apart so that spawning it imports little).

It builds its client (this library on Redis, on a shared directory, in memory, or with a
per-call ``FalconRetry``; or falconpy), gives each of its threads a caller, waits at the row's
barrier with the other processes, then lets every thread call as fast as it can until the
deadline. It reports its outcomes, how long it ran, or the error it hit, on a queue.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Final

import redis
from requests.adapters import HTTPAdapter

from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.retry import FalconRetry

from .. import loopback
from ..peers import OURS, Caller, Peer, PeerOptions, make_peer, succeeded
from ..remote import Target
from ._threads import together

__all__ = [
    "FILE",
    "MEMORY",
    "REDIS",
    "RETRY",
    "RateJob",
    "RateReport",
    "work",
]

REDIS: Final = "requests-falcon-auth + RedisTokenCache"
FILE: Final = "requests-falcon-auth + FileTokenCache"
MEMORY: Final = "requests-falcon-auth, in-memory cache"
RETRY: Final = "requests-falcon-auth + per-call FalconRetry"
_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class RateJob:
    """One process's instructions."""

    kind: str  # REDIS, FILE, MEMORY, RETRY or "falconpy"
    target: Target
    threads: int
    seconds: float  # how long each thread calls
    backoff: float  # seconds a caller waits after a failed call (0: not at all)
    window: float  # the emulator's budget window, which FalconAuth is told
    redis_port: int | None = None
    cache_dir: str | None = None


@dataclass(frozen=True)
class RateReport:
    """What one process saw: outcomes by name, seconds from the barrier to its last thread's
    end, refused connections, or the error it hit."""

    outcomes: dict[str, int]
    busy: float
    refused: list[str]
    error: str | None


def _peer(job: RateJob, stack: ExitStack) -> Peer:
    if job.kind == "falconpy":
        return make_peer("falconpy", job.target, PeerOptions(threads=job.threads))
    options = PeerOptions(threads=job.threads, rate_limit_window=job.window)
    if job.kind == REDIS:
        if job.redis_port is None:
            raise ValueError("a Redis job needs redis_port")
        client = redis.Redis(host="127.0.0.1", port=job.redis_port, socket_timeout=_TIMEOUT)
        stack.callback(client.close)
        options = replace(options, cache=RedisTokenCache(client))
    elif job.kind == FILE:
        if job.cache_dir is None:
            raise ValueError("a file job needs cache_dir")
        options = replace(options, cache=FileTokenCache(job.cache_dir))
    elif job.kind == RETRY:
        # The per-call answer to a 429: urllib3 retries on the gateway path, honouring
        # X-Ratelimit-Retryafter; FalconAuth itself must not wait as well.
        options = replace(
            options, api_adapter=HTTPAdapter(max_retries=FalconRetry()), rate_limit_wait=0.0
        )
    return make_peer(OURS, job.target, options)


def _call_until(deadline: float, backoff: float, caller: Caller) -> Counter[str]:
    """One thread: calls until ``deadline``, waiting ``backoff`` after each failed call."""
    outcomes: Counter[str] = Counter()
    while time.monotonic() < deadline:
        outcome = caller.get()
        outcomes[str(outcome)] += 1
        if backoff and not succeeded(outcome):
            time.sleep(max(0.0, min(backoff, deadline - time.monotonic())))
    return outcomes


def work(job: RateJob, barrier: Any, results: Any) -> None:
    """The process's body; ``barrier`` and ``results`` come from the row's context."""
    loopback.install()
    outcomes: Counter[str] = Counter()
    busy = 0.0
    error = None
    try:
        with ExitStack() as stack:
            peer = stack.enter_context(_peer(job, stack))
            callers = [peer.caller() for _ in range(job.threads)]
            barrier.wait()  # every process is ready: go
            started = time.monotonic()
            call = partial(_call_until, started + job.seconds, job.backoff)
            per_thread, _ = together(call, callers)
            busy = time.monotonic() - started
            for counted in per_thread:
                outcomes.update(counted)
    except threading.BrokenBarrierError:
        error = "the row's barrier broke (another process failed)"
    except Exception as exc:  # noqa: BLE001 -- reported to the row, which raises it
        error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    finally:
        results.put(RateReport(dict(outcomes), busy, loopback.refused(), error))
