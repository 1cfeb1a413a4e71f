"""The emulator's rate budgets over real sockets, driven with plain requests.

What falcon-oauth2.md ("Rate limits") says Falcon does: the CID's budget on every answer to a
valid token, a 429 that refuses the request and says when a slot frees, a separate per-IP budget
for bad tokens and another for ``/oauth2/token``. Budgets are scaled down and time is moved by a
:class:`ManualClock`, so no test sleeps.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from requests_falcon_auth.testing import ApiAnswer, ApiCall, FalconEmulator, ManualClock, RateLimits

CLIENT_ID = "limits-client"
SECRET = "s3cret-limits"
NO_DATA = "/aidr/queries/agents/v1"  # catalogued, no data: Falcon's empty answer
DEVICES = "/devices/queries/devices/v1"
ENTITIES = "/devices/entities/devices/v2"
RECORDS = "/records/entities/records/v1"  # a handler's path, whose POST creates a record
RATE_LIMITED = "API rate limit exceeded."
GATEWAY = "crowdstrike-api-gateway"
# The brief's scaled budgets: small enough to exhaust in a few calls, on a two-second window.
SCALED = RateLimits(token_per_ip=4, api_per_cid=5, bad_token_per_ip=3, window=2.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def start(limits: RateLimits | bool, clock: Callable[[], float], **kwargs: Any) -> FalconEmulator:
    """A started us-1 emulator with the client ``CLIENT_ID``."""
    emulator = FalconEmulator(regions=("us-1",), rate_limits=limits, clock=clock, **kwargs)
    emulator.add_client(CLIENT_ID, SECRET)
    return emulator.start()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[FalconEmulator]:
    with start(SCALED, clock) as emulator:
        yield emulator


def post_token(
    session: requests.Session,
    emu: FalconEmulator,
    client_id: str = CLIENT_ID,
    secret: str = SECRET,
) -> requests.Response:
    form = {"client_id": client_id, "client_secret": secret}
    return session.post(emu.base_url("us-1") + "/oauth2/token", data=form)


def token_for(
    session: requests.Session, emu: FalconEmulator, client_id: str = CLIENT_ID, secret: str = SECRET
) -> str:
    response = post_token(session, emu, client_id, secret)
    assert response.status_code == 201
    return str(response.json()["access_token"])


def call(
    session: requests.Session,
    emu: FalconEmulator,
    token: str | None,
    method: str = "GET",
    path: str = NO_DATA,
    **kwargs: Any,
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return session.request(method, emu.base_url("us-1") + path, headers=headers, **kwargs)


def budget(response: requests.Response) -> tuple[str, str]:
    """The answer's ``(X-Ratelimit-Limit, X-Ratelimit-Remaining)``."""
    return response.headers["X-Ratelimit-Limit"], response.headers["X-Ratelimit-Remaining"]


def assert_rate_limited(response: requests.Response, limit: int, powered_by: str = GATEWAY) -> int:
    """A 429 in Falcon's envelope with the three headers; its Retryafter (epoch seconds)."""
    assert response.status_code == 429
    body = response.json()
    assert body["errors"] == [{"code": 429, "message": RATE_LIMITED}]
    assert body["meta"]["powered_by"] == powered_by
    assert response.headers["X-Cs-Traceid"] == body["meta"]["trace_id"]
    assert budget(response) == (str(limit), "0")
    retry_after = response.headers["X-Ratelimit-Retryafter"]
    assert retry_after.isdigit()  # whole epoch seconds, as gofalcon and PSFalcon read it
    return int(retry_after)


def epoch_second_after(delay: float, before: float, after: float) -> Callable[[int], bool]:
    """Whether a Retryafter is the epoch second ``delay`` s after a moment in [before, after]."""
    return lambda retry_after: math.ceil(before + delay) <= retry_after <= math.ceil(after + delay)


# -- the CID's budget on every answer -----------------------------------------------------------


