"""One behaviour suite for both front ends (requests and urllib3), on real loopback sockets.

Each contract test runs against ``FalconAuth`` on a ``requests.Session`` and against
``AuthorizedPoolManager`` on urllib3, and asserts what the server saw. Tests of features only
one front end has (cookies, FalconSession) follow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from loopback import Answer, LoopbackServer, Received

from requests_falcon_auth import FalconAuth, FalconRetry, FalconSession
from requests_falcon_auth.urllib3 import AuthorizedPoolManager


class MiniFalcon:
    """Token endpoint plus an API that rejects the tokens listed in ``reject``."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.reject: set[str] = set()
        self.redirect_to: str | None = None
        self.prefix = ""
        self.bad_token_status = 401  # 429: the bad-token budget is spent
        self.account_limited: str | None = None
        self.set_cookie_on_401 = False
        self.forbidden: str | None = None
        self.lock = threading.Lock()

    def __call__(self, request: Received) -> Answer:
        if not request.path.startswith(self.prefix):
            return Answer(404, b'{"errors": [{"code": 404}]}')
        path = request.path[len(self.prefix) :]
        if path == "/oauth2/token":
            with self.lock:
                value = f"tok-{len(self.issued) + 1}"
                self.issued.append(value)
            return Answer(201, json.dumps({"access_token": value, "expires_in": 1799}).encode())
        if path == "/oauth2/revoke":
            return Answer(200, b'{"errors": []}')
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.reject:
            headers = (
                {"Set-Cookie": "falcon-affinity=node-7; Path=/"} if self.set_cookie_on_401 else {}
            )
            if self.bad_token_status == 429:
                headers.update({"X-Ratelimit-Limit": "15", "X-Ratelimit-Remaining": "0"})
            return Answer(self.bad_token_status, b'{"errors": [{"code": 401}]}', headers)
        if self.account_limited and path.startswith(self.account_limited):
            limits = {"X-Ratelimit-Limit": "6000", "X-Ratelimit-Remaining": "0"}
            return Answer(429, b'{"errors": [{"code": 429}]}', limits)
        if self.redirect_to and path.startswith("/redirect"):
            return Answer(302, b"", {"Location": self.redirect_to})
        if self.forbidden and path.startswith(self.forbidden):
            return Answer(403, b'{"errors": [{"code": 403}]}')
        digest = hashlib.sha256(request.body).hexdigest()
        return Answer(200, json.dumps({"length": len(request.body), "sha256": digest}).encode())


@pytest.fixture
def falcon() -> Iterator[tuple[MiniFalcon, LoopbackServer]]:
    app = MiniFalcon()
    with LoopbackServer(app) as server:
        yield app, server


@pytest.fixture
def auth(falcon: tuple[MiniFalcon, LoopbackServer]) -> Iterator[FalconAuth]:
    _, server = falcon
    with FalconAuth(
        "client-a",
        "secret-a",
        clouds={"us-1": server.url},
        retry=FalconRetry(backoff_factor=0, allowed_methods=None),
    ) as auth:
        yield auth


def api_calls(server: LoopbackServer, path: str) -> list[Received]:
    return [r for r in server.received if r.path.startswith(path)]


class FrontEnd:
    """Sends one request through a front end; returns the final status."""

    def __init__(self, kind: str, auth: FalconAuth) -> None:
        self.kind = kind
        self.session = requests.Session()
        self.session.auth = auth
        self.http = AuthorizedPoolManager(auth)

    def send(self, method: str, url: str, body: object = None) -> int:
        if self.kind == "requests":
            with self.session.request(method, url, data=body) as response:
                return response.status_code
        status: int = self.http.request(method, url, body=body).status
        return status

    def close(self) -> None:
        self.session.close()
        self.http.clear()


@pytest.fixture(params=["requests", "urllib3"])
def front_end(request: pytest.FixtureRequest, auth: FalconAuth) -> Iterator[FrontEnd]:
    sender = FrontEnd(request.param, auth)
    yield sender
    sender.close()


Falcon = tuple[MiniFalcon, LoopbackServer]


def test_token_goes_to_the_api_and_is_reused(falcon: Falcon, front_end: FrontEnd) -> None:
    app, server = falcon
    assert [front_end.send("GET", f"{server.url}/devices/v1") for _ in range(3)] == [200] * 3
    assert [r.headers["Authorization"] for r in api_calls(server, "/devices")] == [
        "Bearer tok-1"
    ] * 3
    assert app.issued == ["tok-1"]


def test_other_hosts_get_no_token(falcon: Falcon, front_end: FrontEnd) -> None:
    app, _ = falcon
    with LoopbackServer(lambda _: Answer(200, b"{}")) as other:
        assert front_end.send("GET", f"{other.url}/feed") == 200
        assert "Authorization" not in other.received[0].headers
    assert app.issued == []


