"""Secrets never reach logs, reprs, exception messages, pickles or stdout.

The main flows run with every logger at DEBUG (urllib3's included); then the captured logs,
the reprs and strings of every object involved and every exception message are searched for the
client secret and for every token the server issued.
"""

from __future__ import annotations

import base64
import logging
import pickle
from collections.abc import Iterator

import pytest
import requests
import responses
from fakes import MiniFalcon
from loopback import LoopbackServer

from requests_falcon_auth import FalconAuth, FalconAuthError, FalconRetry, FalconSession

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
