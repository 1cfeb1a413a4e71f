"""One behaviour suite for every front end, on real loopback sockets, over HTTP and TLS.

Each contract test runs against ``FalconAuth`` on a ``requests.Session``, ``AuthorizedPoolManager``
on urllib3, and ``FalconHttpxAuth`` on ``httpx.Client`` and ``httpx.AsyncClient``, each over plain
HTTP and over TLS, and asserts what the server saw. Tests of features only some front ends have
(cookies, httpx's opt-in redirects, FalconSession) follow.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
import requests
import urllib3
from fakes import MiniFalcon
from loopback import Answer, LoopbackServer, Received

from requests_falcon_auth import FalconAuth, FalconRetry, FalconSession
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.testing._tls import TlsMaterial
from requests_falcon_auth.urllib3 import AuthorizedPoolManager


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsMaterial]:
    material = TlsMaterial(("127.0.0.1", "localhost"))
    yield material
    material.close()


@pytest.fixture(params=["http", "https"])
def falcon(
    request: pytest.FixtureRequest, tls: TlsMaterial
) -> Iterator[tuple[MiniFalcon, LoopbackServer]]:
    app = MiniFalcon()
    with LoopbackServer(app, tls.server_context if request.param == "https" else None) as server:
        server.ca_bundle = tls.ca_bundle if request.param == "https" else None
        yield app, server


def make_auth(server: LoopbackServer, **options: Any) -> FalconAuth:
    """A FalconAuth for the server, trusting its CA when it speaks TLS."""
    session = requests.Session()
    session.verify = server.ca_bundle or True
    options.setdefault("clouds", {"us-1": server.url})
    return FalconAuth("client-a", "secret-a", session=session, **options)


@pytest.fixture
def auth(falcon: tuple[MiniFalcon, LoopbackServer]) -> Iterator[FalconAuth]:
    _, server = falcon
    with make_auth(server, retry=FalconRetry(backoff_factor=0, allowed_methods=None)) as auth:
        yield auth


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Waits for ``condition`` (checked every millisecond) up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def api_calls(server: LoopbackServer, path: str) -> list[Received]:
    return [r for r in server.received if r.path.startswith(path)]


DRIVERS = ["requests", "urllib3", "httpx", "httpx-async"]


class FrontEnd:
    """Sends one request through a front end (redirects followed); returns the final status.

    httpx sends a file body as a stream it cannot rewind, so ``rewinds_files`` is False there.
    """

    def __init__(self, kind: str, auth: FalconAuth, ca_bundle: str | None) -> None:
        self.kind = kind
        self.rewinds_files = not kind.startswith("httpx")
        self.session = requests.Session()
        # Per request: requests lets REQUESTS_CA_BUNDLE override session.verify (psf/requests#3829).
        self.ca_bundle = ca_bundle
        self.pool = urllib3.PoolManager(ca_certs=ca_bundle)
        # One context for every client made here: httpx builds one per client otherwise, which
        # takes long enough (the CA store, read again) to leave a test's cooldown behind.
        self.verify = ssl.create_default_context(cafile=ca_bundle or certifi.where())
        self.session.auth = auth
        self.http = AuthorizedPoolManager(auth, self.pool)
        self.httpx_auth = FalconHttpxAuth(auth)
        self.httpx = httpx.Client(auth=self.httpx_auth, verify=self.verify, follow_redirects=True)

    def use(self, auth: FalconAuth) -> None:
        """Sends with ``auth`` from now on."""
        self.httpx.close()
        self.session.auth = auth
        self.http = AuthorizedPoolManager(auth, self.pool)
        self.httpx_auth = FalconHttpxAuth(auth)
        self.httpx = httpx.Client(auth=self.httpx_auth, verify=self.verify, follow_redirects=True)

    def send(self, method: str, url: str, body: Any = None) -> int:
        if self.kind == "requests":
            verify = self.ca_bundle or True
            with self.session.request(method, url, data=body, verify=verify) as response:
                return response.status_code
        if self.kind == "urllib3":
            status: int = self.http.request(method, url, body=body).status
            return status
        if self.kind == "httpx":
            return self.httpx.request(method, url, content=body).status_code
        return asyncio.run(self._send_async(method, url, body))

    async def _send_async(self, method: str, url: str, body: object) -> int:
        async with httpx.AsyncClient(
            auth=self.httpx_auth, verify=self.verify, follow_redirects=True
        ) as client:
            response = await client.request(method, url, content=_async_body(body))
            return response.status_code

    def close(self) -> None:
        self.session.close()
        self.httpx.close()
        self.pool.clear()


def _async_body(body: object) -> Any:
    """An async client streams an iterable body only as an async iterable."""
    if body is None or isinstance(body, (bytes, str)):
        return body

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in body:  # type: ignore[attr-defined]
            yield chunk

    return chunks()


def _front_end(
    request: pytest.FixtureRequest, auth: FalconAuth, falcon: tuple[MiniFalcon, LoopbackServer]
) -> Iterator[FrontEnd]:
    sender = FrontEnd(request.param, auth, falcon[1].ca_bundle)
    yield sender
    sender.close()


@pytest.fixture(params=DRIVERS)
def front_end(
    request: pytest.FixtureRequest, auth: FalconAuth, falcon: tuple[MiniFalcon, LoopbackServer]
) -> Iterator[FrontEnd]:
    yield from _front_end(request, auth, falcon)


@pytest.fixture(params=["requests", "urllib3"])
def front_end_rewinding_files(
    request: pytest.FixtureRequest, auth: FalconAuth, falcon: tuple[MiniFalcon, LoopbackServer]
) -> Iterator[FrontEnd]:
    """The front ends that rewind a file body (httpx streams one: it is never re-sent)."""
    yield from _front_end(request, auth, falcon)


@pytest.fixture(params=[d for d in DRIVERS if d != "urllib3"])
def front_end_with_cookies(
    request: pytest.FixtureRequest, auth: FalconAuth, falcon: tuple[MiniFalcon, LoopbackServer]
) -> Iterator[FrontEnd]:
    """The front ends whose library keeps cookies (urllib3 has no jar)."""
    yield from _front_end(request, auth, falcon)


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


def test_an_account_429_is_waited_out_and_resent_with_the_same_token(
    falcon: Falcon, front_end: FrontEnd, auth: FalconAuth
) -> None:
    app, server = falcon
    app.account_limited, app.account_429s, app.account_wait = "/busy", 2, 0.2
    started = time.monotonic()
    assert front_end.send("POST", f"{server.url}/busy/v1", b'{"ids": [1]}') == 200
    assert time.monotonic() - started >= 0.3  # two waits for the epoch time the 429 named
    sent = api_calls(server, "/busy")
    assert [r.body for r in sent] == [b'{"ids": [1]}'] * 3
    assert {r.headers["Authorization"] for r in sent} == {"Bearer tok-1"}
    assert app.issued == ["tok-1"]  # the budget was spent, not the token
    stats = auth.rate_limits
    assert (stats.waits, stats.resent, stats.gave_up) == (2, 2, 0)
    assert stats.waited >= 0.3


def test_one_429_makes_every_caller_of_the_account_wait_instead_of_its_own_429(
    falcon: Falcon, front_end: FrontEnd, auth: FalconAuth
) -> None:
    app, server = falcon
    app.account_limited, app.account_429s, app.account_wait = "/busy", 1, 0.5
    url = f"{server.url}/busy/v1"
    with ThreadPoolExecutor(9) as pool:
        first = pool.submit(front_end.send, "GET", url)
        assert app.account_429_sent.wait(10)
        assert until(lambda: auth.rate_limits.resent == 1)  # the cooldown is known here
        others = [pool.submit(front_end.send, "GET", url) for _ in range(8)]
        statuses = [first.result(), *(other.result() for other in others)]
    assert statuses == [200] * 9
    assert app.account_429_answers == 1  # the other eight waited instead of trying
    assert len(api_calls(server, "/busy")) == 10
    assert auth.rate_limits.waits >= 2  # the first, and the others that came in time to wait


def test_an_account_429_is_the_callers_with_rate_limit_wait_zero(
    falcon: Falcon, front_end: FrontEnd, auth: FalconAuth
) -> None:
    app, server = falcon
    app.account_limited, app.account_wait = "/busy", 30.0
    fail_fast = make_auth(server, rate_limit_wait=0)
    front_end.use(fail_fast)
    with fail_fast:
        assert front_end.send("GET", f"{server.url}/busy/v1") == 429
        assert len(api_calls(server, "/busy")) == 1
        stats = fail_fast.rate_limits
        assert (stats.waits, stats.resent, stats.gave_up) == (0, 0, 1)


def test_a_429_past_the_wait_budget_is_returned_without_waiting(
    falcon: Falcon, front_end: FrontEnd, auth: FalconAuth, caplog: pytest.LogCaptureFixture
) -> None:
    app, server = falcon
    app.account_limited, app.account_wait = "/busy", 600.0
    with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        assert front_end.send("GET", f"{server.url}/busy/v1") == 429
    assert len(api_calls(server, "/busy")) == 1
    assert "past rate_limit_wait" in caplog.text


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
        status = front_end.send("POST", f"{server.url}/samples/entities/samples/v2", body)
    sent = api_calls(server, "/samples/")
    assert {hashlib.sha256(r.body).digest() for r in sent} == {hashlib.sha256(payload).digest()}
    if front_end.rewinds_files:
        assert status == 200
        assert [r.headers["Authorization"] for r in sent] == ["Bearer tok-1", "Bearer tok-2"]
    else:  # streamed: never re-sent, the 401 is the caller's
        assert status == 401
        assert [r.headers["Authorization"] for r in sent] == ["Bearer tok-1"]


def test_file_body_rewinds_to_where_it_started(
    falcon: Falcon, front_end_rewinding_files: FrontEnd, tmp_path: Path
) -> None:
    app, server = falcon
    upload = tmp_path / "sample.bin"
    upload.write_bytes(b"HEADER" + b"x" * 1000)
    app.reject.add("tok-1")
    with upload.open("rb") as body:
        body.seek(6)
        assert front_end_rewinding_files.send("POST", f"{server.url}/upload", body) == 200
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


def test_budget_headers_from_another_host_steer_nothing(
    falcon: Falcon, front_end: FrontEnd, auth: FalconAuth
) -> None:
    """A redirect target elsewhere answers with budget headers: a budget of one call, spent,
    then a 429 naming a cooldown of ten minutes. Neither is the account's: nothing paces, waits
    or holds up the next call to the API."""
    app, server = falcon
    busy_until = f"{time.time() + 600:.3f}"
    spent = {"X-Ratelimit-Limit": "1", "X-Ratelimit-Remaining": "0"}

    def elsewhere_answer(request: Received) -> Answer:
        if request.path == "/busy":
            return Answer(429, b"{}", {**spent, "X-Ratelimit-Retryafter": busy_until})
        return Answer(200, b"{}", spent)

    with LoopbackServer(elsewhere_answer) as elsewhere:
        app.redirect_to = f"{elsewhere.url}/landing"
        assert front_end.send("GET", f"{server.url}/redirect/me") == 200
        app.redirect_to = f"{elsewhere.url}/busy"
        assert front_end.send("GET", f"{server.url}/redirect/me") == 429  # not ours to wait out
    assert front_end.send("GET", f"{server.url}/devices/v1") == 200
    stats = auth.rate_limits
    assert (stats.limit, stats.remaining) == (None, None)
    assert (stats.waits, stats.resent, stats.gave_up) == (0, 0, 0)
    assert auth.port.budget.clear


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
    falcon: Falcon, front_end: FrontEnd, tls: TlsMaterial
) -> None:
    """urlsplit puts this URL at the API; urllib3 connects to the other port (the authority
    ends at the backslash for it). The token must go to neither.

    httpx escapes the backslash into the userinfo (``%5C@``) before anything sees the URL, and
    connects to the API: the URL it routes is one every parser reads alike, so the token goes
    with it, to the API."""
    app, server = falcon
    context = tls.server_context if server.ca_bundle else None
    with LoopbackServer(lambda _: Answer(401, b"{}"), context) as other:
        port = server.url.rsplit(":", 1)[1]
        url = f"{other.url}\\@127.0.0.1:{port}/devices/v1"
        status = front_end.send("GET", url)
        received = [r.headers.get("Authorization") for r in other.received]
    if front_end.kind.startswith("httpx"):
        assert (status, received) == (200, [])
        assert [r.headers["Authorization"] for r in api_calls(server, "/devices")] == [
            "Bearer tok-1"
        ]
    else:
        assert (status, received) == (401, [None])
        assert app.issued == []
        assert api_calls(server, "/devices") == []


def test_a_base_url_with_a_path_prefix_scopes_the_token_to_it(
    falcon: Falcon, front_end: FrontEnd
) -> None:
    app, server = falcon
    app.prefix = "/falcon"
    with make_auth(server, clouds=None, base_url=f"{server.url}/falcon/") as auth:
        prefixed = FrontEnd(front_end.kind, auth, server.ca_bundle)
        assert prefixed.send("GET", f"{server.url}/falcon/devices/v1") == 200
        for outside in ["/falcon-other/x", "/other/x", "/falcon/../other/x", "/falcon/%2e%2e/x"]:
            prefixed.send("GET", f"{server.url}{outside}")
        prefixed.close()
    sent = [(r.path, r.headers.get("Authorization")) for r in server.received]
    assert sent[1] == ("/falcon/devices/v1", "Bearer tok-1")
    # Dot segments arrive resolved; requests sends %2e%2e as "..", urllib3 as it is.
    assert [bearer for path, bearer in sent[2:] if "/oauth2/" not in path] == [None] * 4


@pytest.fixture
def gateway(falcon: Falcon, front_end: FrontEnd) -> Iterator[FrontEnd]:
    """A front end whose FalconAuth's base URL is a gateway path, ``<server>/falcon-us1``."""
    app, server = falcon
    app.prefix = "/falcon-us1"
    with make_auth(server, clouds=None, base_url=f"{server.url}/falcon-us1") as auth:
        sender = FrontEnd(front_end.kind, auth, server.ca_bundle)
        yield sender
        sender.close()


