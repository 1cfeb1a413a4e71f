"""What a failed token or revoke call tells its user, from the failure alone: no server, no
retry loop (the loop's own tests in test_oauth2.py check that it raises these)."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from requests_falcon_auth._diagnosis import (
    REVOCATION,
    TOKEN_REQUEST,
    TryLimits,
    Unreachable,
    causes,
    could_not_reach,
    credentials_advice,
    failure,
    foreign_cloud,
    foreign_redirect,
    out_of_time,
    refusal,
    unreachable,
)
from requests_falcon_auth._exchange import Answer, DeadlineExceeded
from requests_falcon_auth._redaction import REDACTED, Redactor
from requests_falcon_auth.errors import (
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    TokenEndpointError,
)

SECRET = "s3cr3t-value-never-shown"
US1 = "https://api.crowdstrike.com"
REDACT = Redactor([SECRET])
# The defaults, (connect, read) = (10, 30), with the whole call's 190 s still ahead.
DEFAULT_LIMITS = TryLimits(connect=10.0, read=30.0, left=190.0, budget=190.0)
# A revoke at close: one try under a 5 s budget.
CLOSE_LIMITS = TryLimits(connect=10.0, read=30.0, left=5.0, budget=5.0)


def refused_with(status: int, message: str, trace: str = "tr-1") -> Answer:
    body = {"meta": {"trace_id": trace}, "errors": [{"code": status, "message": message}]}
    headers = {"X-Cs-Traceid": trace, "Content-Type": "application/json"}
    return Answer(f"{US1}/oauth2/token", status, headers, json.dumps(body).encode(), False)


def diagnose(
    answer: Answer,
    operation: str = TOKEN_REQUEST,
    *,
    autodiscover: bool = True,
    retry_after: float | None = None,
) -> FalconAuthError:
    return refusal(
        answer,
        operation,
        REDACT,
        region="us-1",
        autodiscover=autodiscover,
        retry_after=retry_after,
    )


def test_a_403_is_a_credentials_error_that_suspects_the_secret() -> None:
    error = diagnose(refused_with(403, "Failed to issue access token - Not Authorized"))
    assert type(error) is CredentialsError
    assert str(error) == (
        "Falcon refused the token request (403: Failed to issue access token - Not Authorized). "
        "Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET). (trace id tr-1)"
    )
    assert (error.status_code, error.trace_id, error.region) == (403, "tr-1", "us-1")
    assert error.errors == ("Failed to issue access token - Not Authorized",)


@pytest.mark.parametrize(
    ("said", "operation", "autodiscover", "advice"),
    [
        ("access denied", TOKEN_REQUEST, True, "Check the client id and secret"),
        ("access denied, authorization failed", TOKEN_REQUEST, True, "its IP allow-list"),
        ("access denied, authorization failed", REVOCATION, True, "Check the client id and secret"),
        ("for customer ID=child", TOKEN_REQUEST, True, "Check the member CID"),
        ("for clientID=client-a", TOKEN_REQUEST, True, "GovCloud credentials"),
        ("for clientID=client-a", TOKEN_REQUEST, False, "that it belongs to this cloud"),
    ],
)
def test_credentials_advice_follows_what_falcon_said(
    said: str, operation: str, autodiscover: bool, advice: str
) -> None:
    assert advice in credentials_advice(said, operation, autodiscover=autodiscover)


def test_govcloud_is_not_suggested_when_the_cloud_was_named() -> None:
    assert "GovCloud" not in credentials_advice("clientID=x", TOKEN_REQUEST, autodiscover=False)


@pytest.mark.parametrize(
    ("retry_after", "wait"), [(5.0, "wait 5 s before asking again"), (None, "wait a minute")]
)
def test_a_429_is_a_rate_limit_error_with_the_wait(retry_after: float | None, wait: str) -> None:
    error = diagnose(refused_with(429, "API rate limit exceeded."), retry_after=retry_after)
    assert type(error) is RateLimitError
    assert error.retry_after == retry_after
    assert wait in str(error)


@pytest.mark.parametrize(
    ("status", "message", "advice"),
    [
        (400, "client_id and client_secret are required", "did not arrive whole"),
        (500, "Failed to issue token", "a failure on CrowdStrike's side"),
        (418, "teapot", "Unexpected answer from the token endpoint."),
    ],
)
def test_other_refusals_are_token_endpoint_errors(status: int, message: str, advice: str) -> None:
    error = diagnose(refused_with(status, message))
    assert type(error) is TokenEndpointError
    assert f"({status}: {message})." in str(error)
    assert advice in str(error)


def test_an_answer_without_messages_is_named_by_its_status() -> None:
    answer = Answer(f"{US1}/oauth2/token", 502, {}, b"<html>Bad Gateway</html>", False)
    error = diagnose(answer)
    assert str(error).startswith("Falcon refused the token request (502: HTTP 502).")
    assert (error.errors, error.trace_id) == ((), None)


def test_the_servers_words_are_redacted_and_the_librarys_are_not() -> None:
    """A placeholder secret ``e`` leaves the advice whole, and is removed where the server
    echoed it standing alone."""
    answer = refused_with(403, "bad secret e", trace="e")
    error = refusal(
        answer, TOKEN_REQUEST, Redactor(["e"]), region=None, autodiscover=True, retry_after=None
    )
    assert error.errors == (f"bad secret {REDACTED}",)
    assert error.trace_id == REDACTED
    assert "Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET)." in str(error)


def test_a_failure_without_an_answer_carries_only_its_region() -> None:
    error = failure(TokenEndpointError, "no luck", None, REDACT, region="eu-1")
    assert (error.message, error.status_code, error.errors, error.region) == (
        "no luck",
        None,
        (),
        "eu-1",
    )


def test_a_connect_timeout_names_the_host_and_the_setting() -> None:
    cause = unreachable(requests.ConnectTimeout("timed out"), US1, DEFAULT_LIMITS, REDACT)
    assert cause == Unreachable(
        "no connection to api.crowdstrike.com:443 within 10 s",
        "A firewall may be dropping the traffic: check the network and proxy settings, "
        "or raise timeout=.",
    )
    assert could_not_reach(TOKEN_REQUEST, US1, cause) == (
        f"Could not reach the Falcon token request endpoint at {US1}: no connection to "
        "api.crowdstrike.com:443 within 10 s. A firewall may be dropping the traffic: check the "
        "network and proxy settings, or raise timeout=."
    )


@pytest.mark.parametrize(
    ("error", "limits", "within", "raise_timeout"),
    [
        (requests.ReadTimeout("slow"), DEFAULT_LIMITS, "within 30 s", True),
        (DeadlineExceeded(), DEFAULT_LIMITS, "within 40 s", True),  # the whole try: 10 + 30
        (requests.ReadTimeout("slow"), CLOSE_LIMITS, "within the call's budget of 5 s", False),
        (DeadlineExceeded(), CLOSE_LIMITS, "within the call's budget of 5 s", False),
    ],
)
def test_a_silent_server_names_the_bound_that_ran_out(
    error: Exception, limits: TryLimits, within: str, raise_timeout: bool
) -> None:
    """The budget when what was left of it was less than the timeout: raising timeout= would
    not have helped."""
    cause = unreachable(error, US1, limits, REDACT)
    assert cause.what == (
        f"api.crowdstrike.com:443 accepted the connection but sent no complete answer {within}"
    )
    assert cause.advice.startswith("The service or a proxy in between is stalling")
    assert ("raise timeout=" in cause.advice) is raise_timeout


def test_a_connect_cut_short_by_the_budget_names_the_budget() -> None:
    cause = unreachable(requests.ConnectTimeout("timed out"), US1, CLOSE_LIMITS, REDACT)
    assert cause.what == "no connection to api.crowdstrike.com:443 within the call's budget of 5 s"
    assert "raise timeout=" not in cause.advice


def wrapped(reason: BaseException) -> requests.ConnectionError:
    """As requests raises it: a ConnectionError around urllib3's MaxRetryError and its reason."""
    return requests.ConnectionError(MaxRetryError(None, "/oauth2/token", reason))  # type: ignore[arg-type]


