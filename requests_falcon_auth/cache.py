"""Where tokens are kept: the :class:`TokenCache` protocol and the in-memory store.

A store implements the protocol (the in-memory one here, the Redis one in
``requests_falcon_auth.redis``); :class:`~requests_falcon_auth._provider.TokenProvider` puts
single flight and renewal on top of any store. The stores shared between processes (Redis,
files) each hold a :class:`LocalCopy`: their process's copy of each token, and its timing.

A store also carries each account's rate-limit cooldown (``rate_cooldown``): the wall-clock
time until which Falcon answers the account's API calls with 429. It is shared as widely as the
tokens are (a process, a host, a fleet), so the callers of one account wait for the budget
together instead of each spending a call on its own 429.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import threading
import time
from collections.abc import Hashable
from typing import Final, NamedTuple, Protocol

from cachetools import TLRUCache

from . import _checks, _fork
from .errors import ConfigurationError
from .token import Clock, Token

__all__ = [
    "DEFAULT_RENEW_WINDOW",
    "CacheKey",
    "LocalCopy",
    "MemoryTokenCache",
    "Timing",
    "TokenCache",
    "TokenLock",
    "check_account",
    "check_cooldown",
    "parse_cooldown",
]

DEFAULT_RENEW_WINDOW: Final = 120.0
# An account's name in a store: a digest, so it is safe in file names and Redis key names.
_ACCOUNT: Final = re.compile(r"[0-9a-f]{1,64}")


class Timing(NamedTuple):
    """The clock tokens are stamped with and the renew window, as one value with one owner.

    FalconAuth owns both; its token provider hands them to the cache (``TokenCache.bind``), so
    a store never runs on a clock or a window of its own.

    Attributes:
        clock: the monotonic clock.
        renew_window: seconds before expiry from which a token is renewed.
    """

    clock: Clock = time.monotonic
    renew_window: float = DEFAULT_RENEW_WINDOW

    def renew_at(self, token: Token) -> float:
        """When ``token`` enters its renew window: at most half its lifetime before expiry."""
        return token.expires_at - min(self.renew_window, token.expires_in / 2)

    def fresh(self, token: Token, now: float | None = None) -> bool:
        """True while ``token`` is before its renew window."""
        return (self.clock() if now is None else now) < self.renew_at(token)


class CacheKey(NamedTuple):
    """Names one credential set in a token store.

    ``name`` is an HMAC of the entry URL, client id and member CID under a key derived from the
    client secret: stores may list, log or share it, and it reveals no client id, yet a rotated
    secret gets a new name. ``secret`` is that derived key material, for stores that encrypt
    tokens at rest (only holders of the client secret can derive it); it never shows in a repr.
    """

    name: str
    secret: bytes

    @classmethod
    def for_credentials(
        cls, entry_url: str, client_id: str, client_secret: str, member_cid: str | None
    ) -> CacheKey:
        """The key of one credential set at one entry point (before autodiscovery)."""
        material = hmac.new(
            client_secret.encode(), b"requests-falcon-auth token cache v1", hashlib.sha256
        ).digest()
        identity = "\0".join([entry_url, client_id, member_cid or ""]).encode()
        return cls(hmac.new(material, identity, hashlib.sha256).hexdigest(), material)

    def __repr__(self) -> str:
        return f"CacheKey(name={self.name!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("CacheKey holds key material derived from a secret; it is not pickled.")


class TokenLock(Protocol):
    """A lock for one cache key, shared by everything that could fetch for that key."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...

    def release(self) -> None: ...


