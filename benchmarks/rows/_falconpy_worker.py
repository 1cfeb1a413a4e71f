"""falconpy's auth objects as row 16 sets them up, and what one of its processes does.

Kept apart from the row so that a spawned process imports the setup it needs and no row code.
Each process builds its auth object (falconpy's ``OAuth2``, or a ``FalconPyAuth`` on a
FileTokenCache, a RedisTokenCache or the in-memory cache), waits at the row's barrier with the
others, then does what a falconpy script does first: builds ``Hosts(auth_object=...)`` and calls
``query_devices_by_filter(limit=1)``. It reports the status, or its error, on a queue.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Final

import requests
from falconpy import Hosts, OAuth2

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.falconpy import FalconPyAuth

from .. import loopback
from ..peers import PinnedBaseUrl
from ..remote import Target

__all__ = [
    "FALCONPY",
    "FILE",
    "MEMORY",
    "REDIS",
    "TIMEOUT",
    "BridgeJob",
    "BridgeReport",
    "PinnedOAuth2",
    "bridge",
    "call_hosts",
    "falconpy_alone",
    "work",
]

FILE: Final = "FalconPyAuth + FileTokenCache"
REDIS: Final = "FalconPyAuth + RedisTokenCache"
MEMORY: Final = "FalconPyAuth, in-memory cache"
FALCONPY: Final = "falconpy"
TIMEOUT: Final = 30.0  # falconpy has no default timeout; every falconpy-alone object gets this


class PinnedOAuth2(PinnedBaseUrl, OAuth2):
    """falconpy's ``OAuth2`` auth object, keeping the base URL it was given."""


def bridge(target: Target, **auth: Any) -> FalconPyAuth:
    """``FalconPyAuth(FalconAuth(client_id, client_secret, base_url=..., **auth))``."""
    return FalconPyAuth(
        FalconAuth(target.client_id, target.client_secret, base_url=target.base_url, **auth)
    )


def falconpy_alone(target: Target, session: requests.Session | None = None) -> PinnedOAuth2:
    """falconpy's own ``OAuth2`` for ``target`` (``session=`` its 1.6.5 connection reuse)."""
    return PinnedOAuth2(
        client_id=target.client_id,
        client_secret=target.client_secret,
        base_url=target.base_url,
        timeout=TIMEOUT,
        session=session,
    )


def call_hosts(hosts: Hosts) -> int:
    """``query_devices_by_filter(limit=1)``: its HTTP status as falconpy reports it."""
    result = hosts.query_devices_by_filter(limit=1)
    status = result.get("status_code") if isinstance(result, dict) else None
    if not isinstance(status, int):  # falconpy types a binary download as bytes
        raise TypeError(f"falconpy answered {type(result).__name__} without a status code")
    return status


@dataclass(frozen=True)
class BridgeJob:
    """One process's instructions."""

    kind: str  # FILE, REDIS, MEMORY or FALCONPY
    target: Target
    cache_dir: str
    redis_port: int | None


@dataclass(frozen=True)
class BridgeReport:
    """What one process saw: the call's status, refused connections, or the error it hit."""

    status: int | None
    refused: list[str]
    error: str | None


def _auth_object(job: BridgeJob, stack: ExitStack) -> OAuth2:
    if job.kind == FALCONPY:
        return falconpy_alone(job.target)  # one per process: falconpy cannot share one
    cache: Any = None
    if job.kind == FILE:
        from requests_falcon_auth.filecache import FileTokenCache

        cache = FileTokenCache(path=job.cache_dir)
    elif job.kind == REDIS:
        import redis

        from requests_falcon_auth.redis import RedisTokenCache

        if job.redis_port is None:
            raise ValueError("a Redis job needs redis_port")
        client = redis.Redis(host="127.0.0.1", port=job.redis_port, socket_timeout=TIMEOUT)
        stack.callback(client.close)
        cache = RedisTokenCache(client)
    made = bridge(job.target, cache=cache)
    stack.callback(made.close)  # as its owner would: revokes unless the cache shares it
    return made


def work(job: BridgeJob, barrier: Any, results: Any) -> None:
    """The process's body: its auth object built (no I/O yet), then all at once, then report."""
    loopback.install()
    status = error = None
    try:
        with ExitStack() as stack:
            auth_object = _auth_object(job, stack)
            barrier.wait()
            status = call_hosts(Hosts(auth_object=auth_object))
    except Exception as exc:  # noqa: BLE001 -- reported to the row, which raises it
        error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    finally:
        results.put(BridgeReport(status, loopback.refused(), error))
