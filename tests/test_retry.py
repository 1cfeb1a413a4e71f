from __future__ import annotations

import time

import pytest
from urllib3 import HTTPResponse
from urllib3.exceptions import MaxRetryError

from requests_falcon_auth.retry import FalconRetry, parse_ratelimit_retryafter

NOW = 1_780_000_000.0


def answer(status: int, **headers: str) -> HTTPResponse:
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (str(int(NOW + 30)), 30.0),  # epoch seconds (what the SDKs read)
        (str(int((NOW + 30) * 1000)), 30.0),  # epoch milliseconds (what the swagger says)
        (str(int(NOW - 5)), 0.0),  # already past
        ("12", 12.0),  # a plain delay
        (f" {int(NOW + 1)} ", 1.0),
    ],
)
def test_ratelimit_retryafter_in_every_form(value: str, seconds: float) -> None:
    assert parse_ratelimit_retryafter(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "soon", "-1", "nan", "inf", "1e400"])
def test_ratelimit_retryafter_junk_is_ignored(value: str) -> None:
    assert parse_ratelimit_retryafter(value, now=NOW) is None


def test_new_keeps_the_extra_fields() -> None:
    retry = FalconRetry(max_wait=7.0, waited=2.0)
    copy = retry.new(total=1)
    assert (copy.max_wait, copy.waited, copy.total) == (7.0, 2.0, 1)


def test_defaults_retry_429_and_5xx_and_return_the_last_answer() -> None:
    retry = FalconRetry()
    assert retry.total == 3
    assert not retry.raise_on_status
    for status in (429, 500, 502, 503, 504):
        assert retry.is_retry("GET", status)
    assert not retry.is_retry("GET", 401)
    assert not retry.is_retry("GET", 403)
    # POST is the caller's decision: the token calls opt in with allowed_methods=None.
    assert not retry.is_retry("POST", 500)
    assert FalconRetry(allowed_methods=None).is_retry("POST", 500)


def test_falcon_header_is_preferred_over_retry_after() -> None:
    retry = FalconRetry()
    response = answer(
        429, **{"X-Ratelimit-Retryafter": str(int(time.time()) + 20), "Retry-After": "3"}
    )
    assert 18 <= retry.get_retry_after(response) <= 20  # type: ignore[operator]


def test_retry_after_header_is_used_when_falcon_header_is_junk() -> None:
    retry = FalconRetry()
    response = answer(503, **{"X-Ratelimit-Retryafter": "junk", "Retry-After": "4"})
    assert retry.get_retry_after(response) == 4


def test_junk_retry_after_falls_back_to_backoff() -> None:
    retry = FalconRetry()
    assert retry.get_retry_after(answer(503, **{"Retry-After": "whenever"})) is None


def test_increment_accumulates_planned_waits() -> None:
    retry = FalconRetry(total=5, max_wait=100.0)
    retry = retry.increment("POST", "/oauth2/token", response=answer(429, **{"Retry-After": "10"}))
    retry = retry.increment("POST", "/oauth2/token", response=answer(429, **{"Retry-After": "15"}))
    assert retry.waited == 25
    assert retry.total == 3


def test_a_wait_beyond_max_wait_ends_the_retries() -> None:
    retry = FalconRetry(total=5, max_wait=30.0)
    retry = retry.increment("POST", "/t", response=answer(429, **{"Retry-After": "20"}))
    with pytest.raises(MaxRetryError):
        retry.increment("POST", "/t", response=answer(429, **{"Retry-After": "20"}))


def test_backoff_is_bounded_and_counted() -> None:
    retry = FalconRetry(total=10, backoff_factor=1.0, max_wait=5.0)
    waits = []
    for _ in range(3):  # backoff 0 (first retry), 2, 4 seconds would be 6 > 5
        try:
            retry = retry.increment("GET", "/x", response=answer(500))
        except MaxRetryError:
            break
        waits.append(retry.waited)
    assert waits == [0.0, 2.0]


def test_sleep_uses_the_falcon_header(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    retry = FalconRetry()
    retry.sleep(answer(429, **{"X-Ratelimit-Retryafter": "7"}))
    assert slept == [7.0]
