"""FileTokenCache on a real file system: at rest, permissions, links, the flock, fleets.

Processes are real (multiprocessing "spawn") where the host-wide behaviour is the point; "two
processes" elsewhere are two FileTokenCache instances on one directory (each with its own local
copy and its own lock file descriptor). Synchronisation is by barriers, events, the emulator's
gate and counters, never by sleeping.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import platformdirs
import pytest
import requests
import shared_store_contract
from support import in_child, present

from requests_falcon_auth import FalconAuth
from requests_falcon_auth import filecache as filecache_module
from requests_falcon_auth.cache import CacheKey, Timing
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.provider import DEFAULT_LOCK_TIMEOUT
from requests_falcon_auth.sealed import Sealer
from requests_falcon_auth.testing import FalconEmulator, ManualClock
from requests_falcon_auth.token import Token

CLIENT_ID = "host-client-id-3d8e"
SECRET = "host-client-secret-a61f"
DEVICES = "/devices/queries/devices/v1"
ENTRY = "https://api.crowdstrike.com"
KEY = CacheKey.for_credentials(ENTRY, CLIENT_ID, SECRET, None)
TOKEN = "eyJhbGciOi.host-tok-" + "8b2e71" * 12
LOGGER = "requests_falcon_auth.filecache"
WALL = 1_700_000_000.0


def token(value: str = TOKEN, issued_at: float = 1000.0, expires_in: int = 1799) -> Token:
    return Token(value, "bearer", expires_in, "us-1", ENTRY, issued_at)


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def bound(cache: FileTokenCache, clock: Callable[[], float]) -> FileTokenCache:
    """The cache on ``clock``, as the FalconAuth that uses it would leave it."""
    cache.bind(Timing(clock))
    return cache


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def directory(tmp_path: Path) -> str:
    """A directory for the cache, not yet created (the cache creates it)."""
    return str(tmp_path / "tokens")


@pytest.fixture
def emulator() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1",)) as emu:
        emu.add_client(CLIENT_ID, SECRET)
        yield emu


def make_auth(emu: FalconEmulator, cache: FileTokenCache, **kwargs: Any) -> FalconAuth:
    return FalconAuth(CLIENT_ID, SECRET, cloud="us-1", clouds=emu.clouds, cache=cache, **kwargs)


def fleet_key(emu: FalconEmulator, directory: str) -> CacheKey:
    """The key FalconAuth derives for the emulator's us-1 entry point."""
    with make_auth(emu, FileTokenCache(directory)) as auth:
        return auth._provider.key


# -- at rest ---------------------------------------------------------------------------------------


def test_a_token_round_trips_with_an_equivalent_expiry(directory: str) -> None:
    writer = bound(FileTokenCache(directory, wall_clock=ManualClock(WALL)), ManualClock(1000.0))
    writer.set(KEY, token(issued_at=990.0))  # 1789 s of life left
    # Another process: its monotonic clock reads anything; its wall clock is 100 s later.
    reader_wall_clock = ManualClock(WALL + 100)
    reader = bound(FileTokenCache(directory, wall_clock=reader_wall_clock), ManualClock(50.0))
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
    late = bound(FileTokenCache(directory, wall_clock=reader_wall_clock), ManualClock(50.0))
    reader_wall_clock.now += 1689
    assert late.get(KEY) is None  # past the stored expiry


def test_an_expired_token_is_never_written(directory: str) -> None:
    cache = bound(FileTokenCache(directory), ManualClock(1000.0))
    cache.set(KEY, token(issued_at=1000.0 - 1799))
    assert not os.path.exists(cache.entry_path(KEY))


def test_the_file_is_the_sealed_format_bound_to_the_key_name(directory: str) -> None:
    cache = FileTokenCache(directory)
    cache.set(KEY, token(issued_at=cache._clock()))
    raw = Path(cache.entry_path(KEY)).read_bytes()
    assert raw.startswith(b"v1:")
    assert raw.count(b":") == 2
    assert not raw.endswith(b"\n")
    assert Path(cache.entry_path(KEY)).name == KEY.name + ".token"
    opened = Sealer("file", KEY.secret).open(raw, location=KEY.name)
    assert opened.access_token == TOKEN
    assert TOKEN not in repr(opened)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(opened)