def test_401_is_healed_once(falcon: Falcon, front_end: FrontEnd) -> None:
    app, server = falcon
    app.reject.add("tok-1")
    assert front_end.send("GET", f"{server.url}/devices/v1") == 200
    sent = [r.headers["Authorization"] for r in api_calls(server, "/devices")]
    assert sent == ["Bearer tok-1", "Bearer tok-2"]


def test_a_second_401_is_returned(
    falcon: Falcon, front_end: FrontEnd, caplog: pytest.LogCaptureFixture
) -> None:
    app, server = falcon
    app.reject.update({"tok-1", "tok-2", "tok-3"})
    with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        assert front_end.send("GET", f"{server.url}/devices/v1") == 401
    assert len(api_calls(server, "/devices")) == 2
    assert app.issued == ["tok-1", "tok-2"]
    assert "401 again" in caplog.text


def test_a_bad_token_429_is_healed_like_a_401(falcon: Falcon, front_end: FrontEnd) -> None:
    app, server = falcon
    app.bad_token_status = 429
    app.reject.add("tok-1")
    assert front_end.send("GET", f"{server.url}/devices/v1") == 200
    sent = [r.headers["Authorization"] for r in api_calls(server, "/devices")]
    assert sent == ["Bearer tok-1", "Bearer tok-2"]


