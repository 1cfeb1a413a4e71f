"""The Falcon emulator over real sockets, driven with plain requests and http.client."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
import requests

import requests_falcon_auth.testing as testing
from requests_falcon_auth.testing import FalconEmulator, ManualClock, RateLimits, RequestLogEntry
from requests_falcon_auth.testing._http import BodyError, ClientGone, read_body
from requests_falcon_auth.testing._records import RequestLog
from requests_falcon_auth.testing._wire import Headers
from requests_falcon_auth.testing.pytest_plugin import running_emulator

pytest_plugins = ["pytester"]

SECRET = "s3cret-us1"
DEVICES = "/devices/queries/devices/v1"
RULE_GROUPS = "/ioarules/entities/rule-groups/v1"  # catalogued, no data: Falcon's empty answers
NETWORK_LOCATIONS = "/fwmgr/entities/network-locations/v1"  # catalogued PUT, no data
INVALID = "access denied, invalid bearer token"


def start(**kwargs: Any) -> FalconEmulator:
    """A started emulator with clients in us-1 (with a child CID), us-2 and us-gov-1."""
    emulator = FalconEmulator(**kwargs)
    emulator.add_client("us1-client", SECRET, region="us-1", member_cids=("child-cid",))
    emulator.add_client("us2-client", "s3cret-us2", region="us-2")
    emulator.add_client("gov-client", "s3cret-gov", region="us-gov-1")
    return emulator.start()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[FalconEmulator]:
    emulator = start(clock=clock)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def post_token(
    session: requests.Session,
    emu: FalconEmulator,
    region: str = "us-1",
    client_id: str = "us1-client",
    secret: str = SECRET,
    **kwargs: Any,
) -> requests.Response:
    form = {"client_id": client_id, "client_secret": secret}
    return session.post(
        emu.base_url(region) + "/oauth2/token",
        data=form,
        allow_redirects=kwargs.pop("allow_redirects", False),
        **kwargs,
    )


def get_token(session: requests.Session, emu: FalconEmulator, region: str = "us-1") -> str:
    client_id, secret = {
        "us-1": ("us1-client", SECRET),
        "us-2": ("us2-client", "s3cret-us2"),
        "us-gov-1": ("gov-client", "s3cret-gov"),
    }[region]
    response = post_token(session, emu, region, client_id, secret)
    assert response.status_code == 201
    return str(response.json()["access_token"])


def call(
    session: requests.Session,
    emu: FalconEmulator,
    token: str | None,
    region: str = "us-1",
    method: str = "GET",
    path: str = DEVICES,
    **kwargs: Any,
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return session.request(method, emu.base_url(region) + path, headers=headers, **kwargs)


def assert_envelope(
    response: requests.Response, status: int, message: str, powered_by: str
) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["errors"] == [{"code": status, "message": message}]
    assert body["meta"]["powered_by"] == powered_by
    assert response.headers["X-Cs-Traceid"] == body["meta"]["trace_id"]
    assert "X-Ratelimit-Limit" in response.headers
    assert "X-Ratelimit-Remaining" in response.headers


def b64url_json(part: str) -> dict[str, object]:
    decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    assert isinstance(decoded, dict)
    return decoded


# -- surface and lifecycle ---------------------------------------------------------------------


def test_public_names() -> None:
    assert sorted(testing.__all__) == sorted(
        [
            "DEFAULT_REGIONS",
            "TOKEN_OUTCOMES",
            "ApiAnswer",
            "ApiCall",
            "ApiClient",
            "Counters",
            "FalconEmulator",
            "ManualClock",
            "RateLimits",
            "RequestLogEntry",
            "TokenGate",
        ]
    )


def test_clouds_has_one_server_per_region(emu: FalconEmulator) -> None:
    clouds = emu.clouds
    assert list(clouds) == ["us-1", "us-2", "eu-1", "us-gov-1"]
    assert len(set(clouds.values())) == 4
    assert all(url.startswith("http://127.0.0.1:") for url in clouds.values())
    assert emu.base_url("US2") == clouds["us-2"]
    assert emu.ca_bundle is None


def test_unstarted_and_restarted_emulators_refuse() -> None:
    emulator = FalconEmulator()
    with pytest.raises(RuntimeError):
        _ = emulator.clouds
    with emulator, pytest.raises(RuntimeError):
        emulator.start()
    with pytest.raises(RuntimeError):
        emulator.start()
    emulator.stop()  # idempotent


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"regions": ()}, ValueError),
        ({"regions": ("us-1", "US1")}, ValueError),
        ({"regions": ("auto",)}, ValueError),
        ({"regions": ("mars-1",)}, ValueError),
        ({"token_ttl": 0}, ValueError),
        ({"token_ttl": 1.5}, ValueError),
        ({"port": -1}, ValueError),
        ({"rate_limits": "yes"}, TypeError),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        FalconEmulator(**kwargs)


def test_bad_rate_limits_and_faults(emu: FalconEmulator) -> None:
    with pytest.raises(ValueError):
        RateLimits(token_per_ip=0)
    with pytest.raises(ValueError):
        RateLimits(window=0)
    with pytest.raises(ValueError):
        emu.fail_token_requests(1, status=200)
    with pytest.raises(ValueError):
        emu.fail_token_requests(-1)
    with pytest.raises(ValueError):
        emu.delay_token_requests(-1)
    with pytest.raises(ValueError):
        emu.add_client("x", "y", region="us-gov-2")
    with pytest.raises(ValueError):
        emu.base_url("us-3")


def test_default_budgets_are_falcons() -> None:
    assert RateLimits() == RateLimits(
        token_per_ip=300, api_per_cid=6000, bad_token_per_ip=15, window=60.0
    )


def test_fixed_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FalconEmulator(regions=("us-1",), port=port) as emulator:
        assert emulator.clouds == {"us-1": f"http://127.0.0.1:{port}"}


def test_stop_closes_idle_keepalive_connections(session: requests.Session) -> None:
    emulator = start()
    get_token(session, emulator)  # leaves a kept-alive connection open
    finished = threading.Event()

    def stop() -> None:
        emulator.stop()
        finished.set()

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert finished.wait(5)
    stopper.join()
    with pytest.raises(requests.ConnectionError):
        post_token(session, emulator)


def test_serve_forever_returns_on_stop() -> None:
    emulator = FalconEmulator(regions=("us-1",)).start()
    foreground = threading.Thread(target=emulator.serve_forever)
    foreground.start()
    emulator.stop()
    foreground.join(5)
    assert not foreground.is_alive()


# -- POST /oauth2/token ------------------------------------------------------------------------------


def test_token_issued(emu: FalconEmulator, session: requests.Session) -> None:
    response = post_token(session, emu)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1799
    assert response.headers["X-Cs-Region"] == "us-1"
    assert response.headers["X-Ratelimit-Limit"] == "300"
    assert response.headers["X-Ratelimit-Remaining"] == "299"
    assert response.headers["X-Cs-Traceid"]
    assert emu.issued_tokens() == [body["access_token"]]
    assert emu.counters.tokens_issued == 1
    assert emu.counters.token_outcomes["issued"] == 1


def test_token_is_jwt_shaped(emu: FalconEmulator, session: requests.Session) -> None:
    token = get_token(session, emu)
    assert 1000 < len(token) < 1500
    header, payload, signature = token.split(".")
    assert b64url_json(header)["alg"] == "RS256"
    claims = b64url_json(payload)
    assert claims["client_id"] == "us1-client"
    assert claims["region"] == "us-1"
    assert claims["jti"] == emu.token_id(token)
    assert isinstance(claims["exp"], int)
    assert claims["exp"] > time.time()
    assert len(base64.urlsafe_b64decode(signature + "==")) == 256
    assert get_token(session, emu) != token


@pytest.mark.parametrize(
    ("form", "status", "message", "outcome"),
    [
        (
            {"client_id": "nobody", "client_secret": "x"},
            400,
            "Failed to generate access token for clientID=nobody",
            "unknown_client",
        ),
        (
            {"client_id": "us1-client", "client_secret": "wrong"},
            403,
            "Failed to issue access token - Not Authorized",
            "wrong_secret",
        ),
        (
            {"client_id": "us1-client", "client_secret": SECRET, "member_cid": "other-cid"},
            403,
            "Failed to generate access token for customer ID=other-cid",
            "wrong_member_cid",
        ),
        (
            {"client_id": "us1-client"},
            400,
            "client_id and client_secret are required",
            "bad_request",
        ),
        ({"client_secret": SECRET}, 400, "client_id and client_secret are required", "bad_request"),
        (
            {"client_id": "gov-client", "client_secret": "s3cret-gov"},
            400,
            "Failed to generate access token for clientID=gov-client",
            "unknown_client",
        ),
    ],
)
def test_token_refused(
    emu: FalconEmulator,
    session: requests.Session,
    form: dict[str, str],
    status: int,
    message: str,
    outcome: str,
) -> None:
    response = session.post(emu.base_url("us-1") + "/oauth2/token", data=form)
    assert_envelope(response, status, message, "csam")
    assert response.json()["resources"] == []
    counters = emu.counters
    assert counters.token_requests == 1
    assert counters.token_outcomes[outcome] == 1
    assert counters.tokens_issued == 0


def test_token_needs_a_form_body(emu: FalconEmulator, session: requests.Session) -> None:
    url = emu.base_url("us-1") + "/oauth2/token"
    response = session.post(url, json={"client_id": "us1-client", "client_secret": SECRET})
    assert_envelope(response, 415, "Content-Type must be application/x-www-form-urlencoded", "csam")
    response = session.get(url)
    assert_envelope(response, 405, "Method Not Allowed", "csam")
    assert emu.counters.token_outcomes["bad_request"] == 2


def test_member_cid_is_honoured(emu: FalconEmulator, session: requests.Session) -> None:
    form = {"client_id": "us1-client", "client_secret": SECRET, "member_cid": "CHILD-CID"}
    response = session.post(emu.base_url("us-1") + "/oauth2/token", data=form)
    assert response.status_code == 201
    assert call(session, emu, response.json()["access_token"]).status_code == 200
    assert emu.request_log[-1].member_cid == "CHILD-CID"


def test_commercial_credentials_are_redirected_home(
    emu: FalconEmulator, session: requests.Session
) -> None:
    response = post_token(session, emu, "us-1", "us2-client", "s3cret-us2")
    assert response.status_code == 308
    assert response.headers["Location"] == emu.base_url("us-2") + "/oauth2/token"
    assert response.headers["X-Cs-Region"] == "us-2"
    assert response.headers["Content-Length"] == "0"
    assert response.content == b""
    assert response.headers["X-Cs-Traceid"]
    followed = post_token(session, emu, "us-1", "us2-client", "s3cret-us2", allow_redirects=True)
    assert followed.status_code == 201
    assert followed.headers["X-Cs-Region"] == "us-2"
    assert emu.counters.token_outcomes["redirected"] == 2
    # Any commercial region redirects to any other: us-1 credentials posted to eu-1.
    response = post_token(session, emu, "eu-1")
    assert response.status_code == 308
    assert response.headers["Location"] == emu.base_url("us-1") + "/oauth2/token"


def test_govcloud_is_never_discovered(emu: FalconEmulator, session: requests.Session) -> None:
    response = post_token(session, emu, "us-gov-1")  # us-1 credentials at GovCloud
    assert_envelope(
        response, 400, "Failed to generate access token for clientID=us1-client", "csam"
    )
    assert get_token(session, emu, "us-gov-1")  # GovCloud credentials where they live


def test_token_budget_counts_failures_and_slides(clock: ManualClock) -> None:
    emulator = start(clock=clock, rate_limits=RateLimits(token_per_ip=3))
    with emulator, requests.Session() as s:
        assert post_token(s, emulator, secret="wrong").status_code == 403
        clock.advance(30)
        assert post_token(s, emulator).headers["X-Ratelimit-Remaining"] == "1"
        assert post_token(s, emulator).status_code == 201
        refused = post_token(s, emulator)
        assert_envelope(refused, 429, "API rate limit exceeded.", "csam")
        assert refused.headers["X-Ratelimit-Limit"] == "3"
        assert refused.headers["X-Ratelimit-Remaining"] == "0"
        # The oldest attempt leaves the window 30 s from now (epoch seconds).
        retry_at = int(refused.headers["X-Ratelimit-Retryafter"])
        assert time.time() + 29 <= retry_at <= time.time() + 32
        clock.advance(30)
        assert post_token(s, emulator).status_code == 201
        assert emulator.counters.token_outcomes["rate_limited"] == 1


def test_budgets_can_be_switched_off(clock: ManualClock) -> None:
    emulator = start(clock=clock, rate_limits=False)
    with emulator, requests.Session() as s:
        for _ in range(20):
            response = call(s, emulator, None)
            assert response.status_code == 401
        assert response.headers["X-Ratelimit-Limit"] == "15"


# -- POST /oauth2/revoke -----------------------------------------------------------------------------


def revoke(
    session: requests.Session,
    emu: FalconEmulator,
    token: str | None,
    credentials: str = f"us1-client:{SECRET}",
    scheme: str = "basic",
) -> requests.Response:
    encoded = base64.b64encode(credentials.encode()).decode()
    data = {"token": token, "client_id": "us1-client"} if token is not None else {}
    return session.post(
        emu.base_url("us-1") + "/oauth2/revoke",
        data=data,
        headers={"Authorization": f"{scheme} {encoded}"},
    )


@pytest.mark.parametrize("scheme", ["basic", "Basic", "BASIC"])
def test_revoke(emu: FalconEmulator, session: requests.Session, scheme: str) -> None:
    token = get_token(session, emu)
    assert call(session, emu, token).status_code == 200
    response = revoke(session, emu, token, scheme=scheme)
    assert response.status_code == 200
    body = response.json()
    assert body["errors"] == []
    assert response.headers["X-Cs-Traceid"] == body["meta"]["trace_id"]
    assert_envelope(call(session, emu, token), 401, INVALID, "crowdstrike-api-gateway")
    assert emu.counters.revokes == 1


def test_revoke_unknown_token_succeeds(emu: FalconEmulator, session: requests.Session) -> None:
    assert revoke(session, emu, "not-a-token").status_code == 200
    assert emu.counters.revokes == 1


@pytest.mark.parametrize(
    "credentials", [f"us1-client:{SECRET}x", "nobody:x", "us2-client:s3cret-us2", "no-colon"]
)
def test_revoke_needs_client_credentials(
    emu: FalconEmulator, session: requests.Session, credentials: str
) -> None:
    token = get_token(session, emu)
    response = revoke(session, emu, token, credentials=credentials)
    assert_envelope(response, 403, "access denied, authorization failed", "csam")
    assert call(session, emu, token).status_code == 200
    assert emu.counters.revokes == 0


def test_revoke_without_authorization_or_token(
    emu: FalconEmulator, session: requests.Session
) -> None:
    url = emu.base_url("us-1") + "/oauth2/revoke"
    assert session.post(url, data={"token": "t"}).status_code == 403
    assert_envelope(revoke(session, emu, None), 400, "token is required", "csam")


def test_revoke_leaves_other_clients_tokens_alone(
    emu: FalconEmulator, session: requests.Session
) -> None:
    emu.add_client("second", "s3cond", region="us-1")
    token = get_token(session, emu)
    assert revoke(session, emu, token, credentials="second:s3cond").status_code == 200
    assert call(session, emu, token).status_code == 200


# -- the API gateway --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", RULE_GROUPS, 404),  # an entity lookup of an id nobody loaded
        ("POST", RULE_GROUPS, 201),
        ("PUT", NETWORK_LOCATIONS, 200),
        ("PATCH", RULE_GROUPS, 200),
        ("DELETE", RULE_GROUPS, 200),
    ],
)
def test_gateway_answers_authenticated_calls_as_falcon_and_logs_them(
    emu: FalconEmulator, session: requests.Session, method: str, path: str, status: int
) -> None:
    """A catalogued operation with no data gets Falcon's empty answer (never an echo), and
    the log shows what came."""
    token = get_token(session, emu)
    body = b'{"ids": ["abc"]}'
    response = session.request(
        method,
        emu.base_url("us-1") + path + "?ids=abc&comment=x",
        headers={"Authorization": f"BEARER {token}"},
        data=body,
    )
    assert response.status_code == status
    envelope = response.json()
    assert envelope["resources"] == []
    if status == 404:
        assert envelope["errors"] == [{"code": 404, "message": "ids 'abc' not found", "id": "abc"}]
    else:
        assert envelope["errors"] == []
    entry = emu.request_log[-1]
    assert (entry.method, entry.path, entry.query, entry.region) == (
        method,
        path,
        "ids=abc&comment=x",
        "us-1",
    )
    assert (entry.body_length, entry.body_sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert (entry.client_id, entry.member_cid, entry.json_body) == (
        "us1-client",
        None,
        {"ids": ["abc"]},
    )
    assert response.headers["X-Ratelimit-Limit"] == "6000"
    assert response.headers["X-Ratelimit-Remaining"] == "5999"
    assert emu.counters.api_ok == (1 if status == 200 else 0)


def test_head_answers_without_a_body(emu: FalconEmulator, session: requests.Session) -> None:
    token = get_token(session, emu)
    response = call(session, emu, token, method="HEAD")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) > 0
    assert response.content == b""
    assert call(session, emu, token).status_code == 200  # the connection is still in step


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic dXMxLWNsaWVudDpzM2NyZXQtdXMx", "Token x"],
)
def test_gateway_rejects_missing_or_bad_tokens(
    emu: FalconEmulator, session: requests.Session, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = session.get(emu.base_url("us-1") + DEVICES, headers=headers)
    assert_envelope(response, 401, INVALID, "crowdstrike-api-gateway")
    assert response.headers["X-Ratelimit-Limit"] == "15"
    assert emu.counters.api_401 == 1


def test_token_of_another_region_is_rejected(
    emu: FalconEmulator, session: requests.Session
) -> None:
    token = get_token(session, emu, "us-2")
    assert call(session, emu, token, "us-2").status_code == 200
    assert call(session, emu, token, "us-1").status_code == 401


def test_token_expires_by_the_injected_clock(clock: ManualClock) -> None:
    emulator = start(clock=clock, token_ttl=600)
    with emulator, requests.Session() as s:
        response = post_token(s, emulator)
        assert response.json()["expires_in"] == 600
        token = response.json()["access_token"]
        clock.advance(599.5)
        assert call(s, emulator, token).status_code == 200
        clock.advance(0.5)
        assert call(s, emulator, token).status_code == 401


def test_bad_token_budget_turns_401_into_429(
    emu: FalconEmulator, session: requests.Session, clock: ManualClock
) -> None:
    for remaining in range(14, -1, -1):
        response = call(session, emu, "expired")
        assert response.status_code == 401
        assert response.headers["X-Ratelimit-Remaining"] == str(remaining)
    refused = call(session, emu, None)
    assert_envelope(refused, 429, "API rate limit exceeded.", "crowdstrike-api-gateway")
    assert refused.headers["X-Ratelimit-Limit"] == "15"
    assert int(refused.headers["X-Ratelimit-Retryafter"]) >= int(time.time()) + 59
    assert call(session, emu, get_token(session, emu)).status_code == 200  # valid ones pass
    clock.advance(60)
    assert call(session, emu, None).status_code == 401
    counters = emu.counters
    assert (counters.api_calls, counters.api_ok, counters.api_401, counters.api_429) == (
        18,
        1,
        16,
        1,
    )


def test_api_budget_is_per_cid_and_shared(clock: ManualClock) -> None:
    emulator = start(clock=clock, rate_limits=RateLimits(api_per_cid=3))
    emulator.add_client("a", "sa", region="us-1", cid="SHARED")
    emulator.add_client("b", "sb", region="us-1", cid="shared")
    with emulator, requests.Session() as s:
        token_a = post_token(s, emulator, client_id="a", secret="sa").json()["access_token"]
        token_b = post_token(s, emulator, client_id="b", secret="sb").json()["access_token"]
        own = get_token(s, emulator)
        assert [call(s, emulator, t).status_code for t in (token_a, token_b, token_a)] == [200] * 3
        refused = call(s, emulator, token_b)
        assert_envelope(refused, 429, "API rate limit exceeded.", "crowdstrike-api-gateway")
        assert refused.headers["X-Ratelimit-Limit"] == "3"
        assert "X-Ratelimit-Retryafter" in refused.headers
        assert call(s, emulator, own).status_code == 200  # another CID, another budget
        clock.advance(60)
        assert call(s, emulator, token_b).status_code == 200


def test_chunked_upload_is_decoded(emu: FalconEmulator, session: requests.Session) -> None:
    token = get_token(session, emu)
    parts = [b"first chunk,", b"", b"x" * 70_000, b"\r\n0\r\n", b"last"]
    response = call(session, emu, token, method="POST", path=RULE_GROUPS, data=iter(parts))
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 201
    received = emu.request_log[-1]
    whole = b"".join(parts)
    assert received.body_length == len(whole)
    assert received.body_sha256 == hashlib.sha256(whole).hexdigest()
    assert call(session, emu, token).status_code == 200  # same connection, still in step


def message(**headers: str) -> Message:
    parsed = Message()
    for name, value in headers.items():
        parsed[name.replace("_", "-")] = value
    return parsed


def test_read_body_handles_extensions_and_trailers() -> None:
    wire = io.BytesIO(b"5;name=value\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT")
    assert read_body(wire, message(Transfer_Encoding="chunked")) == b"hello!"
    assert wire.read() == b"NEXT"
    assert read_body(io.BytesIO(b"abcdef"), message(Content_Length="3")) == b"abc"
    assert read_body(io.BytesIO(b"abc"), message()) == b""


@pytest.mark.parametrize(
    ("wire", "headers", "status"),
    [
        (b"zz\r\n", {"Transfer_Encoding": "chunked"}, 400),
        (b"-1\r\n", {"Transfer_Encoding": "chunked"}, 400),
        (b"3\r\nabcXY", {"Transfer_Encoding": "chunked"}, 400),
        (b"", {"Transfer_Encoding": "gzip, chunked"}, 501),
        (b"", {"Content_Length": "-3"}, 400),
        (b"", {"Content_Length": str(65 * 1024 * 1024)}, 413),
    ],
)
def test_read_body_refuses_bad_framing(wire: bytes, headers: dict[str, str], status: int) -> None:
    with pytest.raises(BodyError) as info:
        read_body(io.BytesIO(wire), message(**headers))
    assert info.value.status == status


@pytest.mark.parametrize(
    ("wire", "headers"),
    [(b"ab", {"Content_Length": "3"}), (b"5\r\nab", {"Transfer_Encoding": "chunked"})],
)
def test_read_body_notices_a_vanished_client(wire: bytes, headers: dict[str, str]) -> None:
    with pytest.raises(ClientGone):
        read_body(io.BytesIO(wire), message(**headers))


def address(emu: FalconEmulator) -> tuple[str, int]:
    host, port = emu.base_url("us-1").removeprefix("http://").split(":")
    return host, int(port)


def exchange_until_closed(emu: FalconEmulator, request: bytes) -> bytes:
    """Sends raw bytes and reads until the emulator closes: returns only if it does."""
    with socket.create_connection(address(emu), timeout=5) as raw:
        raw.sendall(request)
        with raw.makefile("rb") as reply:
            return reply.read()


def test_malformed_chunks_get_400_and_close(emu: FalconEmulator) -> None:
    answer = exchange_until_closed(
        emu, b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in answer


def test_an_unparseable_request_target_gets_400(emu: FalconEmulator) -> None:
    answer = exchange_until_closed(emu, b"GET http://[::1/devices HTTP/1.1\r\nHost: h\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Malformed request target" in answer


# -- keep-alive ----------------------------------------------------------------------------------


def test_keepalive_survives_error_answers(emu: FalconEmulator) -> None:
    conn = http.client.HTTPConnection(*address(emu), timeout=5)
    try:
        form = "client_id=us1-client&client_secret=wrong"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/oauth2/token", body=form, headers=headers)
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.status == 403
        assert first.getheader("Content-Length") is not None
        conn.request("POST", "/oauth2/revoke", body="token=x", headers=headers)  # 403, body read
        second = conn.getresponse()
        second.read()
        assert second.status == 403
        conn.request("GET", DEVICES, body=b"unread body", headers={"Authorization": "Bearer x"})
        third = conn.getresponse()
        third.read()
        assert third.status == 401
        assert conn.sock is sock  # one connection for all three
    finally:
        conn.close()


def test_connection_close_is_honoured(emu: FalconEmulator) -> None:
    answer = exchange_until_closed(emu, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"Connection: close" in answer


# -- records -------------------------------------------------------------------------------------


def test_request_log_redacts_credentials(emu: FalconEmulator, session: requests.Session) -> None:
    token = get_token(session, emu)
    call(session, emu, token, params={"limit": "1"})
    revoke(session, emu, token)
    log = emu.request_log
    assert [(e.region, e.method, e.path, e.status) for e in log] == [
        ("us-1", "POST", "/oauth2/token", 201),
        ("us-1", "GET", DEVICES, 200),
        ("us-1", "POST", "/oauth2/revoke", 200),
    ]
    assert log[1].query == "limit=1"
    assert log[1].headers["authorization"] == "Bearer <redacted>"
    assert log[2].headers["Authorization"] == "basic <redacted>"
    assert log[0].client_ip == "127.0.0.1"
    dump = repr(log)
    assert token not in dump
    assert SECRET not in dump
    assert base64.b64encode(f"us1-client:{SECRET}".encode()).decode() not in dump
    emu.clear_request_log()
    assert emu.request_log == []


def log_entry(number: int, json_bytes: int | None) -> RequestLogEntry:
    text = None if json_bytes is None else json.dumps("x" * (json_bytes - 2))
    length = 0 if text is None else len(text)
    return RequestLogEntry(
        region="us-1",
        method="POST",
        path=f"/{number}",
        query="",
        status=200,
        headers=Headers(),
        client_ip="127.0.0.1",
        body_length=length,
        json_text=text,
    )


def test_the_log_drops_the_oldest_bodies_past_its_budget_and_keeps_the_entries() -> None:
    log = RequestLog(limit=5, json_budget=100)
    log.append(log_entry(0, 40))
    log.append(log_entry(1, None))
    log.append(log_entry(2, 40))
    handed_out = log.snapshot()
    log.append(log_entry(3, 40))  # 120 bytes: the oldest body goes
    entries = log.snapshot()
    assert [e.path for e in entries] == ["/0", "/1", "/2", "/3"]
    assert [e.json_text is not None for e in entries] == [False, False, True, True]
    assert entries[0].body_length == 40  # the entry stays, only its body goes
    assert handed_out[0].json_text is not None  # a snapshot already taken does not change
    log.append(log_entry(4, 10))
    log.append(log_entry(5, 10))  # the limit evicts /0; 100 bytes fit
    log.append(log_entry(6, 10))  # 110: /2's body goes, /3's stays
    assert [(e.path, e.json_text is not None) for e in log.snapshot()] == [
        ("/2", False),
        ("/3", True),
        ("/4", True),
        ("/5", True),
        ("/6", True),
    ]
    log.clear()
    assert log.snapshot() == []
    log.append(log_entry(7, 100))
    assert log.snapshot()[0].json_text is not None  # clear() forgot the bytes it held


def test_an_entry_the_limit_evicts_frees_its_body_bytes() -> None:
    log = RequestLog(limit=2, json_budget=100)
    log.append(log_entry(0, 60))
    log.append(log_entry(1, 30))
    log.append(log_entry(2, 60))  # /0 leaves with its 60 bytes: 90 held, nothing to drop
    assert [(e.path, e.json_text is not None) for e in log.snapshot()] == [
        ("/1", True),
        ("/2", True),
    ]


def test_the_emulator_keeps_64_mib_of_logged_bodies(
    emu: FalconEmulator, session: requests.Session
) -> None:
    token = get_token(session, emu)
    body = json.dumps("x" * ((1 << 20) - 2)).encode()  # 1 MiB: the largest body logged
    for _ in range(65):
        call(session, emu, token, method="POST", data=body)
    uploads = [e for e in emu.request_log if e.method == "POST" and e.path == DEVICES]
    assert len(uploads) == 65
    assert uploads[0].json_body is None  # the 65th MiB pushed the first body out
    assert all(e.json_text is not None for e in uploads[1:])
    assert {e.body_length for e in uploads} == {1 << 20}


def test_calls_per_token_and_reset(emu: FalconEmulator, session: requests.Session) -> None:
    first, second = get_token(session, emu), get_token(session, emu)
    for token in (first, first, second):
        call(session, emu, token)
    emu.invalidate_all_tokens()
    call(session, emu, first)  # a dead token presented still counts against it
    counters = emu.counters
    assert dict(counters.calls_per_token) == {emu.token_id(first): 3, emu.token_id(second): 1}
    assert emu.token_id("unknown") is None
    emu.reset_counters()
    counters = emu.counters
    assert (counters.token_requests, counters.api_calls, dict(counters.calls_per_token)) == (
        0,
        0,
        {},
    )
    assert counters.token_outcomes["issued"] == 0
    assert len(emu.issued_tokens()) == 2  # tokens outlive a counter reset


# -- fault injection -------------------------------------------------------------------------------


def test_fail_token_requests(emu: FalconEmulator, session: requests.Session) -> None:
    emu.fail_token_requests(2)
    emu.fail_token_requests(1, status=429, retry_after=30)
    for _ in range(2):
        assert_envelope(post_token(session, emu), 500, "Failed to issue token", "csam")
    limited = post_token(session, emu)
    assert_envelope(limited, 429, "API rate limit exceeded.", "csam")
    assert limited.headers["X-Ratelimit-Remaining"] == "0"  # not what the real budget has left
    retry_at = int(limited.headers["X-Ratelimit-Retryafter"])
    assert time.time() + 29 <= retry_at <= time.time() + 31
    assert post_token(session, emu).status_code == 201
    assert emu.counters.token_outcomes["injected"] == 3


def test_injected_failure_may_be_any_error_status(
    emu: FalconEmulator, session: requests.Session
) -> None:
    emu.fail_token_requests(1, status=503)
    assert_envelope(post_token(session, emu), 503, "Service Unavailable", "csam")


def test_delay_token_requests(emu: FalconEmulator, session: requests.Session) -> None:
    emu.delay_token_requests(0.2)
    started = time.monotonic()
    assert post_token(session, emu).status_code == 201
    assert time.monotonic() - started >= 0.2
    emu.delay_token_requests(30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post_token(session, emu, timeout=0.2)
    emu.delay_token_requests(0)
    assert post_token(session, emu).status_code == 201  # stop() cuts the 30 s wait short


def test_hold_token_requests(emu: FalconEmulator) -> None:
    gate = emu.hold_token_requests()
    answered: list[int] = []
    done = [threading.Event() for _ in range(3)]

    def fetch(finished: threading.Event) -> None:
        with requests.Session() as s:
            answered.append(post_token(s, emu).status_code)
        finished.set()

    threads = [threading.Thread(target=fetch, args=(event,)) for event in done]
    with gate:
        for thread in threads:
            thread.start()
        assert gate.wait_for_held(3, timeout=5)
        assert gate.held == 3
        assert not gate.wait_for_held(4, timeout=0.01)
        assert not any(event.is_set() for event in done)
        counters = emu.counters
        assert (counters.token_requests, counters.tokens_issued) == (3, 0)
        with requests.Session() as s:
            assert call(s, emu, None).status_code == 401  # only token answers are held
    for thread in threads:
        thread.join(5)
    assert answered == [201, 201, 201]
    assert gate.released
    assert gate.held == 0
    with requests.Session() as s:
        assert post_token(s, emu).status_code == 201  # a released gate holds nothing


def test_stop_releases_a_held_gate() -> None:
    emulator = start()
    gate = emulator.hold_token_requests()
    outcome: list[BaseException | int] = []

    def fetch() -> None:
        with requests.Session() as s:
            try:
                outcome.append(post_token(s, emulator).status_code)
            except requests.ConnectionError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=fetch)
    thread.start()
    assert gate.wait_for_held(1, timeout=5)
    emulator.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1


def test_reject_api_calls(emu: FalconEmulator, session: requests.Session) -> None:
    token = get_token(session, emu)
    emu.reject_api_calls(2)
    for _ in range(2):
        assert_envelope(call(session, emu, token), 401, INVALID, "crowdstrike-api-gateway")
    assert call(session, emu, token).status_code == 200
    assert (emu.counters.api_401, emu.counters.api_ok) == (2, 1)


def test_invalidate_all_tokens(emu: FalconEmulator, session: requests.Session) -> None:
    old = get_token(session, emu)
    emu.invalidate_all_tokens()
    assert call(session, emu, old).status_code == 401
    assert call(session, emu, get_token(session, emu)).status_code == 200


def test_drop_connections(emu: FalconEmulator, session: requests.Session) -> None:
    emu.drop_connections(1)
    with pytest.raises(requests.ConnectionError):
        post_token(session, emu)
    assert post_token(session, emu).status_code == 201
    assert emu.counters.dropped_connections == 1
    assert emu.counters.token_requests == 1  # the dropped one never reached the service
    assert [entry.status for entry in emu.request_log] == [None, 201]


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_with_a_minted_ca() -> None:
    emulator = start(tls=True)
    with emulator, requests.Session() as s:
        ca_bundle = emulator.ca_bundle
        assert ca_bundle is not None
        assert all(url.startswith("https://127.0.0.1:") for url in emulator.clouds.values())
        response = post_token(
            s, emulator, "us-1", "us2-client", "s3cret-us2", verify=ca_bundle, allow_redirects=True
        )
        assert response.status_code == 201
        assert response.url.startswith(emulator.base_url("us-2"))
        token = response.json()["access_token"]
        assert call(s, emulator, token, "us-2", verify=ca_bundle).status_code == 200
        with requests.Session() as untrusting, pytest.raises(requests.exceptions.SSLError):
            untrusting.get(emulator.base_url("us-2") + DEVICES)
        # A plain-HTTP client is cut off after the failed handshake; TLS still works after.
        port = int(emulator.base_url("us-2").rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            while raw.recv(4096):
                pass
        assert call(s, emulator, token, "us-2", verify=ca_bundle).status_code == 200
    assert not os.path.exists(ca_bundle)


def test_tls_without_trustme_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)
    with pytest.raises(ImportError, match=r"pip install 'requests-falcon-auth\[testing\]'"):
        FalconEmulator(tls=True).start()


# -- the pytest plugin -----------------------------------------------------------------------------


def test_running_emulator_registers_a_client() -> None:
    with running_emulator() as emulator, requests.Session() as s:
        form = {"client_id": emulator.client_id, "client_secret": emulator.client_secret}
        response = s.post(emulator.base_url("us-1") + "/oauth2/token", data=form)
        assert response.status_code == 201
        assert list(emulator.clouds) == ["us-1", "us-2", "eu-1", "us-gov-1"]


def test_plugin_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Autoload off: once the plugin is an entry point, -p must not register it twice.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        """
        import requests

        def test_emulator(falcon_emulator):
            form = {"client_id": falcon_emulator.client_id,
                    "client_secret": falcon_emulator.client_secret}
            with requests.Session() as s:
                url = falcon_emulator.base_url("us-1") + "/oauth2/token"
                assert s.post(url, data=form).status_code == 201

        def test_auth(falcon_auth, falcon_emulator):
            assert type(falcon_auth).__name__ == "FalconAuth"
            assert falcon_emulator.counters.token_requests == 0
        """
    )
    result = pytester.runpytest("-p", "requests_falcon_auth.testing.pytest_plugin")
    result.assert_outcomes(passed=2)


def test_plugin_fixtures_serve_async_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented pattern: anyio's pytest plugin, an AsyncClient, the emulator's fixtures;
    on asyncio and on trio."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        @pytest.mark.anyio
        async def test_hosts(falcon_emulator, falcon_httpx_auth):
            async with httpx.AsyncClient(auth=falcon_httpx_auth) as client:
                url = falcon_emulator.base_url("us-1") + "/devices/queries/devices/v1"
                assert (await client.get(url)).status_code == 200
                assert (await client.get(url)).status_code == 200
            assert falcon_emulator.counters.token_requests == 1
        """
    )
    result = pytester.runpytest(
        "-p", "requests_falcon_auth.testing.pytest_plugin", "-p", "anyio.pytest_plugin"
    )
    result.assert_outcomes(passed=2)