def test_a_redirect_out_of_the_path_prefix_never_carries_the_token(
    falcon: Falcon, gateway: FrontEnd
) -> None:
    """Same origin, other path: requests, httpx and urllib3 would all keep the header. Any
    other application (or open redirect) behind the gateway host would get the Falcon token."""
    app, server = falcon
    app.redirect_to = "/other/landing"
    assert gateway.send("GET", f"{server.url}/falcon-us1/redirect-out") == 404
    app.redirect_to = "/falcon-us1/landing"
    assert gateway.send("GET", f"{server.url}/falcon-us1/redirect-in") == 200
    sent = {r.path: r.headers.get("Authorization") for r in server.received}
    assert sent["/falcon-us1/redirect-out"] == "Bearer tok-1"
    assert sent["/other/landing"] is None
    assert sent["/falcon-us1/landing"] == "Bearer tok-1"  # a hop inside the scope keeps it


@pytest.mark.parametrize("separator", ["%2F", "%2f", "%5c", "%5C"])
def test_an_encoded_separator_never_takes_the_token_out_of_the_prefix(
    falcon: Falcon, gateway: FrontEnd, separator: str
) -> None:
    """requests re-quotes ``%2e`` to ``.`` but keeps ``%2F``: this goes out as
    ``/falcon-us1/..%2F../../other``, which a server that decodes before resolving dot
    segments reads as ``/other``."""
    _, server = falcon
    gateway.send("GET", f"{server.url}/falcon-us1/..{separator}%2e%2e/%2e%2e/other")
    api = [r for r in server.received if "/oauth2/" not in r.path]
    assert [r.headers.get("Authorization") for r in api] == [None]


