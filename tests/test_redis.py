"""What only RedisTokenCache does, against a real redis-server: entry TTLs, clients that decode
responses, the Lua compare-and-delete, lock_ttl, outages, and the object itself; what must hold
on a Redis Cluster too (a three-node one started here); and what a broken or hostile Redis does
to it (a fake server speaking RESP on loopback, :mod:`resp_server`).

What every shared store does (at rest, the lock, FalconAuth, fleets of real processes) is in
``test_shared_stores.py``, run against this store and the file store alike. "Two processes" in
one test are two clients with two connection pools.
"""

from __future__ import annotations

import logging
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Union

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis_launcher import RedisServer
from required_tools import redis_server_executable
from resp_server import RespServer, Script, answer_with, hang, trickle
from support import gets_at_once, present, token, tokens_of

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.cache import CacheKey, Timing
from requests_falcon_auth.errors import ConfigurationError
from requests_falcon_auth.redis import RedisTokenCache
from requests_falcon_auth.testing import ManualClock
from requests_falcon_auth.testing.pytest_plugin import EmulatedFalcon

CLIENT_ID = "fleet-client-id-7c41"
SECRET = "fleet-client-secret-e9b2"
DEVICES = "/devices/queries/devices/v1"
ENTRY = "https://api.crowdstrike.com"
KEY = CacheKey.for_credentials(ENTRY, CLIENT_ID, SECRET, None)
TOKEN = "eyJhbGciOi.tok-" + "5f3a9c" * 12
LOGGER = "requests_falcon_auth.redis"
Client = Union[redis.Redis, RedisCluster]


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


# -- fixtures ------------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


class Deployment:
    """New clients (each its own pools: a "process") of one redis-server or of a Redis Cluster
    of three, emptied first, and how many bytes the servers have sent to anyone."""

    def __init__(self, kind: str, ports: list[int]) -> None:
        self.kind = kind
        self._ports = ports
        self._made: list[Client] = []
        self._nodes = [redis.Redis(port=port, socket_timeout=5) for port in ports]
        for node in self._nodes:
            node.flushall()

    def client(self) -> Client:
        made: Client
        if self.kind == "cluster":
            made = RedisCluster(host="127.0.0.1", port=self._ports[0], socket_timeout=5)
        else:
            made = redis.Redis(port=self._ports[0], socket_timeout=5)
        self._made.append(made)
        return made

    def bytes_sent(self) -> int:
        return sum(node.info("stats")["total_net_output_bytes"] for node in self._nodes)

    def close(self) -> None:
        for client in [*self._made, *self._nodes]:
            client.close()


@pytest.fixture(params=["server", "cluster"])
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    if request.param == "cluster":
        ports = request.getfixturevalue("redis_cluster").ports
    else:
        ports = [request.getfixturevalue("redis_server").port]
    made = Deployment(request.param, ports)
    yield made
    made.close()


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
    cache.set(KEY, token(TOKEN, issued_at=1000.0 - age, expires_in=expires_in))
    pttl = client.pttl(cache.token_name(KEY))
    assert expected_ttl * 1000 - 2000 < pttl <= expected_ttl * 1000


