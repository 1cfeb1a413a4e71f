"""What only FileTokenCache does, on a real file system: the file's format, permissions, links,
FIFOs, the directory at run time, the holder's own lock, a killed holder's flock, pickling.

What every shared store does (at rest, the lock, FalconAuth, processes of one host) is in
``test_shared_stores.py``, run against this store and the Redis store alike. "Two processes"
here are two FileTokenCache instances on one directory (each with its own local copy and its
own lock file descriptor); synchronisation is by events, never by sleeping.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import shutil
import signal
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from fleet_worker import Processes
from support import present, token

from requests_falcon_auth import FalconAuth
from requests_falcon_auth import filecache as filecache_module
from requests_falcon_auth._sealed import Sealer
from requests_falcon_auth.cache import CacheKey, Timing
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.testing import ManualClock

CLIENT_ID = "host-client-id-3d8e"
SECRET = "host-client-secret-a61f"
ENTRY = "https://api.crowdstrike.com"
KEY = CacheKey.for_credentials(ENTRY, CLIENT_ID, SECRET, None)
TOKEN = "eyJhbGciOi.host-tok-" + "8b2e71" * 12
LOGGER = "requests_falcon_auth.filecache"
WALL = 1_700_000_000.0


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


# -- at rest ---------------------------------------------------------------------------------------


def test_the_file_is_the_sealed_format_bound_to_the_key_name(directory: str) -> None:
    cache = FileTokenCache(directory)
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
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


def test_an_unsafe_key_name_stays_inside_the_directory(directory: str) -> None:
    cache = FileTokenCache(directory)
    odd = CacheKey("../../escape/" + "x" * 200, KEY.secret)
    cache.set(odd, token(TOKEN, issued_at=cache.timing.clock()))
    assert os.path.dirname(cache.entry_path(odd)) == cache.path
    stem = Path(cache.entry_path(odd)).stem
    assert stem.startswith("h-")
    assert sorted(os.listdir(directory)) == [f"{stem}.lock", f"{stem}.token"]
    assert present(FileTokenCache(directory).get(odd)).access_token == TOKEN


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
        cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
        lock.release()
    finally:
        os.umask(previous)
    assert cache.path == str(directory)
    assert mode(directory) == 0o700
    assert sorted(os.listdir(directory)) == [f"{KEY.name}.lock", f"{KEY.name}.token"]
    assert [mode(directory / name) for name in sorted(os.listdir(directory))] == [0o600, 0o600]
    for name in os.listdir(directory):
        assert os.stat(directory / name).st_uid == os.geteuid()
    assert present(FileTokenCache(directory).get(KEY)).access_token == TOKEN


def test_an_existing_private_directory_is_used_as_it_is(tmp_path: Path) -> None:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    (directory / "unrelated").write_text("left alone")
    cache = FileTokenCache(directory)
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
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


def _a_file_in_its_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "tokens").write_text("not a directory")
    return tmp_path / "tokens"


def _another_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "tokens"
    directory.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(directory, 65534, 65534)
    else:  # as another user the directory is ours; make this process someone else instead
        real = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    return directory


def _under_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    blocker = tmp_path / "file"
    blocker.write_text("")
    return blocker / "tokens"


UNUSABLE_DIRECTORIES: dict[str, tuple[Callable[[Path, pytest.MonkeyPatch], Path], str]] = {
    "a file in its place": (_a_file_in_its_place, "not a directory"),
    "another user's": (_another_users, r"belongs to another user \(uid \d+\)"),
    "cannot be created": (_under_a_file, "Cannot create the token cache directory"),
}


@pytest.mark.parametrize(
    ("prepare", "refusal"), UNUSABLE_DIRECTORIES.values(), ids=UNUSABLE_DIRECTORIES.keys()
)
def test_an_unusable_directory_is_a_configuration_error_that_names_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prepare: Callable[[Path, pytest.MonkeyPatch], Path],
    refusal: str,
) -> None:
    directory = prepare(tmp_path, monkeypatch)
    with pytest.raises(ConfigurationError, match=refusal) as caught:
        FileTokenCache(directory)
    assert str(directory) in str(caught.value)


def test_a_symlinked_entry_is_not_followed_and_is_replaced_on_write(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere_cache = FileTokenCache(elsewhere)
    elsewhere_cache.set(
        KEY, token(TOKEN, issued_at=elsewhere_cache.timing.clock())
    )  # a valid token
    target = Path(elsewhere_cache.entry_path(KEY))
    before = target.read_bytes()
    cache = FileTokenCache(tmp_path / "tokens")
    entry = Path(cache.entry_path(KEY))
    entry.symlink_to(target)
    assert cache.get(KEY) is None  # a valid token behind the link, and still a miss
    (warning,) = warnings_logged(caplog)
    assert "a symbolic link, not followed" in warning.getMessage()
    cache.set(KEY, token("tok-replacing", issued_at=cache.timing.clock()))
    assert not entry.is_symlink()
    assert mode(entry) == 0o600
    assert target.read_bytes() == before  # the link's target was not written through
    assert present(FileTokenCache(tmp_path / "tokens").get(KEY)).access_token == "tok-replacing"


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
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
    assert mode(directory) == 0o700
    assert mode(cache.entry_path(KEY)) == 0o600
    assert warnings_logged(caplog) == []
    assert FileTokenCache(directory).get(KEY) is not None


def test_a_directory_opened_to_others_at_run_time_is_not_written(
    directory: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = FileTokenCache(directory)
    os.chmod(directory, 0o755)
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))  # kept locally, never raised
    assert os.listdir(directory) == []
    (warning,) = warnings_logged(caplog)
    assert "open to other users" in warning.getMessage()
    assert present(cache.get(KEY)).access_token == TOKEN


def test_windows_is_refused(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(os, "name", "nt")
        with pytest.raises(ConfigurationError, match="Linux and macOS only") as caught:
            FileTokenCache(directory)
    assert "RedisTokenCache" in str(caught.value)
    assert not os.path.exists(directory)


@pytest.mark.parametrize("xdg_cache_home", ["xdg-cache", "", None])
def test_the_default_directory_is_the_users_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg_cache_home: str | None
) -> None:
    """On Linux FileTokenCache reads the directory without platformdirs: the same one."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg_cache_home is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg_cache_home and str(tmp_path / xdg_cache_home))
    cache = FileTokenCache()
    assert cache.path == platformdirs.user_cache_dir("requests-falcon-auth", appauthor=False)
    assert cache.path.startswith(str(tmp_path))
    assert os.path.basename(cache.path) == "requests-falcon-auth"
    assert mode(cache.path) == 0o700