@pytest.fixture(scope="module")
def default_ports() -> Iterator[tuple[str, TlsMaterial]]:
    """A loopback address whose ports 80 and 443 are free, and TLS material for it: an
    http -> https upgrade that requests and httpx treat as the same site needs default ports.
    Binding them takes root (as CI runs); elsewhere a skip, in CI a failure."""
    for last in range(2, 40):
        host = f"127.0.0.{last}"
        try:
            for port in (80, 443):
                with socket.socket() as probe:
                    probe.bind((host, port))
        except PermissionError as exc:
            if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
                pytest.fail(f"cannot bind port {exc.errno and 80}: CI runs as root")
            pytest.skip("binding ports 80 and 443 takes root")
        except OSError:
            continue
        material = TlsMaterial((host,))
        yield host, material
        material.close()
        return
    pytest.fail("no loopback address with ports 80 and 443 free")


@pytest.mark.parametrize("kind", DRIVERS)
def test_an_http_to_https_upgrade_is_another_origin_and_gets_no_token(
    default_ports: tuple[str, TlsMaterial], kind: str
) -> None:
    """requests' ``should_strip_auth`` and httpx's ``_is_https_redirect`` keep the header from
    ``http://host`` to ``https://host``: another origin (RFC 6454), another server."""
    host, tls = default_ports
    app = MiniFalcon()
    app.redirect_to = f"https://{host}/landing"
    landing = LoopbackServer(lambda _: Answer(200, b"{}"), tls.server_context, (host, 443))
    with LoopbackServer(app, address=(host, 80)) as api, landing, make_auth(api) as auth:
        sender = FrontEnd(kind, auth, tls.ca_bundle)
        try:
            assert sender.send("GET", f"http://{host}/redirect/me") == 200
        finally:
            sender.close()
    assert api_calls(api, "/redirect")[0].headers["Authorization"] == "Bearer tok-1"
    assert [r.headers.get("Authorization") for r in landing.received] == [None]


