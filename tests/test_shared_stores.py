"""What every token store shared between processes must do, whatever it is kept in.

Each test runs against RedisTokenCache (a redis-server started here) and FileTokenCache (a
private directory). The ``store`` fixture makes new store instances on one shared backend,
each a "process" of its own (its own Redis client or lock descriptors, its own local copy), and
looks at what the backend holds. Real processes ("spawn", :mod:`fleet_worker`) where the fleet
is the point. What only one store does lives in ``test_redis.py`` and ``test_filecache.py``.

Synchronisation is by barriers, events, the emulator's gate and counters, never by sleeping.
"""

from __future__ import annotations

import base64
import gc
import importlib
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx
import pytest
import redis
import requests
from fleet_worker import FileSpec, FleetJob, Processes, RedisSpec, fleet_worker, renewing_worker
from support import gets_at_once, in_child, present, token, tokens_of

from requests_falcon_auth import FalconAuth
from requests_falcon_auth import filecache as filecache_module
from requests_falcon_auth import redis as redis_module
from requests_falcon_auth._provider import DEFAULT_LOCK_TIMEOUT
from requests_falcon_auth._sealed import Sealer
from requests_falcon_auth.cache import CacheKey, MemoryTokenCache, Timing, TokenCache
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.testing import FalconEmulator, ManualClock
from requests_falcon_auth.token import Clock

CLIENT_ID = "shared-client-id-52c0"
SECRET = "shared-client-secret-d71a"
DEVICES = "/devices/queries/devices/v1"
ENTRY = "https://api.crowdstrike.com"
KEY = CacheKey.for_credentials(ENTRY, CLIENT_ID, SECRET, None)
TOKEN = "eyJhbGciOi.shared-tok-" + "3e9d17" * 12
WALL = 1_700_000_000.0

CacheT = TypeVar("CacheT", bound=TokenCache)


# -- the stores ----------------------------------------------------------------------------------


class RedisBackend:
    """RedisTokenCache instances on new clients of one redis-server (each a "process").

    A backend (this one, :class:`FileBackend`) gives the tests new instances (``new``) and
    worker specs (``spec``) on one shared backend, and hooks to look at it as another program
    would: where a key's token and lock are kept (``entry``, ``lock_entry``; ``location`` as
    the sealed value names it), its raw value (``read``, ``write``), everything at rest
    (``names``, ``at_rest``), whether a lock is held (``locked``), whether an entry is kept as
    the store keeps its own (``entry_is_sound``), the I/O served (``watch_io``), the connection
    an instance uses (``connection``, ``drop_connections``) and the repr of a new instance.
    """

    kind = "redis"  # the store's name in the sealed format
    logger = redis_module.__name__
    read_operation = "evalsha"  # what ``watch_io`` calls a read of the token (a Lua script)
    module, dependency = "requests_falcon_auth.redis", "redis"  # and what the module needs
    install_command = r"pip install 'requests-falcon-auth\[redis\]'"

    def __init__(self, port: int) -> None:
        self.port = port
        self._clients: list[redis.Redis] = []
        self.client = self._client()  # the test's own view of the server
        self.client.flushall()
        self._names = RedisTokenCache(self.client)

    def _client(self) -> redis.Redis:
        self._clients.append(redis.Redis(port=self.port, socket_timeout=5))
        return self._clients[-1]

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def new(self, *, wall_clock: Clock = time.time, warn_interval: float = 60.0) -> RedisTokenCache:
        return RedisTokenCache(self._client(), wall_clock=wall_clock, warn_interval=warn_interval)

    def spec(self, *, lock_ttl: float = 30.0) -> RedisSpec:
        return RedisSpec(self.port, lock_ttl)

    def entry(self, key: CacheKey) -> str:
        return self._names.token_name(key)

    def lock_entry(self, key: CacheKey) -> str:
        return self._names.lock_name(key)

    def location(self, key: CacheKey) -> str:
        """Where the sealed value says it is kept."""
        return self._names.token_name(key)

    def read(self, key: CacheKey) -> bytes | None:
        return _bytes_or_none(self.client.get(self.entry(key)))

    def write(self, key: CacheKey, value: bytes) -> None:
        self.client.set(self.entry(key), value, px=60_000)

    def names(self) -> list[str]:
        return sorted(_bytes(name).decode() for name in self.client.keys("*"))

    def at_rest(self) -> list[bytes]:
        """Every name and every value the server holds."""
        dump: list[bytes] = []
        for name in self.client.keys("*"):
            dump.append(_bytes(name))
            kind = self.client.type(name)
            if kind == b"string":
                dump.append(_bytes(self.client.get(name)))
            else:  # nothing else is expected; scan it anyway
                assert kind == b"hash"
                dump.extend(_bytes(k) + _bytes(v) for k, v in self.client.hgetall(name).items())
        return dump

    def locked(self, key: CacheKey) -> bool:
        """Whether ``key``'s lock is held, asserting that no other lock is."""
        names = [_bytes(name).decode() for name in self.client.keys("falcon-auth:lock:*")]
        assert names in ([], [self.lock_entry(key)])
        return bool(names)

    def entry_is_sound(self, key: CacheKey) -> bool:
        """The entry expires with its token (within a token's lifetime)."""
        return 0 < self.client.pttl(self.entry(key)) <= 1799 * 1000

    def watch_io(self) -> Callable[[], dict[str, int]]:
        """How many of each command the server has run so far (INFO itself left out)."""

        def served() -> dict[str, int]:
            stats = self.client.info("commandstats")
            return {
                name.removeprefix("cmdstat_"): entry["calls"]
                for name, entry in stats.items()
                if name != "cmdstat_info"
            }

        return served

    def connection(self, cache: RedisTokenCache | FileTokenCache) -> int | None:
        """The server's id of the pooled connection ``cache`` uses."""
        assert isinstance(cache, RedisTokenCache)
        connection: int = cache.client.client_id()
        return connection

    def drop_connections(self, cache: RedisTokenCache | FileTokenCache) -> None:
        assert isinstance(cache, RedisTokenCache)
        gc.collect()
        cache.client.close()

    def expected_repr(self) -> str:
        return f"RedisTokenCache(prefix='falcon-auth:', target='localhost:{self.port}/0')"