def _raise(call: ApiCall) -> ApiAnswer:
    raise RuntimeError("handler broke")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", NO_DATA, 200),  # an operation with no data: Falcon's empty answer
        ("GET", "/no-such/v1", 404),  # an unknown path, counted like any other call
        ("POST", "/ioarules/entities/rule-groups/v1", 400),  # no body: the parameter checks
        ("GET", DEVICES, 200),
        ("HEAD", DEVICES, 200),
        ("GET", DEVICES + "?filter=hostname:x", 400),  # not FQL
        ("GET", ENTITIES + "?ids=" + "0" * 32, 404),  # no such host
        ("DELETE", DEVICES, 405),
        ("GET", "/forbidden/v1", 403),  # a handler's own error
        ("GET", "/broken/v1", 500),  # a handler that raises
    ],
)
def test_every_answer_to_a_valid_token_carries_the_cids_budget(
    emu: FalconEmulator, session: requests.Session, method: str, path: str, status: int
) -> None:
    emu.add_handler("GET", "/forbidden/v1", lambda call: ApiAnswer(403))
    emu.add_handler("GET", "/broken/v1", _raise)
    token = token_for(session, emu)
    for remaining in ("4", "3"):
        response = call(session, emu, token, method, path)
        assert response.status_code == status
        assert budget(response) == ("5", remaining)
        assert "X-Ratelimit-Retryafter" not in response.headers
    assert emu.counters.api_calls == 2


def test_the_default_budget_is_falcons_6000(session: requests.Session) -> None:
    with start(True, time.monotonic) as emulator:
        response = call(session, emulator, token_for(session, emulator))
        assert budget(response) == ("6000", "5999")


# -- past the CID's budget ----------------------------------------------------------------------


def test_past_the_budget_a_429_refuses_the_request_and_spends_nothing(
    emu: FalconEmulator, session: requests.Session, clock: ManualClock
) -> None:
    created: list[object] = []

    def create(call: ApiCall) -> ApiAnswer:
        created.append(call.json_body)
        return ApiAnswer(201, [call.json_body])

    emu.add_handler("POST", RECORDS, create)
    token = token_for(session, emu)
    for n, remaining in enumerate(("4", "3", "2", "1", "0")):
        response = call(session, emu, token, "POST", RECORDS, json={"n": n})
        assert (response.status_code, budget(response)) == (201, ("5", remaining))
    clock.advance(1.0)
    for _ in range(3):
        before = time.time()
        refused = call(session, emu, token, "POST", RECORDS, json={"n": "refused"})
        after = time.time()
        # The oldest call leaves the window 1 s from now, whatever the refused ones did.
        assert epoch_second_after(1.0, before, after)(assert_rate_limited(refused, 5))
    assert created == [{"n": n} for n in range(5)]  # not processed: nothing created
    counters = emu.counters
    assert (counters.api_calls, counters.api_ok, counters.api_429) == (8, 0, 3)
    assert [entry.status for entry in emu.request_log if entry.path == RECORDS][-3:] == [429] * 3
    clock.advance(1.0)  # the five calls left the window; refused calls would still be in it
    response = call(session, emu, token, "POST", RECORDS, json={"n": 5})
    assert (response.status_code, budget(response)) == (201, ("5", "4"))


def test_the_window_slides_and_retryafter_names_the_second_a_slot_frees(
    emu: FalconEmulator, session: requests.Session, clock: ManualClock
) -> None:
    token = token_for(session, emu)
    assert [budget(call(session, emu, token))[1] for _ in range(2)] == ["4", "3"]
    clock.advance(0.5)
    assert [budget(call(session, emu, token))[1] for _ in range(3)] == ["2", "1", "0"]
    clock.advance(0.75)
    before = time.time()
    refused = call(session, emu, token)
    after = time.time()
    # The oldest call (at 0 s) leaves the two-second window at 2 s: 0.75 s from now.
    assert epoch_second_after(0.75, before, after)(assert_rate_limited(refused, 5))
    clock.advance(0.75)  # the two calls of 0 s leave, the three of 0.5 s stay
    assert budget(call(session, emu, token)) == ("5", "1")
    assert budget(call(session, emu, token)) == ("5", "0")
    before = time.time()
    refused = call(session, emu, token)
    after = time.time()
    assert epoch_second_after(0.5, before, after)(assert_rate_limited(refused, 5))


def test_after_a_window_the_scaled_budget_is_whole_again(
    emu: FalconEmulator, session: requests.Session, clock: ManualClock
) -> None:
    token = token_for(session, emu)
    for _ in range(5):
        assert call(session, emu, token).status_code == 200
    assert_rate_limited(call(session, emu, token), 5)
    clock.advance(1.999)
    assert_rate_limited(call(session, emu, token), 5)
    clock.advance(0.001)
    assert [budget(call(session, emu, token))[1] for _ in range(5)] == ["4", "3", "2", "1", "0"]
    assert_rate_limited(call(session, emu, token), 5)


