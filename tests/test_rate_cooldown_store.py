"""The rate-limit cooldown every token store carries: ``rate_cooldown`` and
``extend_rate_cooldown``, on the memory store, the file store, a redis-server and a Redis
Cluster of three (all started here).

A store's ``new`` makes another instance on the same backend: for the shared stores another
"process" (its own Redis client, its own lock descriptors); the file store also meets real
processes ("spawn"). Time is a :class:`ManualClock` given as the stores' wall clock, never a
sleep; threads and processes start together on barriers.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union

import pytest
import redis
from fleet_worker import FileSpec, Processes
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis_launcher import RedisServer, ThreeNodeCluster
from required_tools import redis_cli_executable, redis_server_executable

from requests_falcon_auth.cache import MemoryTokenCache, TokenCache
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.filecache import FileTokenCache
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.testing import ManualClock
from requests_falcon_auth.token import Clock

WALL = 1_700_000_000.0
ACCOUNT = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
OTHER = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
Client = Union[redis.Redis, RedisCluster]


def warnings_of(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= logging.WARNING
    ]


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the stores ----------------------------------------------------------------------------------


class MemoryBackend:
    """MemoryTokenCache: shared between the threads that use one instance, nothing more."""

    kind = "memory"
    logger = "requests_falcon_auth.cache"

    def new(self, wall_clock: Clock = time.time) -> TokenCache:
        return MemoryTokenCache(wall_clock=wall_clock)

    def close(self) -> None:
        pass


class FileBackend:
    """FileTokenCache instances on one directory, and the directory as another program sees it."""

    kind = "file"
    logger = "requests_falcon_auth.filecache"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def new(self, wall_clock: Clock = time.time) -> FileTokenCache:
        return FileTokenCache(self.directory, wall_clock=wall_clock)

    def entry(self, account: str) -> Path:
        return self.directory / f"{account}.rate"

    def plant(self, account: str, value: bytes) -> None:
        self.entry(account).write_bytes(value)

    def close(self) -> None:
        pass  # pytest removes the directory


class RedisBackend:
    """RedisTokenCache instances on new clients (each its own pool: a "process") of one
    redis-server or of the cluster, emptied first; ``view`` is the test's own client."""

    logger = "requests_falcon_auth.redis"

    def __init__(self, kind: str, ports: list[int]) -> None:
        self.kind = kind
        self._ports = ports
        self._made: list[Client] = []
        self.nodes = [redis.Redis(port=port, socket_timeout=5) for port in ports]
        for node in self.nodes:
            node.flushall()
        self.view = self.client()

    def client(self, **kwargs: Any) -> Client:
        made: Client
        if self.kind == "cluster":
            made = RedisCluster(host="127.0.0.1", port=self._ports[0], socket_timeout=5, **kwargs)
        else:
            made = redis.Redis(port=self._ports[0], socket_timeout=5, **kwargs)
        self._made.append(made)
        return made

    def new(self, wall_clock: Clock = time.time, **kwargs: Any) -> RedisTokenCache:
        return RedisTokenCache(self.client(), wall_clock=wall_clock, **kwargs)

    def name(self, account: str) -> str:
        return f"falcon-auth:rate:{account}"

    def plant(self, account: str, value: bytes) -> None:
        self.view.set(self.name(account), value, px=60_000)

    def names(self) -> list[str]:
        """Every key on every node."""
        keys = [key for node in self.nodes for key in node.keys("*")]
        return sorted(key.decode() if isinstance(key, bytes) else key for key in keys)

    def close(self) -> None:
        for client in [*self._made, *self.nodes]:
            client.close()


Backend = Union[MemoryBackend, FileBackend, RedisBackend]


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "memory":
        return MemoryBackend()
    if kind == "file":
        return FileBackend(tmp_path / "tokens")
    if kind == "cluster":
        return RedisBackend(kind, request.getfixturevalue("redis_cluster").ports)
    return RedisBackend(kind, [request.getfixturevalue("redis_server").port])


