"""FileTokenCache: one Falcon token for every process of one host and user, no server needed.

Scripts, cron jobs and ``falcon-auth token`` runs each start cold; with the default in-memory
cache each fetches a token of its own, and Falcon grants 300 token requests a minute per source
IP. ``FalconAuth(cache=FileTokenCache())`` makes them share one token through a file in the
user's cache directory: a file lock (``flock``) gives host-wide single flight, so one process
fetches while the others wait for it and then read its token. The kernel drops the lock of a
process that dies, so a holder killed mid-fetch stalls nobody.

Local first, as with :class:`~requests_falcon_auth.redis.RedisTokenCache`: each process keeps
the token in memory and serves it without reading the file until the token's renew window
opens. In the window one process (under the file lock) fetches and replaces the file while the
others go on with the current token, then read the new one at their next look. A token a
process saw rejected is compare-and-deleted under the file lock, so the next process to find
it rejected reads the fresh one instead of fetching its own.

On disk, in a directory of the user's (``platformdirs.user_cache_dir("requests-falcon-auth")``
unless given), mode 0700, one pair of files per credential set and one per rate-limit account
(a digest), each mode 0600::

    <CacheKey.name>.token    the token, sealed (requests_falcon_auth._sealed, store "file",
                             location: CacheKey.name): v1:<fp>:<sealed>, ASCII, no newline
    <CacheKey.name>.lock     the flock of the set's single flight (empty, kept)
    <account>.rate           the end of the account's cooldown, epoch seconds: ASCII decimal
    <account>.rate.lock      the flock under which it is raised (empty, kept)

A cooldown is raised only: under its flock a process reads the end recorded and replaces it
only with a later one. An end that has passed reads as none; the file is left until the next
cooldown of the account replaces it (two small files per account, like the token's lock file).

The name is an HMAC that reveals no client id, and the sealed value opens only with the client
secret: a reader of the directory (a backup, another user given access) learns neither the
token nor the client id. A file is replaced whole: written to a temporary file created 0600
in the same directory (``O_EXCL | O_NOFOLLOW``), fsynced, then ``os.replace``-d, so readers
see the old token or the new one, never half of one; symbolic links are never followed. A file
that is missing, corrupt, truncated, of another format or tampered with is a miss (with a
rate-limited warning for all but missing): the process fetches, and its write repairs the file
for the others. A cooldown file that holds no time is no cooldown (warned the same way) until
the next cooldown replaces it.

If the directory cannot be used at run time (removed and not re-creatable, disk full,
permissions changed), requests still go through on the process's own token, with a
rate-limited warning.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

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

# filelock is imported by the first lock and platformdirs only off Linux (each import costs
# more than all of reading a token, which takes no lock: falcon-auth token serves a cached
# token without them); a broken install is still told here, at import.
for _needed in ("filelock", "platformdirs"):
    if importlib.util.find_spec(_needed) is None:
        raise ImportError(
            f"requests_falcon_auth.filecache needs the filelock and platformdirs packages "
            f"({_needed} is missing): pip install 'filelock>=3.12' 'platformdirs>=3'",
            name=_needed,
        )

if TYPE_CHECKING:
    import filelock

__all__ = ["APP_NAME", "FileTokenCache"]

APP_NAME: Final = "requests-falcon-auth"
# How often a process waiting for another's token request looks at the lock again.
_LOCK_POLL: Final = 0.05
# How long a store or a compare-and-delete made outside the single-flight lock waits for it
# (another process's token request): after that it writes anyway (os.replace is atomic).
_WRITE_LOCK_WAIT: Final = 30.0
# How long raising a cooldown waits for its flock, held only for a read and a write: past it
# the holder is stuck, and the cooldown is written without it (at worst an earlier end wins a
# race, and the account's next 429 raises it again).
_RATE_LOCK_WAIT: Final = 5.0
_SAFE_NAME: Final = re.compile(r"[0-9A-Za-z_-]{1,128}")
_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)
# O_NOFOLLOW on a symbolic link fails with ELOOP (Linux, macOS) or EMLINK (FreeBSD).
_LINK_ERRNOS: Final = frozenset({errno.ELOOP, errno.EMLINK})


class FileTokenCache:
    """A token store in a private directory, shared by the processes of one host and user.

    Use it as ``FalconAuth(cache=FileTokenCache())``. ``shared`` is True, so FalconAuth does not
    revoke the token when one process closes: the others may be using it. Thread-safe; after a
    fork the child gets fresh locks. Construction creates (or checks) the directory and nothing
    else.

    Args:
        path: the directory; by default the user's cache directory for this library
            (``~/.cache/requests-falcon-auth`` on Linux, ``~/Library/Caches/...`` on macOS).
            Created mode 0700 (parents as the umask says); an existing one must be a real
            directory (not a symbolic link) of this user, closed to group and others.
        warn_interval: at most one warning of each kind (an unreadable file, a failing
            directory) per this many seconds.
        wall_clock: the wall clock expiries are stored in, shared by every process.

    The monotonic clock and the renew window are FalconAuth's: it hands them over
    (:meth:`bind`) when it starts using the cache.

    Raises:
        ConfigurationError: on Windows (use the in-memory cache or RedisTokenCache); the
            directory is a symbolic link, not a directory, another user's or open to group or
            others, or cannot be created; a bad ``warn_interval``.

    Pickling carries the directory and settings only, never a token or a key: the copy in
    another process starts empty and reads the file.
    """

    shared = True

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        warn_interval: float = 60.0,
        wall_clock: Clock = time.time,
    ) -> None:
        if os.name == "nt":
            raise ConfigurationError(
                "FileTokenCache works on Linux and macOS only (it relies on POSIX file "
                "permissions and flock); on Windows use the default in-memory cache or "
                "RedisTokenCache."
            )
        interval = _checks.seconds(warn_interval, "warn_interval", allow_zero=True)
        self.path = _directory_path(path)
        _prepare_directory(self.path)
        self.warn_interval = interval
        self._copy = LocalCopy(type(self).__name__)
        self._wall_clock = wall_clock
        self._sealers = Sealers("file")
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        self._state_lock = threading.Lock()
        self._warnings = WarningThrottle(__name__, self.warn_interval, self._copy.clock)
        # Which thread of this process holds each key's single-flight lock: a store or a
        # compare-and-delete made by that thread must not wait for its own lock.
        self._holders: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"FileTokenCache(path={self.path!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_unpickle, (self.path, self.warn_interval, self._wall_clock))

    # -- file names --------------------------------------------------------------------------

    def entry_path(self, key: CacheKey) -> str:
        """The file that holds ``key``'s token."""
        return os.path.join(self.path, _file_stem(key) + ".token")

    def lock_path(self, key: CacheKey) -> str:
        """The file whose flock is ``key``'s single-flight lock."""
        return os.path.join(self.path, _file_stem(key) + ".lock")

    def rate_path(self, account: str) -> str:
        """The file that holds the end of ``account``'s rate-limit cooldown.

        Raises:
            ConfigurationError: ``account`` is not 1 to 64 lowercase hex characters.
        """
        return os.path.join(self.path, check_account(account) + ".rate")

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
        """The host's token for ``key``: this process's copy until its renew window opens (no
        I/O), then what the file holds; the process's own copy while the file cannot be read."""
        local = self._copy.get(key)
        if local is not None and self._copy.fresh(local):
            return local
        entry = self.entry_path(key)
        token: Token | None = None
        try:
            raw = _read_entry(entry)
        except Unreadable as exc:
            self._unreadable(entry, str(exc))
        except OSError as exc:
            self._failure(exc, "read")
            return local
        else:
            token = None if raw is None else self._open(key, entry, raw)
        return self._copy.mirror(key, local, token)

    def set(self, key: CacheKey, token: Token) -> None:
        """Stores ``token`` for the host's processes (and keeps it in this process)."""
        self._copy.set(key, token)
        remaining = token.expires_at - self._copy.clock()
        if remaining <= 0:
            _debug("Not storing the Falcon token in the file cache: it has expired")
            return
        value = self._sealers.of(key).seal(
            token, location=key.name, expiry=self._wall_clock() + remaining
        )
        # Under the lock (FalconAuth stores while holding it): a compare-and-delete in another
        # process must not remove this token between its comparison and its unlink.
        with self._holding(key):
            self._write(key, value.encode("ascii"))

    def compare_and_delete(self, key: CacheKey, token: Token) -> bool:
        """Deletes ``key``'s file only if it still holds ``token``: the fingerprints are
        compared under the file lock, so a token another process stored meanwhile stays."""
        dropped_locally = self._copy.compare_and_delete(key, token)
        expected = self._sealers.of(key).prefix(token.access_token).encode("ascii")
        entry = self.entry_path(key)
        with self._holding(key) as held:
            if not held:
                return dropped_locally
            try:
                raw = _read_entry(entry)
                if raw is None or not raw.startswith(expected):
                    return False
                os.unlink(entry)
            except Unreadable:  # not a token of ours, so not this one
                return False
            except FileNotFoundError:
                return False
            except OSError as exc:
                self._failure(exc, "delete")
                return dropped_locally
            return True

    def lock(self, key: CacheKey) -> TokenLock:
        """The host-wide single-flight lock for ``key`` (see :class:`_HostLock`)."""
        return _HostLock(self, key)

    def rate_cooldown(self, account: str) -> float:
        """The end of ``account``'s cooldown any process of the host recorded (one read of its
        file, no lock: the file is replaced whole); 0.0 when none, when it has passed, or while
        the file cannot be read."""
        until = self._recorded_cooldown(self.rate_path(account))
        return until if until > self._wall_clock() else 0.0

    def extend_rate_cooldown(self, account: str, until: float) -> None:
        """Records ``until`` as the end of ``account``'s cooldown for the host's processes,
        unless a later end is recorded: compared and replaced under the account's flock, so
        two processes raising it at once leave the later end. Failures are logged, never
        raised."""
        entry, until = self.rate_path(account), check_cooldown(until)
        # Most callers of a spent account get the same end: read first, lock only to raise it.
        if until <= max(self._wall_clock(), self._recorded_cooldown(entry)):
            return
        _, lock = self._lock_file(entry + ".lock", wait=_RATE_LOCK_WAIT)
        try:
            if until > self._recorded_cooldown(entry) and self._directory_usable():
                _replace_entry(entry, repr(until).encode("ascii"))
        except OSError as exc:
            self._no_cooldown(entry, _reason(exc, "write"))
        finally:
            if lock is not None:
                self._unlock_file(lock)

    # -- on disk -----------------------------------------------------------------------------

    def _open(self, key: CacheKey, entry: str, raw: bytes) -> Token | None:
        """The token in a file's content; None (a miss) when expired, unreadable or tampered."""
        try:
            sealed = self._sealers.of(key).open(raw, location=key.name)
        except Unreadable as exc:
            self._unreadable(entry, str(exc))
            return None
        return sealed.token(self._copy.clock(), self._wall_clock())

    def _recorded_cooldown(self, entry: str) -> float:
        """The cooldown end a rate file holds; 0.0 when there is none, or it holds no time
        (warned) or cannot be read (warned)."""
        try:
            raw = _read_entry(entry)
        except Unreadable as exc:
            self._no_cooldown(entry, str(exc))
            return 0.0
        except OSError as exc:
            self._no_cooldown(entry, _reason(exc, "read"))
            return 0.0
        if raw is None:
            return 0.0
        until = parse_cooldown(raw)
        if until is None:
            self._no_cooldown(entry, "not a number")
            return 0.0
        return until

    def _write(self, key: CacheKey, value: bytes) -> None:
        """Replaces ``key``'s file with ``value``; a failure is logged, never raised."""
        if not self._directory_usable():
            return
        entry = self.entry_path(key)
        try:
            try:
                _replace_entry(entry, value)
            except FileNotFoundError:  # the directory was removed since the check: once more
                if not self._directory_usable():
                    return
                _replace_entry(entry, value)
        except OSError as exc:
            self._failure(exc, "write")

    def _directory_usable(self) -> bool:
        """Checks the directory again (one lstat), re-creating it if it was removed."""
        try:
            _prepare_directory(self.path)
        except ConfigurationError as exc:
            self._warn(
                "directory",
                "Not using the file token cache: %s This process keeps its own Falcon token.",
                exc.message,
            )
            return False
        return True

    # -- the single-flight lock ----------------------------------------------------------------

    def _lock_file(
        self, path: str, *, blocking: bool = True, wait: float
    ) -> tuple[bool, filelock.BaseFileLock | None]:
        """Takes the flock of the lock file ``path``: (True, lock) when held, (False, None)
        when another process holds it past ``wait``, (True, None) when the file cannot be used
        at all."""
        if not self._directory_usable():
            return True, None
        import filelock

        try:
            _touch_private(path)
            lock = filelock.FileLock(path, mode=0o600, thread_local=False)
            lock.acquire(timeout=wait, poll_interval=_LOCK_POLL, blocking=blocking)
        except filelock.Timeout:  # before OSError: Timeout is a TimeoutError
            return False, None
        except (OSError, NotImplementedError) as exc:  # NotImplementedError: no flock here
            self._failure(exc, "lock")
            return True, None
        return True, lock

    def _unlock_file(self, file_lock: filelock.BaseFileLock) -> None:
        """Releases a flock ``_lock_file`` took; a failure is logged, never raised."""
        try:
            file_lock.release()
        except OSError as exc:
            self._failure(exc, "unlock")

    def _set_holder(self, key: CacheKey, thread: int | None) -> None:
        with self._state_lock:
            if thread is None:
                self._holders.pop(key.name, None)
            else:
                self._holders[key.name] = thread

    @contextlib.contextmanager
    def _holding(self, key: CacheKey) -> Iterator[bool]:
        """Holds ``key``'s lock for a store or a delete, unless this thread already does.
        Yields False when another process held it for longer than ``_WRITE_LOCK_WAIT``."""
        if self._holders.get(key.name) == threading.get_ident():
            yield True
            return
        lock = self.lock(key)
        held = lock.acquire(timeout=_WRITE_LOCK_WAIT)
        try:
            yield held
        finally:
            if held:
                lock.release()

    # -- warnings -----------------------------------------------------------------------------

    def _no_cooldown(self, entry: str, reason: str) -> None:
        self._warn(
            "cooldown",
            "The rate-limit cooldown file %s cannot be used (%s); until a cooldown replaces "
            "it, the host's processes each wait only for the 429s they get",
            entry,
            reason,
        )

    def _unreadable(self, entry: str, reason: str) -> None:
        self._warn(
            "unreadable",
            "Ignoring the Falcon token cache file %s: it does not decrypt or verify (%s); "
            "written with another secret or by another program, or tampered with. The next "
            "token fetched replaces it",
            entry,
            reason,
        )

    def _failure(self, exc: BaseException, operation: str) -> None:
        reason = _strerror(exc)
        self._warn(
            "failure",
            "The file token cache in %s failed (%s during %s: %s); this process uses its own "
            "Falcon token meanwhile",
            self.path,
            type(exc).__name__,
            operation,
            reason,
        )

    def _warn(self, kind: str, message: str, *args: object) -> None:
        self._warnings.warn(kind, message, *args)


