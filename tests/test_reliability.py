"""Reliability (issue 5): a threaded soak against the emulator under random faults, and fuzzing
of what the token endpoint and the API may answer.

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

The fuzz tests give OAuth2 and FalconAuth arbitrary token-endpoint answers, and arbitrary API
answers to the 401 path, through ``responses`` (no sockets). Retry waits are recorded, not slept.
The bugs they found (B1-B7, fixed in 0deb77a) keep a regression test each at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any, Union
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
import responses
from hypothesis import event, given, settings
from hypothesis import strategies as st
from loopback import Answer, LoopbackServer, Received
from reliability_support import (
    FUZZ_SECRET,
    MUST,
    MUST_NOT,
    REDIRECT_STATUSES,
    RETRIED_STATUSES,
    STANDARD_LIFETIME,
    LockedClock,
    Reply,
    RetryWaits,
    recorded_retry_waits,
    token_verdict,
    unparseable_redirect,
)
from requests.adapters import HTTPAdapter
from support import FakeClock

from requests_falcon_auth import (
    CredentialsError,
    FalconAuth,
    FalconAuthError,
    FalconRetry,
    OAuth2,
    RateLimitError,
    RegionError,
    Token,
    TokenEndpointError,
)
from requests_falcon_auth.clouds import DEFAULT_CLOUDS, CloudTable, origin_of
from requests_falcon_auth.retry import DEFAULT_MAX_WAIT
from requests_falcon_auth.testing import FalconEmulator
from requests_falcon_auth.testing._records import RequestLogEntry

pytestmark = pytest.mark.slow

DEVICES = "/devices/queries/devices/v1"
SAMPLES = "/samples/entities/samples/v2"

# ------------------------------------------------------------------------------------------------
# 1. Soak
# ------------------------------------------------------------------------------------------------

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
        clock: LockedClock,
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
        url = f"{self.bases[target]}{path}?rid={rid}"
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
                body = rng.randbytes(rng.randint(0, 4096)) if rng.random() < 0.25 else None
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
        assert self.auth._provider.wait_for_renewal(60)  # a renewal in flight spends faults too
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
    flights, last_statuses, run = 0, set(), []
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
    clock = LockedClock()
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


# ------------------------------------------------------------------------------------------------
# 2. Fuzz: arbitrary token-endpoint answers
# ------------------------------------------------------------------------------------------------

US1 = DEFAULT_CLOUDS["us-1"]
US2 = DEFAULT_CLOUDS["us-2"]
GATEWAY = "https://gateway.example.test"
ENTRIES = {"us-1": US1, "auto": US1, "gateway": GATEWAY}
CLIENT = "fuzz-client"
# conftest.py's leak scan looks for it in every log record and FalconAuthError message.
SECRET = FUZZ_SECRET
TABLE = CloudTable()

latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=24)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _http_date(
    day: str, date: int, month: str, year: int, clock: tuple[int, int, int], zone: str
) -> str:
    return f"{day}, {date:02d} {month} {year} {clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d} {zone}"


http_dates = st.builds(
    _http_date,
    st.sampled_from(["Mon", "Sun", "Xyz"]),
    st.integers(0, 99),
    st.sampled_from(["Jan", "Dec", "Foo"]),
    st.integers(0, 300_000),
    st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)),
    st.sampled_from(["GMT", "UTC", "+0000", "-0800", "+9999", "EST", ""]),
)
# Retry-After and X-Ratelimit-Retryafter: delays, epoch seconds and milliseconds near now,
# HTTP-dates valid and not, negative, huge, float, garbage.
retry_after_values = st.one_of(
    st.integers(0, 3).map(str),
    st.integers(-(10**6), 10**6).map(str),
    st.integers(10**9, 10**40).map(str),
    st.integers(10**308, 10**400).map(str),
    st.integers(-100, 100).map(lambda d: str(int(time.time()) + d)),
    st.integers(-100, 100).map(lambda d: str(int((time.time() + d) * 1000))),
    st.integers(-100, 100).map(lambda d: formatdate(time.time() + d, usegmt=True)),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    http_dates,
    st.just("9" * 5000),
    latin1,
)
regions = st.one_of(
    st.sampled_from(["us-1", "us-2", "US2", "eu-1", "us-gov-1", "usgov1", "auto", "", " "]), latin1
)
trace_ids = st.one_of(latin1, latin1, latin1, st.just(f"trace-{FUZZ_SECRET}"))
# Falcon hosts of the table: autodiscovery follows these (and only these).
FALCON_LOCATIONS = [
    f"{US2}/oauth2/token",
    f"{DEFAULT_CLOUDS['eu-1']}/oauth2/token",
    f"{DEFAULT_CLOUDS['us-gov-1']}/oauth2/token",
    f"{US1}/oauth2/token",
    "/oauth2/token",
    "//api.us-2.crowdstrike.com/oauth2/token",
    "https://API.US-2.CROWDSTRIKE.COM/oauth2/token",
    f"{US2}/another/path",
]
OTHER_LOCATIONS = [
    f"{GATEWAY}/oauth2/token",
    "https://evil.example/oauth2/token",
    "http://api.us-2.crowdstrike.com/oauth2/token",
    "https://api.us-2.crowdstrike.com:444/oauth2/token",
    "https://api.us-2.crowdstrike.com.evil.example/oauth2/token",
    "https://api.us-2.crowdstrike.com@evil.example/oauth2/token",
    "ftp://api.us-2.crowdstrike.com/oauth2/token",
    "http://[::1",
    "https://api.us-2.crowdstrike.com:99999/oauth2/token",
    "https://api.us-2.crowdstrike.com/\xe9",
    "",
]
locations = st.one_of(
    st.sampled_from(FALCON_LOCATIONS),
    st.sampled_from(OTHER_LOCATIONS),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=24),
    latin1,
)
reply_headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Cs-Traceid": trace_ids,
        "X-Cs-Region": regions,
        "Retry-After": retry_after_values,
        "X-Ratelimit-Retryafter": retry_after_values,
        "X-Ratelimit-Limit": latin1,
        "Content-Type": st.sampled_from(["application/json", "text/html", "text/plain"]),
    },
)
token_values = st.one_of(
    st.from_regex(r"[A-Za-z0-9\-._~+/]{1,64}=*", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9\-._~+/]{1,64}=*", fullmatch=True),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16),
    st.text(max_size=8),
    st.sampled_from(["", "  ", "\t"]),
    json_values,
)
expires_values = st.one_of(
    st.integers(1, 10**6),
    st.integers(-(10**6), 0),
    st.integers(2**1023, 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6).map(str),
    st.from_regex(r"\s*[0-9]{1,8}\s*", fullmatch=True),
    st.sampled_from(
        ["\u00b2", "\u2460", "\u0661\u0662", "\uff19\uff19", "12a", "", " ", "0x10", "1e3"]
    ),
    st.just("9" * 5000),
    json_values,
)
token_documents = st.fixed_dictionaries(
    {"access_token": token_values},
    optional={
        "expires_in": expires_values,
        "token_type": st.one_of(st.just("bearer"), json_values),
        "meta": st.fixed_dictionaries({"trace_id": trace_ids}),
    },
)
envelopes = st.fixed_dictionaries(
    {
        "meta": st.fixed_dictionaries({}, optional={"trace_id": trace_ids}),
        "errors": st.lists(
            st.fixed_dictionaries(
                {
                    "code": st.integers(),
                    "message": st.one_of(
                        st.text(max_size=16), st.just(f"bad client_secret={FUZZ_SECRET}")
                    ),
                }
            ),
            max_size=2,
        ),
    }
)


def _dump(document: object, ascii_only: bool) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8")


def _truncated(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, max(len(data) - 1, 0)).map(lambda cut: data[:cut])


bodies = st.one_of(
    st.builds(_dump, token_documents, st.booleans()),
    st.builds(_dump, token_documents, st.booleans()),
    st.builds(_dump, envelopes, st.booleans()),
    st.builds(_dump, json_values, st.booleans()),
    st.builds(_dump, token_documents, st.just(True)).flatmap(_truncated),
    st.binary(max_size=48),
    st.sampled_from(
        [b"", b"\xff\xfe\x00{", b"<html>proxy</html>", b"null", b'{"access_token": "t\xe9"}']
    ),
)
# Weighted towards what Falcon (or a proxy in front of it) answers; any status otherwise.
COMMON_STATUSES = (
    *(200, 201, 201, 201, 204),
    *(301, 302, 307, 308, 308),
    *(400, 401, 403, 404, 413, 429),
    *(500, 502, 503, 504),
)
status_codes = st.one_of(st.sampled_from(COMMON_STATUSES), st.integers(100, 599))


@st.composite
def replies(
    draw: st.DrawFn,
    statuses: st.SearchStrategy[int] = status_codes,
    where: st.SearchStrategy[str] = locations,
) -> Reply:
    status = draw(statuses)
    headers = draw(reply_headers)
    if status in REDIRECT_STATUSES and draw(st.integers(0, 3)):
        headers["Location"] = draw(where)
    # Bodies of 1xx, 204 and 304 answers do not exist on the wire.
    body = b"" if status < 200 or status in (204, 304) else draw(bodies)
    return Reply(status, tuple(headers.items()), body)


good_tokens = st.builds(
    lambda token, expires_in, headers: Reply(
        201, tuple(headers.items()), _dump({"access_token": token, "expires_in": expires_in}, True)
    ),
    st.from_regex(r"[A-Za-z0-9\-._~+/]{1,64}=*", fullmatch=True),
    st.integers(1, 10**6),
    reply_headers,
)
token_replies = st.one_of(replies(), replies(), good_tokens)
# Answers the client retries (some told to wait), then anything: the retry path gets exercised.
transient_replies = replies(st.sampled_from(sorted(RETRIED_STATUSES)))
answer_lists = st.one_of(
    st.lists(token_replies, min_size=1, max_size=5),
    st.builds(
        lambda transient, then: transient + then,
        st.lists(transient_replies, min_size=1, max_size=4),
        st.lists(token_replies, min_size=1, max_size=2),
    ),
)
# Autodiscovery: a redirect, mostly to a Falcon host, then anything (another redirect too).
redirect_replies = replies(
    st.sampled_from([307, 308, 308, 308]),
    st.one_of(st.sampled_from(FALCON_LOCATIONS), st.sampled_from(FALCON_LOCATIONS), locations),
)
discovery_lists = st.builds(
    lambda redirect, then: [redirect, *then],
    redirect_replies,
    st.lists(st.one_of(token_replies, redirect_replies, transient_replies), min_size=1, max_size=3),
)
modes = st.sampled_from(["us-1", "auto", "gateway"])
scenarios = st.one_of(
    st.tuples(modes, answer_lists),
    st.tuples(st.sampled_from(["auto", "auto", "us-1"]), discovery_lists),
)
retries = st.builds(
    lambda factor, max_wait: FalconRetry(
        backoff_factor=factor, max_wait=max_wait, allowed_methods=None
    ),
    st.sampled_from([0, 0.5]),
    st.sampled_from([0, 1, 30]),
)

FUZZ_SETTINGS = settings(deadline=None, database=None)


class FakeFalcon:
    """``responses`` callbacks: every POST is a token request, answered from the queue (the last
    answer repeats once it runs out); every GET is an API call, recorded and answered 200."""

    def __init__(self, token_replies: Sequence[Reply]) -> None:
        self.token_replies = list(token_replies)
        self.served: list[tuple[str, Reply]] = []
        self.api_calls: list[tuple[str, str | None]] = []

    def token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        reply = self.token_replies[min(len(self.served), len(self.token_replies) - 1)]
        self.served.append((request.url or "", reply))
        return reply.as_callback_result()

    def api(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        self.api_calls.append((request.url or "", request.headers.get("Authorization")))
        return 200, {}, b'{"resources": []}'

    @contextmanager
    def installed(self) -> Iterator[None]:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            anything = re.compile(r".*")
            mock.add_callback(responses.POST, anything, callback=self.token, content_type=None)
            mock.add_callback(responses.GET, anything, callback=self.api, content_type=None)
            yield


def token_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def oauth2(mode: str, retry: FalconRetry | None = None, clock: FakeClock | None = None) -> OAuth2:
    where: dict[str, str] = {"base_url": GATEWAY} if mode == "gateway" else {"cloud": mode}
    return OAuth2(
        CLIENT,
        FUZZ_SECRET,
        retry=retry or FalconRetry(backoff_factor=0, allowed_methods=None),
        clock=clock or FakeClock(),
        session=token_session(),
        **where,  # type: ignore[arg-type]
    )


def falcon_auth(mode: str, retry: FalconRetry | None = None, **kwargs: object) -> FalconAuth:
    where: dict[str, str] = {"base_url": GATEWAY} if mode == "gateway" else {"cloud": mode}
    return FalconAuth(
        CLIENT,
        FUZZ_SECRET,
        member_cid="",
        retry=retry or FalconRetry(backoff_factor=0, allowed_methods=None),
        clock=FakeClock(),
        session=token_session(),
        **where,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def expected_error(status: int) -> type[FalconAuthError]:
    """The error a token answer with ``status`` must end in, when it is the last one."""
    if status in (307, 308):
        return RegionError
    if status == 429:
        return RateLimitError
    if status in (400, 401, 403):
        return CredentialsError
    return TokenEndpointError


def retryable(reply: Reply, retry: FalconRetry) -> bool:
    """What urllib3's Retry.is_retry says of this answer to a POST."""
    if reply.status in retry.status_forcelist:
        return True
    has_wait = bool(reply.header("Retry-After") or reply.header("X-Ratelimit-Retryafter"))
    return has_wait and reply.status in (413, 429, 503)