def test_cookies_set_by_the_401_go_with_the_resend(
    falcon: Falcon, front_end_with_cookies: FrontEnd
) -> None:
    app, server = falcon
    app.reject.add("tok-1")
    app.set_cookie_on_401 = True
    assert front_end_with_cookies.send("GET", f"{server.url}/devices") == 200
    first, second = api_calls(server, "/devices")
    assert "Cookie" not in first.headers
    assert second.headers["Cookie"] == "falcon-affinity=node-7"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["httpx", "httpx-async"])
def test_httpx_follows_redirects_only_when_asked_and_never_with_the_token(
    falcon: Falcon, auth: FalconAuth, asynchronous: bool
) -> None:
    """httpx returns a 302 unless asked to follow; following it by hand
    (``response.next_request``) goes through the auth again, which gives another host nothing."""
    app, server = falcon
    verify = ssl.create_default_context(cafile=server.ca_bundle) if server.ca_bundle else True
    with LoopbackServer(lambda _: Answer(200, b"{}")) as elsewhere:
        app.redirect_to = f"{elsewhere.url}/landing"

        def run(client: httpx.Client) -> list[int]:
            first = client.get(f"{server.url}/redirect/me")
            assert first.next_request is not None
            return [first.status_code, client.send(first.next_request).status_code]

        async def run_async(client: httpx.AsyncClient) -> list[int]:
            first = await client.get(f"{server.url}/redirect/me")
            assert first.next_request is not None
            return [first.status_code, (await client.send(first.next_request)).status_code]

        async def in_loop() -> list[int]:
            async with httpx.AsyncClient(auth=FalconHttpxAuth(auth), verify=verify) as client:
                return await run_async(client)

        if asynchronous:
            statuses = asyncio.run(in_loop())
        else:
            with httpx.Client(auth=FalconHttpxAuth(auth), verify=verify) as client:
                statuses = run(client)
        assert statuses == [302, 200]
        assert [r.headers.get("Authorization") for r in elsewhere.received] == [None]
    assert api_calls(server, "/redirect")[0].headers["Authorization"] == "Bearer tok-1"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["httpx", "httpx-async"])
