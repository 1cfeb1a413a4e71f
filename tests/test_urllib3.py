"""What only the urllib3 front end has: RequestMethods helpers, pool ownership, failure paths."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from fakes import MiniFalcon
from loopback import Answer, LoopbackServer

from requests_falcon_auth import FalconAuth, FalconRetry, TokenEndpointError
from requests_falcon_auth.urllib3 import AuthorizedPoolManager


@pytest.fixture
def falcon() -> Iterator[tuple[MiniFalcon, LoopbackServer]]:
    app = MiniFalcon()
    with LoopbackServer(app) as server:
        yield app, server


def test_request_helpers_encode_and_authenticate(
    falcon: tuple[MiniFalcon, LoopbackServer],
) -> None:
    app, server = falcon
    with (
        FalconAuth("client-a", "secret-a", clouds={"us-1": server.url}) as auth,
        AuthorizedPoolManager(auth) as http,
    ):
        body = json.dumps({"ids": ["x"]}).encode()
        response = http.request(
            "POST",
            f"{server.url}/devices/entities/devices-actions/v2",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 200
        http.request("GET", f"{server.url}/devices/queries/devices/v1", fields={"limit": "5"})
    sent = [r for r in server.received if r.path.startswith("/devices")]
    assert sent[0].body == body
    assert sent[1].path == "/devices/queries/devices/v1?limit=5"
    assert {r.headers["Authorization"] for r in sent} == {"Bearer tok-1"}
    assert app.issued == ["tok-1"]


def test_requests_and_urllib3_share_one_token(falcon: tuple[MiniFalcon, LoopbackServer]) -> None:
    import requests

    app, server = falcon
    with FalconAuth("client-a", "secret-a", clouds={"us-1": server.url}) as auth:
        with AuthorizedPoolManager(auth) as http:
            http.request("GET", f"{server.url}/a")
        with requests.Session() as session:
            session.auth = auth
            session.get(f"{server.url}/b")
    assert app.issued == ["tok-1"]


def test_no_token_means_the_request_is_not_sent() -> None:
    with LoopbackServer(lambda _: Answer(500, b"{}")) as server:
        auth = FalconAuth(
            "client-a",
            "secret-a",
            clouds={"us-1": server.url},
            retry=FalconRetry(total=0, allowed_methods=None),
        )
        with AuthorizedPoolManager(auth) as http, pytest.raises(TokenEndpointError):
            http.request("GET", f"{server.url}/devices")
        auth.close()
        assert [r.path for r in server.received] == ["/oauth2/token"]


def test_a_given_pool_manager_is_used_and_left_open(
    falcon: tuple[MiniFalcon, LoopbackServer],
) -> None:
    _, server = falcon
    pool = urllib3.PoolManager(headers={"X-Pool": "mine"})
    with FalconAuth("client-a", "secret-a", clouds={"us-1": server.url}) as auth:
        with AuthorizedPoolManager(auth, http=pool) as http:
            http.request("GET", f"{server.url}/x")
        assert len(pool.pools) == 1  # not cleared: the caller owns it
    pool.clear()
    assert server.received[-2].headers["X-Pool"] == "mine"


# Redirects are followed by AuthorizedPoolManager itself, so that every hop is judged against the
# token's scope; apart from the token, a chain must go exactly as urllib3's PoolManager sends it.
_CHAIN = {
    "/a": Answer(302, b"", {"Location": "/b"}),
    "/b": Answer(302, b"", {"Location": "/c"}),
    "/see-other": Answer(303, b"", {"Location": "/c"}),
    "/c": Answer(200, b"{}"),
}


def _sent(server: LoopbackServer) -> list[tuple[str, str, bytes, str | None, str | None]]:
    return [
        (r.method, r.path, r.body, r.headers.get("Content-Type"), r.headers.get("Cookie"))
        for r in server.received
        if "/oauth2/" not in r.path
    ]


@pytest.mark.parametrize(
    ("method", "path", "options", "outcome"),
    [
        ("GET", "/a", {}, 200),
        ("GET", "/a", {"redirect": False}, 302),
        ("GET", "/a", {"retries": False}, 302),
        ("GET", "/a", {"retries": urllib3.Retry(redirect=1, raise_on_redirect=False)}, 302),
        ("GET", "/a", {"retries": urllib3.Retry(redirect=1)}, urllib3.exceptions.MaxRetryError),
        ("POST", "/see-other", {}, 200),
    ],
)
def test_redirects_go_as_urllib3_sends_them_with_the_token_on_each_hop(
    falcon: tuple[MiniFalcon, LoopbackServer],
    method: str,
    path: str,
    options: dict[str, Any],
    outcome: int | type[Exception],
) -> None:
    app, server = falcon
    server.handler = lambda r: _CHAIN[r.path] if r.path in _CHAIN else app(r)
    headers = {"Content-Type": "application/json", "Cookie": "c=1"}

    def send(http: urllib3.PoolManager | AuthorizedPoolManager) -> int | type[Exception]:
        try:
            return int(
                http.urlopen(
                    method, f"{server.url}{path}", body=b"{}", headers=headers, **options
                ).status
            )
        except urllib3.exceptions.MaxRetryError as exc:
            return type(exc)

    with urllib3.PoolManager() as plain:
        assert send(plain) == outcome
    expected = _sent(server)
    server.received.clear()
    with (
        FalconAuth("client-a", "secret-a", clouds={"us-1": server.url}) as auth,
        AuthorizedPoolManager(auth) as http,
    ):
        assert send(http) == outcome
    assert _sent(server) == expected
    api = [r for r in server.received if "/oauth2/" not in r.path]
    assert {r.headers.get("Authorization") for r in api} == {"Bearer tok-1"}


def test_a_hop_to_another_origin_loses_the_token_and_the_callers_cookie(
    falcon: tuple[MiniFalcon, LoopbackServer],
) -> None:
    app, server = falcon
    with LoopbackServer(lambda _: Answer(200, b"{}")) as other:
        app.redirect_to = f"{other.url}/landing"
        with (
            FalconAuth("client-a", "secret-a", clouds={"us-1": server.url}) as auth,
            AuthorizedPoolManager(auth) as http,
        ):
            response = http.request("GET", f"{server.url}/redirect/me", headers={"Cookie": "c=1"})
        assert response.status == 200
        assert [
            (r.headers.get("Authorization"), r.headers.get("Cookie")) for r in other.received
        ] == [(None, None)]
    first = [r for r in server.received if r.path == "/redirect/me"]
    assert [(r.headers["Authorization"], r.headers["Cookie"]) for r in first] == [
        ("Bearer tok-1", "c=1")
    ]
    assert response.retries is not None
    assert [entry.redirect_location for entry in response.retries.history] == [
        f"{other.url}/landing"
    ]