def test_nothing_on_disk_names_the_token_the_client_id_or_the_secret(
    directory: str, emulator: FalconEmulator
) -> None:
    cache = FileTokenCache(directory)
    with make_auth(emulator, cache) as auth, requests.Session() as session:
        auth.attach(session)
        assert session.get(emulator.clouds["us-1"] + DEVICES).status_code == 200
        lock = cache.lock(auth._provider.key)
        assert lock.acquire()  # the lock file exists and is held while the directory is read
        try:
            dump: list[bytes] = []
            for root, dirs, files in os.walk(directory):
                for name in dirs + files:
                    dump.append(name.encode())
                for name in files:
                    dump.append(Path(root, name).read_bytes())
        finally:
            lock.release()
    (issued,) = emulator.issued_tokens()
    assert sorted(os.listdir(directory)) == sorted(
        [f"{auth._provider.key.name}.token", f"{auth._provider.key.name}.lock"]
    )
    assert len(dump) == 4  # two names, two contents
    forbidden = [CLIENT_ID, SECRET, issued, issued[:16], issued[-16:]]
    forbidden_bytes = [s.encode() for s in forbidden]
    forbidden_bytes += [base64.b64encode(s.encode()) for s in forbidden]
    forbidden_bytes += [s.encode().hex().encode() for s in forbidden]
    for raw in dump:
        for secret in forbidden_bytes:
            assert secret not in raw
    assert Path(cache.entry_path(auth._provider.key)).read_bytes().startswith(b"v1:")


def test_another_secret_reads_nothing(directory: str, caplog: pytest.LogCaptureFixture) -> None:
    writer = FileTokenCache(directory)
    writer.set(KEY, token(issued_at=writer._clock()))
    reader = FileTokenCache(directory)  # another process: nothing local
    other = CacheKey.for_credentials(ENTRY, CLIENT_ID, "a-rotated-secret", None)
    assert other.name != KEY.name
    assert reader.get(other) is None
    assert warnings_logged(caplog) == []  # another name: simply no file
    impostor = CacheKey(KEY.name, other.secret)  # the same file, other key material
    assert reader.get(impostor) is None
    (warning,) = warnings_logged(caplog)
    assert "does not decrypt or verify (authentication failed)" in warning.getMessage()
    assert reader.entry_path(KEY) in warning.getMessage()
    assert TOKEN not in caplog.text
    assert Path(reader.entry_path(KEY)).read_text() not in caplog.text
    got = FileTokenCache(directory).get(KEY)
    assert got is not None
    assert got.access_token == TOKEN  # the file was left for those who can read it


def _flip_sealed_byte(value: bytes) -> bytes:
    version, fingerprint, sealed = value.split(b":")
    raw = bytearray(base64.b64decode(sealed))
    raw[20] ^= 0x01
    return b":".join([version, fingerprint, base64.b64encode(bytes(raw))])


def _other_tokens_fingerprint(value: bytes) -> bytes:
    version, _, sealed = value.split(b":")
    other = Sealer("file", KEY.secret).fingerprint("tok-another-one").encode()
    return b":".join([version, other, sealed])


