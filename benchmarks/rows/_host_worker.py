"""What one process of the one-host row does (kept apart so that spawning it imports little).

It builds its client (this library on a FileTokenCache or on its in-memory cache, or falconpy),
waits at the row's barrier with the others, asks for a token the way that library does, and
reports "ok" or the error it hit on a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["FILE", "MEMORY", "HostJob", "work"]

FILE: Final = "requests-falcon-auth + FileTokenCache"
MEMORY: Final = "requests-falcon-auth, in-memory cache"
_TIMEOUT: Final = 60.0


@dataclass(frozen=True)
class HostJob:
    """One process's instructions."""

    kind: str  # FILE, MEMORY or "falconpy"
    base_url: str
    client_id: str
    client_secret: str
    cache_dir: str


def _token(job: HostJob) -> None:
    if job.kind == "falconpy":
        from falconpy import OAuth2

        answer = OAuth2(
            client_id=job.client_id,
            client_secret=job.client_secret,
            base_url=job.base_url,
            timeout=_TIMEOUT,
        ).token()
        if answer["status_code"] != 201:
            raise RuntimeError(f"falconpy got {answer['status_code']}")
        return
    from requests_falcon_auth import FalconAuth
    from requests_falcon_auth.filecache import FileTokenCache

    cache = FileTokenCache(job.cache_dir) if job.kind == FILE else None
    with FalconAuth(job.client_id, job.client_secret, base_url=job.base_url, cache=cache) as auth:
        auth.get_token()


def work(job: HostJob, barrier: Any, results: Any) -> None:
    """The process's body: ready, then all at once, then report."""
    try:
        barrier.wait()
        _token(job)
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 -- reported to the row, which fails the run
        results.put(f"{type(exc).__name__}: {exc}")