class FileBackend:
    """FileTokenCache instances on one directory (each with its own lock descriptors)."""

    kind = "file"
    logger = filecache_module.__name__
    read_operation = "read"
    module, dependency = "requests_falcon_auth.filecache", "filelock"
    install_command = r"pip install 'filelock>=3\.12' 'platformdirs>=3'"

    def __init__(self, directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = directory  # not yet created: the first cache creates it
        self._monkeypatch = monkeypatch

    def new(self, *, wall_clock: Clock = time.time, warn_interval: float = 60.0) -> FileTokenCache:
        return FileTokenCache(self.directory, wall_clock=wall_clock, warn_interval=warn_interval)

    def spec(self, *, lock_ttl: float = 30.0) -> FileSpec:
        """A worker's store (``lock_ttl`` is Redis's: the kernel frees a dead holder's flock)."""
        return FileSpec(self.directory)

    def entry(self, key: CacheKey) -> str:
        return FileTokenCache(self.directory).entry_path(key)

    def lock_entry(self, key: CacheKey) -> str:
        return FileTokenCache(self.directory).lock_path(key)

    def location(self, key: CacheKey) -> str:
        return key.name

    def read(self, key: CacheKey) -> bytes | None:
        entry = Path(self.entry(key))
        return entry.read_bytes() if entry.exists() else None

    def write(self, key: CacheKey, value: bytes) -> None:
        Path(self.entry(key)).write_bytes(value)

    def names(self) -> list[str]:
        return sorted(
            os.path.join(root, name)
            for root, dirs, files in os.walk(self.directory)
            for name in dirs + files
        )

    def at_rest(self) -> list[bytes]:
        """Every name in the directory and every file's content."""
        dump: list[bytes] = []
        for root, dirs, files in os.walk(self.directory):
            dump.extend(name.encode() for name in dirs + files)
            dump.extend(Path(root, name).read_bytes() for name in files)
        return dump

    def locked(self, key: CacheKey) -> bool:
        probe = FileTokenCache(self.directory).lock(key)
        if probe.acquire(blocking=False):
            probe.release()
            return False
        return True

    def entry_is_sound(self, key: CacheKey) -> bool:
        """The file is a regular file, mode 0600."""
        info = os.lstat(self.entry(key))
        return stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600

    def watch_io(self) -> Callable[[], dict[str, int]]:
        """Counts, from now on, every call into the functions through which the store touches
        the file system."""
        counts = dict.fromkeys(["directory", "read", "write", "lock"], 0)
        for operation, name in [
            ("directory", "_prepare_directory"),
            ("read", "_read_entry"),
            ("write", "_replace_entry"),
            ("lock", "_touch_private"),
        ]:
            self._monkeypatch.setattr(
                filecache_module, name, _counted(getattr(filecache_module, name), counts, operation)
            )
        return lambda: dict(counts)

    def expected_repr(self) -> str:
        return f"FileTokenCache(path={self.directory!r})"

    def connection(self, cache: RedisTokenCache | FileTokenCache) -> int | None:
        return None  # none to inherit: each open and lock has its own descriptor

    def drop_connections(self, cache: RedisTokenCache | FileTokenCache) -> None:
        pass

    def close(self) -> None:
        pass  # pytest removes the directory


if TYPE_CHECKING:
    from typing import TypeAlias

    SharedStore: TypeAlias = "RedisBackend | FileBackend"


def _counted(function: Callable[..., Any], counts: dict[str, int], operation: str) -> Any:
    def counting(*args: Any) -> Any:
        counts[operation] += 1
        return function(*args)

    return counting


def _bytes(value: object) -> bytes:
    """A value as redis-py returns it without ``decode_responses``: bytes."""
    assert isinstance(value, bytes), value
    return value


def _bytes_or_none(value: object) -> bytes | None:
    return None if value is None else _bytes(value)


@pytest.fixture(params=["redis", "file"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SharedStore]:
    backend: SharedStore
    if request.param == "redis":
        backend = RedisBackend(request.getfixturevalue("redis_server").port)
    else:
        backend = FileBackend(str(tmp_path / "tokens"), monkeypatch)
    yield backend
    backend.close()


@pytest.fixture
def emulator() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1",)) as emu:
        emu.add_client(CLIENT_ID, SECRET)
        yield emu


def make_auth(emu: FalconEmulator, cache: TokenCache, **kwargs: Any) -> FalconAuth:
    return FalconAuth(CLIENT_ID, SECRET, cloud="us-1", clouds=emu.clouds, cache=cache, **kwargs)


def fleet_key(emu: FalconEmulator, store: SharedStore) -> CacheKey:
    """The key FalconAuth derives for the emulator's us-1 entry point."""
    with make_auth(emu, store.new()) as auth:
        return tokens_of(auth).key


def bound(cache: CacheT, clock: Callable[[], float]) -> CacheT:
    """The cache on ``clock``, as the FalconAuth that uses it would leave it."""
    cache.bind(Timing(clock))
    return cache


def warnings_logged(
    store: SharedStore, caplog: pytest.LogCaptureFixture
) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == store.logger and r.levelno >= logging.WARNING]


def stored(store: SharedStore, key: CacheKey) -> bytes:
    """What the backend holds for ``key``, asserted to be there."""
    value = store.read(key)
    assert value is not None, "nothing stored"
    return value


# -- at rest ---------------------------------------------------------------------------------------


def test_a_token_round_trips_with_an_equivalent_expiry(store: SharedStore) -> None:
    writer = bound(store.new(wall_clock=ManualClock(WALL)), ManualClock(1000.0))
    writer.set(KEY, token(TOKEN, issued_at=990.0))  # 1789 s of life left
    # Another process or host: its monotonic clock reads anything; its wall clock is 100 s later.
    reader_wall_clock = ManualClock(WALL + 100)
    reader = bound(store.new(wall_clock=reader_wall_clock), ManualClock(50.0))
    got = reader.get(KEY)
    assert got is not None
    assert (got.access_token, got.token_type, got.expires_in, got.region, got.base_url) == (
        TOKEN,
        "bearer",
        1799,
        "us-1",
        ENTRY,
    )
    assert got.expires_at == pytest.approx(50.0 + 1789 - 100)
    late = bound(store.new(wall_clock=reader_wall_clock), ManualClock(50.0))
    reader_wall_clock.now += 1689
    assert late.get(KEY) is None  # past the stored expiry (whatever the backend does about it)


def test_a_reader_whose_wall_clock_is_behind_gets_no_more_life_than_was_granted(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    """An hour behind the writer's clock, a reader would see a 1,799 s token with 5,399 s left,
    keep it past its real expiry and renew it late."""
    url = emulator.clouds["us-1"] + DEVICES
    with make_auth(emulator, store.new()) as writer, requests.Session() as session:
        writer.attach(session)
        assert session.get(url).status_code == 200
    clock = ManualClock(1000.0)
    behind = store.new(wall_clock=lambda: time.time() - 3600)
    with make_auth(emulator, behind, clock=clock) as reader:
        read = reader.get_token()
    assert read.access_token == emulator.issued_tokens()[0]  # read from the store, not fetched
    assert emulator.counters.token_requests == 1
    assert 1700 < read.expires_at - clock() <= read.expires_in


def test_an_expired_token_is_never_stored(store: SharedStore) -> None:
    cache = bound(store.new(), ManualClock(1000.0))
    cache.set(KEY, token(TOKEN, issued_at=1000.0 - 1799))
    assert store.names() == []


def test_nothing_at_rest_names_the_client_id_the_secret_or_the_token(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    cache = store.new()
    with make_auth(emulator, cache) as auth, requests.Session() as session:
        auth.attach(session)
        assert session.get(emulator.clouds["us-1"] + DEVICES).status_code == 200
        key = tokens_of(auth).key
        lock = cache.lock(key)
        assert lock.acquire()  # the lock is held while the backend is read
        try:
            names = store.names()
            dump = store.at_rest()
        finally:
            lock.release()
    (issued,) = emulator.issued_tokens()
    assert names == sorted([store.entry(key), store.lock_entry(key)])
    assert len(dump) == 4  # the token and the lock: two names, two values
    forbidden = [CLIENT_ID, SECRET, issued, issued[:16], issued[-16:]]
    forbidden_bytes = [s.encode() for s in forbidden]
    forbidden_bytes += [base64.b64encode(s.encode()) for s in forbidden]
    forbidden_bytes += [s.encode().hex().encode() for s in forbidden]
    for raw in dump:
        for secret in forbidden_bytes:
            assert secret not in raw
    assert stored(store, key).startswith(b"v1:")


def test_another_secret_reads_nothing(store: SharedStore, caplog: pytest.LogCaptureFixture) -> None:
    writer = store.new()
    writer.set(KEY, token(TOKEN, issued_at=writer.timing.clock()))
    reader = store.new()  # another process: nothing local
    other = CacheKey.for_credentials(ENTRY, CLIENT_ID, "a-rotated-secret", None)
    assert other.name != KEY.name
    assert reader.get(other) is None
    assert warnings_logged(store, caplog) == []  # another name: simply nothing there
    impostor = CacheKey(KEY.name, other.secret)  # the same name, other key material
    assert reader.get(impostor) is None
    (warning,) = warnings_logged(store, caplog)
    assert "does not decrypt or verify (authentication failed)" in warning.getMessage()
    assert store.entry(KEY) in warning.getMessage()
    assert TOKEN not in caplog.text
    assert stored(store, KEY).decode() not in caplog.text
    assert reader.get(KEY) is not None
    # The value was left for those who can read it.
    assert present(store.new().get(KEY)).access_token == TOKEN


def _flip_sealed_byte(value: bytes, store: SharedStore, key: CacheKey) -> bytes:
    version, fingerprint, sealed = value.split(b":")
    raw = bytearray(base64.b64decode(sealed))
    raw[20] ^= 0x01
    return b":".join([version, fingerprint, base64.b64encode(bytes(raw))])


def _other_tokens_fingerprint(value: bytes, store: SharedStore, key: CacheKey) -> bytes:
    version, _, sealed = value.split(b":")
    other = Sealer(store.kind, key.secret).fingerprint("tok-another-one").encode()
    return b":".join([version, other, sealed])


def _sealed_by_the_other_kind_of_store(value: bytes, store: SharedStore, key: CacheKey) -> bytes:
    """A token sealed with the right secret for the right place, by the other kind of store."""
    other = {"redis": "file", "file": "redis"}[store.kind]
    expiry = time.time() + 900
    return (
        Sealer(other, key.secret)
        .seal(token(TOKEN), location=store.location(key), expiry=expiry)
        .encode()
    )


TAMPERINGS: dict[str, Callable[[bytes, SharedStore, CacheKey], bytes]] = {
    "flipped ciphertext bit": _flip_sealed_byte,
    "another token's fingerprint": _other_tokens_fingerprint,
    "truncated by ten": lambda value, store, key: value[:-10],
    "truncated by half": lambda value, store, key: value[: len(value) // 2],
    "empty": lambda value, store, key: b"",
    "unknown version": lambda value, store, key: b"v9" + value[2:],
    "not base64": lambda value, store, key: value[:-4] + b"!!!!",
    "plain json": lambda value, store, key: json.dumps(
        {"access_token": TOKEN, "expires_in": 1799}
    ).encode(),
    "garbage": lambda value, store, key: b"\x00\xff garbage",
    "binary garbage": lambda value, store, key: b"\x00\xff" * 64,
    "too large": lambda value, store, key: value + b"A" * 70_000,
    "sealed by the other kind of store": _sealed_by_the_other_kind_of_store,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_damaged_entry_is_a_miss_with_one_warning_and_the_next_fetch_repairs_it(
    store: SharedStore,
    emulator: FalconEmulator,
    caplog: pytest.LogCaptureFixture,
    tamper: Callable[[bytes, SharedStore, CacheKey], bytes],
) -> None:
    url = emulator.clouds["us-1"] + DEVICES
    key = fleet_key(emulator, store)

    def one_process() -> int:
        with make_auth(emulator, store.new()) as auth, requests.Session() as session:
            auth.attach(session)
            return session.get(url).status_code

    assert one_process() == 200
    value = stored(store, key)
    store.write(key, tamper(value, store, key))
    assert one_process() == 200  # a miss: fetched, never an exception
    assert emulator.counters.token_requests == 2
    (warning,) = warnings_logged(store, caplog)
    assert "does not decrypt or verify" in warning.getMessage()
    repaired = stored(store, key)
    assert repaired.startswith(b"v1:")
    assert repaired != value
    assert store.entry_is_sound(key)
    assert one_process() == 200  # the next process reads the fresh token
    counters = emulator.counters
    assert (counters.token_requests, counters.api_401) == (2, 0)
    assert len(warnings_logged(store, caplog)) == 1
    assert value.decode() not in caplog.text
    assert TOKEN not in caplog.text
    for issued in emulator.issued_tokens():
        assert issued not in caplog.text


def test_damage_warnings_are_rate_limited(
    store: SharedStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    cache = bound(store.new(warn_interval=60), clock)
    store.write(KEY, b"junk")
    assert [cache.get(KEY), cache.get(KEY)] == [None, None]
    levels = [r.levelno for r in caplog.records if r.name == store.logger]
    assert levels == [logging.WARNING, logging.DEBUG]
    clock.now += 60
    assert cache.get(KEY) is None
    assert len(warnings_logged(store, caplog)) == 2


def test_a_value_moved_to_another_key_is_a_miss(
    store: SharedStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = store.new()
    writer.set(KEY, token(TOKEN, issued_at=writer.timing.clock()))
    elsewhere = CacheKey("e" * 64, KEY.secret)  # same secret: only the name differs
    store.write(elsewhere, stored(store, KEY))
    reader = store.new()
    assert reader.get(elsewhere) is None
    assert len(warnings_logged(store, caplog)) == 1
    assert reader.get(KEY) is not None


# -- compare-and-delete and the lock ------------------------------------------------------------


def test_compare_and_delete_removes_only_the_token_that_failed(store: SharedStore) -> None:
    mine, theirs = store.new(), store.new()
    failed = token("tok-1", issued_at=mine.timing.clock())
    mine.set(KEY, failed)
    theirs.set(KEY, token("tok-2", issued_at=mine.timing.clock()))  # another process replaced it
    assert mine.compare_and_delete(KEY, failed) is False
    assert mine.peek(KEY) is None  # its own copy of the failed token is gone
    assert present(theirs.get(KEY)).access_token == "tok-2"
    assert present(store.new().get(KEY)).access_token == "tok-2"
    assert mine.compare_and_delete(KEY, token("tok-2")) is True
    assert store.read(KEY) is None
    assert mine.compare_and_delete(KEY, token("tok-2")) is False
    assert store.new().get(KEY) is None


def test_the_lock_is_exclusive_between_instances_and_honours_timeout(store: SharedStore) -> None:
    a, b = store.new(), store.new()
    held = a.lock(KEY)
    assert held.acquire()
    contender = b.lock(KEY)
    assert contender.acquire(blocking=False) is False
    started = time.monotonic()
    assert contender.acquire(timeout=0.3) is False
    assert 0.3 <= time.monotonic() - started < 10
    held.release()
    assert contender.acquire(blocking=False) is True
    assert a.lock(KEY).acquire(blocking=False) is False
    contender.release()
    assert not store.locked(KEY)
    again = a.lock(KEY)
    assert again.acquire(timeout=0) is True
    again.release()


def test_threads_of_one_process_share_the_lock(store: SharedStore) -> None:
    cache = store.new()
    held = cache.lock(KEY)
    assert held.acquire()
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(cache.lock(KEY).acquire(timeout=0)))
    thread.start()
    thread.join()
    held.release()
    assert outcome == [False]


# -- with FalconAuth ------------------------------------------------------------------------------


def test_falcon_auth_on_a_shared_cache_does_not_revoke_on_close(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    cache = store.new()
    assert cache.shared is True
    with make_auth(emulator, cache) as auth, requests.Session() as session:
        assert auth.revoke_on_close is False
        auth.attach(session)
        assert session.get(emulator.clouds["us-1"] + DEVICES).status_code == 200
    assert emulator.counters.revokes == 0
    assert cache.get(tokens_of(auth).key) is not None
    kept = store.new().get(tokens_of(auth).key)  # the others keep using it
    assert present(kept).access_token == emulator.issued_tokens()[0]


def test_threads_and_instances_share_one_token(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    """16 threads over two instances start together: one token request."""
    auths = [make_auth(emulator, store.new()) for _ in range(2)]
    assert gets_at_once(auths, emulator.clouds["us-1"] + DEVICES) == [200] * 16
    assert emulator.counters.token_requests == 1


def test_a_401_drops_the_shared_token_and_one_fresh_token_serves_everyone(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    """After every token is invalidated, the first to see a 401 deletes the shared token
    (compare-and-delete) and fetches; the other finds its copy rejected too and takes the
    fresh one from the store instead of fetching its own."""
    first, second = make_auth(emulator, store.new()), make_auth(emulator, store.new())
    url = emulator.clouds["us-1"] + DEVICES
    with first, second, requests.Session() as s1, requests.Session() as s2:
        s1.auth, s2.auth = first, second
        assert s1.get(url).status_code == 200
        assert s2.get(url).status_code == 200  # both now hold the token locally
        emulator.invalidate_all_tokens()
        assert s1.get(url).status_code == 200  # 401, compare-and-delete, fetch, re-send
        assert s2.get(url).status_code == 200
        assert s2.get(url).status_code == 200
    counters = emulator.counters
    assert (counters.token_requests, counters.api_401, counters.api_ok) == (2, 2, 5)


def test_in_the_renew_window_one_instance_renews_and_nobody_waits(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    clock = ManualClock(1000.0)

    def wall() -> float:  # moves with the monotonic clock, as the two do in the real world
        return WALL + clock.now

    url = emulator.clouds["us-1"] + DEVICES
    one, two = (make_auth(emulator, store.new(wall_clock=wall), clock=clock) for _ in range(2))
    with one, two, requests.Session() as s1, requests.Session() as s2:
        s1.auth, s2.auth = one, two
        assert [s1.get(url).status_code, s2.get(url).status_code] == [200, 200]
        (first,) = emulator.issued_tokens()
        assert emulator.counters.token_requests == 1
        clock.now += 1799 - 60  # inside the 120 s renew window, not expired
        with emulator.hold_token_requests() as gate:
            assert s1.get(url).status_code == 200  # served the current token at once
            assert gate.wait_for_held(1, timeout=30)  # its renewal holds the shared lock
            assert s2.get(url).status_code == 200  # served at once too
            assert tokens_of(two).wait_for_renewal(30)  # the lock was busy: it did not fetch
            assert gate.held == 1
            assert one.get_token().access_token == first
        assert tokens_of(one).wait_for_renewal(30)
        assert s2.get(url).status_code == 200
        renewed = two.get_token().access_token  # read from the store, not fetched
        assert renewed != first
        assert one.get_token().access_token == renewed
    counters = emulator.counters
    assert (counters.token_requests, counters.tokens_issued, counters.api_401) == (2, 2, 0)
    assert counters.calls_per_token == {
        emulator.token_id(first): 4,
        emulator.token_id(renewed): 1,
    }


def test_the_warm_path_makes_no_io(store: SharedStore, emulator: FalconEmulator) -> None:
    served = store.watch_io()
    url = emulator.clouds["us-1"] + DEVICES
    with make_auth(emulator, store.new()) as auth, requests.Session() as session:
        auth.attach(session)
        assert session.get(url).status_code == 200
        before = served()
        assert [session.get(url).status_code for _ in range(50)] == [200] * 50
        after = served()
    assert before[store.read_operation] >= 1
    assert after == before


# -- from async code (httpx.AsyncClient): the store's I/O stays off the event loop ---------------


@pytest.mark.anyio
async def test_async_tasks_of_two_instances_share_one_token(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    """Two "processes" with 25 cold tasks each, in one loop: one token request. The store is
    read and locked on worker threads, never on the loop."""
    url = emulator.clouds["us-1"] + DEVICES
    auths = [make_auth(emulator, store.new()) for _ in range(2)]
    statuses: list[int] = []
    one, two = (httpx.AsyncClient(auth=FalconHttpxAuth(auth)) for auth in auths)
    async with one, two:

        async def call(client: httpx.AsyncClient) -> None:
            statuses.append((await client.get(url)).status_code)

        async with anyio.create_task_group() as tasks:
            for i in range(50):
                tasks.start_soon(call, (one, two)[i % 2])
    for auth in auths:
        auth.close()
    assert statuses == [200] * 50
    assert emulator.counters.token_requests == 1


@pytest.mark.anyio
async def test_the_async_warm_path_makes_no_io(
    store: SharedStore, emulator: FalconEmulator
) -> None:
    served = store.watch_io()
    url = emulator.clouds["us-1"] + DEVICES
    with make_auth(emulator, store.new()) as auth:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as http:
            assert (await http.get(url)).status_code == 200
            before = served()
            assert [(await http.get(url)).status_code for _ in range(50)] == [200] * 50
            after = served()
    assert before[store.read_operation] >= 1
    assert after == before


def serves_one_clock(cache: MemoryTokenCache | RedisTokenCache | FileTokenCache) -> None:
    clock = ManualClock()
    FalconAuth("a", "secret-a", cache=cache, clock=clock, renew_window=60)
    FalconAuth("b", "secret-b", cache=cache, clock=clock, renew_window=300)
    assert cache.timing == Timing(clock, 300)  # the widest window: nobody renews late
    with pytest.raises(ConfigurationError, match="clock"):
        FalconAuth("c", "secret-c", cache=cache)  # time.monotonic: another clock


def test_a_cache_serves_one_clock(store: SharedStore) -> None:
    serves_one_clock(store.new())


def test_the_memory_cache_serves_one_clock_as_the_shared_ones_do() -> None:
    serves_one_clock(MemoryTokenCache())


# -- the object itself ----------------------------------------------------------------------------


def test_repr_names_the_backend_never_a_secret(store: SharedStore) -> None:
    cache = store.new()
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
    assert repr(cache) == store.expected_repr()
    for secret in (TOKEN, SECRET, CLIENT_ID):
        assert secret not in repr(cache)


def test_a_forked_child_gets_its_own_locks_and_connections(store: SharedStore) -> None:
    cache = store.new()
    cache.set(KEY, token("tok-parent", issued_at=cache.timing.clock()))
    parent_connection = store.connection(cache)  # a pooled connection the child inherits

    def child() -> str:
        cache.bind(Timing())  # as a FalconAuth built in the child would
        got = cache.get(KEY)
        lock = cache.lock(KEY)
        assert lock.acquire(timeout=10)
        cache.set(KEY, token("tok-child", issued_at=cache.timing.clock()))
        lock.release()
        connection = store.connection(cache)
        store.drop_connections(cache)
        shares = connection is not None and connection == parent_connection
        return f"{present(got).access_token} shares a connection: {shares}"

    # This thread holds the cache's locks across the fork: the child inherits them held, and
    # nothing in the child will ever release them (as if another thread of the parent held them).
    with cache._state_lock, cache._copy._lock:
        report = in_child(child)
    assert report() == "tok-parent shares a connection: False"
    assert store.connection(cache) == parent_connection  # the child left the parent's alone
    assert present(cache.get(KEY)).access_token == "tok-parent"  # still fresh in this process
    assert present(store.new().get(KEY)).access_token == "tok-child"  # what the others see
    assert not store.locked(KEY)  # the child left no lock held


def test_a_missing_dependency_names_the_install_command(
    store: SharedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, store.dependency, None)
    monkeypatch.delitem(sys.modules, store.module)
    with pytest.raises(ImportError, match=store.install_command):
        importlib.import_module(store.module)


# -- real processes ---------------------------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[Processes]:
    with Processes() as started:
        yield started


def fleet_job(
    store: SharedStore, emu: FalconEmulator, *, calls: int, lock_ttl: float = 30.0
) -> FleetJob:
    url = emu.clouds["us-1"] + DEVICES
    return FleetJob(store.spec(lock_ttl=lock_ttl), emu.clouds, CLIENT_ID, SECRET, url, calls)


def test_eight_cold_processes_make_one_token_request(
    store: SharedStore, emulator: FalconEmulator, processes: Processes
) -> None:
    start = processes.context.Barrier(8)
    job = fleet_job(store, emulator, calls=3)
    for _ in range(8):
        processes.start(fleet_worker, job, start, None, processes.results)
    assert processes.collect(8) == [[200, 200, 200]] * 8
    counters = emulator.counters
    assert counters.token_requests == 1
    assert counters.tokens_issued == 1
    assert list(counters.calls_per_token.values()) == [24]


def test_the_others_get_a_token_when_the_lock_holder_dies_mid_fetch(
    store: SharedStore, emulator: FalconEmulator, processes: Processes
) -> None:
    ready, go = processes.context.Barrier(4), processes.context.Event()
    key = fleet_key(emulator, store)
    # A Redis lock outlives a holder that died by lock_ttl; the kernel frees a flock at once.
    job = fleet_job(store, emulator, calls=2, lock_ttl=1.5)
    with emulator.hold_token_requests() as gate:
        for _ in range(3):
            processes.start(fleet_worker, job, ready, go, processes.results)
        holder_job = fleet_job(store, emulator, calls=1, lock_ttl=1.5)
        holder = processes.start(fleet_worker, holder_job, None, None, processes.results)
        ready.wait(120)  # the three others are built and waiting to go
        assert gate.wait_for_held(1, timeout=120)  # the holder has the lock, its fetch is held
        assert store.locked(key)
        assert holder.pid is not None
        go.set()
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.join(30)
        assert holder.exitcode == -signal.SIGKILL
    outcomes = processes.collect(3)
    # A lock left held would have kept them waiting for the provider's lock timeout.
    assert time.monotonic() - killed_at < DEFAULT_LOCK_TIMEOUT / 5
    assert outcomes == [[200, 200]] * 3
    counters = emulator.counters
    assert counters.token_requests == 2  # the killed one, then one for everyone else
    assert sorted(counters.calls_per_token.values()) == [6]


def test_in_the_renew_window_one_process_renews_and_no_process_waits(
    store: SharedStore, emulator: FalconEmulator, processes: Processes
) -> None:
    mp = processes.context
    offset, ready, go, done = mp.Value("d", 0.0), mp.Barrier(3), mp.Event(), mp.Event()
    job = fleet_job(store, emulator, calls=5)
    for _ in range(2):
        processes.start(renewing_worker, job, offset, ready, go, done, processes.results)
    ready.wait(120)  # both made their first call: one fetched, the other read the store
    assert emulator.counters.token_requests == 1
    with emulator.hold_token_requests() as gate:
        offset.value = 1799 - 60  # both clocks are now inside the 120 s renew window
        go.set()
        # Every call in the window finishes while the one renewal is held at the server.
        assert processes.collect(2) == [[200] * 6] * 2
        assert gate.wait_for_held(1, timeout=60)
        assert gate.held == 1  # the other process never asked: it saw the lock held
    done.set()
    assert processes.collect(2) == [[200]] * 2
    counters = emulator.counters
    assert (counters.token_requests, counters.tokens_issued, counters.api_401) == (2, 2, 0)