def _sealed_for_redis(value: bytes) -> bytes:
    """The same token, sealed as RedisTokenCache would under the same name."""
    sealed = Sealer("redis", KEY.secret).seal(token(), location=KEY.name, expiry=time.time() + 900)
    return sealed.encode()


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "flipped ciphertext bit": _flip_sealed_byte,
    "another token's fingerprint": _other_tokens_fingerprint,
    "truncated": lambda value: value[: len(value) // 2],
    "empty": lambda value: b"",
    "unknown version": lambda value: b"v9" + value[2:],
    "not base64": lambda value: value[:-4] + b"!!!!",
    "plain json": lambda value: json.dumps({"access_token": TOKEN, "expires_in": 1799}).encode(),
    "binary garbage": lambda value: b"\x00\xff" * 64,
    "too large": lambda value: value + b"A" * 70_000,
    "sealed for redis": _sealed_for_redis,
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_damaged_file_is_a_miss_with_one_warning_and_the_next_fetch_repairs_it(
    directory: str,
    emulator: FalconEmulator,
    caplog: pytest.LogCaptureFixture,
    tamper: Callable[[bytes], bytes],
) -> None:
    url = emulator.clouds["us-1"] + DEVICES
    key = fleet_key(emulator, directory)
    entry = Path(FileTokenCache(directory).entry_path(key))

    def one_process() -> int:
        with (
            make_auth(emulator, FileTokenCache(directory)) as auth,
            requests.Session() as session,
        ):
            auth.attach(session)
            return session.get(url).status_code

    assert one_process() == 200
    value = entry.read_bytes()
    entry.write_bytes(tamper(value))
    assert one_process() == 200  # a miss: fetched, never an exception
    assert emulator.counters.token_requests == 2
    (warning,) = warnings_logged(caplog)
    assert "does not decrypt or verify" in warning.getMessage()
    repaired = entry.read_bytes()
    assert repaired.startswith(b"v1:")
    assert repaired != value
    assert mode(entry) == 0o600
    assert one_process() == 200  # the next process reads the fresh token
    counters = emulator.counters
    assert (counters.token_requests, counters.api_401) == (2, 0)
    assert len(warnings_logged(caplog)) == 1
    assert TOKEN not in caplog.text
    for issued in emulator.issued_tokens():
        assert issued not in caplog.text


def test_a_value_moved_to_another_key_file_is_a_miss(
    directory: str, caplog: pytest.LogCaptureFixture
) -> None:
    writer = FileTokenCache(directory)
    writer.set(KEY, token(issued_at=writer._clock()))
    elsewhere = CacheKey("e" * 64, KEY.secret)  # same secret: only the name differs
    shutil.copyfile(writer.entry_path(KEY), writer.entry_path(elsewhere))
    reader = FileTokenCache(directory)
    assert reader.get(elsewhere) is None
    assert len(warnings_logged(caplog)) == 1
    assert reader.get(KEY) is not None


def test_unreadable_warnings_are_rate_limited(
    directory: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    cache = bound(FileTokenCache(directory, warn_interval=60), clock)
    Path(cache.entry_path(KEY)).write_bytes(b"junk")
    assert [cache.get(KEY), cache.get(KEY)] == [None, None]
    levels = [r.levelno for r in caplog.records if r.name == LOGGER]
    assert levels == [logging.WARNING, logging.DEBUG]
    clock.now += 60
    assert cache.get(KEY) is None
    assert len(warnings_logged(caplog)) == 2


def test_an_unsafe_key_name_stays_inside_the_directory(directory: str) -> None:
    cache = FileTokenCache(directory)
    odd = CacheKey("../../escape/" + "x" * 200, KEY.secret)
    cache.set(odd, token(issued_at=cache._clock()))
    assert os.path.dirname(cache.entry_path(odd)) == cache.path
    stem = Path(cache.entry_path(odd)).stem
    assert stem.startswith("h-")
    assert sorted(os.listdir(directory)) == [f"{stem}.lock", f"{stem}.token"]
    got = FileTokenCache(directory).get(odd)
    assert got is not None
    assert got.access_token == TOKEN


# -- permissions and links -------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o277], ids=["umask 000", "umask 277"])
def test_the_directory_is_created_0700_and_every_file_0600(tmp_path: Path, umask: int) -> None:
    """Whatever the umask: 000 would leave files open to all, 277 would take the owner's
    write bit; every mode below is the cache's doing."""
    parent = tmp_path / "nested"
    parent.mkdir()
    directory = parent / "tokens"
    previous = os.umask(umask)
    try:
        cache = FileTokenCache(directory)
        lock = cache.lock(KEY)
        assert lock.acquire()
        cache.set(KEY, token(issued_at=cache._clock()))
        lock.release()
    finally:
        os.umask(previous)
    assert cache.path == str(directory)
    assert mode(directory) == 0o700
    assert sorted(os.listdir(directory)) == [f"{KEY.name}.lock", f"{KEY.name}.token"]
    assert [mode(directory / name) for name in sorted(os.listdir(directory))] == [0o600, 0o600]
    for name in os.listdir(directory):
        assert os.stat(directory / name).st_uid == os.geteuid()
    got = FileTokenCache(directory).get(KEY)
    assert got is not None
    assert got.access_token == TOKEN


def test_an_existing_private_directory_is_used_as_it_is(tmp_path: Path) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    (directory / "unrelated").write_text("left alone")
    cache = FileTokenCache(directory)
    cache.set(KEY, token(issued_at=cache._clock()))
    assert mode(directory) == 0o700
    assert (directory / "unrelated").read_text() == "left alone"


@pytest.mark.parametrize("perms", [0o755, 0o750, 0o705, 0o701, 0o770, 0o777])
def test_a_directory_open_to_others_is_refused(tmp_path: Path, perms: int) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir()
    os.chmod(directory, perms)
    with pytest.raises(ConfigurationError, match=rf"open to other users \(mode {perms:04o}\)"):
        FileTokenCache(directory)
    assert mode(directory) == perms  # refused, not silently changed


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(ConfigurationError, match="symbolic link") as caught:
        FileTokenCache(link)
    assert str(link) in str(caught.value)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ConfigurationError, match="symbolic link"):
        FileTokenCache(dangling)
    assert not (tmp_path / "nowhere").exists()


def test_a_file_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text("not a directory")
    with pytest.raises(ConfigurationError, match="not a directory"):
        FileTokenCache(tmp_path / "tokens")


def test_a_directory_of_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(directory, 65534, 65534)
    else:  # as another user the directory is ours; make this process someone else instead
        real = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    with pytest.raises(ConfigurationError, match=r"belongs to another user \(uid \d+\)"):
        FileTokenCache(directory)


def test_a_directory_that_cannot_be_created_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="Cannot create the token cache directory"):
        FileTokenCache(blocker / "tokens")


