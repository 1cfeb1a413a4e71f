"""Helpers of the reliability suite: a thread-safe fake clock, retry waits recorded instead of
slept, token-endpoint answers as values, and the oracle of what a client must make of them."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from unittest import mock

import requests
import urllib3.util.retry
from requests.structures import CaseInsensitiveDict


class LockedClock:
    """A fake monotonic clock that many threads read and advance."""

    def __init__(self, now: float = 1000.0) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now


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


@dataclass(frozen=True)
class Reply:
    """One answer of a mocked endpoint: status, headers (latin-1 text, as on the wire), body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def document(self) -> object:
        """The body as JSON, as the library reads it (UTF-8), or None."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def as_callback_result(self) -> tuple[int, dict[str, str], bytes]:
        return self.status, dict(self.headers), self.body


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
