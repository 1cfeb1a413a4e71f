"""Re-initialising objects in a forked child.

A child forked while another thread held a lock inherits the lock held, forever; it also
inherits the parent's sockets and its list of tokens to revoke. Objects that hold such state
register here and get ``_after_fork_in_child()`` called in the child. The process-wide hook is
installed on first registration, never at import.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "register"]


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


class _Registry:
    def __init__(self) -> None:
        self.objects: weakref.WeakSet[ForkAware] = weakref.WeakSet()
        self.lock = threading.Lock()
        self.installed = False

    def run_in_child(self) -> None:
        self.lock = threading.Lock()
        for obj in list(self.objects):
            obj._after_fork_in_child()


_registry = _Registry()


def register(obj: ForkAware) -> None:
    """Calls ``obj._after_fork_in_child()`` in every child forked while ``obj`` is alive."""
    with _registry.lock:
        if not _registry.installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_registry.run_in_child)
            _registry.installed = True
        _registry.objects.add(obj)