class TokenCache(Protocol):
    """What FalconAuth needs from a token store.

    Implementations must be safe to call from many threads. ``shared`` is True for stores that
    other processes also use: FalconAuth then does not revoke on close by default, since the
    token is not one process's to revoke.
    """

    shared: bool

    @property
    def version(self) -> int:
        """A number that changes whenever what ``peek`` answers may have changed (a store or a
        delete). The token engine keeps the last fresh token it was given and skips the store
        while this number stands still: the warm path then takes no lock and calls nothing."""

    def bind(self, timing: Timing) -> None:
        """Adopts the owner's clock and renew window (called before the first use).

        Raises:
            ConfigurationError: already bound to another clock (a store serves one clock).
        """

    def get(self, key: CacheKey) -> Token | None:
        """The token stored under ``key``, or None (expired tokens may be dropped early)."""

    def peek(self, key: CacheKey) -> Token | None:
        """What ``get`` would return, when the store can tell without I/O; None otherwise.

        Async front ends call this on the event loop, so it must never block: a store that
        always asks a server returns None (callers then use ``get`` on a worker thread).
        """

    def set(self, key: CacheKey, token: Token) -> None:
        """Stores ``token`` under ``key`` until it expires."""

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        """Deletes ``key`` only if it still holds ``token``; True when it did."""

    def lock(self, key: CacheKey) -> TokenLock:
        """The single-flight lock for ``key``."""

    def rate_cooldown(self, account: str) -> float:
        """The wall-clock time (epoch seconds) until which ``account``'s API budget is spent,
        as any user of this store recorded it; 0.0 when none is recorded or it has passed.
        Never raises: a shared store that fails answers 0.0 (warning, throttled, as its other
        operations do)."""

    def extend_rate_cooldown(self, account: str, until: float) -> None:
        """Records that ``account``'s budget is spent until ``until`` (epoch seconds), unless a
        later time is recorded already (never shortens); the record vanishes by itself once
        ``until`` has passed (a TTL / expiry, nothing to clean up). Never raises."""


def check_account(account: object) -> str:
    """``account`` as a store names it: 1 to 64 lowercase hex characters (a digest).

    Raises:
        ConfigurationError: anything else.
    """
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise ConfigurationError(
            f"A rate-limit account must be 1 to 64 lowercase hex characters, got {account!r}."
        )
    return account


def check_cooldown(until: object) -> float:
    """``until`` as a cooldown's end: finite epoch seconds.

    Raises:
        ConfigurationError: not a number, not finite, or negative.
    """
    return _checks.seconds(until, "until", allow_zero=True)


def parse_cooldown(raw: bytes | str) -> float | None:
    """A cooldown's end as the shared stores keep it (decimal epoch seconds, ASCII); None when
    ``raw`` is no finite number."""
    try:
        until = float(raw)
    except ValueError:
        return None
    return until if math.isfinite(until) else None


def _token_expiry(_key: Hashable, token: Token, _now: float) -> float:
    return token.expires_at


class _KeyLock:
    """One key's lock: a shared Condition plus the set of keys being fetched."""

    def __init__(self, cache: MemoryTokenCache, key: str) -> None:
        self._cache = cache
        self._key = key

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        cache = self._cache
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        with cache._condition:
            while self._key in cache._fetching:
                if not blocking:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                cache._condition.wait(remaining)
            cache._fetching.add(self._key)
            return True

    def release(self) -> None:
        with self._cache._condition:
            self._cache._fetching.discard(self._key)
            self._cache._condition.notify_all()


