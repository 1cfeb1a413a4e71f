"""Secrets never reach logs, reprs, exception messages, pickles or stdout.

The main flows run with every logger at DEBUG (urllib3's included); then the captured logs,
the reprs and strings of every object involved and every exception message are searched for the
client secret and for every token the server issued. Redaction, for its part, removes only what
the server said, and only where a secret stands as itself: the library's own words are left as
written, whatever the secret.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
import responses
from fakes import MiniFalcon
from hostile import HostileServer, Received, answer
from loopback import LoopbackServer

from requests_falcon_auth import (
    CredentialsError,
    FalconAuth,
    FalconAuthError,
    FalconRetry,
    FalconSession,
)
from requests_falcon_auth._redaction import Redactor
from requests_falcon_auth.testing import FalconEmulator

SECRET = "Sup3r-Secret-Client-Value-9f8e7d"
US1 = "https://api.crowdstrike.com"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.DEBUG):
        yield caplog


def secrets_in(text: str, tokens: list[str]) -> list[str]:
    basic = base64.b64encode(f"client-a:{SECRET}".encode()).decode()
    needles = [SECRET, basic, *tokens]
    return [needle for needle in needles if needle in text]


def test_main_flows_leak_nothing(
    debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    app = MiniFalcon()
    seen: list[str] = []
    with LoopbackServer(app) as server:
        app.reject.add("tok-1")  # force the 401 retry path
        auth = FalconAuth("client-a", SECRET, clouds={"us-1": server.url})
        with FalconSession(auth) as session:
            seen += [repr(session.get("/devices").json()), repr(auth), str(auth)]
            token = auth.get_token()
            seen += [repr(token), str(token), repr(auth.oauth2), repr(auth.cache)]
            seen.append(repr(session.post("/upload", data=b"x" * 10)))
    captured = capsys.readouterr()
    haystack = "\n".join([debug_logs.text, *seen, captured.out, captured.err])
    assert len(app.issued) == 2
    assert secrets_in(haystack, app.issued) == []
    assert "Fetched a Falcon token" in debug_logs.text  # the logs did run at DEBUG


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, f'{{"errors": [{{"message": "bad client {SECRET}"}}]}}'),
        (403, '{"errors": [{"message": "Failed to issue access token - Not Authorized"}]}'),
        (429, "{}"),
        (500, "<html>oops</html>"),
        (201, '{"access_token": 5}'),
    ],
)
def test_failures_leak_nothing(
    debug_logs: pytest.LogCaptureFixture, status: int, body: str
) -> None:
    with responses.RequestsMock() as falcon:
        falcon.post(f"{US1}/oauth2/token", status=status, body=body)
        auth = FalconAuth(
            "client-a", SECRET, retry=FalconRetry(total=1, backoff_factor=0, allowed_methods=None)
        )
        with pytest.raises(FalconAuthError) as caught:
            auth.get_token()
    error = caught.value
    texts = [str(error), repr(error), repr(error.errors), repr(error.__dict__), debug_logs.text]
    assert secrets_in("\n".join(texts), []) == []
    assert SECRET.encode() not in pickle.dumps(error)


def test_revoke_failure_logs_leak_nothing(debug_logs: pytest.LogCaptureFixture) -> None:
    with responses.RequestsMock() as falcon:
        falcon.post(f"{US1}/oauth2/token", status=201, json={"access_token": "tok-secret-1"})
        falcon.post(f"{US1}/oauth2/revoke", body=requests.ConnectionError("reset"))
        auth = FalconAuth(
            "client-a", SECRET, retry=FalconRetry(total=0, backoff_factor=0, allowed_methods=None)
        )
        auth.get_token()
        auth.close()
    assert "Could not revoke" in debug_logs.text
    assert secrets_in(debug_logs.text, ["tok-secret-1"]) == []


# -- redaction rewrites what the server said, never the library's own words --------------------

# Secrets people type while trying things out: each is a letter or word of the messages.
PLACEHOLDERS = ["e", "secret", "falcon"]
KNOWN = "known-client"
ONE_TRY = FalconRetry(total=0, allowed_methods=None)


def message_of(make: Callable[[], object]) -> str:
    with pytest.raises(FalconAuthError) as caught:
        make()
    return caught.value.message


def wrong_secret(secret: str) -> tuple[str, str]:
    with FalconEmulator() as emulator:
        emulator.add_client(KNOWN, "the-right-secret-value")
        auth = FalconAuth(KNOWN, secret, base_url=emulator.base_url("us-1"), retry=ONE_TRY)
        return message_of(auth.get_token), (
            "Falcon refused the token request (403: Failed to issue access token - Not "
            "Authorized). Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET)."
        )


def unknown_client(secret: str) -> tuple[str, str]:
    with FalconEmulator() as emulator:
        auth = FalconAuth("nobody", secret, base_url=emulator.base_url("us-1"), retry=ONE_TRY)
        return message_of(auth.get_token), (
            "Falcon refused the token request (400: Failed to generate access token for "
            "clientID=nobody). Check the client id (FALCON_CLIENT_ID) and that it belongs to "
            "this cloud."
        )


def refused_connection(secret: str) -> tuple[str, str]:
    with socket.socket() as bound:  # bound, not listening: every connection is refused
        bound.bind(("127.0.0.1", 0))
        where = f"127.0.0.1:{bound.getsockname()[1]}"
        auth = FalconAuth(KNOWN, secret, base_url=f"http://{where}", retry=ONE_TRY)
        return message_of(auth.get_token), (
            f"Could not reach the Falcon token request endpoint at http://{where}/oauth2/token: "
            f"{where} refused the connection. Nothing listens there: check base_url (host and "
            "port) and the proxy settings."
        )


def untrusted_certificate(secret: str) -> tuple[str, str]:
    with FalconEmulator(tls=True) as emulator:
        url = emulator.base_url("us-1")
        auth = FalconAuth(KNOWN, secret, base_url=url, retry=ONE_TRY)
        return message_of(auth.get_token), (
            f"TLS verification failed for the Falcon token request to {url}/oauth2/token: "
            "check the CA bundle (session.verify, REQUESTS_CA_BUNDLE) and any intercepting proxy."
        )


def missing_client_id(secret: str) -> tuple[str, str]:
    return message_of(lambda: FalconAuth(client_secret=secret)), (
        "Falcon API credentials are missing: pass client_id= and client_secret=, or set "
        "FALCON_CLIENT_ID in the environment."
    )


@pytest.mark.parametrize(
    "failure",
    [wrong_secret, unknown_client, refused_connection, untrusted_certificate, missing_client_id],
)
@pytest.mark.parametrize("secret", PLACEHOLDERS)
def test_a_placeholder_secret_leaves_the_librarys_words_as_written(
    monkeypatch: pytest.MonkeyPatch, secret: str, failure: Callable[[str], tuple[str, str]]
) -> None:
    """Before: "Falcon r<redacted>fus<redacted>d th<redacted> tok<redacted>n r<redacted>qu..." """
    monkeypatch.delenv("FALCON_CLIENT_ID", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    message, written = failure(secret)
    assert message == written


@pytest.mark.parametrize("secret", PLACEHOLDERS)
def test_a_short_secret_a_server_echoes_as_itself_is_redacted(secret: str) -> None:
    def echo(conn: socket.socket, request: Received, stop: threading.Event) -> None:
        said = f"Falcon says: access denied for {request.body.decode()}"
        body = json.dumps({"errors": [{"code": 403, "message": said}]}).encode()
        conn.sendall(answer(403, body, {"X-Cs-Traceid": f"trace {secret}"}))

    with HostileServer(echo) as server:
        auth = FalconAuth("client-a", secret, base_url=server.url, retry=ONE_TRY)
        with pytest.raises(CredentialsError) as caught:
            auth.get_token()
    said = "Falcon says: access denied for client_id=client-a&client_secret=<redacted>"
    assert caught.value.errors == (said,)
    assert caught.value.trace_id == "trace <redacted>"
    assert caught.value.message.startswith(f"Falcon refused the token request (403: {said}). ")


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("access denied, e", "access denied, <redacted>"),
        ("client_secret=e&client_id=e-mail", "client_secret=<redacted>&client_id=<redacted>-mail"),
        ("Enter e, E or é: e.", "Enter <redacted>, E or é: <redacted>."),
        # An echo re-encoded puts an escape, ending in a hex digit, right before the secret.
        ("client_secret%3De%26", "client_secret%3D<redacted>%26"),
        ('{"form": "client_secret\\u003de"}', '{"form": "client_secret\\u003d<redacted>"}'),
    ],
)
def test_a_secret_is_redacted_where_it_stands_as_itself(text: str, clean: str) -> None:
    assert Redactor(["e"])(text) == clean


@pytest.mark.parametrize(
    ("secret", "text", "clean"),
    [
        ("s3cr+t/value", "client_secret=s3cr%2Bt%2Fvalue&x", "client_secret=<redacted>&x"),
        ("s3cr+t/value", "lowercased: s3cr%2bt%2fvalue", "lowercased: <redacted>"),
        ("-dash-", "a-dash-b", "a<redacted>b"),  # begins and ends with no word character
    ],
)
def test_every_wire_form_is_still_redacted(secret: str, text: str, clean: str) -> None:
    assert Redactor([secret])(text) == clean


def test_a_redactor_made_from_a_generator_keeps_its_secrets_when_extended() -> None:
    redact = Redactor(value for value in ["client-secret-value"]).also("token-value")
    assert redact("client-secret-value token-value") == "<redacted> <redacted>"
