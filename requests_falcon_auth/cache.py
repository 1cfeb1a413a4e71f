"""Where tokens are kept, and how one fetch serves every thread that needs a token.

:class:`TokenCache` is the protocol a store implements (the in-memory one here, the Redis one in
``requests_falcon_auth.redis``). :class:`TokenProvider` puts single flight and
stale-while-refresh on top of any store:

- threads that find no usable token wait for the one thread that fetches, and share its token;
  if that fetch fails they get its error instead of each asking again;
- a token inside its renew window but not yet expired is renewed by one thread while the others
  keep using it: nobody waits for a renewal;
- credential and rate-limit failures are remembered briefly, so a hot loop cannot burn the
  token endpoint's budget (300 requests a minute per source IP).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Callable, Final, Protocol

from cachetools import TLRUCache

from . import _fork
from .errors import (
    ConfigurationError,
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    RegionError,
    TokenEndpointError,
)
from .token import Clock, Token

__all__ = [
    "DEFAULT_FAILURE_TTL",
    "DEFAULT_LOCK_TIMEOUT",
    "CacheKey",
    "MemoryTokenCache",
    "TokenCache",
    "TokenLock",
    "TokenProvider",
]

log = logging.getLogger(__name__)

DEFAULT_FAILURE_TTL: Final = 10.0
# Longer than the slowest token call can take (timeouts times tries plus waits), so a waiter
# gives up only when something is wedged, not when the endpoint is merely slow.
DEFAULT_LOCK_TIMEOUT: Final = 300.0
_MAX_RATE_LIMIT_MEMORY: Final = 60.0


@dataclass(frozen=True)
class CacheKey:
    """Names one credential set in a token store.

    ``name`` is an HMAC of the entry URL, client id and member CID under a key derived from the
    client secret: stores may list, log or share it, and it reveals no client id, yet a rotated
    secret gets a new name. ``secret`` is that derived key material, for stores that encrypt
    tokens at rest (only holders of the client secret can derive it); it never shows in a repr.
    """

    name: str
    secret: bytes = field(repr=False)

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

    def get(self, key: CacheKey) -> Token | None:
        """The token stored under ``key``, or None (expired tokens may be dropped early)."""

    def set(self, key: CacheKey, token: Token) -> None:
        """Stores ``token`` under ``key`` until it expires."""

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        """Deletes ``key`` only if it still holds ``token``; True when it did."""

    def lock(self, key: CacheKey) -> TokenLock:
        """The single-flight lock for ``key``."""


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
    instance between several FalconAuth objects (``cache=``) to share their tokens. Pickling
    gives an empty cache: tokens never travel.

    Args:
        maxsize: how many keys (credential sets) to hold.
        timer: the monotonic clock tokens are stamped with.
    """

    shared = False

    def __init__(self, maxsize: int = 256, timer: Clock = time.monotonic) -> None:
        self._maxsize = maxsize
        self._timer = timer
        self._tokens: TLRUCache[str, Token] = TLRUCache(maxsize, ttu=_token_expiry, timer=timer)
        self._reset_locks()
        _fork.register(self)

    def _reset_locks(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._fetching: set[str] = set()

    def _after_fork_in_child(self) -> None:
        self._reset_locks()

    def __getstate__(self) -> dict[str, object]:
        return {"maxsize": self._maxsize, "timer": self._timer}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["maxsize"], state["timer"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"MemoryTokenCache(maxsize={self._maxsize}, keys={len(self)})"

    def __len__(self) -> int:
        with self._condition:
            return len(self._tokens)

    def get(self, key: CacheKey) -> Token | None:
        with self._condition:
            return self._tokens.get(key.name)

    def set(self, key: CacheKey, token: Token) -> None:
        with self._condition:
            self._tokens[key.name] = token

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        with self._condition:
            current = self._tokens.get(key.name)
            if current is None or current.access_token != token.access_token:
                return False
            del self._tokens[key.name]
            return True

    def lock(self, key: CacheKey) -> TokenLock:
        return _KeyLock(self, key.name)


@dataclass(frozen=True)
class _Failure:
    """A failed fetch: which flight it ended, and until when it answers for new callers."""

    error: FalconAuthError
    flight: int
    remembered_until: float


# Failures that asking again within seconds cannot fix.
_LASTING_FAILURES: Final = (CredentialsError, RegionError, ConfigurationError)


class TokenProvider:
    """A usable token for one cache key: cached, single-flight, renewed ahead of expiry.

    Args:
        cache: the store.
        key: this credential set's key in it.
        fetch: asks the token endpoint for a new token (may raise FalconAuthError).
        renew_window: seconds before expiry from which a token is renewed in the background of
            other threads' use; at most half the token's lifetime.
        clock: the monotonic clock tokens are stamped with.
        failure_ttl: how long a credential failure answers for new callers without a call.
        lock_timeout: how long a thread waits for another thread's fetch.
    """

    def __init__(
        self,
        cache: TokenCache,
        key: CacheKey,
        fetch: Callable[[], Token],
        *,
        renew_window: float,
        clock: Clock = time.monotonic,
        failure_ttl: float = DEFAULT_FAILURE_TTL,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.cache = cache
        self.key = key
        self._fetch = fetch
        self.renew_window = renew_window
        self._clock = clock
        self._failure_ttl = failure_ttl
        self._lock_timeout = lock_timeout
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._state_lock = threading.Lock()
        self._flights = 0
        self._failure: _Failure | None = None

    def get(self) -> Token:
        """A token that is not expired; fetches only when none is, renews when stale.

        Raises:
            FalconAuthError: no usable token and the fetch failed (or failed moments ago).
        """
        now = self._clock()
        token = self.cache.get(self.key)
        if token is not None and not token.expired(now):
            if not token.in_renew_window(self._window(token), now):
                return token
            return self._renew(token)
        return self._fetch_waiting()

    def invalidate(self, token: Token) -> bool:
        """Drops ``token`` from the cache unless another thread already replaced it."""
        dropped = self.cache.compare_and_delete(self.key, token)
        log.debug(
            "Invalidated the cached Falcon token: %s", "dropped" if dropped else "already replaced"
        )
        return dropped

    def _window(self, token: Token) -> float:
        return min(self.renew_window, token.expires_in / 2)

    def _renew(self, stale: Token) -> Token:
        """One thread renews; the rest, and the renewer on failure, keep the still-valid token."""
        lock = self.cache.lock(self.key)
        if not lock.acquire(blocking=False):
            return stale
        try:
            current = self.cache.get(self.key)
            now = self._clock()
            if (
                current is not None
                and current.access_token != stale.access_token
                and not current.in_renew_window(self._window(current), now)
            ):
                return current
            try:
                return self._fetch_and_store()
            except FalconAuthError as exc:
                log.warning(
                    "Renewing the Falcon token failed (%s); using the current one, which "
                    "expires in %.0f s",
                    type(exc).__name__,
                    stale.expires_at - now,
                )
                return stale
        finally:
            lock.release()

    def _fetch_waiting(self) -> Token:
        """Fetches, or waits for the thread that is fetching and takes its outcome."""
        self._raise_remembered()
        with self._state_lock:
            flights_seen = self._flights
        lock = self.cache.lock(self.key)
        if not lock.acquire(timeout=self._lock_timeout):
            raise TokenEndpointError(
                f"Gave up after {self._lock_timeout:.0f} s waiting for another thread's "
                "Falcon token request; the token endpoint may be unreachable."
            )
        try:
            current = self.cache.get(self.key)
            if current is not None and not current.expired(self._clock()):
                return current
            with self._state_lock:
                failure = self._failure
                shared_outcome = self._flights > flights_seen
            if shared_outcome and failure is not None and failure.flight == self._flights:
                raise copy.copy(failure.error)
            return self._fetch_and_store()
        finally:
            lock.release()

    def _fetch_and_store(self) -> Token:
        try:
            token = self._fetch()
        except FalconAuthError as exc:
            self._remember(exc)
            raise
        with self._state_lock:
            self._flights += 1
            self._failure = None
        self.cache.set(self.key, token)
        return token

    def _remember(self, error: FalconAuthError) -> None:
        now = self._clock()
        if isinstance(error, _LASTING_FAILURES):
            until = now + self._failure_ttl
        elif isinstance(error, RateLimitError):
            until = now + min(error.retry_after or self._failure_ttl, _MAX_RATE_LIMIT_MEMORY)
        else:
            until = now
        with self._state_lock:
            self._flights += 1
            self._failure = _Failure(error, self._flights, until)

    def _raise_remembered(self) -> None:
        with self._state_lock:
            failure = self._failure
        if failure is not None and failure.remembered_until > self._clock():
            log.debug("Not asking for a token: the last request failed moments ago")
            raise copy.copy(failure.error)
