"""What one process of the fleet row does (kept apart so the fork server preloads little else).

It builds its own client (this library with a Redis or an in-memory cache, or a peer), then
for each token lifetime waits at the row's barrier, makes its calls and waits again while the
row steps the shared clock forward. It reports its outcomes, or its error, on a queue.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Final

import redis

from requests_falcon_auth._sources import fetched
from requests_falcon_auth.redis import RedisTokenCache

from .. import loopback
from ..clock import SharedClock
from ..peers import OURS, FalconAuthPeer, Peer, PeerOptions, make_peer
from ..remote import Target

__all__ = ["MEMORY", "REDIS", "FleetJob", "FleetReport", "work"]

REDIS: Final = "requests-falcon-auth + RedisTokenCache"
MEMORY: Final = "requests-falcon-auth, in-memory cache"
_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class FleetJob:
    """One process's instructions."""

    kind: str  # REDIS, MEMORY or a peer's name
    target: Target
    clock: SharedClock
    redis_port: int | None
    lifetimes: int
    calls: int
    slow: float  # a call this long or longer waited for a token answer


@dataclass(frozen=True)
class FleetReport:
    """What one process saw: outcomes by name, calls after the first lifetime that waited for
    a token answer, refused connections, or the error it hit."""

    outcomes: dict[str, int]
    waited: int
    refused: list[str]
    error: str | None


def _peer(job: FleetJob, stack: ExitStack) -> Peer:
    if job.kind not in (REDIS, MEMORY):
        return make_peer(job.kind, job.target)  # its own clock: a peer's cannot be stepped
    cache = None
    if job.kind == REDIS:
        if job.redis_port is None:
            raise ValueError("a Redis job needs redis_port")
        client = redis.Redis(host="127.0.0.1", port=job.redis_port, socket_timeout=_TIMEOUT)
        stack.callback(client.close)
        cache = RedisTokenCache(client, wall_clock=job.clock.wall)
    return make_peer(OURS, job.target, PeerOptions(clock=job.clock, cache=cache))


def work(job: FleetJob, barrier: Any, results: Any) -> None:
    """The process's body; ``barrier`` and ``results`` come from the row's context."""
    loopback.install()
    outcomes: Counter[str] = Counter()
    waited = 0
    error = None
    try:
        with ExitStack() as stack:
            peer = stack.enter_context(_peer(job, stack))
            caller = peer.caller()
            for lifetime in range(job.lifetimes):
                barrier.wait()  # the row has set the clock: go
                for _ in range(job.calls):
                    started = time.perf_counter()
                    outcomes[str(caller.get())] += 1
                    if lifetime and time.perf_counter() - started >= job.slow:
                        waited += 1  # after the cold start: a call that waited on a renewal
                if isinstance(peer, FalconAuthPeer):
                    # Real lifetimes last 28 minutes: a renewal in flight lands long before
                    # the next one. The shared clock jumps, so let it land first.
                    fetched(peer.auth.port.tokens).wait_for_renewal(_TIMEOUT)
                barrier.wait()  # done with this lifetime: the row may step the clock
    except threading.BrokenBarrierError:
        error = "the row's barrier broke (another process failed)"
    except Exception as exc:  # noqa: BLE001 -- reported to the row, which raises it
        error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    finally:
        job.clock.close()
        results.put(FleetReport(dict(outcomes), waited, loopback.refused(), error))