def legs_of(served: Sequence[tuple[str, Reply]]) -> list[list[tuple[str, Reply]]]:
    """The served answers split at a followed 307/308 (one that is not the last answer)."""
    legs: list[list[tuple[str, Reply]]] = [[]]
    for i, (url, reply) in enumerate(served):
        legs[-1].append((url, reply))
        if reply.status in (307, 308) and i < len(served) - 1:
            legs.append([])
    return legs


TokenOutcome = Union[Token, requests.Response, BaseException]


def run_token_scenario(
    mode: str, answers: Sequence[Reply], retry: FalconRetry, via_auth: bool
) -> tuple[FakeFalcon, TokenOutcome, RetryWaits]:
    falcon = FakeFalcon(answers)
    with falcon.installed(), recorded_retry_waits() as waits:
        try:
            if via_auth:
                with token_session() as session:
                    auth = falcon_auth(mode, retry)
                    outcome: TokenOutcome = session.get(f"{ENTRIES[mode]}{DEVICES}", auth=auth)
            else:
                outcome = oauth2(mode, retry).token()
        except Exception as exc:
            outcome = exc
    return falcon, outcome, waits


def check_token_scenario(
    mode: str, retry: FalconRetry, falcon: FakeFalcon, outcome: TokenOutcome, waits: RetryWaits
) -> None:
    served = falcon.served
    assert served, "no token request was made"
    event(f"outcome: {type(outcome).__name__}")
    event(f"token requests: {len(served)}")
    if isinstance(outcome, BaseException) and not isinstance(outcome, FalconAuthError):
        raise AssertionError(f"{type(outcome).__name__} escaped: {outcome!r}") from outcome

    # Where the credentials went: the entry point, then (autodiscovery) one Falcon host.
    entry = f"{ENTRIES[mode]}/oauth2/token"
    legs = legs_of(served)
    event(f"redirects followed: {len(legs) - 1}")
    assert len(legs) <= 2
    assert all(url == entry for url, _ in legs[0]), [url for url, _ in legs[0]]
    home = ENTRIES[mode]
    if len(legs) == 2:
        assert mode == "auto", "a 307/308 was followed without autodiscovery"
        location = legs[0][-1][1].header("Location") or ""
        target = urljoin(entry, location)
        region = TABLE.region_of(target)
        assert region is not None, f"credentials were posted to {target}, not a Falcon host"
        assert all(origin_of(url) == origin_of(target) for url, _ in legs[1])
        home = TABLE[region]

    # Retries: only retryable answers retried, at most 3 times a leg, waits within max_wait.
    for leg in legs:
        assert len(leg) <= 1 + retry.total
        assert all(retryable(reply, retry) for _, reply in leg[:-1]), [r.status for _, r in leg]
        last = leg[-1][1]
        if retryable(last, retry) and len(leg) < 1 + retry.total and last.status not in (307, 308):
            told_to_wait = last.header("Retry-After") or last.header("X-Ratelimit-Retryafter")
            assert told_to_wait or retry.backoff_factor > 0, "retries stopped early"
    assert all(wait >= 0 for wait in waits.waits)
    assert waits.total <= retry.max_wait * len(legs) + 1e-6, waits.waits

    last_url, last = served[-1]
    verdict = token_verdict(last)
    event(f"last answer: {verdict.verdict} be taken for a token")
    if isinstance(outcome, FalconAuthError):
        assert verdict.verdict != MUST, f"a valid token answer gave {outcome!r}"
        if unparseable_redirect(last, last_url):  # requests itself fails on it (B4)
            assert (type(outcome), outcome.status_code) == (TokenEndpointError, None), outcome
        else:
            assert type(outcome) is expected_error(last.status), (last.status, outcome)
            assert outcome.status_code == last.status
        if isinstance(outcome, RateLimitError):
            assert outcome.retry_after is None or outcome.retry_after >= 0
        texts = (str(outcome), repr(outcome), *outcome.errors, outcome.trace_id or "")
        assert not any(FUZZ_SECRET in text for text in texts), "the secret shows in the error"
        assert not falcon.api_calls, "the API was called although no token could be had"
        return

    assert verdict.verdict != MUST_NOT, f"a token from an answer that must be refused: {last}"
    assert verdict.lifetime is not None
    if isinstance(outcome, Token):
        assert outcome.access_token == verdict.access_token
        # Never longer than granted; a client may cap a lifetime longer than Falcon's own.
        assert min(verdict.lifetime, STANDARD_LIFETIME) <= outcome.expires_in <= verdict.lifetime
        assert outcome.base_url == home
        assert not outcome.expired(FakeClock()())
        return
    assert isinstance(outcome, requests.Response)
    assert outcome.status_code == 200
    assert len(falcon.api_calls) == 1
    url, authorization = falcon.api_calls[0]
    assert authorization == f"Bearer {verdict.access_token}", "not the token that was issued"
    assert origin_of(url) == origin_of(home), f"the token went to {url}, its home is {home}"