def test_a_symlinked_entry_is_not_followed_and_is_replaced_on_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere_cache = FileTokenCache(elsewhere)
    elsewhere_cache.set(KEY, token(issued_at=elsewhere_cache._clock()))  # a valid token
    target = Path(elsewhere_cache.entry_path(KEY))
    before = target.read_bytes()
    cache = FileTokenCache(tmp_path / "tokens")
    entry = Path(cache.entry_path(KEY))
    entry.symlink_to(target)
    assert cache.get(KEY) is None  # a valid token behind the link, and still a miss
    (warning,) = warnings_logged(caplog)
    assert "a symbolic link, not followed" in warning.getMessage()
    cache.set(KEY, token("tok-replacing", issued_at=cache._clock()))
    assert not entry.is_symlink()
    assert mode(entry) == 0o600
    assert target.read_bytes() == before  # the link's target was not written through
    got = FileTokenCache(tmp_path / "tokens").get(KEY)
    assert got is not None
    assert got.access_token == "tok-replacing"


def test_a_symlinked_lock_file_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    os.chmod(target, 0o644)
    cache = FileTokenCache(tmp_path / "tokens")
    Path(cache.lock_path(KEY)).symlink_to(target)
    lock = cache.lock(KEY)
    assert lock.acquire(timeout=5)  # this process's lock alone, with a warning
    lock.release()
    (warning,) = warnings_logged(caplog)
    assert "during lock" in warning.getMessage()
    assert target.read_bytes() == b"keep me"
    assert mode(target) == 0o644


