"""Hostile or broken token services, on real sockets: every answer ends in a FalconAuthError
(or a token), within the call's deadline, having read at most the cap, quoting no secret."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import pickle
import socket
import threading
import traceback
import tracemalloc
import zlib
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
import requests
from hostile import HostileServer, Received, answer, reset

from requests_falcon_auth import (
    ConfigurationError,
    CredentialsError,
    FalconAuth,
    FalconAuthError,
    FalconRetry,
    FalconSession,
    OAuth2,
    TokenEndpointError,
)
from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "client-h"
SECRET = "s3cr+t/with=&%25-and-more"
TOKEN = "hostile+token/value=="
TOKEN_ANSWER = json.dumps({"access_token": TOKEN, "expires_in": 1799}).encode()


def oauth(server: HostileServer, **kwargs: object) -> OAuth2:
    kwargs.setdefault("retry", FalconRetry(backoff_factor=0))
    return OAuth2(CLIENT_ID, SECRET, base_url=server.url, **kwargs)  # type: ignore[arg-type]


def token_once_then(script_for_rest: object) -> object:
    """A script: the first request gets a token, later ones go to ``script_for_rest``."""

    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        if request.path.endswith("/oauth2/token"):
            conn.sendall(answer(201, TOKEN_ANSWER))
        else:
            script_for_rest(conn, request, stop)  # type: ignore[operator]

    return script


# -- bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timeout",
    [None, 0, -1, "5", (1, 2, 3), (1,), (0, 5), (5, None), float("nan"), float("inf"), True],
    ids=repr,
)
def test_timeouts_that_could_hang_or_mean_nothing_are_refused(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        FalconAuth("id", "secret", timeout=timeout)  # type: ignore[arg-type]


# -- answers that are not JSON the library can hold --------------------------------------------


@pytest.mark.parametrize(("status", "error"), [(201, TokenEndpointError), (403, CredentialsError)])
def test_deeply_nested_json_is_an_unusable_answer(
    status: int, error: type[FalconAuthError]
) -> None:
    body = b'{"errors": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"

    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        conn.sendall(answer(status, body))

    with HostileServer(script) as server, pytest.raises(error) as caught:
        oauth(server).token()
    assert caught.value.status_code == status


def stream_forever(chunked: bool) -> object:
    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {64 << 20}"
        conn.sendall(f"HTTP/1.1 201 Created\r\n{framing}\r\n\r\n".encode())
        piece = b"[" * 65536
        frame = b"10000\r\n" + piece + b"\r\n" if chunked else piece
        for _ in range(1024):  # 64 MiB at most, whatever happens
            conn.sendall(frame)
        server_sent_everything.set()

    server_sent_everything = threading.Event()
    script.sent_everything = server_sent_everything  # type: ignore[attr-defined]
    return script


@pytest.mark.parametrize("chunked", [False, True], ids=["64-MiB", "endless-chunked"])
def test_a_huge_answer_is_not_read_past_the_cap(chunked: bool) -> None:
    script = stream_forever(chunked)
    server = HostileServer(script)  # type: ignore[arg-type]
    with server, pytest.raises(TokenEndpointError, match="KiB"):
        oauth(server).token()
    assert not script.sent_everything.is_set()  # type: ignore[attr-defined]


def test_a_gzip_bomb_is_inflated_only_to_the_cap() -> None:
    inflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(inflater.compress(zeros) for _ in range(256)) + inflater.flush()  # 256 MiB

    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        conn.sendall(answer(201, bomb, {"Content-Encoding": "gzip"}))

    with HostileServer(script) as server:
        client = oauth(server)
        tracemalloc.start()
        try:
            with pytest.raises(TokenEndpointError, match="KiB"):
                client.token()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert len(bomb) < 1 << 20
    assert peak < 4 << 20  # reading the bomb whole would take 256 MiB


def test_a_compressed_token_answer_is_still_read() -> None:
    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        conn.sendall(answer(201, gzip.compress(TOKEN_ANSWER), {"Content-Encoding": "gzip"}))

    with HostileServer(script) as server:
        assert oauth(server).token().access_token == TOKEN
        assert b"accept-encoding: identity" in server.received[0].head.lower()


# -- slow servers -----------------------------------------------------------------------------


def trickle(head_too: bool, sent: list[int]) -> object:
    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        message = answer(201, TOKEN_ANSWER * 100)
        if not head_too:
            head_end = message.index(b"\r\n\r\n") + 4
            conn.sendall(message[:head_end])
            message = message[head_end:]
        for byte in message[:600]:  # a byte every 0.2 s for two minutes at most
            if stop.wait(0.2):
                return
            conn.sendall(bytes([byte]))
            sent.append(1)

    return script


@pytest.mark.parametrize("head_too", [False, True], ids=["body", "status-and-headers"])
def test_a_trickling_server_cannot_hold_a_call_past_its_deadline(head_too: bool) -> None:
    """Each trickled byte resets requests' read timeout; the call's deadline does not move."""
    sent: list[int] = []
    outcome: list[BaseException] = []

    def call(server: HostileServer) -> None:
        try:
            oauth(server, timeout=(0.5, 0.5), retry=FalconRetry(total=1, backoff_factor=0)).token()
        except FalconAuthError as exc:
            outcome.append(exc)

    with HostileServer(trickle(head_too, sent)) as server:  # type: ignore[arg-type]
        caller = threading.Thread(target=call, args=(server,))
        caller.start()
        caller.join(timeout=60)  # the trickle would last 120 s
        assert not caller.is_alive()
    assert [type(e) for e in outcome] == [TokenEndpointError]
    assert "did not finish" in str(outcome[0]) or "Could not reach" in str(outcome[0])
    assert server.connections == 2  # one try and one retry, each cut at its own deadline


# -- broken connections -----------------------------------------------------------------------


def test_a_reset_in_the_middle_of_the_body_is_retried() -> None:
    def script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        if len(server.received) == 1:
            whole = answer(201, TOKEN_ANSWER)
            conn.sendall(whole[: len(whole) - 20])
            reset(conn)
        else:
            conn.sendall(answer(201, TOKEN_ANSWER))

    with HostileServer(script) as server:
        assert oauth(server).token().access_token == TOKEN
    assert len(server.received) == 2


# -- proxies ----------------------------------------------------------------------------------


def test_loopback_calls_never_go_through_a_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def proxy_script(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        conn.sendall(answer(502, b"proxy"))

    with HostileServer(proxy_script) as proxy, FalconEmulator() as emu:
        emu.add_client("proxied", "proxied-secret-value")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
        with requests.Session() as session:
            session.proxies["http://127.0.0.1"] = proxy.url
            client = OAuth2(
                "proxied", "proxied-secret-value", base_url=emu.base_url("us-1"), session=session
            )
            token = client.token()
            client.revoke(token)
        assert requests.Session().get(f"{emu.base_url('us-1')}/x").status_code == 502  # proxied
        with FalconSession(
            client_id="proxied", client_secret="proxied-secret-value", base_url=emu.base_url("us-1")
        ) as falcon:
            falcon.proxies["http://127.0.0.1"] = proxy.url
            assert falcon.get("/devices/queries/devices/v1").status_code == 200  # direct
    assert [r.path for r in proxy.received] == [f"{emu.base_url('us-1')}/x"]


# -- teardown ---------------------------------------------------------------------------------


def test_close_spends_one_short_try_on_a_black_holed_revoke(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("requests_falcon_auth._sources.CLOSE_REVOKE_BUDGET", 1.0)

    def never_answer(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        stop.wait(120)

    with HostileServer(token_once_then(never_answer)) as server:  # type: ignore[arg-type]
        auth = FalconAuth(CLIENT_ID, SECRET, base_url=server.url)  # default timeouts: 10 s, 30 s
        auth.get_token()
        closer = threading.Thread(target=auth.close)
        closer.start()
        closer.join(timeout=60)  # before: 4 tries of 30 s and backoff, 123 s
        assert not closer.is_alive()
        revokes = [r for r in server.received if r.path.endswith("/oauth2/revoke")]
    assert len(revokes) == 1
    assert "Could not revoke the Falcon token at close" in caplog.text


# -- redaction ---------------------------------------------------------------------------------


def wire_forms(value: str) -> set[str]:
    return {value, quote_plus(value), quote(value, safe=""), quote(value)}


FORBIDDEN = (
    wire_forms(SECRET)
    | wire_forms(TOKEN)
    | {base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()}
)


def echo(conn: socket.socket, request: Received, stop: threading.Event) -> None:
    """Answers 403 with everything it got, in the message, the trace id and the region."""
    seen = (request.head + b"\n" + request.body).decode("latin-1")
    body = json.dumps({"meta": {"trace_id": seen}, "errors": [{"code": 403, "message": seen}]})
    flat = seen.replace("\r\n", " | ").replace("\n", " | ")
    conn.sendall(answer(403, body.encode(), {"X-Cs-Traceid": flat, "X-Cs-Region": flat}))


def leaks(text: str) -> list[str]:
    return [form for form in FORBIDDEN if form in text]


def every_rendering(error: BaseException) -> str:
    return "\n".join(
        [
            str(error),
            repr(error),
            pickle.dumps(error).decode("latin-1"),
            "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        ]
    )


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def test_an_echoed_token_request_leaks_no_form_of_the_secret(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    with HostileServer(echo) as server, pytest.raises(CredentialsError) as caught:
        oauth(server).token()
    assert quote_plus(SECRET) in server.received[0].body.decode()  # it was echoed
    assert leaks(every_rendering(caught.value)) == []
    assert leaks(debug_logs.text) == []
    assert all(len(m) <= 300 for m in caught.value.errors)


def test_an_echoed_revoke_leaks_neither_the_token_nor_the_basic_credential(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    with HostileServer(token_once_then(echo)) as server:  # type: ignore[arg-type]
        client = oauth(server)
        token = client.token()
        with pytest.raises(CredentialsError) as caught:
            client.revoke(token)
        auth = FalconAuth(CLIENT_ID, SECRET, base_url=server.url)
        auth.get_token()
        auth.close()  # logs the revoke failure as a WARNING
    assert "Could not revoke the Falcon token at close" in debug_logs.text
    assert leaks(every_rendering(caught.value)) == []
    assert leaks(debug_logs.text) == []
