"""Wire format of the two operations, with ``responses`` standing in for Falcon."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import requests
import responses
from hostile import HostileServer, Received, answer

from requests_falcon_auth import (
    ConfigurationError,
    CredentialsError,
    FalconAuth,
    FalconRetry,
    OAuth2,
    RateLimitError,
    RegionError,
    Token,
    TokenEndpointError,
    __version__,
)
from requests_falcon_auth._ratelimit import RateBudget
from requests_falcon_auth.cache import MemoryTokenCache
from requests_falcon_auth.testing import ManualClock

US1 = "https://api.crowdstrike.com"
US2 = "https://api.us-2.crowdstrike.com"
GOV = "https://api.laggar.gcw.crowdstrike.com"
SECRET = "s3cr3t-value-never-shown"


def token_json(value: str = "tok-1", expires_in: object = 1799) -> dict[str, object]:
    return {"access_token": value, "token_type": "bearer", "expires_in": expires_in}


def envelope(code: int, message: str, trace: str = "trace-1") -> dict[str, object]:
    return {"meta": {"trace_id": trace}, "errors": [{"code": code, "message": message}]}


@pytest.fixture
def falcon() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client(**kwargs: object) -> OAuth2:
    kwargs.setdefault("retry", FalconRetry(backoff_factor=0, allowed_methods=None))
    return OAuth2("client-a", SECRET, **kwargs)  # type: ignore[arg-type]


def header(request: requests.PreparedRequest, name: str) -> str:
    value = request.headers[name]
    assert isinstance(value, str), value
    return value


def form_of(call: responses.Call) -> dict[str, list[str]]:
    body = call.request.body
    assert isinstance(body, str)
    return parse_qs(body)


def test_token_request_wire_format(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    token = client(member_cid="child-1").token()
    request = falcon.calls[0].request
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert header(request, "User-Agent").startswith(f"requests-falcon-auth/{__version__} ")
    assert "Authorization" not in request.headers
    assert form_of(falcon.calls[0]) == {
        "client_id": ["client-a"],
        "client_secret": [SECRET],
        "member_cid": ["child-1"],
    }
    assert token.access_token == "tok-1"
    assert (token.token_type, token.expires_in, token.region, token.base_url) == (
        "bearer",
        1799,
        "us-1",
        US1,
    )


def test_member_cid_is_omitted_when_unset(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    client().token()
    assert "member_cid" not in form_of(falcon.calls[0])


def test_user_agent_prefix(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    client(user_agent="soc-bot/2.0").token()
    user_agent = header(falcon.calls[0].request, "User-Agent")
    assert user_agent.startswith("soc-bot/2.0 requests-falcon-auth/")


@pytest.mark.parametrize("status", [200, 201, 202])
def test_any_2xx_with_a_token_is_success(falcon: responses.RequestsMock, status: int) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=status)
    assert client().token().access_token == "tok-1"


def test_expires_in_defaults_to_1799(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json={"access_token": "t"}, status=201)
    token = client().token()
    assert (token.expires_in, token.token_type) == (1799, "bearer")


@pytest.mark.parametrize(
    ("expires_in", "seconds"), [(1799.0, 1799), ("1799", 1799), ("1799.0", 1799), (12.9, 12)]
)
def test_expires_in_may_be_a_float_or_a_numeric_string(
    falcon: responses.RequestsMock, expires_in: object, seconds: int
) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(expires_in=expires_in), status=201)
    assert client().token().expires_in == seconds


def test_token_is_stamped_before_the_request_is_sent(falcon: responses.RequestsMock) -> None:
    readings = iter([100.0, 500.0])
    falcon.post(f"{US1}/oauth2/token", json=token_json(expires_in=60), status=201)
    token = client(clock=lambda: next(readings)).token()
    assert token.issued_at == 100.0
    assert token.expires_at == 160.0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"token_type": "bearer"}',
        b'{"access_token": ""}',
        b'{"access_token": 42}',
        b'{"access_token": "t", "expires_in": -5}',
        b'{"access_token": "t", "expires_in": 0}',
        b'{"access_token": "t", "expires_in": "soon"}',
        b'{"access_token": "t", "expires_in": 0.5}',
        b'{"access_token": "t", "expires_in": NaN}',
        b'{"access_token": "t", "expires_in": Infinity}',
        pytest.param(b'{"access_token": "' + b"t" * (16 * 1024 + 1) + b'"}', id="token-16k"),
        pytest.param(b"[" * 10_000 + b"]" * 10_000, id="nested-list"),
        pytest.param(b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, id="nested-object"),
        b'{"access_token": "t", "expires_in": true}',
        b'{"access_token": "t", "expires_in": null}',
        b"\xff\xfe",
    ],
)
def test_malformed_success_answers_raise_token_endpoint_error(
    falcon: responses.RequestsMock, body: bytes
) -> None:
    falcon.post(f"{US1}/oauth2/token", body=body, status=201)
    with pytest.raises(TokenEndpointError) as caught:
        client().token()
    assert caught.value.status_code == 201


def test_autodiscovery_follows_308_once_and_moves_home(falcon: responses.RequestsMock) -> None:
    falcon.post(
        f"{US1}/oauth2/token",
        status=308,
        headers={"Location": f"{US2}/oauth2/token", "X-Cs-Region": "us-2"},
    )
    falcon.post(
        f"{US2}/oauth2/token", json=token_json(), status=201, headers={"X-Cs-Region": "us-2"}
    )
    oauth = client()
    token = oauth.token()
    assert (token.region, token.base_url) == ("us-2", US2)
    assert (oauth.region, oauth.base_url) == ("us-2", US2)
    assert form_of(falcon.calls[1])["client_secret"] == [SECRET]
    assert len(falcon.calls) == 2


def test_a_second_redirect_is_not_followed(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", status=308, headers={"Location": f"{US2}/oauth2/token"})
    falcon.post(f"{US2}/oauth2/token", status=308, headers={"Location": f"{US1}/oauth2/token"})
    with pytest.raises(RegionError):
        client().token()
    assert len(falcon.calls) == 2


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example/oauth2/token",
        "http://api.us-2.crowdstrike.com/oauth2/token",  # https downgraded
        "https://api.us-2.crowdstrike.com:8443/oauth2/token",
        None,
    ],
)
def test_redirects_outside_the_table_are_refused(
    falcon: responses.RequestsMock, location: str | None
) -> None:
    headers = {"Location": location} if location else {}
    falcon.post(f"{US1}/oauth2/token", status=308, headers=headers)
    with pytest.raises(RegionError, match="not a Falcon host"):
        client().token()
    assert len(falcon.calls) == 1


def test_custom_base_url_is_never_rewritten(falcon: responses.RequestsMock) -> None:
    gateway = "https://falcon-gw.corp.example"
    falcon.post(
        f"{gateway}/oauth2/token",
        status=308,
        headers={"Location": f"{US2}/oauth2/token", "X-Cs-Region": "us-2"},
    )
    oauth = client(base_url=gateway)
    with pytest.raises(RegionError, match="us-2"):
        oauth.token()
    assert oauth.base_url == gateway
    assert len(falcon.calls) == 1


def test_named_cloud_is_not_rewritten_either(falcon: responses.RequestsMock) -> None:
    falcon.post(
        f"{US1}/oauth2/token",
        status=308,
        headers={"Location": f"{US2}/oauth2/token", "X-Cs-Region": "us-2"},
    )
    oauth = client(cloud="us-1")
    with pytest.raises(RegionError, match="cloud='us-2'"):
        oauth.token()
    assert oauth.base_url == US1


def test_relative_location_resolves_against_the_request(falcon: responses.RequestsMock) -> None:
    local = {"us-1": "http://127.0.0.1:9001", "us-2": "http://127.0.0.1:9002"}
    falcon.post("http://127.0.0.1:9001/oauth2/token", status=308, headers={"Location": "/v2/token"})
    falcon.post("http://127.0.0.1:9001/v2/token", json=token_json(), status=201)
    assert client(clouds=local).token().region == "us-1"
    assert falcon.calls[1].request.url == "http://127.0.0.1:9001/v2/token"


def test_named_cloud_and_custom_table(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{GOV}/oauth2/token", json=token_json(), status=201)
    token = client(cloud="usgov1").token()
    assert (token.region, token.base_url) == ("us-gov-1", GOV)


def test_junk_region_header_is_ignored(falcon: responses.RequestsMock) -> None:
    gateway = "https://falcon-gw.corp.example"
    falcon.post(
        f"{gateway}/oauth2/token", json=token_json(), status=201, headers={"X-Cs-Region": "mars-9"}
    )
    assert client(base_url=gateway).token().region is None


@pytest.mark.parametrize(
    ("status", "message", "advice"),
    [
        (400, "Failed to generate access token for clientID=client-a", "GovCloud"),
        (403, "Failed to issue access token - Not Authorized", "FALCON_CLIENT_SECRET"),
        (403, "access denied, authorization failed", "allow-list"),
        (403, "Failed to generate access token for customer ID=child", "FALCON_MEMBER_CID"),
        (401, "access denied", "FALCON_CLIENT_SECRET"),
    ],
)
def test_credential_failures_say_what_to_do(
    falcon: responses.RequestsMock, status: int, message: str, advice: str
) -> None:
    falcon.post(
        f"{US1}/oauth2/token",
        json=envelope(status, message, trace="tr-9"),
        status=status,
        headers={"X-Cs-Traceid": "tr-9"},
    )
    with pytest.raises(CredentialsError) as caught:
        client().token()
    error = caught.value
    assert (error.status_code, error.trace_id, error.errors, error.region) == (
        status,
        "tr-9",
        (message,),
        "us-1",
    )
    assert advice in str(error)
    assert "tr-9" in str(error)
    assert len(falcon.calls) == 1  # never retried


def test_server_errors_are_retried_then_raised(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=envelope(500, "Failed to issue token"), status=500)
    with pytest.raises(TokenEndpointError) as caught:
        client().token()
    assert caught.value.status_code == 500
    assert caught.value.errors == ("Failed to issue token",)
    assert len(falcon.calls) == 4  # one try and three retries


def test_transient_failure_heals(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", status=503)
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    assert client().token().access_token == "tok-1"
    assert len(falcon.calls) == 2


def test_rate_limit_error_carries_retry_after(
    falcon: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    wall = ManualClock(1.7e9)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        wall.now += seconds

    monkeypatch.setattr("urllib3.util.retry.time.sleep", sleep)
    falcon.post(
        f"{US1}/oauth2/token",
        json=envelope(429, "API rate limit exceeded."),
        status=429,
        headers={"X-Ratelimit-Retryafter": "5", "X-Ratelimit-Limit": "300"},
    )
    budget = RateBudget(MemoryTokenCache(), "0" * 64, wall_clock=wall)
    with pytest.raises(RateLimitError) as caught:
        client(budget=budget).token()
    assert caught.value.retry_after == 5
    assert "wait 5 s" in str(caught.value)
    assert slept == [5.0, 5.0, 5.0]


def test_rate_limit_with_a_long_wait_gives_up_at_once(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", status=429, headers={"X-Ratelimit-Retryafter": "3600"})
    with pytest.raises(RateLimitError) as caught:
        client().token()
    assert len(falcon.calls) == 1
    assert caught.value.retry_after == 3600


def test_connection_errors_are_retried_then_wrapped(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", body=requests.ConnectionError("refused"))
    with pytest.raises(TokenEndpointError, match="Could not reach") as caught:
        client().token()
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert len(falcon.calls) == 4


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection is refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield listening.getsockname()[1]


def unreachable(base_url: str) -> str:
    one_try = FalconRetry(total=0, allowed_methods=None)
    oauth = OAuth2("client-a", SECRET, base_url=base_url, timeout=(2.0, 0.2), retry=one_try)
    with pytest.raises(TokenEndpointError, match="Could not reach") as caught:
        oauth.token()
    return str(caught.value)


def test_a_refused_connection_is_named(refusing_port: int) -> None:
    message = unreachable(f"http://127.0.0.1:{refusing_port}")
    assert f"127.0.0.1:{refusing_port} refused the connection. Nothing listens there" in message


def test_a_name_that_does_not_resolve_is_named() -> None:
    message = unreachable("https://nonexistent.invalid")  # RFC 6761: never resolves, offline too
    assert "the host name nonexistent.invalid does not resolve (DNS)" in message


def test_a_server_that_never_answers_is_named(silent_port: int) -> None:
    message = unreachable(f"http://127.0.0.1:{silent_port}")
    assert f"127.0.0.1:{silent_port} accepted the connection but sent no complete answer" in message
    assert "raise timeout=" in message


def test_a_revoke_at_close_cut_short_by_its_budget_names_the_budget(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning names the bound that ran out (the close budget), not the 30 s read timeout
    that the budget cut short. The budget is shortened so the test does not wait 5 s."""
    monkeypatch.setattr("requests_falcon_auth._sources.CLOSE_REVOKE_BUDGET", 0.5)

    def token_then_silence(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        if request.path.endswith("/oauth2/token"):
            conn.sendall(answer(201, json.dumps(token_json()).encode()))
        else:
            stop.wait()

    with HostileServer(token_then_silence) as server:
        auth = FalconAuth("client-a", SECRET, base_url=server.url)  # timeout=(10, 30)
        auth.get_token()
        with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
            auth.close()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("Could not revoke the Falcon token at close: Could not reach")
    assert "within the call's budget of 0.5 s." in warning
    assert "30 s" not in warning
    assert "raise timeout=" not in warning  # it would not have helped


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (requests.ConnectTimeout("connect timed out"), "no connection to api.crowdstrike.com:443"),
        (requests.exceptions.ProxyError("http://user:pw@proxy"), "the proxy refused or dropped"),
        (requests.ConnectionError("reset"), "the connection failed (ConnectionError)"),
    ],
)
def test_other_transport_failures_are_named_without_quoting_them(
    falcon: responses.RequestsMock, error: Exception, named: str
) -> None:
    falcon.post(f"{US1}/oauth2/token", body=error)
    with pytest.raises(TokenEndpointError) as caught:
        client(retry=FalconRetry(total=0, allowed_methods=None)).token()
    assert named in str(caught.value)
    assert "user:pw" not in str(caught.value)


