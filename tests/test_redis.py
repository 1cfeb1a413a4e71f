"""What only RedisTokenCache does, against a real redis-server: entry TTLs, clients that decode
responses, the Lua compare-and-delete, lock_ttl, outages, and the object itself.

What every shared store does (at rest, the lock, FalconAuth, fleets of real processes) is in
``test_shared_stores.py``, run against this store and the file store alike. "Two processes" in
one test are two clients with two connection pools.
"""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_launcher import RedisServer
from required_tools import redis_server_executable
from support import present

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.cache import CacheKey, Timing
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.testing import ManualClock
from requests_falcon_auth.testing.pytest_plugin import EmulatedFalcon
from requests_falcon_auth.token import Token

CLIENT_ID = "fleet-client-id-7c41"
SECRET = "fleet-client-secret-e9b2"
DEVICES = "/devices/queries/devices/v1"
ENTRY = "https://api.crowdstrike.com"
KEY = CacheKey.for_credentials(ENTRY, CLIENT_ID, SECRET, None)
TOKEN = "eyJhbGciOi.tok-" + "5f3a9c" * 12
LOGGER = "requests_falcon_auth.redis"


def token(value: str = TOKEN, issued_at: float = 1000.0, expires_in: int = 1799) -> Token:
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


def make_auth(emu: EmulatedFalcon, cache: RedisTokenCache) -> FalconAuth:
    """A FalconAuth for the client of the plugin's ``falcon_emulator``, on ``cache``."""
    return FalconAuth(
        emu.client_id, emu.client_secret, cloud="us-1", clouds=emu.clouds, cache=cache
    )


def unreachable_client() -> redis.Redis:
    """A client of a closed port that fails at once (no retries)."""
    return redis.Redis(port=closed_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


def bound(cache: RedisTokenCache, clock: Callable[[], float]) -> RedisTokenCache:
    """The cache on ``clock``, as the FalconAuth that uses it would leave it."""
    cache.bind(Timing(clock))
    return cache


# -- at rest ---------------------------------------------------------------------------------------


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


def test_a_client_that_decodes_responses_works_too(
    clients: Callable[..., redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisTokenCache(clients(decode_responses=True))
    cache.set(KEY, token(issued_at=cache._clock()))
    got = cache.get(KEY)
    assert got is not None
    assert got.access_token == TOKEN
    assert cache.compare_and_delete(KEY, got)
    clients().set(cache.token_name(KEY), b"\xff\xfe not text", px=60_000)
    assert cache.get(KEY) is None  # a miss, not a UnicodeDecodeError in the caller's request
    assert len(warnings_logged(caplog)) == 1


# -- compare-and-delete -------------------------------------------------------------------------


def test_compare_and_delete_compares_and_deletes_in_one_lua_step(
    clients: Callable[..., redis.Redis], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a GET, then a DEL, from the client: a token another worker stored in between
    would be deleted. (What compare-and-delete removes is in the shared suite.)"""
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


# -- outages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("backoff", [0.0, 5.0])
def test_redis_down_falls_back_to_a_local_token_with_one_warning(
    falcon_emulator: EmulatedFalcon, caplog: pytest.LogCaptureFixture, backoff: float
) -> None:
    with unreachable_client() as down:
        cache = RedisTokenCache(down, backoff=backoff)
        with make_auth(falcon_emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            statuses = [
                session.get(falcon_emulator.clouds["us-1"] + DEVICES).status_code for _ in range(5)
            ]
            other_key = CacheKey("f" * 64, KEY.secret)
            assert cache.compare_and_delete(other_key, token()) is False
    assert statuses == [200] * 5
    assert falcon_emulator.counters.token_requests == 1
    (warning,) = warnings_logged(caplog)
    assert "ConnectionError" in warning.getMessage()
    assert falcon_emulator.client_secret not in caplog.text
    for issued in falcon_emulator.issued_tokens():
        assert issued not in caplog.text


def test_an_outage_keeps_the_fleet_token_and_redis_is_used_again_after(
    falcon_emulator: EmulatedFalcon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    url = falcon_emulator.clouds["us-1"] + DEVICES
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
        with make_auth(falcon_emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            assert session.get(url).status_code == 200
            server.stop()
            # The token this process holds is fresh: served locally, Redis is not asked.
            assert [session.get(url).status_code for _ in range(3)] == [200] * 3
            assert (falcon_emulator.counters.token_requests, warnings_logged(caplog)) == (1, [])
            falcon_emulator.invalidate_all_tokens()  # a 401 needs Redis: the outage shows now
            assert [session.get(url).status_code for _ in range(3)] == [200] * 3
            assert falcon_emulator.counters.token_requests == 2  # one fetch, kept locally
            assert len(warnings_logged(caplog)) == 1
            server.start()  # empty: --save ""
            assert session.get(url).status_code == 200
            assert falcon_emulator.counters.token_requests == 2
            assert cache.get(auth._provider.key) is not None

            held = cache.lock(auth._provider.key)
            assert held.acquire()  # Redis is used again
            assert "answers again" in caplog.text
            server.stop()
            caplog.clear()
            held.release()  # Redis gone while holding: logged (rate-limited), never raised
            assert "ConnectionError during unlock" in caplog.text


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


def test_a_falcon_auth_with_a_shared_cache_does_not_pickle_it_away(
    monkeypatch: pytest.MonkeyPatch, client: redis.Redis
) -> None:
    """The unpickled copy must not silently fall back to a private cache and its own token."""
    monkeypatch.setenv("FALCON_CLIENT_SECRET", SECRET)
    auth = FalconAuth(CLIENT_ID, cache=RedisTokenCache(client))
    with pytest.raises(TypeError, match="build one in each process"):
        pickle.dumps(auth)
