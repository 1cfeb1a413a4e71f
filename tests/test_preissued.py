"""FalconAuth(access_token=...): a token issued elsewhere, against the emulator.

The token is attached and scoped like a fetched one; no token request and no revoke ever go
out; once the API rejects it (or ``expires_in`` runs out) every front end raises the one
CredentialsError that says no secret is available to renew it.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator

import anyio
import httpx
import pytest
import requests
from loopback import Answer, LoopbackServer, Received

from requests_falcon_auth import (
    ConfigurationError,
    CredentialsError,
    FalconAuth,
    FalconSession,
    MemoryTokenCache,
)
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.testing import FalconEmulator, ManualClock
from requests_falcon_auth.urllib3 import AuthorizedPoolManager

CLIENT_ID = "preissued-client"
SECRET = "preissued-client-secret-0123"
DEVICES = "/devices/queries/devices/v1"
REFUSED = "refused by the API"
NO_SECRET = "without a client secret it cannot be renewed"
FRONT_ENDS = ["requests", "urllib3", "httpx", "httpx-asyncio", "httpx-trio"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FALCON_CLIENT_ID", "FALCON_CLIENT_SECRET", "FALCON_MEMBER_CID", "FALCON_CLOUD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu() -> Iterator[FalconEmulator]:
    with FalconEmulator() as emulator:
        emulator.add_client(CLIENT_ID, SECRET)
        yield emulator


def issue(emu: FalconEmulator) -> str:
    """A token obtained the way another service would: a plain POST, not this library."""
    form = {"client_id": CLIENT_ID, "client_secret": SECRET}
    answer = requests.post(f"{emu.base_url('us-1')}/oauth2/token", data=form, timeout=10)
    assert answer.status_code == 201
    value: str = answer.json()["access_token"]
    emu.reset_counters()  # from here on, every token request would be the library's
    return value


@pytest.fixture
def token(emu: FalconEmulator) -> str:
    return issue(emu)


def preissued(emu: FalconEmulator, token: str, **kwargs: object) -> FalconAuth:
    kwargs.setdefault("cloud", "us-1")
    return FalconAuth(access_token=token, clouds=emu.clouds, **kwargs)  # type: ignore[arg-type]


def send(front_end: str, auth: FalconAuth, url: str) -> int:
    """One GET through a front end; its status (or the FalconAuthError it raised)."""
    if front_end == "requests":
        with requests.Session() as session:
            session.auth = auth
            return session.get(url, timeout=10).status_code
    if front_end == "urllib3":
        with AuthorizedPoolManager(auth) as http:
            status: int = http.request("GET", url).status
            return status
    if front_end == "httpx":
        with httpx.Client(auth=FalconHttpxAuth(auth)) as client:
            return client.get(url).status_code

    async def get() -> int:
        async with httpx.AsyncClient(auth=FalconHttpxAuth(auth)) as client:
            return (await client.get(url)).status_code

    return anyio.run(get, backend=front_end.removeprefix("httpx-"))


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_attached_to_the_api_of_its_cloud_only(
    emu: FalconEmulator, token: str, front_end: str
) -> None:
    seen: list[Received] = []

    def elsewhere(request: Received) -> Answer:
        seen.append(request)
        return Answer(200)

    with preissued(emu, token) as auth, LoopbackServer(elsewhere) as other:
        assert send(front_end, auth, emu.base_url("us-1") + DEVICES) == 200
        assert send(front_end, auth, other.url + DEVICES) == 200
        # Another Falcon cloud is another origin: the token was not issued there.
        assert send(front_end, auth, emu.base_url("us-2") + DEVICES) == 401
    assert "Authorization" not in seen[0].headers
    counters = emu.counters
    assert (counters.api_ok, counters.token_requests, counters.revokes) == (1, 0, 0)
    assert counters.calls_per_token == {emu.token_id(token): 1}


def test_base_url_instead_of_a_cloud(emu: FalconEmulator, token: str) -> None:
    with FalconAuth(access_token=token, base_url=emu.base_url("us-1")) as auth:
        assert auth.base_url == emu.base_url("us-1")
        assert send("requests", auth, emu.base_url("us-1") + DEVICES) == 200
        assert send("requests", auth, emu.base_url("us-2") + DEVICES) == 401  # no token there
    assert emu.counters.token_requests == 0


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_a_rejected_token_raises_the_documented_error(
    emu: FalconEmulator, token: str, front_end: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with preissued(emu, token) as auth:
        asked_on: list[threading.Thread] = []
        replace = auth.port.replace

        def recording(rejected: object) -> object:
            asked_on.append(threading.current_thread())
            return replace(rejected)  # type: ignore[arg-type]

        monkeypatch.setattr(auth.port, "replace", recording)
        url = emu.base_url("us-1") + DEVICES
        assert send(front_end, auth, url) == 200
        emu.invalidate_all_tokens()
        with pytest.raises(CredentialsError, match=REFUSED) as caught:
            send(front_end, auth, url)
        assert NO_SECRET in str(caught.value)
        assert token not in str(caught.value)
        (asked,) = asked_on
        if front_end.startswith("httpx-"):
            assert asked is not threading.current_thread()  # a worker: the loop never waits
        else:
            assert asked is threading.current_thread()
        # The token is known bad: later requests raise without spending the bad-token budget.
        with pytest.raises(CredentialsError, match=REFUSED):
            send(front_end, auth, url)
    counters = emu.counters
    assert (counters.api_ok, counters.api_401, counters.token_requests) == (1, 1, 0)
    assert counters.revokes == 0


def test_the_bad_token_429_raises_it_too() -> None:
    def spent(request: Received) -> Answer:
        headers = {"X-Ratelimit-Limit": "15", "X-Ratelimit-Remaining": "0"}
        return Answer(429, b'{"errors": [{"code": 429}]}', headers)

    with LoopbackServer(spent) as server:
        auth = FalconAuth(access_token="tok-x", base_url=server.url)
        with auth, pytest.raises(CredentialsError, match=REFUSED):
            send("requests", auth, server.url + DEVICES)
    assert [r.path for r in server.received] == [DEVICES]  # no token request, no revoke


def test_expires_in_bounds_its_use(emu: FalconEmulator, token: str) -> None:
    clock = ManualClock()
    with preissued(emu, token, expires_in=60, clock=clock) as auth:
        assert auth.get_token().expires_in == 60
        assert send("requests", auth, emu.base_url("us-1") + DEVICES) == 200
        clock.now += 60
        with pytest.raises(CredentialsError, match=r"expired \(expires_in=60 s ran out\)"):
            send("requests", auth, emu.base_url("us-1") + DEVICES)
    assert (emu.counters.api_calls, emu.counters.token_requests) == (1, 0)


def test_without_expires_in_it_is_used_until_rejected(emu: FalconEmulator, token: str) -> None:
    clock = ManualClock()
    with preissued(emu, token, clock=clock) as auth:
        clock.now += 7 * 86400  # no renewal, no expiry of ours: only the API decides
        assert send("requests", auth, emu.base_url("us-1") + DEVICES) == 200


def test_never_revoked_and_no_token_request(emu: FalconEmulator, token: str) -> None:
    auth = preissued(emu, token)
    for _ in range(3):
        assert send("requests", auth, emu.base_url("us-1") + DEVICES) == 200
    with pytest.raises(ConfigurationError, match="cannot be revoked here"):
        auth.revoke()
    auth.close()
    assert (emu.counters.token_requests, emu.counters.revokes) == (0, 0)
    still = requests.get(
        emu.base_url("us-1") + DEVICES, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert still.status_code == 200  # the token lives on for whoever issued it


def test_falcon_session_takes_a_token(emu: FalconEmulator, token: str) -> None:
    with FalconSession(access_token=token, cloud="us-1", clouds=emu.clouds) as session:
        assert session.get(DEVICES).status_code == 200
        assert session.auth.client_id is None
        emu.invalidate_all_tokens()
        with pytest.raises(CredentialsError, match=REFUSED):
            session.get(DEVICES)
    assert (emu.counters.token_requests, emu.counters.revokes) == (0, 0)


def test_environment_credentials_are_not_mixed_in(
    emu: FalconEmulator, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FALCON_CLIENT_ID", CLIENT_ID)  # valid credentials, deliberately
    monkeypatch.setenv("FALCON_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("FALCON_MEMBER_CID", "some-child")
    monkeypatch.setenv("FALCON_CLOUD", "us-1")  # where is not who: the cloud is still read
    with FalconAuth(access_token=token, clouds=emu.clouds) as auth:
        assert (auth.client_id, auth.member_cid, auth.region) == (None, None, "us-1")
        emu.invalidate_all_tokens()
        with pytest.raises(CredentialsError, match=REFUSED):
            send("requests", auth, emu.base_url("us-1") + DEVICES)
    assert emu.counters.token_requests == 0  # the environment's secret was never used


def test_repr_and_pickle_keep_the_token(emu: FalconEmulator, token: str) -> None:
    with preissued(emu, token) as auth:
        assert repr(auth) == (
            f"FalconAuth(base_url={emu.base_url('us-1')!r}, region='us-1', access_token=<hidden>)"
        )
        assert token not in repr(auth.oauth2)
        assert token not in repr(auth.get_token())
        with pytest.raises(TypeError, match="access_token= cannot be pickled") as caught:
            pickle.dumps(auth)
        assert token not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_secret": "s"}, "either access_token= .* or client_id= and client_secret="),
        ({"client_id": "c"}, "either access_token= .* or client_id= and client_secret="),
        ({"cloud": None}, "needs the cloud that issued it"),
        ({"cloud": "auto"}, "needs the cloud that issued it"),
        ({"revoke_on_close": True}, "revoke_on_close=True cannot be honoured"),
        ({"member_cid": "child"}, "member_cid= does not apply"),
        ({"cache": MemoryTokenCache()}, "cache= does not apply"),
        ({"expires_in": 0}, "expires_in must be more than zero"),
        ({"expires_in": 0.5}, "expires_in must be 1 second or more"),
        ({"cloud": "us-1", "base_url": "https://gw.example"}, "not both"),
        ({"access_token": "Bearer tok-secret-value"}, "no 'Bearer ' prefix"),
        ({"access_token": ""}, "must be the bare token"),
    ],
)
def test_bad_combinations_are_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    kwargs = {"access_token": "tok-secret-value", "cloud": "us-2", **kwargs}
    with pytest.raises(ConfigurationError, match=message) as caught:
        FalconAuth(**kwargs)  # type: ignore[arg-type]
    assert "tok-secret-value" not in str(caught.value)


def test_expires_in_belongs_to_a_token() -> None:
    with pytest.raises(ConfigurationError, match="expires_in= is the lifetime of a pre-issued"):
        FalconAuth("id", "secret-value", expires_in=60)


def test_revoke_on_close_false_is_accepted(emu: FalconEmulator, token: str) -> None:
    with preissued(emu, token, revoke_on_close=False) as auth:
        assert auth.revoke_on_close is False
    assert emu.counters.revokes == 0
