"""The invariants again, end to end: FalconAuth against the emulator over real sockets.

Every test that can runs over plain HTTP and over TLS (a CA minted for the run). Threads are
real; time moves by a fake clock shared by the client and the emulator, never by sleeping.
"""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from support import CountingCache, in_child, tokens_of

from requests_falcon_auth import (
    FalconAuth,
    FalconRetry,
    FalconSession,
    RateLimitError,
)
from requests_falcon_auth.testing import FalconEmulator, ManualClock, RateLimits

DEVICES = "/devices/queries/devices/v1"
NO_DATA = "/aidr/queries/agents/v1"  # catalogued, no data: Falcon's empty answer
SECRET = "e2e-secret-value"


class Falcon:
    """An emulator plus what a client needs to talk to it (TLS trust, a shared clock)."""

    def __init__(self, emulator: FalconEmulator, clock: Callable[[], float]) -> None:
        self.emulator = emulator
        self._clock = clock

    @property
    def clock(self) -> ManualClock:
        """The clock the test moves (not there when the emulator runs on real time)."""
        assert isinstance(self._clock, ManualClock)
        return self._clock

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy or CA bundle from the machine for loopback
        if self.emulator.ca_bundle:
            session.verify = self.emulator.ca_bundle
        return session

    def auth(self, **kwargs: object) -> FalconAuth:
        kwargs.setdefault("clock", self._clock)
        kwargs.setdefault("session", self.session())
        kwargs.setdefault("retry", FalconRetry(backoff_factor=0, allowed_methods=None))
        return FalconAuth("e2e-client", SECRET, clouds=self.emulator.clouds, **kwargs)  # type: ignore[arg-type]

    def url(self, path: str = DEVICES, region: str = "us-1") -> str:
        return self.emulator.base_url(region) + path


def start(tls: bool, real_time: bool = False, **kwargs: object) -> Iterator[Falcon]:
    """Yields one Falcon on a ManualClock, or with ``real_time`` on ``time.monotonic``."""
    clock: Callable[[], float] = time.monotonic if real_time else ManualClock()
    with FalconEmulator(regions=("us-1", "us-2"), tls=tls, clock=clock, **kwargs) as emulator:  # type: ignore[arg-type]
        emulator.add_client("e2e-client", SECRET, region="us-1")
        yield Falcon(emulator, clock)


@pytest.fixture(params=["http", "tls"])
def falcon(request: pytest.FixtureRequest) -> Iterator[Falcon]:
    yield from start(request.param == "tls")


def run_threads(count: int, work: Callable[[], int]) -> list[int]:
    barrier = threading.Barrier(count)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        status = work()
        with lock:
            results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return results


def get_status(falcon: Falcon, auth: FalconAuth, path: str = DEVICES) -> int:
    with falcon.session() as session:
        session.auth = auth
        return session.get(falcon.url(path)).status_code


def test_cold_start_of_32_threads_makes_one_token_request(falcon: Falcon) -> None:
    cache = CountingCache(falcon.clock)
    auth = falcon.auth(cache=cache)
    gate = falcon.emulator.hold_token_requests()

    def release_when_all_are_queued() -> None:
        cache.wait_for_attempts(32)
        gate.release()

    releaser = threading.Thread(target=release_when_all_are_queued)
    releaser.start()
    statuses = run_threads(32, lambda: get_status(falcon, auth))
    releaser.join()
    assert statuses == [200] * 32
    counters = falcon.emulator.counters
    assert (counters.token_requests, counters.tokens_issued, counters.api_ok) == (1, 1, 32)
    auth.close()


def test_nobody_waits_while_the_token_is_renewed(falcon: Falcon) -> None:
    auth = falcon.auth(renew_window=120)
    assert get_status(falcon, auth) == 200
    falcon.clock.now += 1799 - 60  # inside the renew window, still valid
    gate = falcon.emulator.hold_token_requests()
    # The caller that notices starts the renewal and goes on with the old token.
    assert get_status(falcon, auth) == 200
    assert gate.wait_for_held(1, timeout=30)
    # The renewal is held at the server; 16 threads must all finish on the old token meanwhile.
    assert run_threads(16, lambda: get_status(falcon, auth)) == [200] * 16
    assert falcon.emulator.counters.tokens_issued == 1
    gate.release()
    assert tokens_of(auth).wait_for_renewal(30)
    assert get_status(falcon, auth) == 200
    counters = falcon.emulator.counters
    assert (counters.token_requests, counters.tokens_issued, counters.api_401) == (2, 2, 0)
    assert counters.api_ok == 19
    auth.close()


