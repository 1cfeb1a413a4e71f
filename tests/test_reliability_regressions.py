"""Reliability (issue 5), regressions: the bugs the fuzz tests and the soak found at ee7da91,
fixed in 0deb77a, keep a test each: B1-B6 here, B7 (in the soak's world) in
test_reliability_soak.py."""

from __future__ import annotations

import json

import pytest
from fakes import Reply, ScriptedFalcon
from loopback import Answer, LoopbackServer, Received
from reliability_support import (
    CLIENT,
    DEVICES,
    FUZZ_SECRET,
    US1,
    falcon_auth,
    oauth2,
    recorded_retry_waits,
    token_session,
)

from requests_falcon_auth import (
    CredentialsError,
    FalconAuth,
    FalconAuthError,
    RateLimitError,
    TokenEndpointError,
)
from requests_falcon_auth.retry import DEFAULT_MAX_WAIT

pytestmark = pytest.mark.slow


def _token_answer(document: dict[str, object]) -> Reply:
    return Reply(201, (), json.dumps(document).encode())


@pytest.mark.parametrize(
    "expires_in",
    ["\u00b2", "\u2460", "9" * 5000, "1799\x1f"],
    ids=["superscript-2", "circled-1", "5000-digits", "unit-separator"],
)
def test_b1_expires_in_digits_that_int_refuses(expires_in: str) -> None:
    """B1: ``str.isdigit()`` passed these, then ``int()`` raised ValueError."""
    falcon = ScriptedFalcon([_token_answer({"access_token": "tok", "expires_in": expires_in})])
    with falcon.installed(), pytest.raises(TokenEndpointError):
        oauth2("us-1").token()


def test_b2_expires_in_beyond_float_range() -> None:
    """B2: the token was accepted, then its expiry overflowed a float (OverflowError)."""
    falcon = ScriptedFalcon([_token_answer({"access_token": "tok", "expires_in": 10**400})])
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
    falcon = ScriptedFalcon([Reply(status, (("Retry-After", retry_after),), b"{}")])
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
    falcon = ScriptedFalcon([Reply(status, (("Location", location),), b"")])
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
    falcon = ScriptedFalcon([Reply(403, (("X-Cs-Traceid", f"t-{FUZZ_SECRET}"),), b"{}")])
    with falcon.installed(), pytest.raises(CredentialsError) as caught:
        oauth2("us-1").token()
    assert FUZZ_SECRET not in str(caught.value)
