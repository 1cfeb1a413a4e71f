"""RedisTokenCache against a real redis-server: at rest, TTLs, the fleet lock, outages, fleets.

Processes are real (multiprocessing "spawn"); "two processes" in one test are two clients with
two connection pools. Synchronisation is by barriers, events, the emulator's gate and counters.
"""

from __future__ import annotations

import base64
import gc
import importlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import redis
import requests
import shared_store_contract
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_fleet import (
    FleetJob,
    RedisServer,
    fleet_worker,
    redis_server_executable,
    renewing_worker,
)
from support import in_child, present

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.cache import CacheKey, MemoryTokenCache, Timing
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.testing import FalconEmulator, ManualClock
from requests_falcon_auth.token import Token

CLIENT_ID = "fleet-client-id-7c41"
CLIENT_SECRET = "fleet-client-secret-e9b2"
DEVICES = "/devices/queries/devices/v1"
ENTRY = "https://api.crowdstrike.com"
KEY = CacheKey.for_credentials(ENTRY, CLIENT_ID, CLIENT_SECRET, None)
TOKEN_VALUE = "eyJhbGciOi.tok-" + "5f3a9c" * 12
LOGGER = "requests_falcon_auth.redis"


def token(value: str = TOKEN_VALUE, issued_at: float = 1000.0, expires_in: int = 1799) -> Token:
    return Token(value, "bearer", expires_in, "us-1", ENTRY, issued_at)


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


# -- fixtures ------------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stored_bytes(value: object) -> bytes:
    """A value as redis-py returns it without ``decode_responses``: bytes."""
    assert isinstance(value, bytes), value
    return value


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(redis_server_executable()) as server:
        yield server


@pytest.fixture
def clients(redis_server: RedisServer) -> Iterator[Callable[..., redis.Redis]]:
    """Makes clients of the shared server (each its own pool: a "process"); closes them all."""
    made: list[redis.Redis] = []

    def make(**kwargs: Any) -> redis.Redis:
        kwargs.setdefault("port", redis_server.port)
        kwargs.setdefault("socket_timeout", 5)
        made.append(redis.Redis(**kwargs))
        return made[-1]

    made_first = make()
    made_first.flushall()
    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(clients: Callable[..., redis.Redis]) -> redis.Redis:
    return clients()


@pytest.fixture
def emulator() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1",)) as emu:
        emu.add_client(CLIENT_ID, CLIENT_SECRET)
        yield emu


def make_auth(emu: FalconEmulator, cache: RedisTokenCache, **kwargs: Any) -> FalconAuth:
    return FalconAuth(
        CLIENT_ID, CLIENT_SECRET, cloud="us-1", clouds=emu.clouds, cache=cache, **kwargs
    )


