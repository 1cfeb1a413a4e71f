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
the sealed format of ``requests_falcon_auth/_sealed.py`` (store ``redis``, location: that key
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
on every write. The single-flight lock lives under ``<prefix>lock:<CacheKey.name>``, and the
end of a rate-limit account's cooldown under ``<prefix>rate:<account>`` (the account is a
digest): epoch seconds as a decimal string, raised only (by a Lua script, in one step), expiring
when it ends. Every command names one key, so a Redis Cluster serves the cache as a single
server does.

The value is read by a Lua script that sends it only if it is a string of at most
``sealed.MAX_SIZE`` (64 KiB) bytes, and its size otherwise: a value planted to exhaust readers'
memory is a miss, with a warning, and the next token stored replaces it.

If Redis fails (refused, timed out, read-only, an answer that makes no sense, no answer within
``operation_timeout``...), requests still go through: the cache falls back to a process-local
:class:`~requests_falcon_auth.cache.MemoryTokenCache` for a while, with a rate-limited warning,
then tries Redis again.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import Final, NoReturn

try:
    import redis
except ImportError as exc:
    raise ImportError(
        f"requests_falcon_auth.redis needs the redis package ({exc.name} is missing): "
        "pip install 'requests-falcon-auth[redis]'"
    ) from exc

from . import _checks, _fork
from ._sealed import MAX_SIZE, Sealers, Unreadable
from ._throttle import WarningThrottle
from .cache import (
    CacheKey,
    LocalCopy,
    Timing,
    TokenLock,
    check_account,
    check_cooldown,
    parse_cooldown,
)
from .errors import ConfigurationError
from .token import Clock, Token

__all__ = ["RedisTokenCache"]

log = logging.getLogger(__name__)

# How often a process waiting for another's token request looks at the lock again.
_LOCK_POLL: Final = 0.05

# KEYS[1]'s value if it is a string of at most ARGV[1] bytes; otherwise its size, or -1 when
# it is no string: more than a sealed token can be never crosses the network.
_READ: Final = """
local size = redis.pcall('STRLEN', KEYS[1])
if type(size) == 'table' then
    return -1
end
if size > tonumber(ARGV[1]) then
    return size
end
return redis.call('GET', KEYS[1])
"""
_NOT_A_STRING: Final = -1
# The most bytes a cooldown's value is read with: an epoch time in decimal is some 20.
_COOLDOWN_SIZE: Final = 64

# Sets KEYS[1] to ARGV[1] (a cooldown's end, epoch seconds) expiring in ARGV[2] ms, unless it
# holds a finite end as late already: the check and the write must be one step, or two workers
# raising it at once could leave the earlier end. pcall: a value of another type is no end.
_EXTEND_COOLDOWN: Final = """
local stored = tonumber(redis.pcall('GET', KEYS[1]))
if stored and stored < math.huge and stored >= tonumber(ARGV[1]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# Deletes KEYS[1] only if its value starts with ARGV[1] ("v1:<fingerprint>:"): the check and
# the delete must be one step, or a token another worker stored meanwhile would be dropped.
# GETRANGE reads only the prefix of whatever is stored; pcall: a key of another type is not it.
_COMPARE_AND_DELETE: Final = """
local head = redis.pcall('GETRANGE', KEYS[1], 0, string.len(ARGV[1]) - 1)
if head == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Frees the lock KEYS[1] only if it still holds this holder's random value ARGV[1]: a holder
# whose lock expired and was taken by another must not free the other's.
_UNLOCK: Final = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _Outage(Exception):
    """A Redis operation failed, answered nonsense or overran; already reported."""


class _Call:
    """One Redis operation on its own thread; the caller reads the outcome after ``done``."""

    def __init__(self, command: Callable[[], object]) -> None:
        self.command = command
        self.done = threading.Event()
        self.answer: object = None
        self.error: BaseException | None = None
        # Both guarded by the cache's state lock: whichever of the caller (giving up) and the
        # worker (finishing) comes second settles the count of overdue operations.
        self.finished = False
        self.abandoned = False