@settings(FUZZ_SETTINGS, max_examples=400)
@given(scenario=scenarios, retry=retries)
def test_oauth2_token_gives_a_token_or_a_falcon_auth_error(
    scenario: tuple[str, list[Reply]], retry: FalconRetry
) -> None:
    mode, answers = scenario
    falcon, outcome, waits = run_token_scenario(mode, answers, retry, via_auth=False)
    check_token_scenario(mode, retry, falcon, outcome, waits)


@settings(FUZZ_SETTINGS, max_examples=300)
@given(scenario=scenarios, retry=retries)
def test_falcon_auth_never_calls_the_api_without_the_issued_token(
    scenario: tuple[str, list[Reply]], retry: FalconRetry
) -> None:
    mode, answers = scenario
    falcon, outcome, waits = run_token_scenario(mode, answers, retry, via_auth=True)
    check_token_scenario(mode, retry, falcon, outcome, waits)


# ------------------------------------------------------------------------------------------------
# 3. Fuzz: arbitrary API answers on the 401 path
# ------------------------------------------------------------------------------------------------

OK = Reply(201)  # a marker: the token endpoint issues the next tok-<n>
LASTING = (CredentialsError, RegionError)  # remembered: no token request for a while

failing_renewals = st.builds(
    Reply,
    st.integers(100, 599).filter(lambda s: s not in RETRIED_STATUSES),
    st.fixed_dictionaries({}, optional={"X-Cs-Traceid": latin1}).map(lambda h: tuple(h.items())),
    st.sampled_from(
        [
            b"",
            b"{}",
            b"[]",
            b'{"access_token": ""}',
            b"\xff",
            b'{"access_token": "x", "expires_in": -5}',
        ]
    ),
).map(
    lambda r: Reply(
        r.status, r.headers, b"" if r.status < 200 or r.status in (204, 304) else r.body
    )
)
renewals = st.one_of(st.just(OK), st.just(OK), st.just(OK), failing_renewals)
api_answers = st.tuples(
    st.one_of(st.just(401), st.just(200), st.integers(100, 599)),
    st.one_of(st.binary(max_size=24), st.builds(_dump, envelopes, st.just(True))),
).map(lambda a: (a[0], b"" if a[0] < 200 or a[0] in (204, 304) else a[1]))


