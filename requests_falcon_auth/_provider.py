"""The token engine: one fetch per need, renewal off every caller's path, failures remembered.

:class:`TokenProvider` puts three behaviours on top of any :class:`~requests_falcon_auth.cache.
TokenCache`:

- threads that find no usable token (cold start, hard expiry, a rejected token) wait for the
  one thread that fetches, and share its token; if that fetch fails they get its error instead
  of each asking again;
- a token inside its renew window but not yet expired is renewed on a short-lived daemon
  thread while every caller, the one that noticed included, goes on with it: nobody waits for
  a renewal. A renewal that fails is tried again by a later caller; its error reaches callers
  only if the token actually expires (as the error of the fetch they then wait for);
- credential and rate-limit failures are remembered briefly, so a hot loop cannot burn the
  token endpoint's budget (300 requests a minute per source IP).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Final, NamedTuple

from . import _fork
from .cache import CacheKey, Timing, TokenCache
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
    "RENEWAL_PAUSE_AFTER_FAILURE",
    "RENEWAL_PAUSE_WHEN_BUSY",
    "TokenProvider",
]

log = logging.getLogger(__name__)

DEFAULT_FAILURE_TTL: Final = 10.0
# Longer than the slowest token call can take (timeouts times tries plus waits), so a waiter
# gives up only when something is wedged, not when the endpoint is merely slow.
DEFAULT_LOCK_TIMEOUT: Final = 300.0
_MAX_RATE_LIMIT_MEMORY: Final = 60.0
# After a failed fetch, background renewals pause this long: each one already spends the retry
# policy's tries, and callers still hold a valid token.
RENEWAL_PAUSE_AFTER_FAILURE: Final = 5.0
# When another thread or process holds the lock (it is renewing), callers in the renew window do
# not start a thread per call to find that out again.
RENEWAL_PAUSE_WHEN_BUSY: Final = 1.0

# Failures that asking again within seconds cannot fix.
_LASTING_FAILURES: Final = (CredentialsError, RegionError, ConfigurationError)


class _Hot(NamedTuple):
    """The last fresh token the store gave, until its renew window or the store's next change."""

    token: Token
    fresh_until: float
    version: int


@dataclass(frozen=True)
class _Failure:
    """A failed fetch: which flight it ended, and until when it answers for new callers."""

    error: FalconAuthError
    flight: int
    failed_at: float
    remembered_until: float