@pytest.fixture(params=["memory", "file", "redis", "cluster"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = make_backend(request.param, request, tmp_path)
    yield made
    made.close()


@pytest.fixture(params=["file", "redis", "cluster"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FileBackend | RedisBackend]:
    made = make_backend(request.param, request, tmp_path)
    assert not isinstance(made, MemoryBackend)
    yield made
    made.close()


@pytest.fixture(params=["redis", "cluster"])
def in_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisBackend]:
    made = make_backend(request.param, request, tmp_path)
    assert isinstance(made, RedisBackend)
    yield made
    made.close()


# -- one store -------------------------------------------------------------------------------------


def test_an_account_without_a_cooldown_reads_zero(backend: Backend) -> None:
    assert backend.new().rate_cooldown(ACCOUNT) == 0.0


def test_a_cooldown_reads_back_for_its_account_only(backend: Backend) -> None:
    store = backend.new(ManualClock(WALL))
    store.extend_rate_cooldown(ACCOUNT, WALL + 30.25)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30.25
    assert store.rate_cooldown(OTHER) == 0.0


def test_a_cooldown_is_raised_never_shortened(backend: Backend) -> None:
    store = backend.new(ManualClock(WALL))
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    store.extend_rate_cooldown(ACCOUNT, WALL + 10)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30
    store.extend_rate_cooldown(ACCOUNT, WALL + 45)
    assert store.rate_cooldown(ACCOUNT) == WALL + 45


def test_a_cooldown_that_has_passed_reads_zero_and_a_new_one_replaces_it(
    backend: Backend,
) -> None:
    clock = ManualClock(WALL)
    store = backend.new(clock)
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    clock.advance(29.5)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30
    clock.advance(0.5)
    assert store.rate_cooldown(ACCOUNT) == 0.0
    store.extend_rate_cooldown(ACCOUNT, WALL + 40)
    assert store.rate_cooldown(ACCOUNT) == WALL + 40


def test_an_end_already_passed_is_not_recorded(backend: Backend) -> None:
    clock = ManualClock(WALL)
    store = backend.new(clock)
    store.extend_rate_cooldown(ACCOUNT, WALL - 1)
    store.extend_rate_cooldown(ACCOUNT, WALL)
    clock.now = WALL - 60  # set back: a recorded end would show again
    assert store.rate_cooldown(ACCOUNT) == 0.0
    if isinstance(backend, FileBackend):
        assert not backend.entry(ACCOUNT).exists()
    if isinstance(backend, RedisBackend):
        assert backend.names() == []


@pytest.mark.parametrize(
    "account",
    ["", "A" * 64, "9F86D081", "a" * 65, "ab\n", "../ab", "ab cd", "g0", "\u0661", None, b"ab", 12],
    ids=repr,
)
def test_an_account_that_is_no_digest_is_refused(backend: Backend, account: Any) -> None:
    store = backend.new()
    with pytest.raises(ConfigurationError) as raised:
        store.rate_cooldown(account)
    assert "64 lowercase hex" in str(raised.value)
    with pytest.raises(ConfigurationError):
        store.extend_rate_cooldown(account, time.time() + 30)


@pytest.mark.parametrize("until", [float("nan"), float("inf"), -1.0, "1700000030", True, None])
def test_an_end_that_is_no_time_is_refused(backend: Backend, until: Any) -> None:
    with pytest.raises(ConfigurationError):
        backend.new().extend_rate_cooldown(ACCOUNT, until)


@pytest.mark.parametrize("account", ["0", "f" * 64])
def test_the_shortest_and_longest_accounts_are_taken(backend: Backend, account: str) -> None:
    store = backend.new(ManualClock(WALL))
    store.extend_rate_cooldown(account, WALL + 5)
    assert store.rate_cooldown(account) == WALL + 5


# -- many users of one store ---------------------------------------------------------------------


def test_two_stores_on_one_backend_see_each_others_cooldown(
    shared: FileBackend | RedisBackend,
) -> None:
    clock = ManualClock(WALL)
    first, second = shared.new(clock), shared.new(clock)
    first.extend_rate_cooldown(ACCOUNT, WALL + 30)
    assert second.rate_cooldown(ACCOUNT) == WALL + 30
    second.extend_rate_cooldown(ACCOUNT, WALL + 50)
    assert first.rate_cooldown(ACCOUNT) == WALL + 50
    first.extend_rate_cooldown(ACCOUNT, WALL + 40)  # what second recorded is later
    assert second.rate_cooldown(ACCOUNT) == WALL + 50


ROUNDS = 10
THREADS = 8


def test_threads_extending_at_once_keep_the_latest_end(backend: Backend) -> None:
    """Each round, eight threads over two instances (one, for memory) raise the cooldown at
    once, each to an end of its own: the latest stays, whatever the order they ran in."""
    clock = ManualClock(WALL)
    stores = [backend.new(clock)]
    if not isinstance(backend, MemoryBackend):
        stores.append(backend.new(clock))
    start = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def extend(index: int) -> None:
        store = stores[index % len(stores)]
        try:
            for round_ in range(ROUNDS):
                start.wait(30)
                store.extend_rate_cooldown(ACCOUNT, WALL + 100 * (round_ + 1) + index)
                start.wait(30)  # every thread of the round has written before any reads
                assert store.rate_cooldown(ACCOUNT) == WALL + 100 * (round_ + 1) + THREADS - 1
        except BaseException as exc:
            failures.append(exc)
            start.abort()

    workers = [threading.Thread(target=extend, args=(i,)) for i in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert failures == []


def extending_process(
    directory: str, account: str, base: float, index: int, start: Any, results: Any
) -> None:
    """A process of the host: raises the cooldown each round, with the others, to its own end."""
    try:
        with FileSpec(directory).open() as store:
            for round_ in range(ROUNDS):
                start.wait(60)
                store.extend_rate_cooldown(account, base + 100 * round_ + index)
                start.wait(60)
        results.put("done")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_extending_at_once_keep_the_latest_end(tmp_path: Path) -> None:
    directory = str(tmp_path / "tokens")
    base = time.time() + 3600
    observer = FileTokenCache(directory)
    with Processes() as processes:
        start = processes.context.Barrier(THREADS)
        for index in range(THREADS):
            processes.start(
                extending_process, directory, ACCOUNT, base, index, start, processes.results
            )
        assert processes.collect(THREADS) == ["done"] * THREADS
    assert observer.rate_cooldown(ACCOUNT) == base + 100 * (ROUNDS - 1) + THREADS - 1


# -- what is kept where --------------------------------------------------------------------------------


def test_the_file_store_keeps_one_private_file_per_account(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / "tokens")
    backend.new(ManualClock(WALL)).extend_rate_cooldown(ACCOUNT, WALL + 30.5)
    entry = backend.entry(ACCOUNT)
    assert sorted(os.listdir(backend.directory)) == [f"{ACCOUNT}.rate", f"{ACCOUNT}.rate.lock"]
    assert entry.read_bytes() == b"1700000030.5"
    for name in os.listdir(backend.directory):
        assert stat.S_IMODE((backend.directory / name).lstat().st_mode) == 0o600


@pytest.mark.parametrize("prefix", ["falcon-auth:", "fleet-7:"])
def test_redis_keeps_the_end_under_prefix_rate_account_until_it_passes(
    in_redis: RedisBackend, prefix: str
) -> None:
    """One key, expiring when the cooldown ends on the store's wall clock (PX, not Redis's
    own clock: WALL is years ago), and its expiry is raised with it, never shortened."""
    store = RedisTokenCache(in_redis.client(), prefix=prefix, wall_clock=ManualClock(WALL))
    name = f"{prefix}rate:{ACCOUNT}"
    assert store.rate_name(ACCOUNT) == name
    store.extend_rate_cooldown(ACCOUNT, WALL + 30.5)
    assert in_redis.names() == [name]
    assert in_redis.view.get(name) == b"1700000030.5"
    assert 28_500 < in_redis.view.pttl(name) <= 30_500
    store.extend_rate_cooldown(ACCOUNT, WALL + 60)
    assert 58_000 < in_redis.view.pttl(name) <= 60_000
    store.extend_rate_cooldown(ACCOUNT, WALL + 10)
    assert 58_000 < in_redis.view.pttl(name) <= 60_000
    assert in_redis.view.get(name) == b"1700000060.0"


def test_redis_raises_the_end_in_one_lua_step(
    in_redis: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a GET, then a SET, from the client: an end another worker set in between would
    be lowered."""
    client = in_redis.client()
    store = RedisTokenCache(client, wall_clock=ManualClock(WALL))

    def client_side(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cooldown must be raised and read by Lua scripts")

    for method in ("get", "set", "pipeline", "transaction", "watch"):
        # raising=False: RedisCluster lacks some before redis-py 5 (and cannot call them then).
        monkeypatch.setattr(client, method, client_side, raising=False)
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    store.extend_rate_cooldown(ACCOUNT, WALL + 20)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30


def test_a_client_that_decodes_responses_reads_the_cooldown_too(in_redis: RedisBackend) -> None:
    clock = ManualClock(WALL)
    store = RedisTokenCache(in_redis.client(decode_responses=True), wall_clock=clock)
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30


# -- what a store holds that is no cooldown -------------------------------------------------------------

PLANTED = {
    "a word": (b"soon", "not a number"),
    "infinity": (b"inf", "not a number"),
    "not a number": (b"nan", "not a number"),
    "empty": (b"", "not a number"),
    "huge": (b"1" * 100_000, "too large"),
}


@pytest.mark.parametrize(("planted", "reason"), PLANTED.values(), ids=PLANTED.keys())
def test_a_stored_value_that_is_no_time_reads_zero_and_the_next_cooldown_replaces_it(
    shared: FileBackend | RedisBackend,
    caplog: pytest.LogCaptureFixture,
    planted: bytes,
    reason: str,
) -> None:
    store = shared.new(ManualClock(WALL))
    shared.plant(ACCOUNT, planted)
    assert store.rate_cooldown(ACCOUNT) == 0.0
    assert store.rate_cooldown(ACCOUNT) == 0.0  # warned once: the second goes to DEBUG
    (warning,) = warnings_of(caplog, shared.logger)
    assert ACCOUNT in warning
    assert f"({reason})" in warning
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30


def test_a_redis_key_of_another_type_reads_zero_and_the_next_cooldown_replaces_it(
    in_redis: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    store = in_redis.new(ManualClock(WALL))
    in_redis.view.hset(in_redis.name(ACCOUNT), "field", "value")
    assert store.rate_cooldown(ACCOUNT) == 0.0
    (warning,) = warnings_of(caplog, in_redis.logger)
    assert "(not a string)" in warning
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30


def test_a_symlinked_cooldown_file_is_not_followed_and_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FileBackend(tmp_path / "tokens")
    store = backend.new(ManualClock(WALL))
    target = tmp_path / "elsewhere"
    target.write_bytes(b"1700000999.0")
    backend.entry(ACCOUNT).symlink_to(target)
    assert store.rate_cooldown(ACCOUNT) == 0.0
    (warning,) = warnings_of(caplog, backend.logger)
    assert "symbolic link" in warning
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30
    assert not backend.entry(ACCOUNT).is_symlink()
    assert target.read_bytes() == b"1700000999.0"


# -- a store that fails ------------------------------------------------------------------------------


def test_redis_down_reads_zero_and_extends_nothing_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with redis.Redis(
        port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    ) as down:
        store = RedisTokenCache(down, backoff=0.0)
        assert store.rate_cooldown(ACCOUNT) == 0.0
        store.extend_rate_cooldown(ACCOUNT, time.time() + 30)
        assert store.rate_cooldown(ACCOUNT) == 0.0
    warnings = warnings_of(caplog, "requests_falcon_auth.redis")
    assert len(warnings) == 1
    assert "ConnectionError during read cooldown" in warnings[0]


def test_a_redis_that_goes_away_reads_zero_then_serves_again() -> None:
    clock = ManualClock(WALL)
    with (
        RedisServer(redis_server_executable()) as server,
        redis.Redis(
            port=server.port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        ) as client,
    ):
        store = RedisTokenCache(client, backoff=0.0, wall_clock=clock)
        store.extend_rate_cooldown(ACCOUNT, WALL + 30)
        server.stop()
        assert store.rate_cooldown(ACCOUNT) == 0.0
        store.extend_rate_cooldown(ACCOUNT, WALL + 40)
        server.start()  # empty: --save ""
        assert store.rate_cooldown(ACCOUNT) == 0.0
        store.extend_rate_cooldown(ACCOUNT, WALL + 50)
        assert store.rate_cooldown(ACCOUNT) == WALL + 50


def _holds(port: int, name: str) -> bool:
    """Whether the node on ``port`` holds key ``name`` (KEYS lists its own; EXISTS would be
    MOVED elsewhere)."""
    with redis.Redis(port=port) as node:
        return name.encode() in node.keys("*")


def test_a_cluster_node_gone_reads_zero_and_extends_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The node that serves the account's key stops (in a cluster of its own: this one stays
    broken): reads answer 0.0 and extends return, neither raises. Each call asks the cluster
    and fails (redis-py 8 gives up at once without retries; 4.x sleeps through its own)."""
    clock = ManualClock(WALL)
    with (
        ThreeNodeCluster(redis_server_executable(), redis_cli_executable()) as cluster,
        RedisCluster(
            host="127.0.0.1",
            port=cluster.ports[0],
            socket_timeout=5,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        ) as client,
    ):
        store = RedisTokenCache(
            client, backoff=0.0, wall_clock=clock, warn_interval=0.0, operation_timeout=30.0
        )
        store.extend_rate_cooldown(ACCOUNT, WALL + 30)
        name = store.rate_name(ACCOUNT)
        (serving,) = [node for node in cluster.nodes if _holds(node.port, name)]
        serving.stop()
        assert store.rate_cooldown(ACCOUNT) == 0.0
        store.extend_rate_cooldown(ACCOUNT, WALL + 40)
        assert store.rate_cooldown(ACCOUNT) == 0.0
    warnings = warnings_of(caplog, "requests_falcon_auth.redis")
    assert [w.split(" at ")[0] for w in warnings] == [
        "The Redis token cache failed (ConnectionError during read cooldown",
        "The Redis token cache failed (ConnectionError during extend cooldown",
        "The Redis token cache failed (ConnectionError during read cooldown",
    ]


def test_a_directory_opened_to_others_at_run_time_gets_no_cooldown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FileBackend(tmp_path / "tokens")
    store = backend.new(ManualClock(WALL))
    os.chmod(backend.directory, 0o755)
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)  # never raised
    assert os.listdir(backend.directory) == []
    assert store.rate_cooldown(ACCOUNT) == 0.0
    (warning,) = warnings_of(caplog, backend.logger)
    assert "open to other users" in warning
    os.chmod(backend.directory, 0o700)
    store.extend_rate_cooldown(ACCOUNT, WALL + 30)
    assert store.rate_cooldown(ACCOUNT) == WALL + 30


# -- the memory store -----------------------------------------------------------------------------


def test_the_memory_store_drops_ends_that_have_passed() -> None:
    clock = ManualClock(WALL)
    store = MemoryTokenCache(wall_clock=clock)
    store.extend_rate_cooldown(ACCOUNT, WALL + 10)
    clock.advance(20)
    store.extend_rate_cooldown(OTHER, WALL + 60)
    assert store._cooldowns == {OTHER: WALL + 60}


def test_a_pickled_memory_store_starts_without_cooldowns() -> None:
    store = MemoryTokenCache()
    store.extend_rate_cooldown(ACCOUNT, time.time() + 60)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.rate_cooldown(ACCOUNT) == 0.0
    copy.extend_rate_cooldown(ACCOUNT, time.time() + 60)
    assert copy.rate_cooldown(ACCOUNT) > 0