def test_a_name_that_does_not_resolve_is_named() -> None:
    dns = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    cause = unreachable(wrapped(dns), "https://nonexistent.invalid", DEFAULT_LIMITS, REDACT)
    assert cause.what == "the host name nonexistent.invalid does not resolve (DNS)"


def test_a_refused_connection_is_named() -> None:
    refused = NewConnectionError(None, "refused")  # type: ignore[arg-type]
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    cause = unreachable(wrapped(refused), "http://127.0.0.1:9", DEFAULT_LIMITS, REDACT)
    assert cause.what == "127.0.0.1:9 refused the connection"


def test_a_failed_connection_is_not_taken_for_a_timeout() -> None:
    """urllib3 2 makes NewConnectionError a ConnectTimeoutError, though nothing timed out."""
    failed = NewConnectionError(None, "failed")  # type: ignore[arg-type]
    failed.__cause__ = OSError(101, "Network is unreachable")
    cause = unreachable(wrapped(failed), US1, DEFAULT_LIMITS, REDACT)
    assert cause.what == "the connection failed (Network is unreachable, OSError)"


def test_a_proxy_failure_never_quotes_the_proxy_url() -> None:
    error = requests.exceptions.ProxyError("http://user:pw@proxy.example:3128")
    cause = unreachable(error, US1, DEFAULT_LIMITS, REDACT)
    assert cause.what == "the proxy refused or dropped the connection"
    assert "pw" not in f"{cause.what} {cause.advice}"