class MemoryTokenCache:
    """The default store: a ``cachetools.TLRUCache`` that drops each token as it expires.

    cachetools caches are not thread-safe; every access goes through one lock here. Share one
    instance between several FalconAuth objects (``cache=``) to share their tokens and their
    accounts' rate-limit cooldowns; they must run on one clock. Pickling gives an empty cache:
    tokens and cooldowns never travel.

    Args:
        maxsize: how many keys (credential sets) to hold.
        wall_clock: the wall clock cooldowns end on (Falcon names their end in epoch seconds).
    """

    shared = False

    def __init__(self, maxsize: int = 256, *, wall_clock: Clock = time.time) -> None:
        self._maxsize = maxsize
        self._wall_clock = wall_clock
        self.timing = Timing()
        self._bound = False
        self._tokens: TLRUCache[str, Token] = TLRUCache(maxsize, ttu=_token_expiry, timer=self._now)
        self._version = 0
        # Each account's cooldown end; written under the lock, read without it (one dict read).
        self._cooldowns: dict[str, float] = {}
        self._reset_locks()
        _fork.register(self)

    def _now(self) -> float:
        return self.timing.clock()

    def bind(self, timing: Timing) -> None:
        # Locked: two FalconAuth objects built at once in two threads must not both find the
        # cache unbound (the second clock would then replace the first instead of raising).
        with self._condition:
            self.timing = _rebind(self.timing, timing, self._bound, type(self).__name__)
            self._bound = True

    def _reset_locks(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._fetching: set[str] = set()

    def _after_fork_in_child(self) -> None:
        self._reset_locks()

    def __getstate__(self) -> dict[str, object]:
        return {"maxsize": self._maxsize, "wall_clock": self._wall_clock}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["maxsize"], wall_clock=state["wall_clock"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"MemoryTokenCache(maxsize={self._maxsize}, keys={len(self)})"

    def __len__(self) -> int:
        with self._condition:
            return len(self._tokens)

    def get(self, key: CacheKey) -> Token | None:
        with self._condition:
            return self._tokens.get(key.name)

    def peek(self, key: CacheKey) -> Token | None:
        return self.get(key)  # memory: no I/O, and the lock is held for microseconds

    @property
    def version(self) -> int:
        return self._version

    def set(self, key: CacheKey, token: Token) -> None:
        with self._condition:
            self._tokens[key.name] = token
            self._version += 1

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        with self._condition:
            current = self._tokens.get(key.name)
            if current is None or current.access_token != token.access_token:
                return False
            del self._tokens[key.name]
            self._version += 1
            return True

    def lock(self, key: CacheKey) -> TokenLock:
        return _KeyLock(self, key.name)

    def rate_cooldown(self, account: str) -> float:
        # No lock: callers near the limit ask before every call, and one dict read is atomic.
        until = self._cooldowns.get(check_account(account), 0.0)
        return until if until > self._wall_clock() else 0.0

    def extend_rate_cooldown(self, account: str, until: float) -> None:
        account, until = check_account(account), check_cooldown(until)
        now = self._wall_clock()
        with self._condition:
            # Ends that have passed go as another is recorded: the dict holds live ones only.
            for passed in [name for name, end in self._cooldowns.items() if end <= now]:
                del self._cooldowns[passed]
            if until > max(now, self._cooldowns.get(account, 0.0)):
                self._cooldowns[account] = until


class LocalCopy:
    """This process's copy of the tokens a store shared between processes holds, and the timing
    it serves them by.

    The Redis and file stores each hold one: they serve the copy until a token's renew window
    opens (the warm path does no I/O), answer ``peek`` and ``version`` from it, and mirror into
    it whatever they read from the shared store. The clock and the window are the ones the
    FalconAuth objects sharing the store bind it to (``bind``). Thread-safe; a forked child
    gets a fresh lock.

    Args:
        store: the name of the store that holds it, for the error a second clock gets.
    """

    def __init__(self, store: str) -> None:
        self._store = store
        self._timing = Timing()
        self._bound = False
        self._tokens = MemoryTokenCache()
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    @property
    def timing(self) -> Timing:
        """The clock and renew window the copy is served by."""
        return self._timing

    def bind(self, timing: Timing) -> None:
        """Adopts FalconAuth's clock and renew window (see ``TokenCache.bind``)."""
        with self._lock:
            self._timing = _rebind(self._timing, timing, self._bound, self._store)
            self._bound = True
            self._tokens.bind(self._timing)

    def clock(self) -> float:
        """Now, on the bound clock."""
        return self._timing.clock()

    def fresh(self, token: Token) -> bool:
        """True while ``token`` is before its renew window: the store serves it without I/O."""
        return self._timing.fresh(token)

    def get(self, key: CacheKey) -> Token | None:
        """This process's copy of ``key``'s token (no I/O, so an event loop may call it)."""
        return self._tokens.get(key)

    @property
    def version(self) -> int:
        """Changes with the copy, which is what the store serves until the window opens."""
        return self._tokens.version

    def set(self, key: CacheKey, token: Token) -> None:
        """Keeps ``token`` as this process's copy until it expires."""
        self._tokens.set(key, token)

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        """Drops the copy of ``key`` only if it is ``token``; True when it did."""
        return self._tokens.compare_and_delete(key, token)

    def lock(self, key: CacheKey) -> TokenLock:
        """This process's single-flight lock for ``key``: its threads queue here (woken at
        once, no polling), so one thread per process waits on the shared store's lock."""
        return self._tokens.lock(key)

    def mirror(self, key: CacheKey, local: Token | None, shared: Token | None) -> Token | None:
        """Makes the copy what the shared store holds (a token another process dropped is
        dropped here too) and returns that; ``local`` is the copy the store read before."""
        if shared is None:
            stale = self._tokens.get(key)
            if stale is not None:
                self._tokens.compare_and_delete(key, stale)
        elif local is None or shared.access_token != local.access_token:
            self._tokens.set(key, shared)
        return shared


def _rebind(current: Timing, offered: Timing, bound: bool, store: str) -> Timing:
    """The timing a store adopts when (another) owner binds it; the widest window wins."""
    if not bound:
        return offered
    if offered.clock != current.clock:
        raise ConfigurationError(
            f"This {store} already serves a FalconAuth with another clock; share a cache only "
            "between FalconAuth objects given the same clock= (or none)."
        )
    return Timing(current.clock, max(current.renew_window, offered.renew_window))