def test_a_child_forked_during_a_renewal_starts_its_own(falcon: Falcon) -> None:
    auth = falcon.auth(renew_window=120)
    old = auth.get_token()
    falcon.clock.now += 1799 - 60
    gate = falcon.emulator.hold_token_requests()
    assert auth.get_token() is old  # the parent's renewal starts and is held at the server
    assert gate.wait_for_held(1, timeout=30)
    started_read, started_write = os.pipe()

    def child() -> str:  # no renewal of its own yet, the old token without waiting
        inherited = tokens_of(auth).renewing
        same = auth.get_token() is old
        os.write(started_write, b"s")
        renewed = tokens_of(auth).wait_for_renewal(30)
        fresh = auth.get_token().access_token != old.access_token
        return f"{not inherited} {same} {renewed} {fresh}"

    report = in_child(child)
    os.close(started_write)
    assert os.read(started_read, 1) == b"s"
    assert gate.wait_for_held(2, timeout=30)  # the child's own renewal is held too
    gate.release()
    os.close(started_read)
    assert report() == "True True True True"
    assert tokens_of(auth).wait_for_renewal(30)
    assert falcon.emulator.counters.tokens_issued == 3
    auth.close()


_EXIT_WITH_A_RENEWAL_IN_FLIGHT = """
import os, sys, time
from requests_falcon_auth import FalconAuth
offset = [0.0]
auth = FalconAuth(
    "e2e-client", os.environ["E2E_SECRET"], base_url=os.environ["E2E_URL"],
    clock=lambda: time.monotonic() + offset[0],
)
auth.get_token()
print("fetched", flush=True)
sys.stdin.readline()  # the test holds token requests at the server now
offset[0] = 1799 - 60
auth.get_token()
print("renewing" if auth.port.tokens.renewing else "not renewing", flush=True)
sys.stdin.readline()  # the renewal has reached the server, and is held there
"""


