"""Reliability (issue 5), the soak: threads against the emulator under random faults.

The soak sends threads x requests through one FalconAuth to the emulator over real sockets while
the threads inject faults drawn from a seeded RNG: 401s, token 5xx and 429 (with
X-Ratelimit-Retryafter), dropped connections, revoked tokens, and jumps of the fake clock shared
with the emulator that make tokens stale and then expired. Every user request is tagged (``rid=``
in its query) and reconciled with the emulator's request log and counters. ``RELIABILITY_SEED=n``
replays a run's fault schedule (thread interleavings still vary). What a user may see, per fault:

- a 401 (injected, a revoked token, a token that expired in flight) is healed by one re-send with
  a fresh token; when the re-send gets a 401 too, the user gets that answer;
- a token 5xx, 429 or dropped token connection is retried (3 retries); only a flight whose 4 tries
  all failed may fail a user request, with a TokenEndpointError or RateLimitError carrying the
  status of the flight's last try (None for a dropped one); a 429 is then remembered briefly, so
  copies of it fail later requests without a token request;
- a dropped API connection reaches the user as ``requests.ConnectionError``: only the caller knows
  whether the call may be repeated, and the library re-sends only after a 401.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from loopback import Answer, LoopbackServer, Received
from reliability_support import (
    DEVICES,
    RetryWaits,
    recorded_retry_waits,
)
from requests.adapters import HTTPAdapter
from support import tokens_of

from requests_falcon_auth import (
    FalconAuth,
    FalconAuthError,
    FalconRetry,
    RateLimitError,
    TokenEndpointError,
)
from requests_falcon_auth.testing import FalconEmulator, ManualClock
from requests_falcon_auth.testing._records import RequestLogEntry

pytestmark = pytest.mark.slow

SAMPLES = "/samples/entities/samples/v2"


SOAK_THREADS = 8
SOAK_REQUESTS_PER_THREAD = 250
SOAK_TOKEN_TTL = 60  # the emulator's expires_in; FalconAuth renews in the last 30 s
SOAK_SECRET = "soak-secret-value"
# Where user requests go. home: the credentials' region; retarget: another region of the table
# (autodiscovery sends it home); alias: the home server under another host name (another
# origin: no token); foreign-*: hosts outside the cloud table.
TARGET_WEIGHTS = {
    "home": 70,
    "retarget": 10,
    "alias": 6,
    "foreign-loopback": 7,
    "foreign-emulator": 7,
}
MAIN_TARGETS = frozenset({"home", "retarget"})
TOKEN_FAULTS = ("token 500", "token 502", "token 503", "token 504", "token 429")


def soak_seed() -> int:
    value = os.environ.get("RELIABILITY_SEED")
    return int(value) if value else random.SystemRandom().randrange(2**32)


@dataclass(frozen=True)
class Outcome:
    """What one user request got."""

    rid: str
    target: str
    path: str
    sent_sha256: str | None
    status: int | None = None
    history: tuple[int, ...] = ()
    error: BaseException | None = None
    unreleased: int = 0  # responses the library left unread, holding a pooled connection

    @property
    def kind(self) -> str:
        if self.error is None:
            return f"{self.status} after a 401" if self.history else str(self.status)
        if isinstance(self.error, FalconAuthError):
            return f"{type(self.error).__name__} (status {self.error.status_code})"
        return type(self.error).__name__


class Soak:
    """One FalconAuth, the emulator (us-1 and us-2, the client's home is us-2), and two foreign
    hosts; threads send requests and inject faults from their own seeded RNG."""

    def __init__(
        self,
        seed: int,
        emulator: FalconEmulator,
        foreign: FalconEmulator,
        loopback: LoopbackServer,
        clock: ManualClock,
    ) -> None:
        self.seed = seed
        self.emulator = emulator
        self.foreign = foreign
        self.loopback = loopback
        self.clock = clock
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.token_session = self.session()  # FalconAuth does not close a session it is given
        self.auth = FalconAuth(
            "soak-client",
            SOAK_SECRET,
            cloud="auto",
            clouds=emulator.clouds,
            session=self.token_session,
            retry=FalconRetry(backoff_factor=0, allowed_methods=None),
            clock=clock,
            member_cid="",
        )
        home = emulator.base_url("us-2")
        self.bases = {
            "home": home,
            "retarget": emulator.base_url("us-1"),
            "alias": home.replace("127.0.0.1", "localhost"),
            "foreign-loopback": loopback.url,
            "foreign-emulator": foreign.base_url("us-1"),
        }

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        if self.emulator.ca_bundle:
            session.verify = self.emulator.ca_bundle
        return session

    def count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.injected[kind] += n

    def maybe_inject(self, rng: random.Random) -> None:
        emulator = self.emulator
        roll = rng.random()
        if roll < 0.03:
            n = rng.randint(1, 3)
            emulator.reject_api_calls(n)
            self.count("api 401", n)
        elif roll < 0.05:
            n, status = rng.randint(1, 3), rng.choice((500, 502, 503, 504))
            emulator.fail_token_requests(n, status, rng.choice((None, None, 0)))
            self.count(f"token {status}", n)
        elif roll < 0.06:
            n = rng.randint(1, 3)
            emulator.fail_token_requests(n, 429, rng.choice((None, 0, 1)))
            self.count("token 429", n)
        elif roll < 0.075:
            n = rng.randint(1, 2)
            emulator.drop_connections(n)
            self.count("dropped connection", n)
        elif roll < 0.08:
            emulator.invalidate_all_tokens()
            self.count("all tokens revoked")
        if rng.random() < 0.05:
            self.clock.advance(rng.uniform(1, SOAK_TOKEN_TTL / 3))
            self.count("clock jump")

    def send(self, session: requests.Session, rid: str, target: str, body: bytes | None) -> Outcome:
        path = DEVICES if body is None else SAMPLES
        query = f"rid={rid}" if body is None else f"rid={rid}&file_name={rid}.bin"
        url = f"{self.bases[target]}{path}?{query}"
        sent = None if body is None else hashlib.sha256(body).hexdigest()
        try:
            response = session.request(
                "GET" if body is None else "POST", url, data=body, timeout=(5, 30)
            )
        except (FalconAuthError, requests.ConnectionError) as exc:
            return Outcome(rid, target, path, sent, error=exc)
        history = tuple(r.status_code for r in response.history)
        return Outcome(rid, target, path, sent, response.status_code, history)

    @contextmanager
    def user_session(self) -> Iterator[tuple[requests.Session, TrackingAdapter]]:
        adapter = TrackingAdapter()
        with self.session() as session:
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.auth = self.auth
            yield session, adapter

    def worker(self, index: int, start: threading.Barrier) -> list[Outcome]:
        rng = random.Random(f"{self.seed}-{index}")
        outcomes = []
        with self.user_session() as (session, adapter):
            start.wait()
            for n in range(SOAK_REQUESTS_PER_THREAD):
                self.maybe_inject(rng)
                target = rng.choices(list(TARGET_WEIGHTS), list(TARGET_WEIGHTS.values()))[0]
                body = rng.randbytes(rng.randint(1, 4096)) if rng.random() < 0.25 else None
                outcome = self.send(session, f"t{index}-{n}", target, body)
                outcomes.append(replace(outcome, unreleased=adapter.release_unread()))
        return outcomes

    def run_threads(self) -> list[Outcome]:
        start = threading.Barrier(SOAK_THREADS)
        results: dict[int, list[Outcome]] = {}
        crashes: list[BaseException] = []

        def run(index: int) -> None:
            try:
                results[index] = self.worker(index, start)
            except BaseException as exc:
                crashes.append(exc)
                start.abort()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(SOAK_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
            assert not thread.is_alive(), f"seed={self.seed}: a soak thread hung"
        if crashes:
            raise AssertionError(
                f"seed={self.seed}: a user request raised {crashes[0]!r}"
            ) from crashes[0]
        return [outcome for index in sorted(results) for outcome in results[index]]

    def drain(self) -> list[Outcome]:
        """Requests on one thread until one proves every fault queue empty: it made a token
        request (the clock moved past expiry) and an API call, and none met a fault."""
        outcomes = []
        assert tokens_of(self.auth).wait_for_renewal(60)  # a renewal in flight spends faults too
        with self.user_session() as (session, adapter):
            for n in range(200):
                before = self.emulator.counters
                self.clock.advance(SOAK_TOKEN_TTL + 1)
                outcome = self.send(session, f"drain-{n}", "home", None)
                outcomes.append(replace(outcome, unreleased=adapter.release_unread()))
                after = self.emulator.counters
                if (
                    outcome.status == 200
                    and not outcome.history
                    and after.token_requests == before.token_requests + 1
                    and after.tokens_issued == before.tokens_issued + 1
                    and after.api_calls == before.api_calls + 1
                    and after.dropped_connections == before.dropped_connections
                ):
                    return outcomes
        raise AssertionError(f"seed={self.seed}: the injected faults did not drain")


class TrackingAdapter(HTTPAdapter):
    """Remembers the responses it builds, so that after each user request the ones still holding
    a connection checked out of the pool (left unread and unclosed) are counted and closed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._built: list[requests.Response] = []

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        self._built.append(response)
        return response

    def release_unread(self) -> int:
        unread = [r for r in self._built if getattr(r.raw, "connection", None) is not None]
        for response in unread:
            response.close()
        self._built.clear()
        return len(unread)


def rid_of(query: str) -> str | None:
    values = parse_qs(urlsplit(query).query if "?" in query else query).get("rid")
    return values[0] if values else None


def check_user_request(outcome: Outcome, entries: list[RequestLogEntry]) -> str | None:
    """Why the request's outcome and what the emulator saw of it disagree, or None."""
    statuses = [entry.status for entry in entries]
    error = outcome.error
    if outcome.target in MAIN_TARGETS:
        if any(e.region != "us-2" or e.path != outcome.path for e in entries):
            return "was sent somewhere else than the home region"
        if not all(e.headers.get("Authorization", "").startswith("Bearer ") for e in entries):
            return "reached the API without a bearer token"
        if error is None:
            if list(outcome.history) != statuses[:-1]:
                return f"history {outcome.history} but the API saw {statuses}"
            if outcome.status == 200:
                if statuses not in ([200], [401, 200]):
                    return f"succeeded, but the API saw {statuses}"
                received = entries[-1].body_sha256  # the emulator logs what it read
                if outcome.sent_sha256 is not None and received != outcome.sent_sha256:
                    return "the API received another body than the one sent"
                return None
            if outcome.status == 401 and statuses == [401, 401]:
                return None
            return f"got {outcome.status}, the API saw {statuses}"
        if isinstance(error, FalconAuthError):
            if type(error) not in (TokenEndpointError, RateLimitError):
                return f"failed with {error!r}, which no injected fault causes"
            return None if statuses in ([], [401]) else f"failed, the API saw {statuses}"
        if isinstance(error, requests.ConnectionError):
            return None if statuses in ([None], [401, None]) else f"dropped, API saw {statuses}"
        return f"failed with {error!r}"
    if outcome.target == "alias":
        if any("Authorization" in e.headers for e in entries):
            return "a token went to another origin of the same server"
        if error is None and outcome.status == 401 and not outcome.history and statuses == [401]:
            return None
        if isinstance(error, requests.ConnectionError) and statuses == [None]:
            return None
        return f"got {outcome.kind}, the server saw {statuses}"
    if entries:
        return "a request for a foreign host reached the Falcon emulator"
    return None


def failed_flights(token_entries: Sequence[RequestLogEntry]) -> tuple[int, set[int | None], int]:
    """(failed flights, statuses of their last tries, failures not followed by a success).

    Flights are serialised (single flight) and each try that fails is retried until 4 tries:
    a run of n failed tries between two successes (201, or the 308 that ends autodiscovery's
    first leg) holds n // 4 failed flights, then the start of the flight that succeeded.
    """
    flights = 0
    last_statuses: set[int | None] = set()
    run: list[int | None] = []
    for entry in token_entries:
        if entry.status in (201, 308):
            run = []
            continue
        run.append(entry.status)
        if len(run) == 4:
            flights += 1
            last_statuses.add(run[-1])
            run = []
    return flights, last_statuses, len(run)


def reconcile(soak: Soak, outcomes: list[Outcome], waits: RetryWaits) -> dict[str, object]:
    """Asserts that the user's view, the emulator's counters and its request log agree."""
    seed = f"seed={soak.seed}"
    log = soak.emulator.request_log
    assert len(log) < 10_000, f"{seed}: the request log overflowed; lower the request count"
    by_rid: dict[str, list[RequestLogEntry]] = defaultdict(list)
    for entry in log:
        rid = rid_of(entry.query)
        if rid is not None:
            by_rid[rid].append(entry)
    problems = []
    for outcome in outcomes:
        entries = by_rid.pop(outcome.rid, [])
        if outcome.unreleased:  # B7: a connection kept out of the pool (a hang with pool_block)
            problems.append(f"{outcome.rid}: {outcome.unreleased} responses left unread")
        problem = check_user_request(outcome, entries)
        if problem is not None:
            problems.append(f"{outcome.rid} -> {outcome.target}: {problem} ({outcome.kind})")
    assert not problems, f"{seed}: {len(problems)} bad outcomes, first: {problems[:5]}"
    assert not by_rid, f"{seed}: the emulator saw requests nobody sent: {sorted(by_rid)[:5]}"

    # Foreign hosts never see a token, and get exactly the requests sent to them.
    received: dict[str, list[Received]] = defaultdict(list)
    for request in soak.loopback.received:
        received[rid_of(request.path) or "?"].append(request)
    assert not any("Authorization" in r.headers for r in soak.loopback.received), seed
    foreign_log = soak.foreign.request_log
    assert not any("Authorization" in e.headers for e in foreign_log), seed
    assert soak.foreign.counters.token_requests == 0, seed
    foreign_by_rid = Counter(rid_of(e.query) for e in foreign_log)
    for outcome in outcomes:
        if outcome.target == "foreign-loopback":
            assert (outcome.status, len(received.pop(outcome.rid, []))) == (200, 1), seed
        elif outcome.target == "foreign-emulator":
            assert (outcome.status, outcome.history) == (401, ()), seed
            assert foreign_by_rid.pop(outcome.rid, 0) == 1, seed
    assert not received, seed
    assert not foreign_by_rid, seed

    # The counters agree with the log, and every fault injected was met exactly once.
    counters = soak.emulator.counters
    gateway = [e for e in log if not e.path.startswith("/oauth2/")]
    tokens = [e for e in log if e.path == "/oauth2/token"]
    revokes = [e for e in log if e.path == "/oauth2/revoke"]
    assert all(rid_of(e.query) for e in gateway), f"{seed}: an API call no user request made"
    successes = sum(o.status == 200 and o.target in MAIN_TARGETS for o in outcomes)
    api_ok = sum(e.status == 200 for e in gateway)
    assert counters.api_ok == api_ok == successes, seed
    assert counters.api_401 == sum(e.status == 401 for e in gateway), seed
    assert (
        counters.api_calls
        == sum(e.status is not None for e in gateway)
        == api_ok + counters.api_401
    )
    with_token = [e for e in gateway if e.status is not None and "Authorization" in e.headers]
    assert sum(counters.calls_per_token.values()) == len(with_token), f"{seed}: unknown tokens"
    assert counters.dropped_connections == sum(e.status is None for e in log), seed
    assert counters.dropped_connections == soak.injected["dropped connection"], seed
    injected_token_failures = sum(soak.injected[kind] for kind in TOKEN_FAULTS)
    assert counters.token_outcomes["injected"] == injected_token_failures, seed
    assert counters.api_401 >= soak.injected["api 401"], seed
    assert counters.token_requests == sum(e.status is not None for e in tokens), seed
    assert counters.tokens_issued == sum(e.status == 201 for e in tokens), seed
    outcomes_seen = {k: v for k, v in counters.token_outcomes.items() if v}
    assert set(outcomes_seen) <= {"issued", "redirected", "injected"}, f"{seed}: {outcomes_seen}"
    assert counters.revokes == sum(e.status == 200 for e in revokes) >= 1, seed

    # Token requests: never a bearer token on them; autodiscovery happened once, and us-1
    # saw nothing after it; a user saw a token failure only after a flight's 4 tries failed.
    assert not any("Authorization" in e.headers for e in tokens), seed
    redirects = [i for i, e in enumerate(log) if e.status == 308]
    assert len(redirects) == 1, f"{seed}: autodiscovery ran {len(redirects)} times"
    assert all(e.path == "/oauth2/token" for e in log if e.region == "us-1"), seed
    assert not any(e.region == "us-1" for e in log[redirects[0] + 1 :]), seed
    flights, last_statuses, unfinished = failed_flights(tokens)
    assert unfinished == 0, f"{seed}: the last token request failed"
    auth_errors = [o.error for o in outcomes if isinstance(o.error, FalconAuthError)]
    assert all(e.status_code in last_statuses for e in auth_errors), (
        f"{seed}: {[e.status_code for e in auth_errors]} vs flights ending {last_statuses}"
    )
    assert all(0 <= wait <= 2.0 for wait in waits.waits), f"{seed}: {max(waits.waits)} s wait"

    return {
        "user requests": Counter(o.target for o in outcomes),
        "outcomes": Counter(o.kind for o in outcomes),
        "faults injected": dict(sorted(soak.injected.items())),
        "emulator": {
            "token requests": counters.token_requests,
            "tokens issued": counters.tokens_issued,
            "token failures met (injected)": counters.token_outcomes["injected"],
            "failed token flights (4 tries)": flights,
            "api calls": counters.api_calls,
            "api 200": counters.api_ok,
            "api 401": counters.api_401,
            "api 401 beyond the injected ones": counters.api_401 - soak.injected["api 401"],
            "of which to requests without a token (alias host)": sum(
                e.status == 401 and "Authorization" not in e.headers for e in gateway
            ),
            "dropped connections": counters.dropped_connections,
            "revokes at close": counters.revokes,
        },
        "retry waits asked (recorded, not slept)": f"{len(waits)} totalling {waits.total:.1f} s",
    }


@contextmanager
def soak_world(tls: bool, seed: int) -> Iterator[Soak]:
    clock = ManualClock()
    emulator = FalconEmulator(
        regions=("us-1", "us-2"),
        tls=tls,
        token_ttl=SOAK_TOKEN_TTL,
        rate_limits=False,  # budgets would turn 401s into 429s; this soak is about faults
        clock=clock,
    )
    foreign = FalconEmulator(regions=("us-1",), rate_limits=False)
    foreign_ok = LoopbackServer(lambda received: Answer(200, b"{}"))
    with emulator, foreign, foreign_ok:
        emulator.add_client("soak-client", SOAK_SECRET, region="us-2")
        soak = Soak(seed, emulator, foreign, foreign_ok, clock)
        try:
            yield soak
        finally:
            soak.auth.close()
            soak.token_session.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_soak_threads_under_random_faults(scheme: str) -> None:
    seed = soak_seed()
    print(f"\nsoak over {scheme}: RELIABILITY_SEED={seed}")
    started = time.perf_counter()
    with soak_world(scheme == "https", seed) as soak, recorded_retry_waits() as waits:
        outcomes = soak.run_threads()
        outcomes += soak.drain()
        soak.auth.close()  # revokes: reconciled below
        figures = reconcile(soak, outcomes, waits)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures, indent=2, default=dict))


# -- regression B7 (found by the soak) ---------------------------------------------------------


def test_b7_failed_renewal_returns_the_401_connection() -> None:
    """B7: the 401 was left unread when its renewal failed, its connection checked out of the
    pool for good: with pool_block=True the user's next request waited forever."""
    adapter = TrackingAdapter(pool_maxsize=1, pool_block=True)
    with soak_world(tls=False, seed=0) as soak, soak.session() as session:
        session.mount("http://", adapter)
        session.auth = soak.auth
        url = soak.bases["home"] + DEVICES
        try:
            assert session.get(url).status_code == 200
            soak.emulator.reject_api_calls(1)
            soak.emulator.fail_token_requests(4, 500)
            with pytest.raises(TokenEndpointError):
                session.get(url)
            pools: list[Any] = list(adapter.poolmanager.pools._container.values())
            checked_out = sum(pool.pool.maxsize - pool.pool.qsize() for pool in pools)
        finally:
            adapter.release_unread()  # closes a 401 left open, so a failure leaks no socket
    assert checked_out == 0, "the 401's connection was never returned to the pool"