def test_retries_are_logged_at_info_not_warning(
    falcon: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller hears of the outcome; a CLI user must not see a warning per try before it."""
    falcon.post(f"{US1}/oauth2/token", status=503)
    falcon.post(f"{US1}/oauth2/token", body=requests.ConnectionError("reset"))
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    with caplog.at_level(logging.DEBUG, "requests_falcon_auth"):
        client().token()
    retries = [r for r in caplog.records if r.getMessage().endswith("retrying")]
    assert [r.levelno for r in retries] == [logging.INFO, logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_timeouts_are_wrapped(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", body=requests.ReadTimeout("slow"))
    with pytest.raises(TokenEndpointError):
        client(retry=FalconRetry(total=0, allowed_methods=None)).token()


def test_every_call_has_a_timeout(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    falcon.post(f"{US1}/oauth2/revoke", json={"errors": []}, status=200)
    oauth = client()
    oauth.revoke(oauth.token())
    sent = [call.request.req_kwargs["timeout"] for call in falcon.calls]  # type: ignore[attr-defined]
    assert sent == [(10.0, 30.0)] * 2


def test_revoke_wire_format(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US2}/oauth2/revoke", json={"meta": {}, "errors": []}, status=200)
    token = Token("tok-9", "bearer", 1799, "us-2", US2, 0.0)
    client().revoke(token)
    request = falcon.calls[0].request
    scheme, _, encoded = header(request, "Authorization").partition(" ")
    assert scheme == "basic"
    assert base64.b64decode(encoded).decode() == f"client-a:{SECRET}"
    assert form_of(falcon.calls[0]) == {"token": ["tok-9"], "client_id": ["client-a"]}


def test_revoke_goes_to_the_current_base_for_a_bare_string(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/revoke", json={"errors": []}, status=200)
    client().revoke("tok-raw")
    assert form_of(falcon.calls[0])["token"] == ["tok-raw"]


def test_revoke_refused(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/revoke", json=envelope(403, "access denied"), status=403)
    with pytest.raises(CredentialsError):
        client().revoke("tok")


def test_a_revoke_refused_with_403_suspects_the_client_id_and_secret_first(
    falcon: responses.RequestsMock,
) -> None:
    """Falcon answers 403 "authorization failed" to a revoke whose Basic credentials are wrong;
    for a token request the same words mean the IP allow-list."""
    said = envelope(403, "access denied, authorization failed")
    falcon.post(f"{US1}/oauth2/revoke", json=said, status=403)
    with pytest.raises(CredentialsError, match=r"Check the client id and secret \(FALCON_"):
        client().revoke("tok")
    falcon.post(f"{US1}/oauth2/token", json=said, status=403)
    with pytest.raises(CredentialsError, match="IP allow-list"):
        client().token()


def test_an_explicit_revoke_keeps_the_retry_policy_and_a_budgeted_one_tries_once(
    falcon: responses.RequestsMock,
) -> None:
    falcon.post(f"{US1}/oauth2/revoke", status=503)
    falcon.post(f"{US1}/oauth2/revoke", json={"errors": []}, status=200)
    client().revoke("tok")
    assert len(falcon.calls) == 2
    falcon.calls.reset()
    falcon.replace(responses.POST, f"{US1}/oauth2/revoke", status=503)
    with pytest.raises(TokenEndpointError):
        client().revoke("tok", budget=5.0)
    assert len(falcon.calls) == 1


def test_a_token_request_that_arrived_without_its_form_is_not_a_credentials_failure(
    falcon: responses.RequestsMock,
) -> None:
    message = "client_id and client_secret are required"
    falcon.post(f"{US1}/oauth2/token", json=envelope(400, message), status=400)
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    auth = FalconAuth("client-a", SECRET, retry=FalconRetry(backoff_factor=0))
    with pytest.raises(TokenEndpointError, match="did not arrive whole"):
        auth.get_token()
    assert auth.get_token().access_token == "tok-1"  # asked again: nothing was remembered


def test_camel_case_aliases_are_the_seed_operation_ids(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    falcon.post(f"{US1}/oauth2/revoke", json={"errors": []}, status=200)
    oauth = client()
    token = oauth.oauth2AccessToken()
    oauth.oauth2RevokeToken(token)
    assert [c.request.url for c in falcon.calls] == [f"{US1}/oauth2/token", f"{US1}/oauth2/revoke"]


def test_given_session_is_used_and_its_auth_is_kept_off(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    session = requests.Session()
    session.headers["X-Proxy-Tag"] = "corp"
    session.auth = ("user", "pass")
    client(session=session).token()
    request = falcon.calls[0].request
    assert request.headers["X-Proxy-Tag"] == "corp"
    assert "Authorization" not in request.headers
    session.close()


def test_secret_is_redacted_from_server_messages(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", json=envelope(403, f"bad secret {SECRET}"), status=403)
    with pytest.raises(CredentialsError) as caught:
        client().token()
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.errors)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cloud": "mars"},
        {"base_url": "http://falcon.example"},
        {"clouds": {"us-2": "https://x.example"}},  # autodiscovery needs us-1
    ],
)
def test_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        client(**kwargs)


@pytest.mark.parametrize(("client_id", "secret"), [("", "s"), ("id", ""), (None, "s")])
def test_empty_credentials_are_configuration_errors(client_id: object, secret: str) -> None:
    with pytest.raises(ConfigurationError):
        OAuth2(client_id, secret)  # type: ignore[arg-type]


def test_repr_hides_the_secret() -> None:
    oauth = client()
    assert SECRET not in repr(oauth)
    assert "client-a" in repr(oauth)


def test_error_answers_as_json_are_parsed(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", body=json.dumps(envelope(418, "teapot")), status=418)
    with pytest.raises(TokenEndpointError, match="teapot"):
        client().token()


def test_tls_failures_are_not_retried(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", body=requests.exceptions.SSLError("bad cert"))
    with pytest.raises(TokenEndpointError, match="CA bundle"):
        client().token()
    assert len(falcon.calls) == 1


def test_the_given_sessions_ca_bundle_wins_over_the_environment(
    falcon: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    with requests.Session() as session:
        session.verify = "/opt/corp/ca.pem"
        client(session=session).token()
    assert falcon.calls[0].request.req_kwargs["verify"] == "/opt/corp/ca.pem"  # type: ignore[attr-defined]


def test_a_given_retry_policy_still_retries_the_token_post(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", status=503)
    falcon.post(f"{US1}/oauth2/token", json=token_json(), status=201)
    assert OAuth2("client-a", SECRET, retry=FalconRetry(total=5, backoff_factor=0)).token()
    assert len(falcon.calls) == 2