def test_retryafter_is_an_epoch_second_on_the_real_clock_too(
    session: requests.Session,
) -> None:
    with start(RateLimits(api_per_cid=1, window=60.0), time.monotonic) as emulator:
        token = token_for(session, emulator)
        assert call(session, emulator, token).status_code == 200
        before = time.time()
        refused = call(session, emulator, token)
        after = time.time()
    # The first call was made between ``before - 60`` and ``before``: at most 60 s from now.
    assert math.ceil(before) <= assert_rate_limited(refused, 1) <= math.ceil(after + 60)


def test_retryafter_is_an_epoch_second_whatever_the_manual_clock_reads(
    session: requests.Session,
) -> None:
    far = ManualClock(now=5e9)  # readings that could pass for an epoch, and wrong ones
    with start(RateLimits(api_per_cid=1, window=30.0), far) as emulator:
        token = token_for(session, emulator)
        assert call(session, emulator, token).status_code == 200
        far.advance(10.0)
        before = time.time()
        refused = call(session, emulator, token)
        after = time.time()
    assert epoch_second_after(20.0, before, after)(assert_rate_limited(refused, 1))


# -- one budget per CID ---------------------------------------------------------------------------


def test_clients_of_one_cid_share_its_budget_and_other_cids_have_their_own(
    emu: FalconEmulator, session: requests.Session
) -> None:
    emu.add_client("a", "secret-a", cid="SHARED-CID")
    emu.add_client("b", "secret-b", cid="shared-cid")  # CIDs are case-insensitive
    token_a = token_for(session, emu, "a", "secret-a")
    token_b = token_for(session, emu, "b", "secret-b")
    mine = token_for(session, emu)
    spent = [budget(call(session, emu, t))[1] for t in (token_a, token_b, token_a, token_b)]
    assert spent == ["4", "3", "2", "1"]
    assert budget(call(session, emu, mine)) == ("5", "4")  # another CID, untouched
    assert budget(call(session, emu, token_b)) == ("5", "0")
    assert_rate_limited(call(session, emu, token_a), 5)
    assert_rate_limited(call(session, emu, token_b), 5)
    assert budget(call(session, emu, mine)) == ("5", "3")  # not refused by the other CID's 429s