class TokenProvider:
    """A usable token for one cache key: cached, single-flight, renewed ahead of expiry.

    Args:
        cache: the store.
        key: this credential set's key in it.
        fetch: asks the token endpoint for a new token (may raise FalconAuthError).
        renew_window: seconds before expiry from which a token is renewed in the background;
            at most half the token's lifetime.
        clock: the monotonic clock tokens are stamped with. The window and the clock are
            handed to the cache (``TokenCache.bind``): one owner, no copies to keep in step.
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
        self.timing = Timing(clock, renew_window)
        cache.bind(self.timing)  # the store runs on this clock and window, not its own
        self._clock = clock
        self._failure_ttl = failure_ttl
        self._lock_timeout = lock_timeout
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        # The renewal thread, if any, stayed in the parent: the child starts its own.
        self._state_lock = threading.Lock()
        self._flights = 0
        self._failure: _Failure | None = None
        self._renewal: threading.Thread | None = None
        self._renewal_paused_until = float("-inf")
        self._hot: _Hot | None = None

    def get(self) -> Token:
        """A token that is not expired; fetches only when none is, starts a renewal when stale.

        Raises:
            FalconAuthError: no usable token and the fetch failed (or failed moments ago).
        """
        token = self.hot()
        if token is not None:
            return token
        version = self.cache.version  # read first: a change after it only retires the slot
        token = self.cache.get(self.key)
        if token is not None and self._usable(token, version):
            return token
        return self._fetch_waiting()

    def get_fresh(self) -> Token:
        """A token before its renew window, as far as can be had: a stale one is renewed now.

        For a process that lives for one call (a CLI run, a cron job): it will not be around
        for a renewal in the background, and hands its token to a caller that may use it for
        minutes.

        Raises:
            FalconAuthError: no token could be had.
        """
        token = self.get()
        if self.timing.fresh(token):
            return token
        self._renew_in_background(token)
        self.wait_for_renewal(self._lock_timeout)
        return self.get()  # still the stale one if the renewal failed: valid until it expires

    def hot(self) -> Token | None:
        """The last fresh token from the store while the store is unchanged and the token
        before its renew window, or None: the warm path, a memory read with nothing to decide."""
        hot = self._hot
        if (
            hot is not None
            and hot.version == self.cache.version
            and self._clock() < hot.fresh_until
        ):
            return hot.token
        return None

    def peek(self) -> Token | None:
        """The token ``get`` would return, when it can be had without I/O or waiting.

        None means a fetch (or a look at a remote store) is needed: call ``get`` off the event
        loop. A token in its renew window is returned and renewed in the background, as by
        ``get``.
        """
        token = self.hot()
        if token is not None:
            return token
        version = self.cache.version
        token = self.cache.peek(self.key)
        return token if token is not None and self._usable(token, version) else None

    def _usable(self, token: Token, version: int) -> bool:
        """False for an expired token; keeps a fresh one hot, renews a stale one meanwhile."""
        now = self._clock()
        if token.expired(now):
            return False
        fresh_until = self.timing.renew_at(token)
        if now < fresh_until:
            self._hot = _Hot(token, fresh_until, version)
        else:
            self._renew_in_background(token)
        return True

    def invalidate(self, token: Token) -> bool:
        """Drops ``token`` from the cache unless another thread already replaced it."""
        dropped = self.cache.compare_and_delete(self.key, token)
        log.debug(
            "Invalidated the cached Falcon token: %s", "dropped" if dropped else "already replaced"
        )
        return dropped

    @property
    def renewing(self) -> bool:
        """True while a background renewal of this process is in flight."""
        return self._renewal is not None

    def wait_for_renewal(self, timeout: float | None = None) -> bool:
        """Waits for the background renewal in flight, if any; True when none is left."""
        with self._state_lock:
            renewal = self._renewal
        if renewal is None:
            return True
        renewal.join(timeout)
        return not renewal.is_alive()

    def _renew_in_background(self, stale: Token) -> None:
        """Starts one renewal thread unless one is running or a failure is still remembered."""
        now = self._clock()
        with self._state_lock:
            failure = self._failure
            if (
                self._renewal is not None
                or self._renewal_paused_until > now
                or (failure is not None and _paused_by(failure) > now)
            ):
                return
            renewal = threading.Thread(
                target=self._renew, args=(stale,), name="falcon-auth-renewal", daemon=True
            )
            self._renewal = renewal
        try:
            renewal.start()
        except RuntimeError:  # no more threads: a later caller tries again
            with self._state_lock:
                self._renewal = None

    def _renew(self, stale: Token) -> None:
        """The renewal thread: fetch and store unless someone else (in the fleet) renews."""
        try:
            lock = self.cache.lock(self.key)
            if not lock.acquire(blocking=False):
                with self._state_lock:
                    self._renewal_paused_until = self._clock() + RENEWAL_PAUSE_WHEN_BUSY
                return
            try:
                current = self.cache.get(self.key)
                now = self._clock()
                if (
                    current is not None
                    and current.access_token != stale.access_token
                    and self.timing.fresh(current, now)
                ):
                    return  # renewed already, by another thread or process
                try:
                    self._fetch_and_store()
                except FalconAuthError as exc:
                    log.warning(
                        "Renewing the Falcon token failed (%s); using the current one, which "
                        "expires in %.0f s",
                        type(exc).__name__,
                        stale.expires_at - now,
                    )
            finally:
                lock.release()
        except Exception as exc:  # noqa: BLE001 -- a thread of ours must not die with a traceback
            log.warning("Renewing the Falcon token failed unexpectedly: %s", type(exc).__name__)
        finally:
            with self._state_lock:
                if self._renewal is threading.current_thread():
                    self._renewal = None

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
            self._failure = _Failure(error, self._flights, now, until)

    def _raise_remembered(self) -> None:
        with self._state_lock:
            failure = self._failure
        if failure is not None and failure.remembered_until > self._clock():
            log.debug("Not asking for a token: the last request failed moments ago")
            raise copy.copy(failure.error)


def _paused_by(failure: _Failure) -> float:
    """Until when a failure holds back background renewals."""
    return max(failure.remembered_until, failure.failed_at + RENEWAL_PAUSE_AFTER_FAILURE)