def test_the_interpreter_exits_promptly_with_a_renewal_in_flight() -> None:
    with FalconEmulator(regions=("us-1",)) as emulator:
        emulator.add_client("e2e-client", SECRET, region="us-1")
        child = subprocess.Popen(
            [sys.executable, "-c", _EXIT_WITH_A_RENEWAL_IN_FLIGHT],
            env={**os.environ, "E2E_SECRET": SECRET, "E2E_URL": emulator.base_url("us-1")},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdin is not None
            assert child.stdout.readline().strip() == "fetched"
            with emulator.hold_token_requests() as gate:
                child.stdin.write("go\n")
                child.stdin.flush()
                # A renewal that blocked its caller would never let the child say this.
                assert select.select([child.stdout], [], [], 30)[0]
                assert child.stdout.readline().strip() == "renewing"
                assert gate.wait_for_held(1, timeout=30)  # the renewal is in flight
                out, err = child.communicate("exit\n", timeout=60)
        finally:
            child.kill()
            child.wait()
    assert (child.returncode, out, err) == (0, "", "")


def test_expiry_in_the_middle_of_a_threaded_burst(falcon: Falcon) -> None:
    auth = falcon.auth(renew_window=0)
    halfway = threading.Barrier(
        8, action=lambda: setattr(falcon.clock, "now", falcon.clock.now + 1800)
    )

    def burst() -> int:
        statuses = []
        with falcon.session() as session:
            session.auth = auth
            for number in range(10):
                if number == 5:
                    halfway.wait()  # every thread is here: the token expires now
                statuses.append(session.get(falcon.url()).status_code)
        return max(statuses)

    assert run_threads(8, burst) == [200] * 8
    counters = falcon.emulator.counters
    assert counters.api_ok == 80
    assert counters.tokens_issued == 2  # one before, one after expiry: single flight both times
    auth.close()


def test_401_is_healed_once(falcon: Falcon) -> None:
    auth = falcon.auth()
    falcon.emulator.reject_api_calls(1)
    with falcon.session() as session:
        session.auth = auth
        response = session.get(falcon.url())
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    counters = falcon.emulator.counters
    assert (counters.tokens_issued, counters.api_401, counters.api_ok) == (2, 1, 1)
    auth.close()


def test_invalidated_tokens_heal_under_threads(falcon: Falcon) -> None:
    auth = falcon.auth()
    assert get_status(falcon, auth) == 200
    falcon.emulator.invalidate_all_tokens()
    # 12 threads: past 15 bad-token calls a minute Falcon answers 429 instead of 401.
    assert run_threads(12, lambda: get_status(falcon, auth)) == [200] * 12
    assert falcon.emulator.counters.tokens_issued == 2  # the storm cost one token
    auth.close()


def test_storms_past_the_bad_token_budget_heal_too(falcon: Falcon) -> None:
    """Past 15 bad-token calls a minute the emulator, as Falcon, answers 429 with
    ``X-Ratelimit-Limit: 15``: that 429 is a rejected token, healed like a 401."""
    auth = falcon.auth()
    assert get_status(falcon, auth) == 200
    with falcon.session() as raw:  # spend this minute's bad-token budget
        junk = {"Authorization": "Bearer junk"}
        assert {raw.get(falcon.url(), headers=junk).status_code for _ in range(15)} == {401}
    for storm in (1, 2):  # every rejection is a 429 now, the second storm's too
        falcon.emulator.invalidate_all_tokens()
        assert run_threads(32, lambda: get_status(falcon, auth)) == [200] * 32
        assert falcon.emulator.counters.tokens_issued == 1 + storm
    counters = falcon.emulator.counters
    assert counters.api_401 == 15  # the spending calls, and no other
    assert counters.api_429 >= 2  # at least one rejected call per storm
    auth.close()


def test_with_rate_limit_wait_zero_an_account_429_is_the_callers_and_costs_no_token() -> None:
    limits = RateLimits(api_per_cid=3)
    for falcon in start(False, rate_limits=limits):
        auth = falcon.auth(rate_limit_wait=0)
        statuses = [get_status(falcon, auth) for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        counters = falcon.emulator.counters
        assert (counters.token_requests, counters.api_429, counters.api_401) == (1, 2, 0)
        auth.close()


def test_threads_past_the_account_budget_all_succeed_with_few_429s() -> None:
    """Eight threads, twelve calls each, against 20 calls per 2 s: every call ends 200, each
    waiting out the cooldown the first 429 of each window set, instead of failing."""
    limits = RateLimits(api_per_cid=20, window=2.0)
    for falcon in start(False, real_time=True, rate_limits=limits):
        auth = falcon.auth(rate_limit_window=2.0)
        twelve_calls = functools.partial(_calls, falcon, auth, 12)
        assert run_threads(8, twelve_calls) == [200] * 8
        counters = falcon.emulator.counters
        assert counters.api_ok == 96
        assert 0 < counters.api_429 <= 16  # the calls a cooldown caught in flight
        stats = auth.rate_limits
        assert stats.gave_up == 0
        assert stats.waits >= 8
        auth.close()


def test_an_mssp_warming_many_child_tokens_paces_on_the_token_budget() -> None:
    """Six threads warm a token each for 30 child CIDs, past 10 token requests per 2 s per
    source IP: every token arrives, and the token endpoint's 429s stay few, since every
    FalconAuth of the process paces against one budget and waits out one cooldown."""
    limits = RateLimits(token_per_ip=10, window=2.0)
    children = [f"{number:032x}" for number in range(30)]
    for falcon in start(False, real_time=True, rate_limits=limits):
        falcon.emulator.add_client("mssp", "mssp-secret", member_cids=children)
        shares = queue.SimpleQueue[list[str]]()
        for thread in range(6):
            shares.put(children[thread::6])
        warm = functools.partial(_warm_children, falcon.emulator.clouds, shares)
        assert run_threads(6, warm) == [200] * 6
        outcomes = falcon.emulator.counters.token_outcomes
        assert outcomes["issued"] == 30
        # The six requests in flight when the first burst spends the budget, and then about
        # one a window: without pacing, each thread's retries spend a dozen.
        assert outcomes["rate_limited"] <= 8


def _warm_children(clouds: dict[str, str], shares: queue.SimpleQueue[list[str]]) -> int:
    """Fetches a token for each child CID of one share, one after another, as a warm-up."""
    for child in shares.get():
        with FalconAuth(
            "mssp",
            "mssp-secret",
            member_cid=child,
            clouds=clouds,
            rate_limit_window=2.0,
            revoke_on_close=False,
        ) as auth:
            auth.get_token()
    return 200


def _calls(falcon: Falcon, auth: FalconAuth, count: int) -> int:
    """``count`` calls one after another; the worst status."""
    return max(get_status(falcon, auth) for _ in range(count))


def test_resent_upload_arrives_byte_identical(falcon: Falcon, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    sample = tmp_path / "sample.exe"
    sample.write_bytes(payload)
    auth = falcon.auth()
    falcon.emulator.reject_api_calls(1)
    with falcon.session() as session, sample.open("rb") as body:
        session.auth = auth
        response = session.post(
            falcon.url("/samples/entities/samples/v2"), params={"file_name": sample.name}, data=body
        )
    assert response.status_code == 200
    posts = [e for e in falcon.emulator.request_log if e.path.startswith("/samples/")]
    assert [e.status for e in posts] == [401, 200]
    assert posts[-1].body_length == len(payload)
    assert posts[-1].body_sha256 == hashlib.sha256(payload).hexdigest()
    auth.close()


def test_autodiscovery_across_two_regions(falcon: Falcon) -> None:
    falcon.emulator.add_client("roaming", "roaming-secret", region="us-2")
    with FalconSession(
        client_id="roaming",
        client_secret="roaming-secret",
        clouds=falcon.emulator.clouds,
        session=falcon.session(),
    ) as session:
        session.trust_env = False
        session.verify = falcon.session().verify
        response = session.get(NO_DATA)
        assert response.status_code == 200
        assert falcon.emulator.request_log[-1].region == "us-2"
        assert session.auth.region == "us-2"
        assert session.get(falcon.url(NO_DATA, region="us-1")).status_code == 200
        assert falcon.emulator.request_log[-1].region == "us-2"
    counters = falcon.emulator.counters
    assert counters.token_outcomes["redirected"] == 1
    assert counters.tokens_issued == 1
    assert counters.revokes == 1  # at its home region: revoking elsewhere would not count


def test_revoke_on_close_is_seen_by_the_server(falcon: Falcon) -> None:
    auth = falcon.auth()
    token = auth.get_token()
    auth.close()
    assert falcon.emulator.counters.revokes == 1
    with falcon.session() as session:
        rejected = session.get(falcon.url(), headers={"Authorization": token.authorization})
    assert rejected.status_code == 401


def test_a_token_is_never_sent_to_another_host(falcon: Falcon) -> None:
    auth = falcon.auth()
    with FalconEmulator(regions=("us-1",)) as stranger, falcon.session() as session:
        session.auth = auth
        response = session.get(stranger.base_url("us-1") + DEVICES)
        assert response.status_code == 401
        assert stranger.counters.api_401 == 1
        assert all("Authorization" not in e.headers for e in stranger.request_log)
    assert falcon.emulator.counters.token_requests == 0  # nothing was needed, nothing fetched
    auth.close()


def test_token_endpoint_429_is_retried_after_the_servers_wait(falcon: Falcon) -> None:
    falcon.emulator.fail_token_requests(1, status=429, retry_after=0)
    auth = falcon.auth()
    assert get_status(falcon, auth) == 200
    counters = falcon.emulator.counters
    assert (counters.token_outcomes["injected"], counters.tokens_issued) == (1, 1)
    auth.close()


def test_a_long_rate_limit_is_reported_and_remembered(falcon: Falcon) -> None:
    falcon.emulator.fail_token_requests(5, status=429, retry_after=3600)
    auth = falcon.auth()
    for _ in range(5):
        with pytest.raises(RateLimitError) as caught:
            get_status(falcon, auth)
        assert 3500 < caught.value.retry_after <= 3601  # type: ignore[operator]
    assert falcon.emulator.counters.token_requests == 1  # no hot loop against the endpoint


def test_token_budget_exhaustion_is_a_rate_limit_error() -> None:
    for falcon in start(tls=False, rate_limits=RateLimits(token_per_ip=2)):
        for _ in range(2):
            auth = falcon.auth(revoke_on_close=False)
            assert get_status(falcon, auth) == 200
        with pytest.raises(RateLimitError) as caught:
            get_status(falcon, falcon.auth())
        assert caught.value.status_code == 429
        assert falcon.emulator.counters.token_outcomes["rate_limited"] == 1


def test_falcon_retry_in_a_users_adapter_honours_the_gateway_429() -> None:
    limits = RateLimits(api_per_cid=1, window=0.5)
    # Real time: the adapter's retry waits in real time for the window to slide.
    for falcon in start(tls=False, real_time=True, rate_limits=limits):
        auth = falcon.auth()
        with falcon.session() as session:
            session.auth = auth
            session.mount("http://", HTTPAdapter(max_retries=FalconRetry(backoff_factor=0)))
            assert session.get(falcon.url()).status_code == 200
            # 429 with X-Ratelimit-Retryafter; the adapter waits as told, then gets a 200.
            response = session.get(falcon.url())
        assert response.status_code == 200
        counters = falcon.emulator.counters
        assert (counters.api_429, counters.api_ok) == (1, 2)
        auth.close()
