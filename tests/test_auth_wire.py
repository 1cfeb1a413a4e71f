"""FalconAuth on real loopback sockets: bodies, redirects across hosts, cookies."""

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


class MiniFalcon:
    """Token endpoint plus an API that rejects the tokens listed in ``reject``."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self.reject: set[str] = set()
        self.redirect_to: str | None = None
        self.set_cookie_on_401 = False
        self.lock = threading.Lock()

    def __call__(self, request: Received) -> Answer:
        if request.path == "/oauth2/token":
            with self.lock:
                value = f"tok-{len(self.issued) + 1}"
                self.issued.append(value)
            return Answer(201, json.dumps({"access_token": value, "expires_in": 1799}).encode())
        if request.path == "/oauth2/revoke":
            return Answer(200, b'{"errors": []}')
        if self.redirect_to and request.path.startswith("/redirect"):
            return Answer(302, b"", {"Location": self.redirect_to})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.reject:
            headers = (
                {"Set-Cookie": "falcon-affinity=node-7; Path=/"} if self.set_cookie_on_401 else {}
            )
            return Answer(401, b'{"errors": [{"code": 401}]}', headers)
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


def test_file_body_is_rewound_and_resent_byte_identical(
    falcon: tuple[MiniFalcon, LoopbackServer], auth: FalconAuth, tmp_path: Path
) -> None:
    app, server = falcon
    payload = bytes(range(256)) * 400  # 100 KiB, every byte value
    upload = tmp_path / "sample.bin"
    upload.write_bytes(payload)
    app.reject.add("tok-1")
    with requests.Session() as session, upload.open("rb") as body:
        session.auth = auth
        response = session.post(f"{server.url}/samples/entities/samples/v2", data=body)
    assert response.status_code == 200
    assert response.json() == {
        "length": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    sent = api_calls(server, "/samples/")
    assert [r.body == payload for r in sent] == [True, True]
    assert [r.headers["Authorization"] for r in sent] == ["Bearer tok-1", "Bearer tok-2"]


def test_file_body_rewinds_to_where_it_started(
    falcon: tuple[MiniFalcon, LoopbackServer], auth: FalconAuth, tmp_path: Path
) -> None:
    app, server = falcon
    upload = tmp_path / "sample.bin"
    upload.write_bytes(b"HEADER" + b"x" * 1000)
    app.reject.add("tok-1")
    with requests.Session() as session, upload.open("rb") as body:
        body.seek(6)
        session.auth = auth
        assert session.post(f"{server.url}/upload", data=body).status_code == 200
    assert [r.body for r in api_calls(server, "/upload")] == [b"x" * 1000] * 2


def test_generator_body_is_never_resent(
    falcon: tuple[MiniFalcon, LoopbackServer], auth: FalconAuth, caplog: pytest.LogCaptureFixture
) -> None:
    app, server = falcon
    app.reject.add("tok-1")

    def chunks() -> Iterator[bytes]:
        yield b"first,"
        yield b"second"

    with requests.Session() as session, caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        session.auth = auth
        response = session.post(f"{server.url}/stream", data=chunks())
    assert response.status_code == 401
    assert [r.body for r in api_calls(server, "/stream")] == [b"first,second"]  # chunked, once
    assert app.issued == ["tok-1"]
    assert "cannot be sent again" in caplog.text


def test_redirect_to_another_host_never_carries_the_token(
    falcon: tuple[MiniFalcon, LoopbackServer], auth: FalconAuth
) -> None:
    app, server = falcon
    with LoopbackServer(lambda _: Answer(401, b"{}")) as elsewhere:
        app.redirect_to = f"{elsewhere.url}/landing"
        with requests.Session() as session:
            session.auth = auth
            response = session.get(f"{server.url}/redirect/me")
        assert response.status_code == 401  # the other host's 401: not ours to retry
        assert [r.path for r in elsewhere.received] == ["/landing"]
        assert "Authorization" not in elsewhere.received[0].headers
    assert api_calls(server, "/redirect")[0].headers["Authorization"] == "Bearer tok-1"
    assert app.issued == ["tok-1"]


def test_redirect_to_another_port_on_the_same_host_never_carries_the_token(
    falcon: tuple[MiniFalcon, LoopbackServer], auth: FalconAuth
) -> None:
    app, server = falcon
    with LoopbackServer(lambda _: Answer(200, b"{}")) as other_port:
        app.redirect_to = f"{other_port.url}/landing".replace("127.0.0.1", "localhost")
        with requests.Session() as session:
            session.auth = auth
            session.get(f"{server.url}/redirect/me")
        assert "Authorization" not in other_port.received[0].headers


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
