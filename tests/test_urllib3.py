"""What only the urllib3 front end has: RequestMethods helpers, pool ownership, failure paths."""

from __future__ import annotations

import json
from collections.abc import Iterator

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