def test_a_relative_xdg_cache_home_is_ignored_as_the_xdg_rules_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    cache = FileTokenCache()
    assert cache.path == str(tmp_path / "home" / ".cache" / "requests-falcon-auth")


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
    cache.set(KEY, token(TOKEN, issued_at=clock.now))
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


def test_a_store_and_a_delete_by_the_lock_holder_do_not_wait_for_it(directory: str) -> None:
    cache = FileTokenCache(directory)
    lock = cache.lock(KEY)
    assert lock.acquire(timeout=5)
    try:
        cache.set(KEY, token("tok-1", issued_at=cache.timing.clock()))
        assert cache.compare_and_delete(KEY, token("tok-1")) is True
        cache.set(KEY, token("tok-2", issued_at=cache.timing.clock()))
    finally:
        lock.release()
    assert present(FileTokenCache(directory).get(KEY)).access_token == "tok-2"


def test_a_store_outside_the_lock_waits_for_another_threads_hold(directory: str) -> None:
    cache = FileTokenCache(directory)
    lock = cache.lock(KEY)
    assert lock.acquire()
    stored = threading.Event()

    def store() -> None:
        cache.set(KEY, token("tok-late", issued_at=cache.timing.clock()))
        stored.set()

    writer = threading.Thread(target=store)
    writer.start()
    holder_token = token("tok-holder", issued_at=cache.timing.clock())
    cache.set(KEY, holder_token)  # the holder stores and deletes, the writer still waits
    assert cache.compare_and_delete(KEY, holder_token) is True
    assert not stored.is_set()
    lock.release()
    writer.join(30)
    assert stored.is_set()
    assert present(FileTokenCache(directory).get(KEY)).access_token == "tok-late"


# -- the object itself ---------------------------------------------------------------------------


def test_a_pickle_carries_the_directory_never_a_token_or_a_key(directory: str) -> None:
    cache = FileTokenCache(directory, warn_interval=5)
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
    data = pickle.dumps(cache)
    for secret in (TOKEN.encode(), KEY.secret, base64.b64encode(KEY.secret), SECRET.encode()):
        assert secret not in data
    copy = pickle.loads(data)
    assert (copy.path, copy.warn_interval) == (cache.path, 5.0)
    assert copy.peek(KEY) is None  # nothing local travelled
    assert present(copy.get(KEY)).access_token == TOKEN  # read from the file


def test_a_falcon_auth_with_a_file_cache_pickles_with_it(
    directory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALCON_CLIENT_SECRET", SECRET)
    auth = FalconAuth(CLIENT_ID, cache=FileTokenCache(directory))
    copy = pickle.loads(pickle.dumps(auth))
    assert isinstance(copy.cache, FileTokenCache)
    assert copy.cache.path == directory
    assert copy.revoke_on_close is False


# -- real processes ---------------------------------------------------------------------------------


def lock_holder(directory: str, held: Any) -> None:
    """Takes KEY's lock, says so, and keeps it until killed."""
    lock = FileTokenCache(directory).lock(KEY)
    if lock.acquire(timeout=60):
        held.set()
    threading.Event().wait(120)


def test_a_killed_lock_holder_frees_the_lock_at_once(directory: str) -> None:
    """At once: the kernel drops a dead process's flock (the shared suite shows the others
    then get a token; with Redis they wait for lock_ttl instead)."""
    FileTokenCache(directory)  # created here: the child and this process agree on it
    with Processes() as processes:
        held = processes.context.Event()
        holder = processes.start(lock_holder, directory, held)
        assert held.wait(60)
        assert holder.pid is not None
        contender = FileTokenCache(directory).lock(KEY)
        assert contender.acquire(blocking=False) is False
        assert contender.acquire(timeout=0.2) is False
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
        assert holder.exitcode == -signal.SIGKILL
        assert contender.acquire(blocking=False) is True  # the kernel released the flock
        contender.release()
