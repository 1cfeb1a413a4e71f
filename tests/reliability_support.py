"""Helpers of the reliability suite: retry waits recorded instead of slept, token-endpoint
answers as values, the oracle of what a client must make of them, and the fuzzing of the token
endpoint (Hypothesis strategies of its answers and the checks; the fake that serves them is
``fakes.ScriptedFalcon``)."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from types import SimpleNamespace
from typing import Union
from unittest import mock
from urllib.parse import urljoin

import requests
import urllib3.util.retry
from fakes import Reply, ScriptedFalcon
from hypothesis import event, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

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
from requests_falcon_auth.testing import ManualClock


class RetryWaits:
    """The waits urllib3's Retry asked for, recorded instead of slept (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)

    @property
    def total(self) -> float:
        with self._lock:
            return sum(self.waits)

    def __len__(self) -> int:
        with self._lock:
            return len(self.waits)


@contextmanager
def recorded_retry_waits() -> Iterator[RetryWaits]:
    """Replaces ``time`` in ``urllib3.util.retry`` only: its sleeps are recorded, not slept.

    Retry-After and X-Ratelimit-Retryafter are honoured through ``Retry.sleep``; patching the
    module's reference (not ``time.sleep`` itself) leaves every other thread's sleeps alone.
    """
    waits = RetryWaits()
    fake_time = SimpleNamespace(time=time.time, monotonic=time.monotonic, sleep=waits.sleep)
    with mock.patch.object(urllib3.util.retry, "time", fake_time):
        yield waits


# -- what a token the library hands out must be ------------------------------------------------


def sendable(value: str) -> bool:
    """True when ``value`` can go in a header field (RFC 9110 5.5: VCHAR, SP, HTAB, obs-text)."""
    return all(c in " \t" or 0x21 <= ord(c) <= 0x7E or 0x80 <= ord(c) <= 0xFF for c in value)


MUST, MAY, MUST_NOT = "must", "may", "must not"
# RFC 6750 2.1 b64token: what Falcon's tokens (JWTs) are made of.
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
STANDARD_LIFETIME = 1799  # what Falcon grants


@dataclass(frozen=True)
class TokenVerdict:
    """Whether a client must, may or must not take an answer for a token, and which one.

    A client must take a 2xx JSON answer whose access_token is a b64token and whose expires_in
    is a positive int; it must not take one without a sendable, non-blank access_token or a
    numeric lifetime; in between (strings of digits, floats, tokens outside b64token, lifetimes
    past 10^9 s) it may do either. ``lifetime`` is as granted: a client may shorten a long one.
    """

    verdict: str
    access_token: str | None = None
    lifetime: int | None = None


def _lifetime(expires_in: object) -> tuple[int | None, bool]:
    """(the lifetime ``expires_in`` can mean, whether a client must read it so)."""
    if isinstance(expires_in, bool):
        return None, True
    if isinstance(expires_in, int):
        return (expires_in, expires_in <= 10**9) if expires_in > 0 else (None, True)
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        try:
            value = int(expires_in.strip())
        except ValueError:
            return None, True
        return (value, False) if value > 0 else (None, True)
    if isinstance(expires_in, float) and math.isfinite(expires_in) and expires_in >= 1:
        return int(expires_in), False
    return None, True


def token_verdict(reply: Reply) -> TokenVerdict:
    """What a correct client does with ``reply`` when it is the token endpoint's last answer."""
    if not 200 <= reply.status < 300:
        return TokenVerdict(MUST_NOT)
    document = reply.document()
    if not isinstance(document, dict):
        return TokenVerdict(MUST_NOT)
    value = document.get("access_token")
    if not isinstance(value, str) or not value.strip() or not sendable(value):
        return TokenVerdict(MUST_NOT)
    lifetime, firm = _lifetime(document.get("expires_in", STANDARD_LIFETIME))
    if lifetime is None:
        return TokenVerdict(MUST_NOT)
    verdict = MUST if firm and B64TOKEN.fullmatch(value) else MAY
    return TokenVerdict(verdict, value, lifetime)


# -- answers of note -------------------------------------------------------------------------------

RETRIED_STATUSES = frozenset({413, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The client secret of the fuzz tests: answers echo it to check that it is redacted.
FUZZ_SECRET = "fuzz-secret-Zq8v1"


def unparseable_redirect(reply: Reply, url: str) -> bool:
    """A 3xx whose Location requests cannot parse (bad IPv6 literal, bad port, not UTF-8):
    ``Session.send`` raises ValueError on it even with allow_redirects=False (bug B4)."""
    location = reply.header("Location")
    if reply.status not in REDIRECT_STATUSES or location is None:
        return False
    prepared = requests.Request("POST", url, data={"a": "b"}).prepare()
    response = requests.Response()
    response.status_code = reply.status
    response.headers = CaseInsensitiveDict(dict(reply.headers))
    response.url = url
    response.request = prepared
    response._content = b""
    response._content_consumed = True
    session = requests.Session()
    session.trust_env = False
    try:
        next(session.resolve_redirects(response, prepared, yield_requests=True))
    except (StopIteration, requests.RequestException):
        return False
    except Exception:
        return True
    finally:
        session.close()
    return False


# -- fuzzing the token endpoint: strategies, the fake Falcon, the oracle ----------------------

DEVICES = "/devices/queries/devices/v1"
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


def dump_json(document: object, ascii_only: bool) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8")


def _truncated(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, max(len(data) - 1, 0)).map(lambda cut: data[:cut])


bodies = st.one_of(
    st.builds(dump_json, token_documents, st.booleans()),
    st.builds(dump_json, token_documents, st.booleans()),
    st.builds(dump_json, envelopes, st.booleans()),
    st.builds(dump_json, json_values, st.booleans()),
    st.builds(dump_json, token_documents, st.just(True)).flatmap(_truncated),
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
        201,
        tuple(headers.items()),
        dump_json({"access_token": token, "expires_in": expires_in}, True),
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


def token_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def oauth2(mode: str, retry: FalconRetry | None = None, clock: ManualClock | None = None) -> OAuth2:
    where: dict[str, str] = {"base_url": GATEWAY} if mode == "gateway" else {"cloud": mode}
    return OAuth2(
        CLIENT,
        FUZZ_SECRET,
        retry=retry or FalconRetry(backoff_factor=0, allowed_methods=None),
        clock=clock or ManualClock(),
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
        clock=ManualClock(),
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
) -> tuple[ScriptedFalcon, TokenOutcome, RetryWaits]:
    falcon = ScriptedFalcon(answers)
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
    mode: str, answers: Sequence[Reply], retry: FalconRetry, via_auth: bool
) -> None:
    """Runs the scenario (see ``run_token_scenario``) and checks what came of it: where the
    credentials went, which answers were retried and how long for, and the outcome against
    the oracle."""
    falcon, outcome, waits = run_token_scenario(mode, answers, retry, via_auth)
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
    tries = retry.total
    assert isinstance(tries, int), tries
    for leg in legs:
        assert len(leg) <= 1 + tries
        assert all(retryable(reply, retry) for _, reply in leg[:-1]), [r.status for _, r in leg]
        last = leg[-1][1]
        if retryable(last, retry) and len(leg) < 1 + tries and last.status not in (307, 308):
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
        assert not outcome.expired(ManualClock()())
        return
    assert isinstance(outcome, requests.Response)
    assert outcome.status_code == 200
    assert len(falcon.api_calls) == 1
    url, authorization = falcon.api_calls[0]
    assert authorization == f"Bearer {verdict.access_token}", "not the token that was issued"
    assert origin_of(url) == origin_of(home), f"the token went to {url}, its home is {home}"