def unreachable_client() -> redis.Redis:
    """A client of a closed port that fails at once (no retries)."""
    return redis.Redis(port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


# -- at rest ---------------------------------------------------------------------------------------


def bound(cache: RedisTokenCache, clock: Callable[[], float]) -> RedisTokenCache:
    """The cache on ``clock``, as the FalconAuth that uses it would leave it."""
    cache.bind(Timing(clock))
    return cache


def test_a_token_round_trips_with_an_equivalent_expiry(
    clients: Callable[..., redis.Redis],
) -> None:
    writer = bound(
        RedisTokenCache(clients(), wall_clock=ManualClock(1_700_000_000.0)), ManualClock(1000.0)
    )
    writer.set(KEY, token(issued_at=990.0))  # 1789 s of life left
    # Another host: its monotonic clock reads anything; its wall clock is 100 s later.
    reader_wall_clock = ManualClock(1_700_000_100.0)
    reader = bound(RedisTokenCache(clients(), wall_clock=reader_wall_clock), ManualClock(50.0))
    got = reader.get(KEY)
    assert got is not None
    assert (got.access_token, got.token_type, got.expires_in, got.region, got.base_url) == (
        TOKEN_VALUE,
        "bearer",
        1799,
        "us-1",
        ENTRY,
    )
    assert got.expires_at == pytest.approx(50.0 + 1789 - 100)
    other_host = bound(RedisTokenCache(clients(), wall_clock=reader_wall_clock), ManualClock(50.0))
    reader_wall_clock.now += 1689
    assert other_host.get(KEY) is None  # past the stored expiry (Redis's TTL aside)


@pytest.mark.parametrize(
    ("expires_in", "age", "expected_ttl"), [(1799, 100, 1699), (1799, 1700, 99), (60, 0, 60)]
)
def test_the_redis_entry_lives_until_the_token_expires(
    client: redis.Redis, expires_in: int, age: float, expected_ttl: float
) -> None:
    cache = bound(RedisTokenCache(client), ManualClock(1000.0))
    cache.set(KEY, token(issued_at=1000.0 - age, expires_in=expires_in))
    pttl = client.pttl(cache.token_name(KEY))
    assert expected_ttl * 1000 - 2000 < pttl <= expected_ttl * 1000


def test_an_expired_token_is_never_stored(client: redis.Redis) -> None:
    cache = bound(RedisTokenCache(client), ManualClock(1000.0))
    cache.set(KEY, token(issued_at=1000.0 - 1799))
    assert client.keys("*") == []


def test_nothing_at_rest_names_the_client_secret_or_token(
    client: redis.Redis, emulator: FalconEmulator
) -> None:
    cache = RedisTokenCache(client)
    with make_auth(emulator, cache) as auth, requests.Session() as session:
        auth.attach(session)
        assert session.get(emulator.clouds["us-1"] + DEVICES).status_code == 200
        lock = cache.lock(auth._provider.key)
        assert lock.acquire()
        try:
            dump: list[bytes] = []
            for name in client.keys("*"):
                dump.append(stored_bytes(name))
                kind = client.type(name)
                if kind == b"string":
                    dump.append(stored_bytes(client.get(name)))
                else:  # nothing else is expected; scan it anyway
                    assert kind == b"hash"
                    dump.extend(
                        stored_bytes(k) + stored_bytes(v) for k, v in client.hgetall(name).items()
                    )
        finally:
            lock.release()
    (issued,) = emulator.issued_tokens()
    assert len(dump) == 4  # the token and the lock: two names, two values
    forbidden = [CLIENT_ID, CLIENT_SECRET, issued, issued[:16], issued[-16:]]
    forbidden_bytes = [s.encode() for s in forbidden]
    forbidden_bytes += [base64.b64encode(s.encode()) for s in forbidden]
    for raw in dump:
        for secret in forbidden_bytes:
            assert secret not in raw
    assert stored_bytes(client.get(cache.token_name(auth._provider.key))).startswith(b"v1:")


def test_another_secret_reads_nothing(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RedisTokenCache(client)
    writer.set(KEY, token(issued_at=writer._clock()))
    cache = RedisTokenCache(client)  # another process: nothing local
    other = CacheKey.for_credentials(ENTRY, CLIENT_ID, "a-rotated-secret", None)
    assert other.name != KEY.name
    assert cache.get(other) is None
    # Even given the key name, other key material cannot open the value.
    impostor = CacheKey(KEY.name, other.secret)
    assert cache.get(impostor) is None
    (warning,) = warnings_logged(caplog)
    assert "does not decrypt or verify" in warning.getMessage()
    assert TOKEN_VALUE not in caplog.text
    assert stored_bytes(client.get(cache.token_name(KEY))).decode() not in caplog.text
    assert cache.get(KEY) is not None


def _flip_sealed_byte(value: str, cache: RedisTokenCache) -> str:
    version, fingerprint, sealed = value.split(":")
    raw = bytearray(base64.b64decode(sealed))
    raw[20] ^= 0x01
    return f"{version}:{fingerprint}:{base64.b64encode(bytes(raw)).decode()}"


def _other_tokens_fingerprint(value: str, cache: RedisTokenCache) -> str:
    scratch = CacheKey("scratch" * 9, KEY.secret)
    cache.set(scratch, token("tok-another-one", issued_at=cache._clock()))
    other = stored_bytes(cache.client.get(cache.token_name(scratch))).decode()
    version, _, sealed = value.split(":")
    return ":".join([version, other.split(":")[1], sealed])


TAMPERINGS: dict[str, Callable[[str, RedisTokenCache], str]] = {
    "flipped ciphertext bit": _flip_sealed_byte,
    "another token's fingerprint": _other_tokens_fingerprint,
    "truncated": lambda value, cache: value[:-10],
    "unknown version": lambda value, cache: "v9" + value[2:],
    "not base64": lambda value, cache: value[:-4] + "!!!!",
    "garbage": lambda value, cache: "\x00\xff garbage",
}


@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_a_tampered_value_is_a_miss(
    client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    tamper: Callable[[str, RedisTokenCache], str],
) -> None:
    writer = RedisTokenCache(client)
    writer.set(KEY, token(issued_at=writer._clock()))
    name = writer.token_name(KEY)
    value = stored_bytes(client.get(name)).decode()
    tampered = tamper(value, writer)
    client.set(name, tampered.encode("latin-1"), px=60_000)
    cache = RedisTokenCache(client)  # another process: nothing local, it reads Redis
    assert cache.get(KEY) is None
    assert len(warnings_logged(caplog)) == 1
    assert value not in caplog.text
    assert TOKEN_VALUE not in caplog.text
    cache.set(KEY, token(issued_at=cache._clock()))  # the next fetch heals it
    assert cache.get(KEY) is not None


def test_a_value_moved_to_another_key_name_is_a_miss(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RedisTokenCache(client)
    writer.set(KEY, token(issued_at=writer._clock()))
    elsewhere = CacheKey("e" * 64, KEY.secret)  # same secret: only the name differs
    client.set(
        writer.token_name(elsewhere), stored_bytes(client.get(writer.token_name(KEY))), px=60_000
    )
    cache = RedisTokenCache(client)
    assert cache.get(elsewhere) is None
    assert len(warnings_logged(caplog)) == 1


def test_a_client_that_decodes_responses_works_too(
    clients: Callable[..., redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisTokenCache(clients(decode_responses=True))
    cache.set(KEY, token(issued_at=cache._clock()))
    got = cache.get(KEY)
    assert got is not None
    assert got.access_token == TOKEN_VALUE
    assert cache.compare_and_delete(KEY, got)
    clients().set(cache.token_name(KEY), b"\xff\xfe not text", px=60_000)
    assert cache.get(KEY) is None  # a miss, not a UnicodeDecodeError in the caller's request
    assert len(warnings_logged(caplog)) == 1


# -- compare-and-delete -------------------------------------------------------------------------


def test_compare_and_delete_removes_only_the_token_that_failed_in_one_lua_step(
    clients: Callable[..., redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = clients(), clients()
    cache, other = RedisTokenCache(mine), RedisTokenCache(theirs)
    failed = token("tok-1", issued_at=cache._clock())
    cache.set(KEY, failed)
    other.set(KEY, token("tok-2", issued_at=cache._clock()))  # another worker replaced it

    def client_side(*args: object, **kwargs: object) -> None:
        raise AssertionError("compare_and_delete must run in one Lua script")

    for method in ("get", "delete", "pipeline", "transaction", "watch"):
        monkeypatch.setattr(mine, method, client_side)
    assert cache.compare_and_delete(KEY, failed) is False
    assert present(other.get(KEY)).access_token == "tok-2"
    assert cache.compare_and_delete(KEY, token("tok-2")) is True
    assert theirs.exists(cache.token_name(KEY)) == 0
    assert cache.compare_and_delete(KEY, token("tok-2")) is False


# -- the fleet lock ----------------------------------------------------------------------------------


def test_the_lock_is_exclusive_across_processes_and_honours_timeout(
    clients: Callable[..., redis.Redis],
) -> None:
    a, b = RedisTokenCache(clients()), RedisTokenCache(clients())
    held = a.lock(KEY)
    assert held.acquire()
    contender = b.lock(KEY)
    assert contender.acquire(blocking=False) is False
    assert contender.acquire(timeout=0.2) is False
    held.release()
    assert contender.acquire(blocking=False) is True
    assert a.lock(KEY).acquire(blocking=False) is False
    contender.release()
    assert a.client.exists(a.lock_name(KEY)) == 0


def test_threads_of_one_process_share_the_lock(client: redis.Redis) -> None:
    cache = RedisTokenCache(client)
    held = cache.lock(KEY)
    assert held.acquire()
    outcome: list[bool] = []
    thread = threading.Thread(target=lambda: outcome.append(cache.lock(KEY).acquire(timeout=0)))
    thread.start()
    thread.join()
    held.release()
    assert outcome == [False]


def test_a_lock_never_released_expires_after_lock_ttl(
    clients: Callable[..., redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    a = RedisTokenCache(clients(), lock_ttl=0.3)
    b = RedisTokenCache(clients())
    abandoned = a.lock(KEY)
    assert abandoned.acquire()
    assert 0 < a.client.pttl(a.lock_name(KEY)) <= 300
    successor = b.lock(KEY)
    assert successor.acquire(timeout=30)  # waits for Redis to expire a's lock
    abandoned.release()  # late: never raises, never frees b's lock
    (warning,) = warnings_logged(caplog)
    assert "lock_ttl=0.3" in warning.getMessage()
    assert b.client.exists(b.lock_name(KEY)) == 1
    successor.release()
    assert b.client.exists(b.lock_name(KEY)) == 0


# -- with FalconAuth ------------------------------------------------------------------------------


def test_falcon_auth_with_a_shared_cache_does_not_revoke_on_close(
    client: redis.Redis, emulator: FalconEmulator
) -> None:
    cache = RedisTokenCache(client)
    assert cache.shared is True
    with make_auth(emulator, cache) as auth, requests.Session() as session:
        assert auth.revoke_on_close is False
        auth.attach(session)
        assert session.get(emulator.clouds["us-1"] + DEVICES).status_code == 200
    assert emulator.counters.revokes == 0
    assert cache.get(auth._provider.key) is not None  # the fleet keeps using it


def test_threads_and_instances_share_one_token(
    clients: Callable[..., redis.Redis], emulator: FalconEmulator
) -> None:
    shared_store_contract.threads_and_instances_share_one_token(
        emulator, lambda: make_auth(emulator, RedisTokenCache(clients()))
    )


def test_a_401_drops_the_fleet_token_and_one_fresh_token_serves_everyone(
    clients: Callable[..., redis.Redis], emulator: FalconEmulator
) -> None:
    shared_store_contract.a_401_drops_the_shared_token_and_one_fresh_token_serves_everyone(
        emulator, lambda: make_auth(emulator, RedisTokenCache(clients()))
    )


def test_the_warm_path_makes_no_redis_round_trip(
    client: redis.Redis, emulator: FalconEmulator
) -> None:
    url = emulator.clouds["us-1"] + DEVICES
    with make_auth(emulator, RedisTokenCache(client)) as auth, requests.Session() as session:
        auth.attach(session)
        assert session.get(url).status_code == 200
        before = commands_served(client)
        assert [session.get(url).status_code for _ in range(50)] == [200] * 50
        after = commands_served(client)
    assert before["get"] >= 1
    assert after == before


# -- from async code (httpx.AsyncClient): the store's I/O stays off the event loop ---------------


@pytest.mark.anyio
async def test_async_tasks_of_two_processes_share_one_fleet_token(
    clients: Callable[..., redis.Redis], emulator: FalconEmulator
) -> None:
    """Two "processes" (FalconAuths on their own Redis clients) with 25 cold tasks each, in one
    loop: one token request. Redis is read and locked on worker threads, never on the loop."""
    url = emulator.clouds["us-1"] + DEVICES
    auths = [make_auth(emulator, RedisTokenCache(clients())) for _ in range(2)]
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
async def test_the_async_warm_path_makes_no_redis_round_trip(
    client: redis.Redis, emulator: FalconEmulator
) -> None:
    url = emulator.clouds["us-1"] + DEVICES
    with make_auth(emulator, RedisTokenCache(client)) as auth:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as http:
            assert (await http.get(url)).status_code == 200
            before = commands_served(client)
            assert [(await http.get(url)).status_code for _ in range(50)] == [200] * 50
            after = commands_served(client)
    assert before["get"] >= 1
    assert after == before


def commands_served(client: redis.Redis) -> dict[str, int]:
    """How many of each command the server has run, INFO itself left out."""
    stats = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): entry["calls"]
        for name, entry in stats.items()
        if name != "cmdstat_info"
    }


@pytest.mark.parametrize("cache_kind", ["memory", "redis"])
def test_a_cache_serves_one_clock(client: redis.Redis, cache_kind: str) -> None:
    cache = MemoryTokenCache() if cache_kind == "memory" else RedisTokenCache(client)
    clock = ManualClock()
    FalconAuth("a", "secret-a", cache=cache, clock=clock, renew_window=60)
    FalconAuth("b", "secret-b", cache=cache, clock=clock, renew_window=300)
    assert cache.timing == Timing(clock, 300)  # the widest window: nobody renews late
    with pytest.raises(ConfigurationError, match="clock"):
        FalconAuth("c", "secret-c", cache=cache)  # time.monotonic: another clock


@pytest.mark.parametrize("backoff", [0.0, 5.0])
def test_redis_down_falls_back_to_a_local_token_with_one_warning(
    emulator: FalconEmulator, caplog: pytest.LogCaptureFixture, backoff: float
) -> None:
    with unreachable_client() as down:
        cache = RedisTokenCache(down, backoff=backoff)
        with make_auth(emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            statuses = [
                session.get(emulator.clouds["us-1"] + DEVICES).status_code for _ in range(5)
            ]
            other_key = CacheKey("f" * 64, KEY.secret)
            assert cache.compare_and_delete(other_key, token()) is False
    assert statuses == [200] * 5
    assert emulator.counters.token_requests == 1
    (warning,) = warnings_logged(caplog)
    assert "ConnectionError" in warning.getMessage()
    assert CLIENT_SECRET not in caplog.text
    for issued in emulator.issued_tokens():
        assert issued not in caplog.text


def test_an_outage_keeps_the_fleet_token_and_redis_is_used_again_after(
    emulator: FalconEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    url = emulator.clouds["us-1"] + DEVICES
    with (
        RedisServer(redis_server_executable()) as server,
        redis.Redis(
            port=server.port,
            socket_timeout=5,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 1),
        ) as client,
    ):
        cache = RedisTokenCache(client, backoff=0.0)
        with make_auth(emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            assert session.get(url).status_code == 200
            server.stop()
            # The token this process holds is fresh: served locally, Redis is not asked.
            assert [session.get(url).status_code for _ in range(3)] == [200] * 3
            assert (emulator.counters.token_requests, warnings_logged(caplog)) == (1, [])
            emulator.invalidate_all_tokens()  # a 401 needs Redis: the outage shows now
            assert [session.get(url).status_code for _ in range(3)] == [200] * 3
            assert emulator.counters.token_requests == 2  # one fetch, kept locally
            assert len(warnings_logged(caplog)) == 1
            server.start()  # empty: --save ""
            assert session.get(url).status_code == 200
            assert emulator.counters.token_requests == 2
            assert cache.get(auth._provider.key) is not None

            held = cache.lock(auth._provider.key)
            assert held.acquire()  # Redis is used again
            assert "answers again" in caplog.text
            server.stop()
            caplog.clear()
            held.release()  # Redis gone while holding: logged (rate-limited), never raised
            assert "ConnectionError during unlock" in caplog.text


def test_a_forked_child_gets_its_own_connections_and_locks(client: redis.Redis) -> None:
    cache = RedisTokenCache(client)
    cache.set(KEY, token("tok-parent", issued_at=cache._clock()))
    parent_connection = client.client_id()  # a pooled connection the child inherits
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
        cache.set(KEY, token("tok-child", issued_at=cache._clock()))
        child_connection = client.client_id()
        gc.collect()
        client.close()
        assert got is not None
        return f"{got.access_token} {child_connection != parent_connection}"

    report = in_child(child)
    done.set()
    holder.join()
    assert report() == "tok-parent True"
    assert client.client_id() == parent_connection  # the child left the parent's socket alone
    assert present(cache.get(KEY)).access_token == "tok-parent"  # still fresh in this process
    assert (
        present(RedisTokenCache(client).get(KEY)).access_token == "tok-child"
    )  # what the fleet sees


# -- the object itself ----------------------------------------------------------------------------


def test_repr_shows_prefix_and_target_never_credentials() -> None:
    with redis.Redis(port=6390, db=3, username="svc", password="hunter2-pw") as client:
        cache = RedisTokenCache(client, prefix="fleet:")
        assert repr(cache) == "RedisTokenCache(prefix='fleet:', target='localhost:6390/3')"
        with pytest.raises(TypeError, match="build one in each process"):
            pickle.dumps(cache)
    with redis.Redis(unix_socket_path="/run/redis.sock") as client:
        assert "target='unix:/run/redis.sock/0'" in repr(RedisTokenCache(client))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lock_ttl": 0},
        {"backoff": float("nan")},
        {"warn_interval": "60"},
        {"lock_ttl": True},
        {"prefix": b"bytes:"},
    ],
)
def test_bad_arguments_are_refused(client: redis.Redis, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RedisTokenCache(client, **kwargs)


def test_a_non_client_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"redis\.Redis"):
        RedisTokenCache(object())  # type: ignore[arg-type]


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "requests_falcon_auth.redis")
    with pytest.raises(ImportError, match=r"pip install 'requests-falcon-auth\[redis\]'"):
        importlib.import_module("requests_falcon_auth.redis")


# -- fleets of real processes ----------------------------------------------------------------------


@pytest.fixture
def mp() -> Any:
    """The "spawn" context: children inherit no threads, locks or sockets from pytest."""
    return multiprocessing.get_context("spawn")


@pytest.fixture
def spawn(mp: Any) -> Iterator[Callable[..., multiprocessing.process.BaseProcess]]:
    """Starts ``fleet_worker`` processes; kills and reaps any left at teardown."""
    started: list[multiprocessing.process.BaseProcess] = []

    def start(*args: Any) -> multiprocessing.process.BaseProcess:
        process = mp.Process(target=fleet_worker, args=args, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.kill()
        process.join(30)
        process.close()


def fleet_job(server: RedisServer, emu: FalconEmulator, *, calls: int, lock_ttl: float) -> FleetJob:
    return FleetJob(
        server.port,
        emu.clouds,
        CLIENT_ID,
        CLIENT_SECRET,
        emu.clouds["us-1"] + DEVICES,
        calls,
        lock_ttl,
    )


def test_a_fleet_of_eight_processes_makes_one_token_request(
    redis_server: RedisServer,
    client: redis.Redis,  # flushes the server
    emulator: FalconEmulator,
    spawn: Callable[..., Any],
    mp: Any,
) -> None:
    results = mp.Queue()
    start = mp.Barrier(8)
    job = fleet_job(redis_server, emulator, calls=3, lock_ttl=30.0)
    for _ in range(8):
        spawn(job, start, None, results)
    outcomes = [results.get(timeout=120) for _ in range(8)]
    results.close()
    results.join_thread()
    assert outcomes == [[200, 200, 200]] * 8
    counters = emulator.counters
    assert counters.token_requests == 1
    assert counters.tokens_issued == 1
    assert list(counters.calls_per_token.values()) == [24]


def test_the_fleet_recovers_when_the_lock_holder_dies_mid_fetch(
    redis_server: RedisServer,
    client: redis.Redis,
    emulator: FalconEmulator,
    spawn: Callable[..., Any],
    mp: Any,
) -> None:
    results = mp.Queue()
    ready = mp.Barrier(4)
    go = mp.Event()
    with emulator.hold_token_requests() as gate:
        for _ in range(3):
            spawn(fleet_job(redis_server, emulator, calls=2, lock_ttl=1.5), ready, go, results)
        holder = spawn(
            fleet_job(redis_server, emulator, calls=1, lock_ttl=1.5), None, None, results
        )
        ready.wait(120)  # the three others are built and waiting to go
        assert gate.wait_for_held(1, timeout=120)  # the holder has the lock, its fetch is held
        assert len(client.keys("falcon-auth:lock:*")) == 1
        go.set()
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
        assert holder.exitcode == -signal.SIGKILL
    outcomes = [results.get(timeout=120) for _ in range(3)]
    results.close()
    results.join_thread()
    assert outcomes == [[200, 200]] * 3
    counters = emulator.counters
    assert counters.token_requests == 2  # the killed one, then one for everyone else
    assert sorted(counters.calls_per_token.values()) == [6]


def test_in_the_renew_window_one_process_renews_and_no_process_waits(
    redis_server: RedisServer,
    client: redis.Redis,
    emulator: FalconEmulator,
    mp: Any,
) -> None:
    results, offset = mp.Queue(), mp.Value("d", 0.0)
    ready, go, done = mp.Barrier(3), mp.Event(), mp.Event()
    job = fleet_job(redis_server, emulator, calls=5, lock_ttl=30.0)
    workers = [
        mp.Process(target=renewing_worker, args=(job, offset, ready, go, done, results))
        for _ in range(2)
    ]
    try:
        for worker in workers:
            worker.start()
        ready.wait(120)  # both made their first call: one fetched, the other read Redis
        assert emulator.counters.token_requests == 1
        with emulator.hold_token_requests() as gate:
            offset.value = 1799 - 60  # both clocks are now inside the 120 s renew window
            go.set()
            # Every call in the window finishes while the one renewal is held at the server.
            in_window = [results.get(timeout=120) for _ in workers]
            assert in_window == [[200] * 6] * 2
            assert gate.wait_for_held(1, timeout=60)
            assert gate.held == 1  # the other process never asked: it saw the fleet lock
        done.set()
        after = [results.get(timeout=120) for _ in workers]
        assert after == [[200]] * 2
    finally:
        for worker in workers:
            worker.join(60)
            if worker.is_alive():
                worker.kill()
                worker.join()
    counters = emulator.counters
    assert (counters.token_requests, counters.tokens_issued, counters.api_401) == (2, 2, 0)


def test_a_falcon_auth_with_a_shared_cache_does_not_pickle_it_away(
    monkeypatch: pytest.MonkeyPatch, client: redis.Redis
) -> None:
    """The unpickled copy must not silently fall back to a private cache and its own token."""
    monkeypatch.setenv("FALCON_CLIENT_SECRET", CLIENT_SECRET)
    auth = FalconAuth(CLIENT_ID, cache=RedisTokenCache(client))
    with pytest.raises(TypeError, match="build one in each process"):
        pickle.dumps(auth)