def test_httpx_next_request_sent_by_hand_loses_the_header_httpx_copied(
    falcon: Falcon, asynchronous: bool
) -> None:
    """httpx copies ``Authorization`` into ``next_request`` for a hop to the same origin; sent
    outside the prefix, the auth flow attaches nothing and must not let the copy go either."""
    app, server = falcon
    app.prefix = "/falcon-us1"
    app.redirect_to = "/other/landing"
    verify = ssl.create_default_context(cafile=server.ca_bundle) if server.ca_bundle else True
    url = f"{server.url}/falcon-us1/redirect-out"

    async def in_loop(auth: FalconHttpxAuth) -> list[int]:
        async with httpx.AsyncClient(auth=auth, verify=verify) as client:
            first = await client.get(url)
            assert first.next_request is not None
            assert first.next_request.headers["Authorization"] == "Bearer tok-1"
            return [first.status_code, (await client.send(first.next_request)).status_code]

    with make_auth(server, clouds=None, base_url=f"{server.url}/falcon-us1") as falcon_auth:
        auth = FalconHttpxAuth(falcon_auth)
        if asynchronous:
            statuses = asyncio.run(in_loop(auth))
        else:
            with httpx.Client(auth=auth, verify=verify) as client:
                first = client.get(url)
                assert first.next_request is not None
                statuses = [first.status_code, client.send(first.next_request).status_code]
    assert statuses == [302, 404]
    assert [r.headers.get("Authorization") for r in api_calls(server, "/other")] == [None]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["httpx", "httpx-async"])