def test_a_burst_of_threads_gets_exactly_the_budget(clock: ManualClock) -> None:
    limits = RateLimits(api_per_cid=60, window=6.0)
    with start(limits, clock) as emulator, requests.Session() as s:
        emulator.add_client("twin", "secret-twin", cid=emulator.clients[0].cid)
        tokens = [token_for(s, emulator), token_for(s, emulator, "twin", "secret-twin")]
        barrier = threading.Barrier(80)
        answers: list[tuple[int, str]] = []

        def work(token: str) -> None:
            with requests.Session() as own:
                barrier.wait()
                response = call(own, emulator, token)
                answers.append((response.status_code, response.headers["X-Ratelimit-Remaining"]))

        workers = [threading.Thread(target=work, args=(tokens[i % 2],)) for i in range(80)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert sorted(r for status, r in answers if status == 200) == sorted(map(str, range(60)))
        assert [r for status, r in answers if status == 429] == ["0"] * 20
        counters = emulator.counters
        assert (counters.api_ok, counters.api_429) == (60, 20)


# -- the bad-token budget -----------------------------------------------------------------------


def _missing(session: requests.Session, emu: FalconEmulator, clock: ManualClock) -> str | None:
    return None


def _malformed(session: requests.Session, emu: FalconEmulator, clock: ManualClock) -> str | None:
    return "not-a-token"


def _expired(session: requests.Session, emu: FalconEmulator, clock: ManualClock) -> str | None:
    token = token_for(session, emu)
    clock.advance(1799)  # the token's lifetime; the windows have long slid past it
    return token


def _revoked(session: requests.Session, emu: FalconEmulator, clock: ManualClock) -> str | None:
    token = token_for(session, emu)
    emu.invalidate_all_tokens()
    return token


@pytest.mark.parametrize("bad_token", [_missing, _malformed, _expired, _revoked])
def test_bad_tokens_spend_their_own_per_ip_budget(
    emu: FalconEmulator,
    session: requests.Session,
    clock: ManualClock,
    bad_token: Callable[[requests.Session, FalconEmulator, ManualClock], str | None],
) -> None:
    token = bad_token(session, emu, clock)
    for remaining in ("2", "1", "0"):
        response = call(session, emu, token)
        assert (response.status_code, budget(response)) == (401, ("3", remaining))
    assert_rate_limited(call(session, emu, token), 3)
    assert emu.counters.api_429 == 1


def test_valid_tokens_never_spend_nor_meet_the_bad_token_budget(
    emu: FalconEmulator, session: requests.Session
) -> None:
    token = token_for(session, emu)
    assert budget(call(session, emu, None)) == ("3", "2")
    for remaining in ("4", "3", "2", "1", "0"):
        assert budget(call(session, emu, token)) == ("5", remaining)
    assert_rate_limited(call(session, emu, token), 5)  # the CID's 429 ...
    response = call(session, emu, None)
    assert (response.status_code, budget(response)) == (401, ("3", "1"))  # ... spent none of it
    assert budget(call(session, emu, None)) == ("3", "0")
    assert_rate_limited(call(session, emu, None), 3)


def test_a_valid_token_passes_when_the_bad_token_budget_is_spent(
    emu: FalconEmulator, session: requests.Session
) -> None:
    for _ in range(3):
        assert call(session, emu, "lapsed").status_code == 401
    assert_rate_limited(call(session, emu, "lapsed"), 3)
    # The re-send with a fresh token goes through (falcon-oauth2.md: the XSOAR integration).
    response = call(session, emu, token_for(session, emu))
    assert (response.status_code, budget(response)) == (200, ("5", "4"))


# -- the token endpoint's budget ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "secret", "status"),
    [(CLIENT_ID, "wrong", 403), ("nobody", SECRET, 400), (CLIENT_ID, "", 400)],
)
def test_failed_token_requests_spend_the_token_budget(
    emu: FalconEmulator,
    session: requests.Session,
    clock: ManualClock,
    client_id: str,
    secret: str,
    status: int,
) -> None:
    for remaining in ("3", "2", "1"):
        response = post_token(session, emu, client_id, secret)
        assert (response.status_code, budget(response)) == (status, ("4", remaining))
    assert budget(post_token(session, emu)) == ("4", "0")
    clock.advance(0.5)
    before = time.time()
    refused = post_token(session, emu)  # good credentials, no budget
    after = time.time()
    assert epoch_second_after(1.5, before, after)(assert_rate_limited(refused, 4, "csam"))
    assert "access_token" not in refused.json()
    counters = emu.counters
    assert (counters.tokens_issued, counters.token_outcomes["rate_limited"]) == (1, 1)
    clock.advance(1.5)
    response = post_token(session, emu)
    assert (response.status_code, budget(response)) == (201, ("4", "3"))


def test_the_default_token_budget_is_300_a_minute_per_ip(session: requests.Session) -> None:
    with start(True, time.monotonic) as emulator:
        for _ in range(299):
            assert post_token(session, emulator, secret="wrong").status_code == 403
        assert budget(post_token(session, emulator)) == ("300", "0")
        before = time.time()
        refused = post_token(session, emulator)
        retry_after = assert_rate_limited(refused, 300, "csam")
    assert math.ceil(before) <= retry_after <= math.ceil(time.time() + 60)


class _FromAddress(HTTPAdapter):
    """Connects from a chosen loopback address (Linux routes all of 127/8 to loopback)."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def test_per_ip_budgets_are_per_source_ip(emu: FalconEmulator, session: requests.Session) -> None:
    for _ in range(4):
        post_token(session, emu, secret="wrong")
    for _ in range(3):
        call(session, emu, None)
    assert_rate_limited(post_token(session, emu), 4, "csam")
    assert_rate_limited(call(session, emu, None), 3)
    with requests.Session() as elsewhere:
        elsewhere.mount("http://", _FromAddress("127.0.0.2"))
        assert budget(post_token(elsewhere, emu, secret="wrong")) == ("4", "3")
        assert budget(call(elsewhere, emu, None)) == ("3", "2")
    assert {entry.client_ip for entry in emu.request_log} == {"127.0.0.1", "127.0.0.2"}


@pytest.mark.parametrize("window", [math.inf, math.nan, 0, -1.0])
def test_a_window_must_be_a_finite_positive_duration(window: float) -> None:
    # An endless window once reached the first 429 and crashed its connection: no epoch
    # second is infinitely far.
    with pytest.raises(ValueError, match=r"RateLimits\.window"):
        RateLimits(window=window)


def test_an_injected_retry_after_must_be_finite(emu: FalconEmulator) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        emu.fail_token_requests(1, status=429, retry_after=math.inf)