def test_anything_else_is_named_by_its_type_and_the_oss_words() -> None:
    cause = unreachable(wrapped(BrokenPipeError(32, "Broken pipe")), US1, DEFAULT_LIMITS, REDACT)
    assert cause.what == "the connection failed (Broken pipe, BrokenPipeError)"


def test_a_secret_in_the_url_is_redacted_from_the_host() -> None:
    url = f"https://{SECRET}.example"
    cause = unreachable(requests.ConnectTimeout("x"), url, DEFAULT_LIMITS, REDACT)
    assert SECRET not in cause.what
    assert f"no connection to {REDACTED}.example:443" in cause.what


def test_the_cause_chain_is_bounded_and_survives_cycles() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert causes(first) == [first, second]
    deep: BaseException = OSError("bottom")
    for _ in range(50):
        deep = RuntimeError(deep)
    assert len(causes(deep)) == 20


def test_a_call_out_of_time_names_its_budget() -> None:
    assert out_of_time(REVOCATION, US1, 0.5) == (
        f"The Falcon token revocation to {US1} did not finish within 0.5 s (timeouts and "
        "retries included). Check the network and proxy, or raise timeout=."
    )
    cause = Unreachable("the connection failed (ConnectionError)", "Check the network.")
    assert could_not_reach(REVOCATION, US1, cause, budget=5.0).startswith(
        f"Could not reach the Falcon token revocation endpoint at {US1} within 5 s: "
    )


def test_a_redirect_to_another_cloud_says_which_setting_to_use() -> None:
    named = foreign_cloud("us-2", None, US1, REDACT)
    assert named == (
        f"These credentials belong to Falcon cloud us-2, not {US1}. Set cloud='us-2' "
        "(or FALCON_CLOUD=us-2)."
    )
    unnamed = foreign_cloud(None, f"https://{SECRET}.example/oauth2/token", US1, REDACT)
    assert unnamed.startswith(f"These credentials belong to Falcon cloud {REDACTED}.example,")
    assert foreign_redirect(None, REDACT).startswith(
        "Falcon's token endpoint redirected to an unknown host, which is not a Falcon host"
    )
