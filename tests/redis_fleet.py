"""Finding redis-server for the tests (a failure in CI when missing), and the fleet worker.

The server itself is started by :mod:`redis_launcher` (shared with the benchmarks).

The worker lives here, not in the test module, so that "spawn" children import little.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import requests
from redis_launcher import INSTALL_HINT, RedisServer

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.redis import RedisTokenCache

__all__ = [
    "FleetJob",
    "RedisServer",
    "fleet_worker",
    "redis_server_executable",
    "renewing_worker",
]


def redis_server_executable() -> str:
    """The redis-server path; a skip (a failure with CI=true) when it is not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = f"redis-server is not installed: {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return executable


@dataclass(frozen=True)
class FleetJob:
    """What one worker process does: build its own client, cache and auth, then GET ``url``."""

    redis_port: int
    clouds: dict[str, str]
    client_id: str
    client_secret: str
    url: str
    calls: int
    lock_ttl: float


def fleet_worker(job: FleetJob, start: Any, go: Any, results: Any) -> None:
    """Runs ``job`` after ``start`` (a Barrier) and ``go`` (an Event), if given; reports its
    statuses, or the error, on ``results``."""
    outcome: list[object] = []
    client = redis.Redis(port=job.redis_port, socket_timeout=30)
    try:
        cache = RedisTokenCache(client, lock_ttl=job.lock_ttl)
        auth = FalconAuth(
            job.client_id, job.client_secret, cloud="us-1", clouds=job.clouds, cache=cache
        )
        with requests.Session() as session:
            auth.attach(session)
            if start is not None:
                start.wait(60)
            if go is not None and not go.wait(60):
                raise TimeoutError("never told to go")
            for _ in range(job.calls):
                outcome.append(session.get(job.url, timeout=60).status_code)
    except Exception as exc:
        outcome.append(f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
        results.put(outcome)


def renewing_worker(
    job: FleetJob, offset: Any, ready: Any, go: Any, done: Any, results: Any
) -> None:
    """A fleet member whose clock runs ``offset`` seconds ahead (the test moves it into the renew
    window). Reports its statuses in the window, then after ``done``, one more."""
    client = redis.Redis(port=job.redis_port, socket_timeout=30)
    try:
        auth = FalconAuth(
            job.client_id,
            job.client_secret,
            cloud="us-1",
            clouds=job.clouds,
            # Both clocks move by the offset, as they would together in the real world.
            cache=RedisTokenCache(
                client, lock_ttl=job.lock_ttl, wall_clock=lambda: time.time() + offset.value
            ),
            clock=lambda: time.monotonic() + offset.value,
        )
        with requests.Session() as session:
            auth.attach(session)
            first = session.get(job.url, timeout=60).status_code
            ready.wait(60)
            if not go.wait(60):
                raise TimeoutError("never told to go")
            window = [session.get(job.url, timeout=60).status_code for _ in range(job.calls)]
            results.put([first, *window])
            if not done.wait(60):
                raise TimeoutError("never told the renewal was let through")
            auth._provider.wait_for_renewal(60)
            results.put([session.get(job.url, timeout=60).status_code])
    except Exception as exc:
        results.put([f"{type(exc).__name__}: {exc}"])
    finally:
        client.close()