class _HostLock:
    """Single flight for one key: a process-local lock, then the key's file lock (flock).

    Threads of one process queue on the local lock (woken at once, no polling), so one thread
    per process polls the file lock. The kernel releases a flock when its holder dies, so a
    process killed mid-fetch stalls nobody. While the lock file cannot be used (a failing
    directory), the local lock alone is held. ``release`` never raises; it logs.

    A child forked while another thread holds the lock inherits the lock file's descriptor
    (recent filelock versions close it in the child). The parent's release still frees the
    lock for everyone; only a parent killed mid-fetch leaves the lock held until such a child
    exits too.
    """

    def __init__(self, cache: FileTokenCache, key: CacheKey) -> None:
        self._cache = cache
        self._key = key
        self._local = cache._copy.lock(key)
        self._file: filelock.BaseFileLock | None = None

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        if not self._local.acquire(blocking, timeout):
            return False
        try:
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            acquired, file_lock = self._cache._lock_file(
                self._cache.lock_path(self._key), blocking=blocking, wait=wait
            )
        except BaseException:
            self._local.release()
            raise
        if not acquired:
            self._local.release()
            return False
        self._file = file_lock
        self._cache._set_holder(self._key, threading.get_ident())
        return True

    def release(self) -> None:
        file_lock, self._file = self._file, None
        try:
            if file_lock is not None:
                self._cache._unlock_file(file_lock)
        finally:
            self._cache._set_holder(self._key, None)
            self._local.release()