def test_httpx_callers_trace_callback_still_sees_every_event(
    falcon: Falcon, auth: FalconAuth, asynchronous: bool
) -> None:
    """The hop guard rides in httpcore's ``trace`` extension; a caller's own callback there is
    called after it, for every event, and sees the header the guard left."""
    _, server = falcon
    verify = ssl.create_default_context(cafile=server.ca_bundle) if server.ca_bundle else True
    seen: list[tuple[str, bool]] = []

    def note(event: str, info: dict[str, Any]) -> None:
        if event.endswith("send_request_headers.started"):
            headers = dict(info["request"].headers)
            seen.append((event, headers.get(b"Authorization") == b"Bearer tok-1"))

    async def note_async(event: str, info: dict[str, Any]) -> None:
        note(event, info)

    async def in_loop() -> int:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth), verify=verify) as client:
            response = await client.get(
                f"{server.url}/devices/v1", extensions={"trace": note_async}
            )
            return response.status_code

    if asynchronous:
        status = asyncio.run(in_loop())
    else:
        with httpx.Client(auth=FalconHttpxAuth(auth), verify=verify) as client:
            status = client.get(f"{server.url}/devices/v1", extensions={"trace": note}).status_code
    assert status == 200
    assert seen == [("http11.send_request_headers.started", True)]


def test_one_token_serves_every_front_end_built_on_one_falcon_auth(
    falcon: Falcon, auth: FalconAuth
) -> None:
    app, server = falcon
    senders = [FrontEnd(kind, auth, server.ca_bundle) for kind in DRIVERS]
    try:
        assert [s.send("GET", f"{server.url}/devices/v1") for s in senders] == [200] * 4
    finally:
        for sender in senders:
            sender.close()
    assert app.issued == ["tok-1"]


def test_falcon_session_resolves_paths_and_revokes_on_close(
    falcon: tuple[MiniFalcon, LoopbackServer],
) -> None:
    _, server = falcon
    verify = server.ca_bundle or True
    with FalconSession(make_auth(server)) as s:
        assert s.get("/devices/queries/devices/v1", verify=verify).status_code == 200
        assert s.get("devices/queries/devices/v1", verify=verify).status_code == 200
    paths = [r.path for r in server.received]
    assert paths == [
        "/oauth2/token",
        "/devices/queries/devices/v1",
        "/devices/queries/devices/v1",
        "/oauth2/revoke",
    ]
    assert b"token=tok-1" in server.received[-1].body
