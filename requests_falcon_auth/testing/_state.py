"""What the emulator knows, behind its one lock: clients, tokens, what it saw, its API data.

The request path (:mod:`._service`) and the control plane (:class:`FalconEmulator`, and through
it the admin API) reach it only through :meth:`SharedState.locked`: every read and change, from
any thread, happens under one lock taken in one place, and an operation is written once, where
its data lives (:class:`DataRegistry`, :class:`Recorder`), not relayed by a locking method per
layer. Token gates and delays wait outside it (:mod:`._faults` keeps its own lock), and an API
call that reads is answered outside it, so a user's handler may call back into the emulator; a
write that changes the API data (:meth:`DataRegistry.apply`) runs whole under it, so that two
writes never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._data import DataRegistry
from ._records import Recorder

__all__ = ["ApiClient", "IssuedToken", "SharedState", "State"]


@dataclass(frozen=True)
class ApiClient:
    """A registered API client: its home region, the child CIDs it may act for, its own CID."""

    client_id: str
    client_secret: str = field(repr=False)
    region: str
    member_cids: frozenset[str]
    cid: str


@dataclass
class IssuedToken:
    """An access token the emulator issued: whose it is, where and until when it is valid."""

    token_id: str
    client_id: str
    cid: str  # whose API budget its calls spend: the member CID, else the client's own
    member_cid: str | None
    region: str
    expires_at: float  # on the emulator's clock
    revoked: bool = False


@dataclass(eq=False)
class State:
    """The emulator's mutable state. Not thread-safe: :meth:`SharedState.locked` hands it out."""

    # The one client registry: by id, in the order the ids were first registered.
    clients: dict[str, ApiClient] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)  # by access token
    issued: list[str] = field(default_factory=list)  # every access token issued, oldest first
    base_urls: dict[str, str] = field(default_factory=dict)  # region -> URL, for the 308
    recorder: Recorder = field(default_factory=Recorder)
    data: DataRegistry = field(default_factory=DataRegistry)


class SharedState:
    """A :class:`State` and the lock that guards it, shared by the service and the emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = State()

    @contextlib.contextmanager
    def locked(self) -> Iterator[State]:
        """The state, for the ``with`` block, under the lock (not re-entrant)."""
        with self._lock:
            yield self._state