def test_an_account_429_is_the_callers_and_costs_no_token(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    app.account_limited = "/busy"
    assert front_end.send("GET", f"{server.url}/busy/v1") == 429
    assert len(api_calls(server, "/busy")) == 1
    assert app.issued == ["tok-1"]


def test_a_rejected_token_is_not_revoked_at_close(
    falcon: Falcon, front_end: FrontEnd, auth: FalconAuth
) -> None:
    app, server = falcon
    app.reject.add("tok-1")
    assert front_end.send("GET", f"{server.url}/devices/v1") == 200
    auth.close()
    revoked = [r.body for r in server.received if r.path == "/oauth2/revoke"]
    assert revoked == [b"token=tok-2&client_id=client-a"]


def test_403_is_not_retried(falcon: Falcon, front_end: FrontEnd) -> None:
    app, server = falcon
    app.forbidden = "/hosts"
    assert front_end.send("GET", f"{server.url}/hosts/v1") == 403
    assert len(api_calls(server, "/hosts")) == 1
    assert app.issued == ["tok-1"]


def test_file_body_is_rewound_and_resent_byte_identical(
    falcon: Falcon, front_end: FrontEnd, tmp_path: Path
) -> None:
    app, server = falcon
    payload = bytes(range(256)) * 400  # 100 KiB, every byte value
    upload = tmp_path / "sample.bin"
    upload.write_bytes(payload)
    app.reject.add("tok-1")
    with upload.open("rb") as body:
        assert front_end.send("POST", f"{server.url}/samples/entities/samples/v2", body) == 200
    sent = api_calls(server, "/samples/")
    assert [hashlib.sha256(r.body).digest() for r in sent] == [hashlib.sha256(payload).digest()] * 2
    assert [r.headers["Authorization"] for r in sent] == ["Bearer tok-1", "Bearer tok-2"]


def test_file_body_rewinds_to_where_it_started(
    falcon: Falcon, front_end: FrontEnd, tmp_path: Path
) -> None:
    app, server = falcon
    upload = tmp_path / "sample.bin"
    upload.write_bytes(b"HEADER" + b"x" * 1000)
    app.reject.add("tok-1")
    with upload.open("rb") as body:
        body.seek(6)
        assert front_end.send("POST", f"{server.url}/upload", body) == 200
    assert [r.body for r in api_calls(server, "/upload")] == [b"x" * 1000] * 2


def test_bytes_body_is_resent(falcon: Falcon, front_end: FrontEnd) -> None:
    app, server = falcon
    app.reject.add("tok-1")
    assert front_end.send("PUT", f"{server.url}/rules", b'{"rule": 1}') == 200
    assert [r.body for r in api_calls(server, "/rules")] == [b'{"rule": 1}'] * 2


def test_generator_body_is_never_resent(
    falcon: Falcon, front_end: FrontEnd, caplog: pytest.LogCaptureFixture
) -> None:
    app, server = falcon
    app.reject.add("tok-1")

    def chunks() -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        assert front_end.send("POST", f"{server.url}/stream", chunks()) == 401
    assert [r.body for r in api_calls(server, "/stream")] == [b"first,second"]  # chunked, once
    assert app.issued == ["tok-1"]
    assert "cannot be sent again" in caplog.text


def test_redirect_to_another_host_never_carries_the_token(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    with LoopbackServer(lambda _: Answer(401, b"{}")) as elsewhere:
        app.redirect_to = f"{elsewhere.url}/landing"
        assert front_end.send("GET", f"{server.url}/redirect/me") == 401  # not ours to heal
        assert [r.path for r in elsewhere.received] == ["/landing"]
        assert "Authorization" not in elsewhere.received[0].headers
    assert api_calls(server, "/redirect")[0].headers["Authorization"] == "Bearer tok-1"
    assert app.issued == ["tok-1"]


def test_redirect_to_another_port_on_the_same_host_never_carries_the_token(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    with LoopbackServer(lambda _: Answer(200, b"{}")) as other_port:
        app.redirect_to = f"{other_port.url}/landing".replace("127.0.0.1", "localhost")
        assert front_end.send("GET", f"{server.url}/redirect/me") == 200
        assert "Authorization" not in other_port.received[0].headers


def test_a_401_after_a_same_origin_redirect_is_healed_once(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    app.redirect_to = "/landing"
    front_end.send("GET", f"{server.url}/devices/v1")  # tok-1 is issued and cached
    app.reject.add("tok-1")
    assert front_end.send("GET", f"{server.url}/redirect/me") == 200
    assert app.issued == ["tok-1", "tok-2"]
    assert api_calls(server, "/landing")[-1].headers["Authorization"] == "Bearer tok-2"


def test_a_later_redirect_hop_carries_the_fresh_token_after_a_healed_401(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    app.redirect_to = "/landing"
    app.reject.add("tok-1")
    assert front_end.send("GET", f"{server.url}/redirect/me") == 200
    assert [r.headers["Authorization"] for r in api_calls(server, "/landing")] == ["Bearer tok-2"]
    assert app.issued == ["tok-1", "tok-2"]


def test_a_url_the_parsers_read_differently_gets_no_token(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    """urlsplit puts this URL at the API; urllib3 connects to the other port (the authority
    ends at the backslash for it). The token must go to neither."""
    app, server = falcon
    with LoopbackServer(lambda _: Answer(401, b"{}")) as other:
        port = server.url.rsplit(":", 1)[1]
        url = f"{other.url}\\@127.0.0.1:{port}/devices/v1"
        assert front_end.send("GET", url) == 401
        assert [r.headers.get("Authorization") for r in other.received] == [None]
    assert app.issued == []
    assert api_calls(server, "/devices") == []


def test_a_base_url_with_a_path_prefix_scopes_the_token_to_it(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    app.prefix = "/falcon"
    with FalconAuth("client-a", "secret-a", base_url=f"{server.url}/falcon/") as auth:
        prefixed = FrontEnd(front_end.kind, auth)
        assert prefixed.send("GET", f"{server.url}/falcon/devices/v1") == 200
        for outside in ["/falcon-other/x", "/other/x", "/falcon/../other/x", "/falcon/%2e%2e/x"]:
            prefixed.send("GET", f"{server.url}{outside}")
        prefixed.close()
    sent = [(r.path, r.headers.get("Authorization")) for r in server.received]
    assert sent[1] == ("/falcon/devices/v1", "Bearer tok-1")
    # Dot segments arrive resolved; requests sends %2e%2e as "..", urllib3 as it is.
    assert [bearer for path, bearer in sent[2:] if "/oauth2/" not in path] == [None] * 4


def test_cookies_set_by_the_401_go_with_the_resend(
    falcon: tuple[MiniFalcon, LoopbackServer], auth: FalconAuth
) -> None:
    app, server = falcon
    app.reject.add("tok-1")
    app.set_cookie_on_401 = True
    with requests.Session() as session:
        session.auth = auth
        assert session.get(f"{server.url}/devices").status_code == 200
    first, second = api_calls(server, "/devices")
    assert "Cookie" not in first.headers
    assert second.headers["Cookie"] == "falcon-affinity=node-7"


def test_falcon_session_resolves_paths_and_revokes_on_close(
    falcon: tuple[MiniFalcon, LoopbackServer],
) -> None:
    _, server = falcon
    with FalconSession(
        client_id="client-a", client_secret="secret-a", clouds={"us-1": server.url}
    ) as s:
        assert s.get("/devices/queries/devices/v1").status_code == 200
        assert s.get("devices/queries/devices/v1").status_code == 200
    paths = [r.path for r in server.received]
    assert paths == [
        "/oauth2/token",
        "/devices/queries/devices/v1",
        "/devices/queries/devices/v1",
        "/oauth2/revoke",
    ]
    assert b"token=tok-1" in server.received[-1].body
