"""A guard that keeps every benchmark connection on loopback.

The benchmarks run third-party SDKs against a local emulator; one of them (falconpy) rewrites
a custom base URL to ``https://api.crowdstrike.com`` after each token. Rather than trust each
library's configuration, every process of a run refuses, before any DNS lookup or packet,
a urllib3 connection (what ``requests`` uses) to anything but a loopback address, and counts
the refusals so the report can say none happened.
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


def install() -> None:
    """Wraps urllib3's ``create_connection`` in this process (idempotent)."""
    with _lock:
        if _installed:
            return
        _installed.append(True)
        original = urllib3.util.connection.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host = address[0]
        if not is_loopback(host):
            with _lock:
                _refused.append(f"{host}:{address[1]}")
            raise GuardedConnectionError(
                errno.ENETUNREACH, f"benchmark loopback guard: {host} is not a loopback address"
            )
        return original(address, *args, **kwargs)

    urllib3.util.connection.create_connection = guarded


def refused() -> list[str]:
    """The ``host:port`` of every connection refused in this process so far."""
    with _lock:
        return list(_refused)


def record_refused(hosts: list[str]) -> None:
    """Adds refusals another process reported (the fleet row's workers)."""
    with _lock:
        _refused.extend(hosts)