def _strerror(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def _reason(exc: OSError, operation: str) -> str:
    """What failed, for a warning: ``PermissionError during read: Permission denied``."""
    return f"{type(exc).__name__} during {operation}: {_strerror(exc)}"


def _unpickle(path: str, warn_interval: float, wall_clock: Clock) -> FileTokenCache:
    return FileTokenCache(path, warn_interval=warn_interval, wall_clock=wall_clock)


def _file_stem(key: CacheKey) -> str:
    """The file name of ``key`` (without suffix): its name, which FalconAuth makes hex, or a
    hash of a name that would not be a safe file name."""
    if _SAFE_NAME.fullmatch(key.name):
        return key.name
    return "h-" + hashlib.sha256(key.name.encode()).hexdigest()


def _directory_path(path: str | os.PathLike[str] | None) -> str:
    if path is None:
        return os.path.abspath(_user_cache_dir())
    try:
        given = os.fspath(path)
    except TypeError:
        given = None
    if not isinstance(given, str) or not given:
        raise ConfigurationError(
            f"path must name a directory (a str or os.PathLike), got {type(path).__name__}."
        )
    return os.path.abspath(given)


def _user_cache_dir() -> str:
    """``platformdirs.user_cache_dir(APP_NAME)``. On Linux it is read as platformdirs reads it
    (the XDG base directory rules: ``$XDG_CACHE_HOME`` when absolute, else ``$HOME/.cache``)
    without importing platformdirs, which costs more than the rest of a cached
    ``falcon-auth token``; platformdirs decides everywhere else, and when ``HOME`` is unset."""
    if sys.platform == "linux" and "ANDROID_ROOT" not in os.environ:
        xdg_cache_home = os.environ.get("XDG_CACHE_HOME", "")
        if os.path.isabs(xdg_cache_home):
            return os.path.join(xdg_cache_home, APP_NAME)
        home = os.environ.get("HOME", "")
        if os.path.isabs(home):
            return os.path.join(home, ".cache", APP_NAME)
    import platformdirs

    return platformdirs.user_cache_dir(APP_NAME, appauthor=False)


def _debug(message: str) -> None:
    """Logs ``message`` at DEBUG (``logging`` is imported by the first line logged)."""
    import logging

    logging.getLogger(__name__).debug(message)


def _prepare_directory(path: str) -> None:
    """Creates ``path`` mode 0700 if missing, then checks it is a private directory of ours.

    Raises:
        ConfigurationError: it cannot be created, or is not private (see ``_check_directory``).
    """
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        else:
            os.chmod(path, 0o700)  # exactly: a umask could have taken the owner's bits away
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the token cache directory {path} ({exc.strerror or exc}); "
            "pass FileTokenCache(path=...) a directory this user can write."
        ) from None
    _check_directory(path)