def test_a_fifo_in_place_of_the_entry_is_a_miss_not_a_hang(
    directory: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FileTokenCache(directory)
    os.mkfifo(cache.entry_path(KEY), 0o600)
    assert cache.get(KEY) is None
    (warning,) = warnings_logged(caplog)
    assert "not a regular file" in warning.getMessage()


def test_a_directory_removed_at_run_time_is_created_again(
    directory: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FileTokenCache(directory)
    shutil.rmtree(directory)
    assert cache.get(KEY) is None
    cache.set(KEY, token(issued_at=cache._clock()))
    assert mode(directory) == 0o700
    assert mode(cache.entry_path(KEY)) == 0o600
    assert warnings_logged(caplog) == []
    assert FileTokenCache(directory).get(KEY) is not None


def test_a_directory_opened_to_others_at_run_time_is_not_written(
    directory: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FileTokenCache(directory)
    os.chmod(directory, 0o755)
    cache.set(KEY, token(issued_at=cache._clock()))  # kept locally, never raised
    assert os.listdir(directory) == []
    (warning,) = warnings_logged(caplog)
    assert "open to other users" in warning.getMessage()
    got = cache.get(KEY)
    assert got is not None
    assert got.access_token == TOKEN


def test_windows_is_refused(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(os, "name", "nt")
        with pytest.raises(ConfigurationError, match="Linux and macOS only") as caught:
            FileTokenCache(directory)
    assert "RedisTokenCache" in str(caught.value)
    assert not os.path.exists(directory)


def test_the_default_directory_is_the_users_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    cache = FileTokenCache()
    assert cache.path == platformdirs.user_cache_dir("requests-falcon-auth", appauthor=False)
    assert cache.path.startswith(str(tmp_path))
    assert os.path.basename(cache.path) == "requests-falcon-auth"
    assert mode(cache.path) == 0o700


@pytest.mark.parametrize("kwargs", [{"warn_interval": -1}, {"warn_interval": float("nan")}])
def test_bad_arguments_are_refused(directory: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="warn_interval"):
        FileTokenCache(directory, **kwargs)


@pytest.mark.parametrize("path", ["", b"/tmp/bytes", 42])
def test_a_bad_path_is_refused(path: Any) -> None:
    with pytest.raises(ConfigurationError, match="path must name a directory"):
        FileTokenCache(path)


# -- the protocol: local first, peek, version, compare-and-delete ---------------------------------


def test_local_first_the_file_is_read_only_when_the_window_opens(
    directory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(1000.0)
    wall = ManualClock(WALL)
    cache = bound(FileTokenCache(directory, wall_clock=wall), clock)
    version = cache.version
    cache.set(KEY, token(issued_at=clock.now))
    assert cache.version != version
    reads: list[str] = []
    read_entry = filecache_module._read_entry

    def counted(entry: str) -> bytes | None:
        reads.append(entry)
        return read_entry(entry)

    monkeypatch.setattr(filecache_module, "_read_entry", counted)
    os.unlink(cache.entry_path(KEY))  # gone from disk: only a read would notice
    assert cache.peek(KEY) is not None
    assert cache.get(KEY) is not None
    assert reads == []
    clock.now += 1799 - 120  # the renew window opens: the file is consulted, and is gone
    wall.now += 1799 - 120
    assert cache.peek(KEY) is not None  # peek never reads
    assert reads == []
    version = cache.version
    assert cache.get(KEY) is None
    assert reads == [cache.entry_path(KEY)]
    assert cache.peek(KEY) is None  # the local copy mirrors the file
    assert cache.version != version


def test_compare_and_delete_removes_only_the_token_that_failed(directory: str) -> None:
    mine, theirs = FileTokenCache(directory), FileTokenCache(directory)
    failed = token("tok-1", issued_at=mine._clock())
    mine.set(KEY, failed)
    theirs.set(KEY, token("tok-2", issued_at=mine._clock()))  # another process replaced it
    assert mine.compare_and_delete(KEY, failed) is False
    assert mine.peek(KEY) is None  # its own copy of the failed token is gone
    got = FileTokenCache(directory).get(KEY)
    assert got is not None
    assert got.access_token == "tok-2"
    assert mine.compare_and_delete(KEY, token("tok-2")) is True
    assert not os.path.exists(mine.entry_path(KEY))
    assert mine.compare_and_delete(KEY, token("tok-2")) is False
    assert FileTokenCache(directory).get(KEY) is None


def test_a_store_and_a_delete_by_the_lock_holder_do_not_wait_for_it(directory: str) -> None:
    cache = FileTokenCache(directory)
    lock = cache.lock(KEY)
    assert lock.acquire(timeout=5)
    try:
        cache.set(KEY, token("tok-1", issued_at=cache._clock()))
        assert cache.compare_and_delete(KEY, token("tok-1")) is True
        cache.set(KEY, token("tok-2", issued_at=cache._clock()))
    finally:
        lock.release()
    got = FileTokenCache(directory).get(KEY)
    assert got is not None
    assert got.access_token == "tok-2"


def test_a_store_outside_the_lock_waits_for_another_threads_hold(directory: str) -> None:
    cache = FileTokenCache(directory)
    lock = cache.lock(KEY)
    assert lock.acquire()
    stored = threading.Event()

    def store() -> None:
        cache.set(KEY, token("tok-late", issued_at=cache._clock()))
        stored.set()

    writer = threading.Thread(target=store)
    writer.start()
    holder_token = token("tok-holder", issued_at=cache._clock())
    cache.set(KEY, holder_token)  # the holder stores and deletes, the writer still waits
    assert cache.compare_and_delete(KEY, holder_token) is True
    assert not stored.is_set()
    lock.release()
    writer.join(30)
    assert stored.is_set()
    got = FileTokenCache(directory).get(KEY)
    assert got is not None
    assert got.access_token == "tok-late"


# -- the host lock -----------------------------------------------------------------------------------


def test_the_lock_is_exclusive_between_instances_and_honours_timeout(directory: str) -> None:
    a, b = FileTokenCache(directory), FileTokenCache(directory)
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
    assert a.lock(KEY).acquire(timeout=0) is True


def test_threads_of_one_process_share_the_lock(directory: str) -> None:
    cache = FileTokenCache(directory)
    held = cache.lock(KEY)
    assert held.acquire()
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(cache.lock(KEY).acquire(timeout=0)))
    thread.start()
    thread.join()
    held.release()
    assert outcome == [False]


def test_falcon_auth_with_a_file_cache_does_not_revoke_on_close(
    directory: str, emulator: FalconEmulator
) -> None:
    cache = FileTokenCache(directory)
    assert cache.shared is True
    with make_auth(emulator, cache) as auth, requests.Session() as session:
        assert auth.revoke_on_close is False
        auth.attach(session)
        assert session.get(emulator.clouds["us-1"] + DEVICES).status_code == 200
    assert emulator.counters.revokes == 0
    got = FileTokenCache(directory).get(auth._provider.key)  # the host keeps using it
    assert got is not None
    assert got.access_token == emulator.issued_tokens()[0]


def test_threads_and_instances_share_one_token(directory: str, emulator: FalconEmulator) -> None:
    shared_store_contract.threads_and_instances_share_one_token(
        emulator, lambda: make_auth(emulator, FileTokenCache(directory))
    )


def test_a_401_drops_the_host_token_and_one_fresh_token_serves_everyone(
    directory: str, emulator: FalconEmulator
) -> None:
    shared_store_contract.a_401_drops_the_shared_token_and_one_fresh_token_serves_everyone(
        emulator, lambda: make_auth(emulator, FileTokenCache(directory))
    )


def test_in_the_renew_window_one_instance_renews_and_nobody_waits(
    directory: str, emulator: FalconEmulator
) -> None:
    clock = ManualClock(1000.0)

    def wall() -> float:  # moves with the monotonic clock, as the two do in the real world
        return WALL + clock.now

    url = emulator.clouds["us-1"] + DEVICES
    one, two = (
        make_auth(emulator, FileTokenCache(directory, wall_clock=wall), clock=clock)
        for _ in range(2)
    )
    with one, two, requests.Session() as s1, requests.Session() as s2:
        s1.auth, s2.auth = one, two
        assert [s1.get(url).status_code, s2.get(url).status_code] == [200, 200]
        (first,) = emulator.issued_tokens()
        assert emulator.counters.token_requests == 1
        clock.now += 1799 - 60  # inside the 120 s renew window, not expired
        with emulator.hold_token_requests() as gate:
            assert s1.get(url).status_code == 200  # served the current token at once
            assert gate.wait_for_held(1, timeout=30)  # its renewal holds the file lock
            assert s2.get(url).status_code == 200  # served at once too
            assert two._provider.wait_for_renewal(30)  # the lock was busy: it did not fetch
            assert gate.held == 1
            assert one.get_token().access_token == first
        assert one._provider.wait_for_renewal(30)
        assert s2.get(url).status_code == 200
        renewed = two.get_token().access_token  # read from the file, not fetched
        assert renewed != first
        assert one.get_token().access_token == renewed
    counters = emulator.counters
    assert (counters.token_requests, counters.tokens_issued, counters.api_401) == (2, 2, 0)
    assert counters.calls_per_token == {
        emulator.token_id(first): 4,
        emulator.token_id(renewed): 1,
    }


@pytest.mark.anyio
async def test_async_tasks_of_two_instances_share_one_token(
    directory: str, emulator: FalconEmulator
) -> None:
    url = emulator.clouds["us-1"] + DEVICES
    auths = [make_auth(emulator, FileTokenCache(directory)) for _ in range(2)]
    statuses: list[int] = []
    one, two = (httpx.AsyncClient(auth=FalconHttpxAuth(auth)) for auth in auths)
    async with one, two:

        async def call(client: httpx.AsyncClient) -> None:
            statuses.append((await client.get(url)).status_code)

        async with anyio.create_task_group() as tasks:
            for i in range(40):
                tasks.start_soon(call, (one, two)[i % 2])
    for auth in auths:
        auth.close()
    assert statuses == [200] * 40
    assert emulator.counters.token_requests == 1


# -- the object itself ---------------------------------------------------------------------------


def test_repr_shows_the_directory_only(directory: str) -> None:
    cache = FileTokenCache(directory)
    cache.set(KEY, token(issued_at=cache._clock()))
    assert repr(cache) == f"FileTokenCache(path={directory!r})"


def test_a_pickle_carries_the_directory_never_a_token_or_a_key(directory: str) -> None:
    cache = FileTokenCache(directory, warn_interval=5)
    cache.set(KEY, token(issued_at=cache._clock()))
    data = pickle.dumps(cache)
    for secret in (TOKEN.encode(), KEY.secret, base64.b64encode(KEY.secret), SECRET.encode()):
        assert secret not in data
    copy = pickle.loads(data)
    assert (copy.path, copy.warn_interval) == (cache.path, 5.0)
    assert copy.peek(KEY) is None  # nothing local travelled
    got = copy.get(KEY)
    assert got is not None
    assert got.access_token == TOKEN  # read from the file


def test_a_falcon_auth_with_a_file_cache_pickles_with_it(
    directory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALCON_CLIENT_SECRET", SECRET)
    auth = FalconAuth(CLIENT_ID, cache=FileTokenCache(directory))
    copy = pickle.loads(pickle.dumps(auth))
    assert isinstance(copy.cache, FileTokenCache)
    assert copy.cache.path == directory
    assert copy.revoke_on_close is False


def test_a_forked_child_gets_its_own_locks(directory: str) -> None:
    cache = FileTokenCache(directory)
    cache.set(KEY, token("tok-parent", issued_at=cache._clock()))
    # Another thread holds the cache's lock across the fork: the child inherits it held.
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with cache._state_lock:
            holding.set()
            done.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()

    def child() -> str:
        got = cache.get(KEY)
        lock = cache.lock(KEY)
        assert lock.acquire(timeout=10)
        cache.set(KEY, token("tok-child", issued_at=cache._clock()))
        lock.release()
        return got.access_token if got is not None else "none"

    report = in_child(child)
    done.set()
    holder.join()
    assert report() == "tok-parent"
    assert present(cache.get(KEY)).access_token == "tok-parent"  # still fresh in this process
    assert (
        present(FileTokenCache(directory).get(KEY)).access_token == "tok-child"
    )  # what others see
    probe = cache.lock(KEY)
    assert probe.acquire(blocking=False) is True  # the child left no lock held
    probe.release()


def test_a_missing_dependency_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "filelock", None)
    monkeypatch.delitem(sys.modules, "requests_falcon_auth.filecache")
    with pytest.raises(ImportError, match=r"pip install 'filelock>=3\.12' 'platformdirs>=3'"):
        importlib.import_module("requests_falcon_auth.filecache")


# -- real processes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostJob:
    """What one worker process does: build its own cache and auth, then GET ``url``."""

    directory: str
    clouds: dict[str, str]
    url: str
    calls: int


def host_worker(job: HostJob, start: Any, go: Any, results: Any) -> None:
    """Runs ``job`` after ``start`` (a Barrier) and ``go`` (an Event), if given; reports its
    statuses, or the error, on ``results``."""
    outcome: list[object] = []
    try:
        cache = FileTokenCache(job.directory)
        auth = FalconAuth(CLIENT_ID, SECRET, cloud="us-1", clouds=job.clouds, cache=cache)
        with requests.Session() as session:
            auth.attach(session)
            if start is not None:
                start.wait(60)
            if go is not None and not go.wait(60):
                raise TimeoutError("never told to go")
            for _ in range(job.calls):
                outcome.append(session.get(job.url, timeout=60).status_code)
    except Exception as exc:
        outcome.append(f"{type(exc).__name__}: {exc}")
    finally:
        results.put(outcome)


def lock_holder(directory: str, held: Any) -> None:
    """Takes KEY's lock, says so, and keeps it until killed."""
    lock = FileTokenCache(directory).lock(KEY)
    if lock.acquire(timeout=60):
        held.set()
    threading.Event().wait(120)


@pytest.fixture
def mp() -> Any:
    """The "spawn" context: children inherit no threads, locks or descriptors from pytest."""
    return multiprocessing.get_context("spawn")


@pytest.fixture
def spawn(mp: Any) -> Iterator[Callable[..., multiprocessing.process.BaseProcess]]:
    """Starts processes; kills and reaps any left at teardown."""
    started: list[multiprocessing.process.BaseProcess] = []

    def start(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
        process = mp.Process(target=target, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(30)
        process.close()


def test_eight_cold_processes_make_one_token_request(
    directory: str, emulator: FalconEmulator, spawn: Callable[..., Any], mp: Any
) -> None:
    results = mp.Queue()
    start = mp.Barrier(8)
    job = HostJob(directory, emulator.clouds, emulator.clouds["us-1"] + DEVICES, 3)
    for _ in range(8):
        spawn(host_worker, job, start, None, results)
    outcomes = [results.get(timeout=120) for _ in range(8)]
    results.close()
    results.join_thread()
    assert outcomes == [[200, 200, 200]] * 8
    counters = emulator.counters
    assert counters.token_requests == 1
    assert counters.tokens_issued == 1
    assert list(counters.calls_per_token.values()) == [24]


def test_a_killed_lock_holder_frees_the_lock_at_once(
    directory: str, spawn: Callable[..., Any], mp: Any
) -> None:
    FileTokenCache(directory)  # created here: the child and this process agree on it
    held = mp.Event()
    holder = spawn(lock_holder, directory, held)
    assert held.wait(60)
    contender = FileTokenCache(directory).lock(KEY)
    assert contender.acquire(blocking=False) is False
    assert contender.acquire(timeout=0.2) is False
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(30)
    assert holder.exitcode == -signal.SIGKILL
    assert contender.acquire(blocking=False) is True  # the kernel released the flock
    contender.release()


def test_the_others_get_a_token_when_the_lock_holder_dies_mid_fetch(
    directory: str, emulator: FalconEmulator, spawn: Callable[..., Any], mp: Any
) -> None:
    results = mp.Queue()
    ready = mp.Barrier(4)
    go = mp.Event()
    url = emulator.clouds["us-1"] + DEVICES
    key = fleet_key(emulator, directory)
    with emulator.hold_token_requests() as gate:
        for _ in range(3):
            spawn(host_worker, HostJob(directory, emulator.clouds, url, 2), ready, go, results)
        holder = spawn(
            host_worker, HostJob(directory, emulator.clouds, url, 1), None, None, results
        )
        ready.wait(120)  # the three others are built and waiting to go
        assert gate.wait_for_held(1, timeout=120)  # the holder has the lock, its fetch is held
        probe = FileTokenCache(directory).lock(key)
        assert probe.acquire(blocking=False) is False  # held by the holder
        go.set()
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        holder.join(30)
        assert holder.exitcode == -signal.SIGKILL
    outcomes = [results.get(timeout=120) for _ in range(3)]
    # A lock left held would have kept them waiting for the provider's lock timeout.
    assert time.monotonic() - killed_at < DEFAULT_LOCK_TIMEOUT / 5
    results.close()
    results.join_thread()
    assert outcomes == [[200, 200]] * 3
    counters = emulator.counters
    assert counters.token_requests == 2  # the killed one, then one for everyone else
    assert sorted(counters.calls_per_token.values()) == [6]
