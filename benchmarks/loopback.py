"""A guard that keeps every benchmark connection on loopback.

The benchmarks run third-party SDKs against a local emulator; one of them (falconpy) rewrites
a custom base URL to ``https://api.crowdstrike.com`` after each token. Rather than trust each
library's configuration, every process of a run refuses, before any DNS lookup or packet,
a urllib3 connection (what ``requests`` uses) or an httpcore one (what ``httpx`` uses, sync and
async) to anything but a loopback address, and counts the refusals so the report can say none
happened.
"""

from __future__ import annotations

import errno
import ipaddress
import threading
from typing import Any, Final

import urllib3.util.connection

__all__ = ["GuardedConnectionError", "install", "record_refused", "refused"]

_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})

_lock = threading.Lock()
_refused: list[str] = []
_installed: list[bool] = []  # one True once installed in this process


class GuardedConnectionError(OSError):
    """A connection to a host that is not loopback, refused by the benchmark guard."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; any other name is not resolved."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse(host: str, port: int) -> None:
    """Raises (and counts) unless ``host`` is loopback."""
    if is_loopback(host):
        return
    with _lock:
        _refused.append(f"{host}:{port}")
    raise GuardedConnectionError(
        errno.ENETUNREACH, f"benchmark loopback guard: {host} is not a loopback address"
    )


def install() -> None:
    """Wraps urllib3's ``create_connection`` and httpcore's ``connect_tcp`` in this process
    (idempotent; httpcore only if it is installed)."""
    with _lock:
        if _installed:
            return
        _installed.append(True)
        original = urllib3.util.connection.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        _refuse(address[0], address[1])
        return original(address, *args, **kwargs)

    urllib3.util.connection.create_connection = guarded
    _install_httpcore()


def _install_httpcore() -> None:
    """Guards httpcore's sync backend and its async one (asyncio and trio both go through
    ``AutoBackend``): every ``httpx`` transport opens its connections there."""
    try:
        from httpcore._backends.auto import AutoBackend
        from httpcore._backends.sync import SyncBackend
    except ImportError:
        return
    sync_connect = SyncBackend.connect_tcp
    async_connect = AutoBackend.connect_tcp

    def guarded_sync(self: SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        _refuse(host, port)
        return sync_connect(self, host, port, *args, **kwargs)

    async def guarded_async(
        self: AutoBackend, host: str, port: int, *args: Any, **kwargs: Any
    ) -> Any:
        _refuse(host, port)
        return await async_connect(self, host, port, *args, **kwargs)

    SyncBackend.connect_tcp = guarded_sync  # type: ignore[method-assign]
    AutoBackend.connect_tcp = guarded_async  # type: ignore[method-assign]


def refused() -> list[str]:
    """The ``host:port`` of every connection refused in this process so far."""
    with _lock:
        return list(_refused)


def record_refused(hosts: list[str]) -> None:
    """Adds refusals another process reported (the fleet row's workers)."""
    with _lock:
        _refused.extend(hosts)