def _check_directory(path: str) -> None:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot use the token cache directory {path} ({exc.strerror or exc}); "
            "pass FileTokenCache(path=...) a directory this user can write."
        ) from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigurationError(
            f"The token cache directory {path} is a symbolic link; links are not followed. "
            "Pass FileTokenCache(path=...) the real directory, or remove the link."
        )
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(
            f"The token cache directory {path} exists and is not a directory; remove it or "
            "pass FileTokenCache(path=...) another directory."
        )
    if info.st_uid != os.geteuid():
        raise ConfigurationError(
            f"The token cache directory {path} belongs to another user (uid {info.st_uid}); "
            "pass FileTokenCache(path=...) a directory of your own."
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"The token cache directory {path} is open to other users (mode {mode:04o}); run "
            f"'chmod 700 {path}' or pass FileTokenCache(path=...) a private directory."
        )


def _read_entry(entry: str) -> bytes | None:
    """A token file's content; None when there is none.

    Raises:
        Unreadable: a symbolic link (never followed), not a regular file, or too large.
        OSError: the file could not be read.
    """
    try:
        fd = os.open(entry, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS:
            raise Unreadable("a symbolic link, not followed") from None
        raise
    with open(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Unreadable("not a regular file")
        content = file.read(MAX_SIZE + 1)
    if len(content) > MAX_SIZE:
        raise Unreadable("too large")
    return content


def _replace_entry(entry: str, value: bytes) -> None:
    """Writes ``value`` to a new private file beside ``entry``, then renames it over ``entry``
    (a symbolic link there is replaced, never followed)."""
    directory, name = os.path.split(entry)
    temporary = os.path.join(directory, f".{name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o600)
    try:
        with open(fd, "wb") as file:
            os.fchmod(fd, 0o600)  # exactly: the umask may have taken bits away
            file.write(value)
            file.flush()
            os.fsync(fd)
        os.replace(temporary, entry)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _touch_private(path: str) -> None:
    """Creates the lock file 0600 if missing, without following a symbolic link.

    Raises:
        OSError: a symbolic link or not a regular file there, or no access.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "the lock file is not a regular file", path)
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