def test_a_client_that_decodes_responses_works_too(
    clients: Callable[..., redis.Redis], caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisTokenCache(clients(decode_responses=True))
    cache.set(KEY, token(TOKEN, issued_at=cache.timing.clock()))
    got = cache.get(KEY)
    assert got is not None
    assert got.access_token == TOKEN
    assert cache.compare_and_delete(KEY, got)
    clients().set(cache.token_name(KEY), b"\xff\xfe not text", px=60_000)
    assert cache.get(KEY) is None  # a miss, not a UnicodeDecodeError in the caller's request
    assert len(warnings_logged(caplog)) == 1


# -- compare-and-delete -------------------------------------------------------------------------


def test_compare_and_delete_compares_and_deletes_in_one_lua_step(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a GET, then a DEL, from the client: a token another worker stored in between
    would be deleted. (What compare-and-delete removes is in the shared suite.)"""
    mine, theirs = deployment.client(), deployment.client()
    cache, other = RedisTokenCache(mine), RedisTokenCache(theirs)
    failed = token("tok-1", issued_at=cache.timing.clock())
    cache.set(KEY, failed)
    other.set(KEY, token("tok-2", issued_at=cache.timing.clock()))  # another worker replaced it

    def client_side(*args: object, **kwargs: object) -> None:
        raise AssertionError("compare_and_delete must run in one Lua script")

    for method in ("get", "delete", "pipeline", "transaction", "watch"):
        # raising=False: RedisCluster lacks some before redis-py 5 (and cannot call them then).
        monkeypatch.setattr(mine, method, client_side, raising=False)
    assert cache.compare_and_delete(KEY, failed) is False
    assert present(other.get(KEY)).access_token == "tok-2"
    assert cache.compare_and_delete(KEY, token("tok-2")) is True
    assert theirs.exists(cache.token_name(KEY)) == 0
    assert cache.compare_and_delete(KEY, token("tok-2")) is False


# -- on one server or a cluster -----------------------------------------------------------------------


def test_a_process_reads_the_token_another_stored(
    deployment: Deployment, falcon_emulator: EmulatedFalcon
) -> None:
    url = falcon_emulator.clouds["us-1"] + DEVICES
    for _ in range(3):  # three processes, one after the other
        cache = RedisTokenCache(deployment.client())
        with make_auth(falcon_emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            assert session.get(url).status_code == 200
    (issued,) = falcon_emulator.issued_tokens()
    read = present(RedisTokenCache(deployment.client()).get(tokens_of(auth).key))
    assert read.access_token == issued
    assert 1700 < read.expires_at - time.monotonic() <= 1799


def test_threads_of_two_processes_make_one_token_request(
    deployment: Deployment, falcon_emulator: EmulatedFalcon
) -> None:
    """16 threads over two instances start together: the fleet lock lets one fetch."""
    auths = [make_auth(falcon_emulator, RedisTokenCache(deployment.client())) for _ in range(2)]
    assert gets_at_once(auths, falcon_emulator.clouds["us-1"] + DEVICES) == [200] * 16
    assert falcon_emulator.counters.token_requests == 1


def test_a_value_larger_than_a_sealed_token_never_crosses_the_network(
    deployment: Deployment, falcon_emulator: EmulatedFalcon, caplog: pytest.LogCaptureFixture
) -> None:
    """A value planted to exhaust readers' memory is a miss (one warning), and the next fetch
    repairs it; its bytes never leave Redis."""
    url = falcon_emulator.clouds["us-1"] + DEVICES

    def one_process() -> FalconAuth:
        with (
            make_auth(falcon_emulator, RedisTokenCache(deployment.client())) as auth,
            requests.Session() as session,
        ):
            auth.attach(session)
            assert session.get(url).status_code == 200
        return auth

    with make_auth(falcon_emulator, RedisTokenCache(deployment.client())) as auth:
        key = tokens_of(auth).key
    planter = deployment.client()
    planted = b"v1:" + b"A" * (8 << 20)
    planter.set(RedisTokenCache(planter).token_name(key), planted, px=60_000)
    before = deployment.bytes_sent()
    one_process()
    assert deployment.bytes_sent() - before < len(planted) // 8
    (warning,) = warnings_logged(caplog)
    assert "does not decrypt or verify (too large)" in warning.getMessage()
    one_process()  # reads the token the first one stored over the planted value
    assert falcon_emulator.counters.token_requests == 1
    assert len(warnings_logged(caplog)) == 1


def test_a_key_of_another_type_is_a_miss_and_the_next_token_replaces_it(
    deployment: Deployment, falcon_emulator: EmulatedFalcon, caplog: pytest.LogCaptureFixture
) -> None:
    url = falcon_emulator.clouds["us-1"] + DEVICES
    with make_auth(falcon_emulator, RedisTokenCache(deployment.client())) as auth:
        key = tokens_of(auth).key
    other = deployment.client()
    other.hset(RedisTokenCache(other).token_name(key), "field", "value")
    for _ in range(2):  # two processes: the first fetches, the second reads its token
        cache = RedisTokenCache(deployment.client())
        with make_auth(falcon_emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            assert session.get(url).status_code == 200
    assert falcon_emulator.counters.token_requests == 1
    (warning,) = warnings_logged(caplog)
    assert "(not a string)" in warning.getMessage()


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
            assert cache.compare_and_delete(other_key, token(TOKEN)) is False
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
            assert cache.get(tokens_of(auth).key) is not None

            held = cache.lock(tokens_of(auth).key)
            assert held.acquire()  # Redis is used again
            assert "answers again" in caplog.text
            server.stop()
            caplog.clear()
            held.release()  # Redis gone while holding: logged (rate-limited), never raised
            assert "ConnectionError during unlock" in caplog.text


# -- a broken or hostile Redis ------------------------------------------------------------------------

# redis-py speaks RESP3 from 5.0 on (8.x by default); to an older one RESP3 answers are a
# protocol error instead, an outage all the same.
_CHOOSES_PROTOCOL = int(redis.__version__.split(".")[0]) >= 5
RESP2: dict[str, Any] = {"protocol": 2} if _CHOOSES_PROTOCOL else {}
RESP3: dict[str, Any] = {"protocol": 3} if _CHOOSES_PROTOCOL else {}

NONSENSE: dict[str, tuple[Script, dict[str, Any]]] = {
    "an integer": (answer_with(b":1\r\n"), {}),
    "an array": (answer_with(b"*0\r\n"), {}),
    "a boolean": (answer_with(b"#t\r\n"), RESP3),
    "a double": (answer_with(b",1.5\r\n"), RESP3),
    "a map": (answer_with(b"%0\r\n"), RESP3),
    # redis-py itself raises AttributeError at a HELLO answer that is no map.
    "a HELLO answer that is no map": (answer_with(b"*0\r\n", hello=b"*1\r\n:3\r\n"), RESP3),
}


@pytest.mark.parametrize(("script", "client_options"), NONSENSE.values(), ids=NONSENSE.keys())
def test_an_answer_redis_never_gives_is_an_outage_never_an_exception(
    falcon_emulator: EmulatedFalcon,
    caplog: pytest.LogCaptureFixture,
    script: Script,
    client_options: dict[str, Any],
) -> None:
    url = falcon_emulator.clouds["us-1"] + DEVICES
    with (
        RespServer(script) as server,
        redis.Redis(port=server.port, **client_options) as client,
        make_auth(falcon_emulator, RedisTokenCache(client)) as auth,
        requests.Session() as session,
    ):
        auth.attach(session)
        statuses = [session.get(url).status_code for _ in range(3)]
    assert statuses == [200] * 3
    assert falcon_emulator.counters.token_requests == 1
    (warning,) = warnings_logged(caplog)
    assert warning.getMessage().startswith("The Redis token cache failed (")
    for issued in falcon_emulator.issued_tokens():
        assert issued not in caplog.text


def returns_within(seconds: float, call: Callable[[], int]) -> int:
    """What ``call()`` returns, asserting it returned within ``seconds`` (if not, it goes on,
    on a daemon thread, until the server stops at teardown)."""
    outcome: list[int] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still waiting after {seconds} s"
    return outcome[0]


def late_operations(before: set[threading.Thread]) -> list[threading.Thread]:
    """The cache's operation threads started since ``before`` that are still running."""
    now = threading.enumerate()
    return [thread for thread in now if thread.name == "falcon-auth-redis" and thread not in before]


@pytest.mark.parametrize(
    ("answer", "client_options"),
    [
        # A byte a second: a socket timeout of 2 s never fires.
        (trickle, {"socket_timeout": 2, "retry": Retry(NoBackoff(), 0)}),
        # redis-py's defaults: retries of a socket timeout, or no timeout at all before 5.0.
        (hang, {}),
    ],
    ids=["trickle", "hang"],
)
def test_a_redis_that_never_finishes_answering_costs_one_operation_timeout(
    falcon_emulator: EmulatedFalcon,
    caplog: pytest.LogCaptureFixture,
    answer: Script,
    client_options: dict[str, Any],
) -> None:
    """The first request waits ``operation_timeout`` (1 s here) for Redis, then goes on without
    it. The late operation keeps running on its thread; while it does Redis is left alone
    (backoff=0 notwithstanding), so it ties up that one thread and no more."""
    url = falcon_emulator.clouds["us-1"] + DEVICES
    threads_before = set(threading.enumerate())
    with (
        RespServer(answer_with(answer)) as server,
        redis.Redis(port=server.port, **client_options) as client,
    ):
        cache = RedisTokenCache(client, operation_timeout=1.0, backoff=0.0)
        with make_auth(falcon_emulator, cache) as auth, requests.Session() as session:
            auth.attach(session)
            assert returns_within(3.0, lambda: session.get(url).status_code) == 200
            falcon_emulator.invalidate_all_tokens()  # the 401 would need Redis again
            assert returns_within(3.0, lambda: session.get(url).status_code) == 200
            late = late_operations(threads_before)
            asked = server.commands().count(b"EVALSHA")
    for thread in late:  # the server is gone: it ends, and must not outlive the test (redis-py's
        thread.join(60)  # retries draw from the random module, which Hypothesis watches)
    assert (len(late), asked, [t for t in late if t.is_alive()]) == (1, 1, [])
    assert falcon_emulator.counters.token_requests == 2
    (warning,) = warnings_logged(caplog)
    assert "(no answer within 1 s during GET at " in warning.getMessage()


def test_redis_is_used_again_once_the_late_operation_has_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    release = threading.Event()

    def first_read_late(conn: socket.socket, command: list[bytes], stop: threading.Event) -> None:
        if not release.is_set():
            release.wait()
        conn.sendall(b"$-1\r\n")  # a miss, in RESP2

    threads_before = set(threading.enumerate())
    with (
        RespServer(answer_with(first_read_late)) as server,
        redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0), **RESP2) as client,
    ):
        cache = RedisTokenCache(client, operation_timeout=0.5, backoff=0.0)
        try:
            assert cache.get(KEY) is None  # gave up after 0.5 s
            (late,) = late_operations(threads_before)
            assert cache.get(KEY) is None  # Redis is left alone while it runs
            assert server.commands().count(b"EVALSHA") == 1
        finally:
            release.set()
        late.join(30)
        assert cache.get(KEY) is None  # asked again, and answered
        assert server.commands().count(b"EVALSHA") == 2
    assert "answers again" in caplog.text


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
        {"operation_timeout": 0},
        {"operation_timeout": "3"},
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
