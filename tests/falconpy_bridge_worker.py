"""A process that uses falconpy on a FalconPyAuth whose FalconAuth shares its token through a
store (a FileTokenCache directory, a redis-server or a Redis Cluster), as one process of a host
or fleet running falconpy scripts would.

Started "spawn" (:class:`fleet_worker.Processes`): it inherits nothing from pytest and builds its
own store, FalconAuth and FalconPyAuth from a picklable job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fleet_worker import FileSpec, RedisSpec

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.cache import TokenCache
from requests_falcon_auth.token import Clock

__all__ = ["BridgeJob", "ClusterSpec", "bridge_worker"]


@dataclass(frozen=True)
class ClusterSpec:
    """A RedisTokenCache on a new client of the Redis Cluster one of whose nodes is at ``port``."""

    port: int

    @contextmanager
    def open(self, wall_clock: Clock = time.time) -> Iterator[TokenCache]:
        from redis.cluster import RedisCluster

        from requests_falcon_auth.redis import RedisTokenCache

        client = RedisCluster(host="127.0.0.1", port=self.port, socket_timeout=30)
        try:
            yield RedisTokenCache(client, wall_clock=wall_clock)
        finally:
            client.close()


@dataclass(frozen=True)
class BridgeJob:
    """What one process does: build its store, FalconAuth and FalconPyAuth, then make one
    falconpy call."""

    store: FileSpec | RedisSpec | ClusterSpec
    clouds: dict[str, str]
    client_id: str
    client_secret: str


def bridge_worker(job: BridgeJob, start: Any, results: Any) -> None:
    """Builds its auth object (no I/O yet), passes ``start`` (a Barrier) with the others, then
    does what a falconpy script does first: ``Hosts(auth_object=...)`` (which logs in) and one
    call. Reports the call's status, or the error, on ``results``."""
    from falconpy import Hosts

    from requests_falcon_auth.falconpy import FalconPyAuth

    outcome: object = None
    try:
        with job.store.open() as cache:
            auth = FalconPyAuth(
                FalconAuth(
                    job.client_id,
                    job.client_secret,
                    cloud="us-1",
                    clouds=job.clouds,
                    cache=cache,
                )
            )
            try:
                start.wait(120)
                result = Hosts(auth_object=auth).query_devices_by_filter(limit=1)
                outcome = result["status_code"] if isinstance(result, dict) else result
            finally:
                auth.close()  # as its owner would: a token the store shares stays live
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    finally:
        results.put(outcome)