class RedisTokenCache:
    """A token store in Redis, shared by every process and host that uses the same credentials.

    Use it as ``FalconAuth(cache=RedisTokenCache(redis.Redis(...)))``, or with a
    ``redis.cluster.RedisCluster``. ``shared`` is True, so FalconAuth does not revoke the
    fleet's token when one process closes. Thread-safe; after a fork the child gets fresh locks
    (redis-py's pool opens new connections in the child). Construction does no I/O.

    Every Redis operation (a read, a write, a compare-and-delete, one attempt at the lock, its
    release) has ``operation_timeout`` seconds in all, whatever the client's own timeouts and
    retries: a socket timeout bounds each read, not the operation, so a server that trickles a
    byte a second holds a request forever, and redis-py's defaults let a hung server hold one
    for a minute (redis-py 8: ten retries of a 5 s timeout) or forever (redis-py 4: none).
    So the operation runs on a short-lived thread that the caller waits for until then; past
    it, Redis counts as down. The late operation keeps its connection until it ends (redis-py
    drops the connection if it fails), so no other command ever reads its answer. It is not
    closed from outside: it belongs to the client's pool, maybe shared with the application,
    whose own commands in flight (and retried) would be broken too. While an operation that
    overran is still running Redis counts as down, so a server that never answers ties up one
    thread per caller that was waiting on it, never more.

    When Redis fails, every request uses the local fallback for ``backoff`` seconds.

    Args:
        client: a synchronous ``redis.Redis`` or ``redis.cluster.RedisCluster`` (or
            compatible) client; this cache never closes it.
        prefix: prepended to every key name this cache writes.
        lock_ttl: seconds the fleet-wide single-flight lock lives: longer than a token request
            takes, short enough that a holder that died does not stall the fleet for long.
            A request slower than this may let a second worker fetch too (harmless).
        backoff: after a Redis failure, seconds to use only the process-local fallback before
            trying Redis again.
        warn_interval: at most one warning about a Redis failure per this many seconds.
        wall_clock: the wall clock expiries are stored in, shared by every host.
        operation_timeout: seconds one Redis operation may take in all (connecting, the
            client's retries and every byte of the answer); past it Redis counts as down.

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
        client: redis.Redis | redis.RedisCluster,
        *,
        prefix: str = "falcon-auth:",
        lock_ttl: float = 30.0,
        backoff: float = 30.0,
        warn_interval: float = 60.0,
        wall_clock: Clock = time.time,
        operation_timeout: float = 3.0,
    ) -> None:
        if type(client).__module__.startswith("redis.asyncio") or not all(
            callable(getattr(client, method, None)) for method in ("set", "register_script")
        ):
            raise TypeError(
                f"RedisTokenCache needs a synchronous redis.Redis or RedisCluster client, got "
                f"{type(client).__name__}."
            )
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string.")
        self._client = client
        self.prefix = prefix
        self.lock_ttl = _checks.seconds(lock_ttl, "lock_ttl")
        self.backoff = _checks.seconds(backoff, "backoff", allow_zero=True)
        self.warn_interval = _checks.seconds(warn_interval, "warn_interval", allow_zero=True)
        self.operation_timeout = _checks.seconds(operation_timeout, "operation_timeout")
        self._copy = LocalCopy(type(self).__name__)
        self._wall_clock = wall_clock
        self._sealers = Sealers("redis")
        self._read = client.register_script(_READ)
        self._compare_and_delete = client.register_script(_COMPARE_AND_DELETE)
        self._unlock = client.register_script(_UNLOCK)
        self._extend_cooldown = client.register_script(_EXTEND_COOLDOWN)
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._state_lock = threading.Lock()
        self._down_until: float | None = None
        # Operations that overran and are still running: their threads stayed in the parent.
        self._overdue = 0
        self._warnings = WarningThrottle(__name__, self.warn_interval, self._copy.clock)

    @property
    def client(self) -> redis.Redis | redis.RedisCluster:
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

    def rate_name(self, account: str) -> str:
        """The Redis key that holds the end of ``account``'s rate-limit cooldown.

        Raises:
            ConfigurationError: ``account`` is not 1 to 64 lowercase hex characters.
        """
        return f"{self.prefix}rate:{check_account(account)}"

    # -- the TokenCache protocol ----------------------------------------------------------------

    @property
    def timing(self) -> Timing:
        """The clock and renew window the FalconAuth objects using the cache bound it to."""
        return self._copy.timing

    def bind(self, timing: Timing) -> None:
        """Adopts FalconAuth's clock and renew window (see ``TokenCache.bind``)."""
        self._copy.bind(timing)

    def peek(self, key: CacheKey) -> Token | None:
        """This process's copy of the token (no I/O, so an event loop may call it)."""
        return self._copy.get(key)

    @property
    def version(self) -> int:
        """Changes with this process's copy, which is what ``get`` answers until the window."""
        return self._copy.version

    def get(self, key: CacheKey) -> Token | None:
        """The fleet's token for ``key``: this process's copy until its renew window opens
        (no round trip), then what Redis holds; the process-local one while Redis fails."""
        local = self._copy.get(key)
        if local is not None and self._copy.fresh(local):
            return local
        if not self._redis_usable():
            return local
        name = self.token_name(key)
        try:
            answer = self._ask(
                "GET",
                lambda: self._read(keys=[name], args=[MAX_SIZE]),
                passing=(UnicodeDecodeError,),
            )
            raw = self._stored_value(
                name, answer, limit=MAX_SIZE, operation="GET", unreadable=self._unreadable
            )
        except _Outage:
            return local
        except UnicodeDecodeError:  # decode_responses=True, and what is stored is no text
            raw = None
            self._unreadable(name, "not text")
        self._recovered()
        token = None if raw is None else self._open(key, name, raw)
        # The local copy mirrors Redis, so an outage starts from the fleet's current token.
        return self._copy.mirror(key, local, token)

    def set(self, key: CacheKey, token: Token) -> None:
        """Stores ``token`` for the fleet until it expires (Redis drops it then)."""
        self._copy.set(key, token)
        remaining = token.expires_at - self._copy.clock()
        ttl_ms = math.floor(remaining * 1000)
        if ttl_ms <= 0:
            log.debug("Not storing the Falcon token in Redis: it has expired")
            return
        if not self._redis_usable():
            return
        name = self.token_name(key)
        value = self._seal(key, name, token, self._wall_clock() + remaining)
        try:
            answer = self._ask("SET", lambda: self._client.set(name, value, px=ttl_ms))
            if answer is not True:
                raise self._nonsense(answer, "SET")
        except _Outage:
            return
        self._recovered()

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        """Deletes ``key`` only if it still holds ``token``, atomically in Redis (Lua)."""
        dropped_locally = self._copy.compare_and_delete(key, token)
        if not self._redis_usable():
            return dropped_locally
        name = self.token_name(key)
        expected = self._sealers.of(key).prefix(token.access_token)
        try:
            answer = self._ask(
                "EVALSHA", lambda: self._compare_and_delete(keys=[name], args=[expected])
            )
            deleted = _integer(answer)
            if deleted not in (0, 1):
                raise self._nonsense(answer, "EVALSHA")
        except _Outage:
            return dropped_locally
        self._recovered()
        return deleted == 1

    def lock(self, key: CacheKey) -> TokenLock:
        """The fleet-wide single-flight lock for ``key`` (see :class:`_FleetLock`)."""
        return _FleetLock(self, key)

    def rate_cooldown(self, account: str) -> float:
        """The end of ``account``'s cooldown any worker of the fleet recorded (one round trip);
        0.0 when none, when it has passed, or while Redis fails."""
        name = self.rate_name(account)
        if not self._redis_usable():
            return 0.0
        try:
            answer = self._ask(
                "read cooldown",
                lambda: self._read(keys=[name], args=[_COOLDOWN_SIZE]),
                passing=(UnicodeDecodeError,),
            )
            raw = self._stored_value(
                name,
                answer,
                limit=_COOLDOWN_SIZE,
                operation="read cooldown",
                unreadable=self._no_cooldown,
            )
        except _Outage:
            return 0.0
        except UnicodeDecodeError:  # decode_responses=True, and what is stored is no text
            raw = None
            self._no_cooldown(name, "not text")
        self._recovered()
        if raw is None:
            return 0.0
        until = parse_cooldown(raw)
        if until is None:
            self._no_cooldown(name, "not a number")
            return 0.0
        return until if until > self._wall_clock() else 0.0

    def extend_rate_cooldown(self, account: str, until: float) -> None:
        """Records ``until`` as the end of ``account``'s cooldown for the fleet, unless a later
        end is recorded (compared and set in one Lua step); Redis drops it once it has passed.
        Failures are logged, never raised."""
        name, until = self.rate_name(account), check_cooldown(until)
        # PX from this store's wall clock, not PXAT on Redis's: readers compare the end with
        # their wall clocks, so Redis's own plays no part.
        ttl_ms = math.ceil((until - self._wall_clock()) * 1000)
        if ttl_ms <= 0 or not self._redis_usable():
            return
        try:
            answer = self._ask(
                "extend cooldown",
                lambda: self._extend_cooldown(keys=[name], args=[repr(until), ttl_ms]),
            )
            if _integer(answer) not in (0, 1):
                raise self._nonsense(answer, "extend cooldown")
        except _Outage:
            return
        self._recovered()

    # -- at rest -----------------------------------------------------------------------------

    def _seal(self, key: CacheKey, name: str, token: Token, expiry: float) -> str:
        return self._sealers.of(key).seal(token, location=name, expiry=expiry)

    def _stored_value(
        self,
        name: str,
        answer: object,
        *,
        limit: int,
        operation: str,
        unreadable: Callable[[str, str], None],
    ) -> bytes | str | None:
        """The value the read script (given ``limit``) answered ``operation`` with; None for a
        miss, or for a value larger than ``limit`` or not a string (told to ``unreadable``).

        Raises:
            _Outage: the answer is none the script gives (a broken or hostile server).
        """
        if answer is None or isinstance(answer, (bytes, str)):
            return answer
        size = _integer(answer)
        if size == _NOT_A_STRING:
            unreadable(name, "not a string")
            return None
        if size is not None and size > limit:
            unreadable(name, "too large")
            return None
        raise self._nonsense(answer, operation)

    def _open(self, key: CacheKey, name: str, raw: bytes | str) -> Token | None:
        """The token in a stored value; None (a miss) when expired, unreadable or tampered."""
        try:
            sealed = self._sealers.of(key).open(raw, location=name)
        except Unreadable as exc:
            self._unreadable(name, str(exc))
            return None
        return sealed.token(self._copy.clock(), self._wall_clock())

    def _unreadable(self, name: str, reason: str) -> None:
        self._warn(
            "unreadable",
            "Ignoring the Falcon token stored in Redis under %s: it does not decrypt or verify "
            "(%s); written with another secret, or tampered with",
            name,
            reason,
        )

    def _no_cooldown(self, name: str, reason: str) -> None:
        self._warn(
            "cooldown",
            "Ignoring the rate-limit cooldown stored in Redis under %s: it holds no time (%s); "
            "the account's next cooldown replaces it",
            name,
            reason,
        )

    # -- operations and outages -------------------------------------------------------------------

    def _ask(
        self,
        operation: str,
        command: Callable[[], object],
        *,
        passing: tuple[type[Exception], ...] = (),
    ) -> object:
        """What ``command`` answers, run on its own thread and waited for at most
        ``operation_timeout`` seconds.

        Raises:
            _Outage: it raised anything at all (redis-py raises more than ``RedisError`` at a
                broken server, such as ``AttributeError`` at a HELLO answer that is no map), or
                did not finish in time. Reported; Redis rests for ``backoff``.
            Exception: one of ``passing``, as ``command`` raised it.
        """
        call = _Call(command)
        worker = threading.Thread(
            target=self._run, args=(call,), name="falcon-auth-redis", daemon=True
        )
        try:
            worker.start()
        except RuntimeError as exc:  # no more threads
            raise self._outage(type(exc).__name__, operation) from None
        call.done.wait(self.operation_timeout)
        with self._state_lock:
            overran = not call.finished
            if overran:
                call.abandoned = True
                self._overdue += 1
        if overran:
            raise self._outage(f"no answer within {self.operation_timeout:g} s", operation)
        error = call.error
        if error is None:
            return call.answer
        if isinstance(error, passing):
            raise error
        raise self._outage(type(error).__name__, operation) from None

    def _run(self, call: _Call) -> None:
        """A worker thread: one operation, its outcome handed to the caller (or dropped, when
        the caller gave up on it)."""
        try:
            call.answer = call.command()
        except BaseException as exc:  # noqa: BLE001 -- handed to the waiting caller as it is
            call.error = exc
        finally:
            with self._state_lock:
                call.finished = True
                if call.abandoned:
                    self._overdue -= 1
            call.done.set()

    def _redis_usable(self) -> bool:
        with self._state_lock:
            if self._overdue:
                return False
            return self._down_until is None or self._copy.clock() >= self._down_until

    def _nonsense(self, answer: object, operation: str) -> _Outage:
        """Reports an answer the command never gives: the server is broken, or not Redis."""
        return self._outage(f"an answer of type {type(answer).__name__}", operation)

    def _outage(self, reason: str, operation: str) -> _Outage:
        """Reports a failure (``reason`` names it, never says what was read) and rests Redis
        for ``backoff`` seconds; returns the exception for the caller to raise."""
        with self._state_lock:
            self._down_until = self._copy.clock() + self.backoff
        self._warn(
            "outage",
            "The Redis token cache failed (%s during %s at %s); using a process-local Falcon "
            "token for now and trying Redis again in %.0f s",
            reason,
            operation,
            self._target(),
            self.backoff,
        )
        return _Outage(operation)

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
    per process polls Redis. The Redis lock is a key set only if absent (``SET NX PX``) to a
    random value of its holder's, and freed by a script only if it still holds that value. It
    expires after ``lock_ttl``: a holder that died stalls the others that long at most. While
    Redis fails, the local lock alone is held. ``release`` never raises; it logs.
    """

    def __init__(self, cache: RedisTokenCache, key: CacheKey) -> None:
        self._cache = cache
        self._local = cache._copy.lock(key)
        self._name = cache.lock_name(key)
        self._ttl_ms = max(1, math.ceil(cache.lock_ttl * 1000))
        # Per thread: a thread whose lock expired and was taken by another can never free the
        # other's lock with its own release().
        self._held = threading.local()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not self._local.acquire(blocking, timeout):
            return False
        self._held.value = None
        try:
            acquired = self._acquire_in_redis(blocking, deadline)
        except BaseException:
            self._local.release()
            raise
        if not acquired:
            self._local.release()
        return acquired

    def _acquire_in_redis(self, blocking: bool, deadline: float | None) -> bool:
        """Takes the Redis lock, trying until ``deadline``; True also when Redis fails (the
        local lock alone is then held)."""
        cache = self._cache
        # A random value: redis-py's own Lock would use uuid1, which names this host's MAC.
        value = secrets.token_hex(16)
        while cache._redis_usable():
            try:
                answer = cache._ask(
                    "lock",
                    lambda: cache.client.set(self._name, value, nx=True, px=self._ttl_ms),
                )
                if answer is not True and answer is not None:  # None: another holds it
                    raise cache._nonsense(answer, "lock")
            except _Outage:
                return True
            cache._recovered()
            if answer is True:
                self._held.value = value
                return True
            wait = _LOCK_POLL if deadline is None else min(_LOCK_POLL, deadline - time.monotonic())
            if not blocking or wait <= 0:
                return False
            time.sleep(wait)
        return True

    def release(self) -> None:
        value = getattr(self._held, "value", None)
        self._held.value = None
        try:
            if value is not None:
                self._release_in_redis(value)
        finally:
            self._local.release()

    def _release_in_redis(self, value: str) -> None:
        cache = self._cache
        try:
            answer = cache._ask("unlock", lambda: cache._unlock(keys=[self._name], args=[value]))
            freed = _integer(answer)
            if freed not in (0, 1):
                raise cache._nonsense(answer, "unlock")
        except _Outage:
            return
        cache._recovered()
        if freed == 0:
            log.warning(
                "The Redis token lock expired before this process released it: the token "
                "request took longer than lock_ttl=%.1f s, so another worker may have fetched "
                "one too",
                cache.lock_ttl,
            )


def _integer(answer: object) -> int | None:
    """An integer answer as an int; None for any other (a RESP3 boolean is no integer)."""
    if isinstance(answer, int) and not isinstance(answer, bool):
        return answer
    return None