@dataclass
class UserRequest:
    body: str  # "none" (GET), "bytes", "generator" (cannot be replayed)
    first: tuple[int, bytes]
    second: tuple[int, bytes]


user_requests = st.builds(
    UserRequest, st.sampled_from(["none", "bytes", "generator"]), api_answers, api_answers
)


@dataclass
class Api401:
    """The token endpoint (tok-1, then the renewal answers, then tok-n again) and the API
    (each user request's first answer, then its second), recording every call."""

    renewals: list[Reply]
    issued: list[str] = field(default_factory=list)
    token_calls: int = 0
    api_calls: list[tuple[str | None, bytes | None]] = field(default_factory=list)
    current: UserRequest | None = None
    attempt: int = 0

    def token(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        self.token_calls += 1
        index = self.token_calls - 2
        reply = self.renewals[index] if 0 <= index < len(self.renewals) else OK
        if reply is not OK:
            return reply.as_callback_result()
        self.issued.append(f"tok-{len(self.issued) + 1}")
        body = {"access_token": self.issued[-1], "token_type": "bearer", "expires_in": 1799}
        return 201, {}, json.dumps(body).encode()

    def api(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            body = b"".join(body)  # type: ignore[arg-type]
        if isinstance(body, str):
            body = body.encode()
        self.api_calls.append((request.headers.get("Authorization"), body))
        assert self.current is not None
        status, payload = self.current.first if self.attempt == 0 else self.current.second
        self.attempt += 1
        return status, {"X-Cs-Traceid": f"api-{len(self.api_calls)}"}, payload


@dataclass
class Model:
    """What FalconAuth must do, request by request: cached token, remembered failure."""

    renewals: list[Reply]
    token_calls: int = 0
    issued: int = 0
    cached: str | None = None
    remembered: type[FalconAuthError] | None = None

    def fetch(self) -> type[FalconAuthError] | None:
        """The next token answer: caches tok-n, or returns the error it must raise."""
        self.token_calls += 1
        index = self.token_calls - 2
        reply = self.renewals[index] if 0 <= index < len(self.renewals) else OK
        if reply is OK:
            self.issued += 1
            self.cached = f"tok-{self.issued}"
            return None
        error = expected_error(reply.status)
        if error in LASTING:
            self.remembered = error
        return error


def _body_for(kind: str, index: int) -> object:
    payload = f"payload-{index}".encode()
    if kind == "bytes":
        return payload
    if kind == "generator":
        return (chunk for chunk in (payload[:4], payload[4:]))
    return None


@settings(FUZZ_SETTINGS, max_examples=300)
@given(
    requests_=st.lists(user_requests, min_size=1, max_size=4),
    renewal_answers=st.lists(renewals, max_size=4),
)
def test_the_401_path_resends_once_with_one_fresh_token(
    requests_: list[UserRequest], renewal_answers: list[Reply]
) -> None:
    fake = Api401(renewal_answers)
    model = Model(renewal_answers)
    with (
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
        token_session() as session,
    ):
        mock.add_callback(
            responses.POST, f"{US1}/oauth2/token", callback=fake.token, content_type=None
        )
        mock.add_callback(
            responses.POST, f"{US1}/oauth2/revoke", callback=lambda r: (200, {}, b"{}")
        )
        anything_else = re.compile(r"https://api\.crowdstrike\.com/(?!oauth2/).*")
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, anything_else, callback=fake.api, content_type=None)
        auth = falcon_auth("us-1")
        session.auth = auth
        for index, user in enumerate(requests_):
            fake.current, fake.attempt = user, 0
            calls_before = (model.token_calls, len(fake.api_calls))
            cache_was_empty = model.cached is None
            expected_tokens: list[str] = []
            # The model: the outcome, and the token each API call must carry.
            expect: tuple[str, object, tuple[int, ...]]
            error = None
            if model.cached is None:
                error = model.remembered or model.fetch()
            if error is not None:
                expect = ("error", error, ())
            else:
                assert model.cached is not None
                expected_tokens.append(model.cached)
                first, second = user.first[0], user.second[0]
                if first != 401 or user.body == "generator":
                    expect = ("response", first, ())
                else:
                    model.cached = None
                    error = model.fetch()
                    if error is not None:
                        expect = ("error", error, ())
                    else:
                        assert model.cached is not None
                        expected_tokens.append(model.cached)
                        expect = ("response", second, (401,))

            body = _body_for(user.body, index)
            method = "GET" if body is None else "POST"
            try:
                response = session.request(method, f"{US1}{DEVICES}?n={index}", data=body)
                got: tuple[str, object, tuple[int, ...]] = (
                    "response",
                    response.status_code,
                    tuple(r.status_code for r in response.history),
                )
            except FalconAuthError as exc:
                got = ("error", type(exc), ())
            assert got == expect, f"request {index}"
            event(f"user got: {got[0]} after {len(expected_tokens)} API calls")
            token_calls = fake.token_calls - calls_before[0]
            assert token_calls == model.token_calls - calls_before[0]
            assert token_calls <= cache_was_empty + (user.first[0] == 401)
            calls = fake.api_calls[calls_before[1] :]
            assert [a for a, _ in calls] == [f"Bearer {t}" for t in expected_tokens]
            assert len({b for _, b in calls}) <= 1, "the re-send carried another body"
        auth.close()


# ------------------------------------------------------------------------------------------------
# Regressions: the bugs the fuzz tests and the soak found at ee7da91 (fixed in 0deb77a)
# ------------------------------------------------------------------------------------------------


def _token_answer(document: dict[str, object]) -> Reply:
    return Reply(201, (), json.dumps(document).encode())


@pytest.mark.parametrize(
    "expires_in",
    ["\u00b2", "\u2460", "9" * 5000, "1799\x1f"],
    ids=["superscript-2", "circled-1", "5000-digits", "unit-separator"],
)
def test_b1_expires_in_digits_that_int_refuses(expires_in: str) -> None:
    """B1: ``str.isdigit()`` passed these, then ``int()`` raised ValueError."""
    falcon = FakeFalcon([_token_answer({"access_token": "tok", "expires_in": expires_in})])
    with falcon.installed(), pytest.raises(TokenEndpointError):
        oauth2("us-1").token()


def test_b2_expires_in_beyond_float_range() -> None:
    """B2: the token was accepted, then its expiry overflowed a float (OverflowError)."""
    falcon = FakeFalcon([_token_answer({"access_token": "tok", "expires_in": 10**400})])
    with falcon.installed(), token_session() as session:
        response = session.get(f"{US1}{DEVICES}", auth=falcon_auth("us-1"))
    assert response.status_code == 200
    assert falcon.api_calls[0][1] == "Bearer tok"


@pytest.mark.parametrize(
    ("status", "retry_after", "error"),
    [
        (429, "Mon, 01 Jan 99999 00:00:00 GMT", RateLimitError),
        (503, "Mon, 01 Jan 99999 00:00:00 GMT", TokenEndpointError),
        (429, "9" * 5000, RateLimitError),
        (429, "9" * 400, RateLimitError),  # urllib3 1.26: an int too large for a float
    ],
    ids=["429-year-99999", "503-year-99999", "429-5000-digits", "429-400-digits"],
)
def test_b3_retry_after_that_urllib3_cannot_read(
    status: int, retry_after: str, error: type[FalconAuthError]
) -> None:
    """B3: urllib3 raised ValueError (or, on 1.26, FalconRetry an OverflowError) on these."""
    falcon = FakeFalcon([Reply(status, (("Retry-After", retry_after),), b"{}")])
    with falcon.installed(), recorded_retry_waits() as waits, pytest.raises(error):
        oauth2("us-1").token()
    assert waits.total <= DEFAULT_MAX_WAIT


@pytest.mark.parametrize(
    ("operation", "mode", "status", "location"),
    [
        ("token", "auto", 308, "http://[::1"),
        ("token", "us-1", 302, f"{US1}/\xe9"),
        ("revoke", "us-1", 302, "https://api.crowdstrike.com:99999/oauth2/revoke"),
    ],
    ids=["token-308-bad-ipv6", "token-302-not-utf8", "revoke-302-bad-port"],
)
def test_b4_location_that_requests_cannot_parse(
    operation: str, mode: str, status: int, location: str
) -> None:
    """B4: requests parses a Location even with allow_redirects=False; its ValueError escaped."""
    falcon = FakeFalcon([Reply(status, (("Location", location),), b"")])
    client = oauth2(mode)
    call = client.token if operation == "token" else lambda: client.revoke("tok")
    with falcon.installed(), pytest.raises(TokenEndpointError):
        call()


@pytest.mark.parametrize(
    "value", ["tok-SECRET\r\nX-Injected: 1", "tok-SECRET-\u4e2d"], ids=["crlf", "not-latin-1"]
)
def test_b5_token_that_cannot_be_sent(value: str) -> None:
    """B5: accepted, then http.client raised ValueError("Invalid header value b'Bearer <the
    token>'") (the token in the message) or UnicodeEncodeError on the API request."""

    def handler(received: Received) -> Answer:
        if received.path == "/oauth2/token":
            return Answer(201, json.dumps({"access_token": value, "expires_in": 1799}).encode())
        return Answer(200, b"{}")

    with LoopbackServer(handler) as server, token_session() as session:
        auth = FalconAuth(
            CLIENT, FUZZ_SECRET, base_url=server.url, member_cid="", session=token_session()
        )
        with pytest.raises(TokenEndpointError) as caught:
            session.get(f"{server.url}{DEVICES}", auth=auth)
    assert "SECRET" not in str(caught.value)
    assert all(r.path.startswith("/oauth2/") for r in server.received)


def test_b6_secret_echoed_in_the_trace_id() -> None:
    """B6: the messages were redacted, the trace id not: str(error) ended "(trace id <secret>)"."""
    falcon = FakeFalcon([Reply(403, (("X-Cs-Traceid", f"t-{FUZZ_SECRET}"),), b"{}")])
    with falcon.installed(), pytest.raises(CredentialsError) as caught:
        oauth2("us-1").token()
    assert FUZZ_SECRET not in str(caught.value)


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
            pools = list(adapter.poolmanager.pools._container.values())
            checked_out = sum(pool.pool.maxsize - pool.pool.qsize() for pool in pools)
        finally:
            adapter.release_unread()  # closes a 401 left open, so a failure leaks no socket
    assert checked_out == 0, "the 401's connection was never returned to the pool"
