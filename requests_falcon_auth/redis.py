"""RedisTokenCache: one Falcon token for a fleet of processes and hosts, encrypted in Redis.

Falcon grants 300 token requests a minute per source IP; a fleet whose workers each fetch
their own token spends that budget fast. ``FalconAuth(cache=RedisTokenCache(client))`` makes the
whole fleet share one token: a Redis lock (with an expiry) gives fleet-wide single flight, so
one worker fetches while the others wait for it and then read its token.

Local first: each process keeps the fleet's token in memory and serves it without asking Redis
until the token's renew window opens, so the warm path makes no round trip. The Redis entry
lives until the token's real expiry: in the renew window one worker (under the fleet lock)
fetches and publishes while every other worker goes on with the current token, then picks up the
new one at its next look. A token a worker saw rejected is compare-and-deleted, so the next
worker to find it rejected reads the fresh one instead of fetching its own.

At rest, under ``<prefix>token:<CacheKey.name>`` (the name reveals no client id), one value in
the sealed format of ``requests_falcon_auth/sealed.py`` (store ``redis``, location: that key
name)::

    v1:<fp>:<sealed>                          ASCII, so decode_responses=True clients work too
    fp     = base64(HMAC-SHA256(k_fp, access_token))
    sealed = base64(nonce[12] || AES-256-GCM(k_enc, nonce, json, ad))
    json   = {"access_token", "token_type", "expires_in", "region", "base_url", "expiry"}
    ad     = "requests-falcon-auth/redis/v1" NUL key-name NUL fp
    k_enc, k_fp = HKDF-SHA256(CacheKey.secret, info=... "aead" / "fingerprint")

``CacheKey.secret`` is derived from the client secret, so a Redis reader without the secret
learns nothing usable; a value that fails to decrypt or verify is a miss. ``expiry`` is wall-clock
time (``Token.issued_at`` is monotonic and process-local); a reader rebuilds an equivalent
monotonic ``issued_at`` from it, so hosts' clocks must agree to within a few seconds (NTP). The
fingerprint lets a Lua script delete exactly the token that failed, although ciphertexts differ
on every write. The single-flight lock lives under ``<prefix>lock:<CacheKey.name>``.

If Redis fails (any ``redis.RedisError``: refused, timed out, read-only...), requests still go
through: the cache falls back to a process-local
:class:`~requests_falcon_auth.cache.MemoryTokenCache` for a while, with a rate-limited warning,
then tries Redis again.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from typing import Final, NoReturn

try:
    import redis
except ImportError as exc:
    raise ImportError(
        f"requests_falcon_auth.redis needs the redis package ({exc.name} is missing): "
        "pip install 'requests-falcon-auth[redis]'"
    ) from exc

from . import _checks, _fork
from ._throttle import WarningThrottle
from .cache import CacheKey, LocalCopy, TokenLock
from .errors import ConfigurationError
from .sealed import Sealers, Unreadable
from .token import Clock, Token

__all__ = ["RedisTokenCache"]

log = logging.getLogger(__name__)

# How often a process waiting for another's token request looks at the lock again.
_LOCK_POLL: Final = 0.05

# Deletes KEYS[1] only if its value starts with ARGV[1] ("v1:<fingerprint>:"): the check and
# the delete must be one step, or a token another worker stored meanwhile would be dropped.
_COMPARE_AND_DELETE: Final = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTokenCache(LocalCopy):
    """A token store in Redis, shared by every process and host that uses the same credentials.

    Use it as ``FalconAuth(cache=RedisTokenCache(redis.Redis(...)))``. ``shared`` is True, so
    FalconAuth does not revoke the fleet's token when one process closes. Thread-safe; after a
    fork the child gets fresh locks (redis-py's pool opens new connections in the child).
    Construction does no I/O.

    When Redis fails, the request that finds out waits for the client to give up (redis-py's
    defaults: a 5 s timeout and 10 retries, about 4 s against a refused port), then every
    request uses the local fallback for ``backoff`` seconds. A client made for this cache can
    give up sooner: ``redis.Redis(..., socket_timeout=1, retry=Retry(NoBackoff(), 1))``.

    Args:
        client: a synchronous ``redis.Redis`` (or compatible) client; this cache never closes it.
        prefix: prepended to every key name this cache writes.
        lock_ttl: seconds the fleet-wide single-flight lock lives: longer than a token request
            takes, short enough that a holder that died does not stall the fleet for long.
            A request slower than this may let a second worker fetch too (harmless).
        backoff: after a Redis failure, seconds to use only the process-local fallback before
            trying Redis again.
        warn_interval: at most one warning about a Redis failure per this many seconds.
        wall_clock: the wall clock expiries are stored in, shared by every host.

    The monotonic clock and the renew window are FalconAuth's: it hands them over
    (:meth:`bind`) when it starts using the cache.

    Raises:
        TypeError: ``client`` is not a synchronous Redis client.
        ConfigurationError: a negative or non-numeric duration, or a non-string prefix.

    Pickling is refused (``TypeError``): the client holds connections; build a
    RedisTokenCache in each process.
    """

    shared = True

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "falcon-auth:",
        lock_ttl: float = 30.0,
        backoff: float = 30.0,
        warn_interval: float = 60.0,
        wall_clock: Clock = time.time,
    ) -> None:
        if type(client).__module__.startswith("redis.asyncio") or not all(
            callable(getattr(client, method, None))
            for method in ("get", "set", "lock", "register_script")
        ):
            raise TypeError(
                f"RedisTokenCache needs a synchronous redis.Redis client, got "
                f"{type(client).__name__}."
            )
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string.")
        self._client = client
        self.prefix = prefix
        self.lock_ttl = _checks.seconds(lock_ttl, "lock_ttl")
        self.backoff = _checks.seconds(backoff, "backoff", allow_zero=True)
        self.warn_interval = _checks.seconds(warn_interval, "warn_interval", allow_zero=True)
        self._start_local_copy()
        self._wall_clock = wall_clock
        self._sealers = Sealers("redis")
        self._compare_and_delete = client.register_script(_COMPARE_AND_DELETE)
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._state_lock = threading.Lock()
        self._down_until: float | None = None
        self._warnings = WarningThrottle(log, self.warn_interval, self._clock)

    @property
    def client(self) -> redis.Redis:
        """The Redis client."""
        return self._client

    def __repr__(self) -> str:
        return f"RedisTokenCache(prefix={self.prefix!r}, target={self._target()!r})"

    def _target(self) -> str:
        """Where the client connects: host:port/db or the socket path, never credentials."""
        pool = getattr(self._client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None)
        if not isinstance(kwargs, dict):
            return type(self._client).__name__
        db = kwargs.get("db", 0)
        if kwargs.get("path"):
            return f"unix:{kwargs['path']}/{db}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "RedisTokenCache holds a live Redis connection pool and cannot be pickled; "
            "build one in each process (they share tokens through Redis)."
        )

    # -- key names ---------------------------------------------------------------------------

    def token_name(self, key: CacheKey) -> str:
        """The Redis key that holds ``key``'s token."""
        return f"{self.prefix}token:{key.name}"

    def lock_name(self, key: CacheKey) -> str:
        """The Redis key of ``key``'s single-flight lock."""
        return f"{self.prefix}lock:{key.name}"

    # -- the TokenCache protocol ----------------------------------------------------------------

    def get(self, key: CacheKey) -> Token | None:
        """The fleet's token for ``key``: this process's copy until its renew window opens
        (no round trip), then what Redis holds; the process-local one while Redis fails."""
        local = self._local.get(key)
        if local is not None and self.timing.fresh(local):
            return local
        if not self._redis_usable():
            return local
        name = self.token_name(key)
        token: Token | None = None
        try:
            raw = self._client.get(name)
        except redis.RedisError as exc:
            self._outage(exc, "GET")
            return local
        except UnicodeDecodeError:  # decode_responses=True, and what is stored is no text
            raw = None
            self._unreadable(name, "not text")
        self._recovered()
        if raw is not None:
            token = self._open(key, name, raw)
        # The local copy mirrors Redis, so an outage starts from the fleet's current token.
        return self._mirror(key, local, token)

    def set(self, key: CacheKey, token: Token) -> None:
        """Stores ``token`` for the fleet until it expires (Redis drops it then)."""
        self._local.set(key, token)
        remaining = token.expires_at - self._clock()
        ttl_ms = math.floor(remaining * 1000)
        if ttl_ms <= 0:
            log.debug("Not storing the Falcon token in Redis: it has expired")
            return
        if not self._redis_usable():
            return
        name = self.token_name(key)
        value = self._seal(key, name, token, self._wall_clock() + remaining)
        try:
            self._client.set(name, value, px=ttl_ms)
        except redis.RedisError as exc:
            self._outage(exc, "SET")
            return
        self._recovered()

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        """Deletes ``key`` only if it still holds ``token``, atomically in Redis (Lua)."""
        dropped_locally = self._local.compare_and_delete(key, token)
        if not self._redis_usable():
            return dropped_locally
        expected = self._sealers.of(key).prefix(token.access_token)
        try:
            deleted = self._compare_and_delete(keys=[self.token_name(key)], args=[expected])
        except redis.RedisError as exc:
            self._outage(exc, "EVALSHA")
            return dropped_locally
        self._recovered()
        return bool(deleted)

    def lock(self, key: CacheKey) -> TokenLock:
        """The fleet-wide single-flight lock for ``key`` (see :class:`_FleetLock`)."""
        return _FleetLock(self, key)

    # -- at rest -----------------------------------------------------------------------------

    def _seal(self, key: CacheKey, name: str, token: Token, expiry: float) -> str:
        return self._sealers.of(key).seal(token, location=name, expiry=expiry)

    def _open(self, key: CacheKey, name: str, raw: bytes | str) -> Token | None:
        """The token in a stored value; None (a miss) when expired, unreadable or tampered."""
        try:
            sealed = self._sealers.of(key).open(raw, location=name)
        except Unreadable as exc:
            self._unreadable(name, str(exc))
            return None
        return sealed.token(self._clock(), self._wall_clock())

    def _unreadable(self, name: str, reason: str) -> None:
        self._warn(
            "unreadable",
            "Ignoring the Falcon token stored in Redis under %s: it does not decrypt or verify "
            "(%s); written with another secret, or tampered with",
            name,
            reason,
        )

    # -- outages -------------------------------------------------------------------------------

    def _redis_usable(self) -> bool:
        with self._state_lock:
            return self._down_until is None or self._clock() >= self._down_until

    def _outage(self, exc: redis.RedisError, operation: str) -> None:
        with self._state_lock:
            self._down_until = self._clock() + self.backoff
        self._warn(
            "outage",
            "The Redis token cache failed (%s during %s at %s); using a process-local Falcon "
            "token for now and trying Redis again in %.0f s",
            type(exc).__name__,
            operation,
            self._target(),
            self.backoff,
        )

    def _recovered(self) -> None:
        with self._state_lock:
            if self._down_until is None:
                return
            self._down_until = None
        log.info("The Redis token cache at %s answers again", self._target())

    def _warn(self, kind: str, message: str, *args: object) -> None:
        self._warnings.warn(kind, message, *args)


class _FleetLock:
    """Single flight for one key: a process-local lock, then a Redis lock with an expiry.

    Threads of one process queue on the local lock (woken at once, no polling), so one thread
    per process polls Redis. The Redis lock expires after ``lock_ttl``: a holder that died
    stalls the others that long at most. While Redis fails, the local lock alone is held.
    ``release`` never raises; it logs.
    """

    def __init__(self, cache: RedisTokenCache, key: CacheKey) -> None:
        self._cache = cache
        self._local = cache._local.lock(key)
        # thread_local: a thread whose lock expired and was taken by another can never
        # release the other's lock with its own release().
        self._redis = cache.client.lock(
            cache.lock_name(key), timeout=cache.lock_ttl, sleep=_LOCK_POLL, thread_local=True
        )
        self._holds_redis = threading.local()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not self._local.acquire(blocking, timeout):
            return False
        self._holds_redis.value = False
        if not self._cache._redis_usable():
            return True
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            # A random value: redis-py's default (uuid1) would name this host's MAC address.
            acquired = self._redis.acquire(
                blocking=blocking, blocking_timeout=wait, token=secrets.token_hex(16)
            )
        except redis.RedisError as exc:
            self._cache._outage(exc, "lock")
            return True
        except BaseException:
            self._local.release()
            raise
        self._cache._recovered()
        if not acquired:
            self._local.release()
            return False
        self._holds_redis.value = True
        return True

    def release(self) -> None:
        try:
            if getattr(self._holds_redis, "value", False):
                self._holds_redis.value = False
                self._redis.release()
        except redis.exceptions.LockNotOwnedError:
            log.warning(
                "The Redis token lock expired before this process released it: the token "
                "request took longer than lock_ttl=%.1f s, so another worker may have fetched "
                "one too",
                self._cache.lock_ttl,
            )
        except redis.RedisError as exc:
            self._cache._outage(exc, "unlock")
        finally:
            self._local.release()
