"""FalconAuth's logic over ``responses``: laziness, configuration, scope, the 401 retry, teardown."""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Iterator

import pytest
import requests
import responses
from fakes import CallbackResult, TokenIssuer
from support import CountingCache, form_of, in_child, tokens_of

from requests_falcon_auth import (
    ConfigurationError,
    CredentialsError,
    FalconAuth,
    FalconRetry,
    MemoryTokenCache,
    TokenEndpointError,
)
from requests_falcon_auth.testing import ManualClock

US1 = "https://api.crowdstrike.com"
US2 = "https://api.us-2.crowdstrike.com"
EU1 = "https://api.eu-1.crowdstrike.com"
SECRET = "client-secret-0123456789"
DEVICES = f"{US1}/devices/queries/devices/v1"


@pytest.fixture
def falcon() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def tokens(falcon: responses.RequestsMock) -> TokenIssuer:
    issue = TokenIssuer()
    falcon.add_callback(responses.POST, f"{US1}/oauth2/token", callback=issue)
    falcon.post(f"{US1}/oauth2/revoke", json={"errors": []}, status=200)
    return issue


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FALCON_CLIENT_ID", "FALCON_CLIENT_SECRET", "FALCON_MEMBER_CID", "FALCON_CLOUD"):
        monkeypatch.delenv(name, raising=False)


def make_auth(**kwargs: object) -> FalconAuth:
    kwargs.setdefault("retry", FalconRetry(backoff_factor=0, allowed_methods=None))
    return FalconAuth("client-a", SECRET, **kwargs)  # type: ignore[arg-type]


def bearer(call: responses.Call) -> str | None:
    value = call.request.headers.get("Authorization")
    assert value is None or isinstance(value, str), value
    return value


def calls_to(falcon: responses.RequestsMock, path: str) -> list[responses.Call]:
    return [c for c in falcon.calls if (c.request.url or "").split("?")[0].endswith(path)]


# -- laziness and configuration -------------------------------------------------------------


def test_construction_does_no_io(falcon: responses.RequestsMock) -> None:
    auth = make_auth()
    assert len(falcon.calls) == 0
    assert auth.base_url == US1


def test_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    monkeypatch.setenv("FALCON_CLIENT_ID", "env-id")
    monkeypatch.setenv("FALCON_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("FALCON_MEMBER_CID", "child-cid")
    auth = FalconAuth()
    assert (auth.client_id, auth.member_cid) == ("env-id", "child-cid")
    auth.get_token()
    body = calls_to(falcon, "/oauth2/token")[0].request.body
    assert form_of(body) == {
        "client_id": ["env-id"],
        "client_secret": ["env-secret"],
        "member_cid": ["child-cid"],
    }


def test_cloud_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALCON_CLOUD", "EU1")
    assert make_auth().base_url == EU1
    assert make_auth(cloud="us-2").base_url == US2  # an argument beats the environment
    assert make_auth(base_url="https://gw.example").base_url == "https://gw.example"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "FALCON_CLIENT_ID and FALCON_CLIENT_SECRET"),
        ({"FALCON_CLIENT_ID": "id"}, "set FALCON_CLIENT_SECRET in"),
        ({"FALCON_CLIENT_SECRET": "s"}, "set FALCON_CLIENT_ID in"),
        ({"FALCON_CLIENT_ID": "", "FALCON_CLIENT_SECRET": ""}, "FALCON_CLIENT_ID and"),
    ],
)
def test_missing_credentials_name_the_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=named):
        FalconAuth()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cloud": "us-1", "base_url": "https://gw.example"},
        {"renew_window": -1},
        {"renew_window": "120"},
        {"base_url": "http://gw.example"},
        {"cloud": "pluto"},
    ],
)
def test_bad_arguments_are_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        make_auth(**kwargs)


def test_repr_shows_no_secret() -> None:
    auth = make_auth()
    assert SECRET not in repr(auth)
    assert "client-a" in repr(auth)


# -- attaching the token and scope ----------------------------------------------------------


def test_first_request_fetches_and_later_ones_reuse(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    falcon.get(DEVICES, json={"resources": []})
    with requests.Session() as session:
        session.auth = make_auth()
        for _ in range(5):
            assert session.get(DEVICES).status_code == 200
    assert tokens.issued == ["tok-1"]
    assert [bearer(c) for c in calls_to(falcon, "/devices/v1")] == ["Bearer tok-1"] * 5


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/devices/queries/devices/v1",
        "http://api.crowdstrike.com/devices/queries/devices/v1",  # same host, plain http
        "https://api.crowdstrike.com:8443/devices/queries/devices/v1",  # same host, other port
        "https://api.crowdstrike.com.evil.example/x",
    ],
)
def test_other_origins_get_no_token_and_cause_no_fetch(
    falcon: responses.RequestsMock, tokens: TokenIssuer, url: str
) -> None:
    falcon.get(url, json={})
    with requests.Session() as session:
        session.auth = make_auth()
        session.get(url)
    assert tokens.issued == []
    assert bearer(falcon.calls[0]) is None


def test_a_request_is_never_sent_without_its_token(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", status=500)
    api = falcon.get(DEVICES, json={})
    with requests.Session() as session:
        session.auth = make_auth()
        with pytest.raises(TokenEndpointError):
            session.get(DEVICES)
    assert api.call_count == 0


def test_credential_failures_do_not_burn_the_token_budget(falcon: responses.RequestsMock) -> None:
    token_endpoint = falcon.post(f"{US1}/oauth2/token", status=403, json={"errors": []})
    with requests.Session() as session:
        session.auth = make_auth()
        for _ in range(20):
            with pytest.raises(CredentialsError):
                session.get(DEVICES)
    assert token_endpoint.call_count == 1


def test_autodiscovered_region_receives_requests_for_other_falcon_hosts(
    falcon: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    falcon.post(
        f"{US1}/oauth2/token",
        status=308,
        headers={"Location": f"{US2}/oauth2/token", "X-Cs-Region": "us-2"},
    )
    falcon.post(f"{US2}/oauth2/token", status=201, json={"access_token": "tok-us2"})
    home = falcon.get(f"{US2}/devices/queries/devices/v1", json={})
    auth = make_auth()
    with requests.Session() as session, caplog.at_level(logging.INFO, "requests_falcon_auth"):
        session.auth = auth
        session.get(DEVICES, params={"limit": 1})
        session.get(DEVICES)
        session.get(f"{EU1}/devices/queries/devices/v1")
    assert (auth.region, auth.base_url) == ("us-2", US2)
    assert home.call_count == 3
    assert all(bearer(c) == "Bearer tok-us2" for c in home.calls)
    assert home.calls[0].request.url.endswith("/devices/queries/devices/v1?limit=1")
    assert caplog.text.count("home region") == 2  # once per source cloud


def test_a_named_cloud_sends_no_token_to_other_falcon_hosts(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    falcon.get(f"{US2}/devices/queries/devices/v1", json={})
    with requests.Session() as session:
        session.auth = make_auth(cloud="us-1")
        session.get(f"{US2}/devices/queries/devices/v1")
    assert tokens.issued == []
    assert bearer(falcon.calls[0]) is None


# -- the 401 retry ----------------------------------------------------------------------------


def test_401_gets_one_fresh_token_and_one_resend(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    falcon.get(DEVICES, status=401, json={"errors": [{"code": 401, "message": "invalid"}]})
    falcon.get(DEVICES, status=200, json={"resources": ["ok"]})
    with requests.Session() as session:
        session.auth = make_auth()
        response = session.get(DEVICES)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert tokens.issued == ["tok-1", "tok-2"]
    # What each send carried is checked on the wire in test_auth_wire.py: responses records the
    # request objects, and the healed request is updated for later redirect hops.
    assert len(calls_to(falcon, "/devices/v1")) == 2
    assert response.request.headers["Authorization"] == "Bearer tok-2"


def test_a_second_401_is_returned(falcon: responses.RequestsMock, tokens: TokenIssuer) -> None:
    api = falcon.get(DEVICES, status=401, json={})
    with requests.Session() as session:
        session.auth = make_auth()
        response = session.get(DEVICES)
    assert response.status_code == 401
    assert len(response.history) == 1
    assert api.call_count == 2
    assert len(tokens.issued) == 2


def test_403_is_never_retried(falcon: responses.RequestsMock, tokens: TokenIssuer) -> None:
    api = falcon.get(DEVICES, status=403, json={})
    with requests.Session() as session:
        session.auth = make_auth()
        assert session.get(DEVICES).status_code == 403
    assert api.call_count == 1
    assert tokens.issued == ["tok-1"]


def test_bytes_body_is_replayed(falcon: responses.RequestsMock, tokens: TokenIssuer) -> None:
    url = f"{US1}/devices/entities/devices-actions/v2"
    falcon.post(url, status=401, json={})
    falcon.post(url, status=202, json={})
    with requests.Session() as session:
        session.auth = make_auth()
        response = session.post(url, json={"ids": ["a" * 32]}, params={"action_name": "contain"})
    assert response.status_code == 202
    bodies = [c.request.body for c in calls_to(falcon, "/devices-actions/v2")]
    assert bodies == [b'{"ids": ["' + b"a" * 32 + b'"]}'] * 2


def test_401_invalidation_is_compare_and_swap(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    """A token another thread already replaced is not evicted, and no extra fetch happens."""
    auth = make_auth()
    newer = []

    def api(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if request.headers["Authorization"] == "Bearer tok-1":
            # Another thread saw a 401 and renewed first.
            newer.append(auth.port.replace(auth.get_token()))
            return 401, {}, "{}"
        return 200, {}, "{}"

    falcon.add_callback(responses.GET, DEVICES, callback=api)
    with requests.Session() as session:
        session.auth = auth
        response = session.get(DEVICES)
    assert response.status_code == 200
    assert tokens.issued == ["tok-1", "tok-2"]  # the retry reused tok-2: no third token
    assert response.request.headers["Authorization"] == "Bearer tok-2"


def test_401_from_a_foreign_host_is_left_alone(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    falcon.get("https://other.example/x", status=401)
    with requests.Session() as session:
        session.auth = make_auth()
        assert session.get("https://other.example/x").status_code == 401
    assert tokens.issued == []


def test_threads_share_one_token_request(falcon: responses.RequestsMock) -> None:
    cache = CountingCache(ManualClock())
    tokens = TokenIssuer()

    def token_when_all_threads_are_queued(
        request: requests.PreparedRequest,
    ) -> CallbackResult:
        cache.wait_for_attempts(32)
        return tokens(request)

    falcon.add_callback(responses.POST, f"{US1}/oauth2/token", token_when_all_threads_are_queued)
    falcon.get(DEVICES, json={})
    auth = make_auth(cache=cache, clock=cache.timing.clock)
    barrier = threading.Barrier(32)
    statuses: list[int] = []

    def worker() -> None:
        with requests.Session() as session:
            session.auth = auth
            barrier.wait()
            statuses.append(session.get(DEVICES).status_code)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 32
    assert tokens.issued == ["tok-1"]


def test_instances_sharing_a_cache_share_the_token(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    cache = MemoryTokenCache()
    first, second = make_auth(cache=cache), make_auth(cache=cache)
    assert first.get_token().access_token == second.get_token().access_token == "tok-1"
    other_secret = FalconAuth("client-a", "another-secret", cache=cache)
    assert other_secret.get_token().access_token == "tok-2"


# -- teardown ---------------------------------------------------------------------------------


def revoked(falcon: responses.RequestsMock) -> list[str]:
    return [form_of(c.request.body)["token"][0] for c in calls_to(falcon, "/oauth2/revoke")]


def test_close_revokes_and_is_idempotent(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    auth = make_auth()
    auth.get_token()
    auth.close()
    auth.close()
    assert revoked(falcon) == ["tok-1"]
    assert auth.cache.get(tokens_of(auth).key) is None
    assert auth.get_token().access_token == "tok-2"  # usable again after close


def test_context_manager_revokes(falcon: responses.RequestsMock, tokens: TokenIssuer) -> None:
    with make_auth() as auth:
        auth.get_token()
    assert revoked(falcon) == ["tok-1"]


def test_close_without_a_token_makes_no_call(falcon: responses.RequestsMock) -> None:
    make_auth().close()
    assert len(falcon.calls) == 0


def test_attached_session_close_revokes(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    falcon.get(DEVICES, json={})
    auth = make_auth()
    session = auth.attach(requests.Session())
    auth.attach(session)  # attaching twice wraps close once
    assert session.auth is auth
    session.get(DEVICES)
    session.close()
    assert revoked(falcon) == ["tok-1"]


def test_teardown_never_raises(
    falcon: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    falcon.post(f"{US1}/oauth2/token", status=201, json={"access_token": "tok-1"})
    falcon.post(f"{US1}/oauth2/revoke", status=403, json={"errors": [{"message": "denied"}]})
    auth = make_auth()
    auth.get_token()
    with caplog.at_level(logging.WARNING, "requests_falcon_auth"):
        auth.close()
    assert "Could not revoke" in caplog.text
    assert "tok-1" not in caplog.text


def test_explicit_revoke_raises(falcon: responses.RequestsMock) -> None:
    falcon.post(f"{US1}/oauth2/token", status=201, json={"access_token": "tok-1"})
    falcon.post(f"{US1}/oauth2/revoke", status=403, json={})
    auth = make_auth()
    auth.get_token()
    with pytest.raises(CredentialsError):
        auth.revoke()
    assert auth.cache.get(tokens_of(auth).key) is None


def test_revoke_on_close_false_leaves_the_token(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    auth = make_auth(revoke_on_close=False)
    auth.get_token()
    auth.close()
    assert revoked(falcon) == []
    assert auth.get_token().access_token == "tok-1"


def test_expired_tokens_are_not_revoked(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    clock = ManualClock()
    auth = make_auth(clock=clock)
    auth.get_token()
    clock.now += 1800
    auth.close()
    assert revoked(falcon) == []


def test_a_forked_child_never_revokes_its_parents_token(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    falcon.get(DEVICES, json={})
    auth = make_auth()
    auth.get_token()

    def child() -> str:  # use the inherited token, then close
        with requests.Session() as session:
            session.auth = auth
            session.get(DEVICES)
        auth.close()
        return f"{len(tokens.issued)} {len(revoked(falcon))}"

    report = in_child(child)()
    assert report == "1 0"  # the child reused the parent's token and revoked nothing
    auth.close()
    assert revoked(falcon) == ["tok-1"]  # the parent still owns and revokes it


def test_pickling_never_writes_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError, match="FALCON_CLIENT_SECRET"):
        pickle.dumps(make_auth())
    monkeypatch.setenv("FALCON_CLIENT_SECRET", SECRET)
    auth = FalconAuth("client-a", cloud="eu-1")
    data = pickle.dumps(auth)
    assert SECRET.encode() not in data
    copy = pickle.loads(data)
    assert (copy.client_id, copy.base_url) == ("client-a", EU1)
    assert tokens_of(copy).key == tokens_of(auth).key


def test_session_is_used_for_token_calls(
    falcon: responses.RequestsMock, tokens: TokenIssuer
) -> None:
    with requests.Session() as token_session:
        token_session.headers["X-Corp-Proxy"] = "yes"
        auth = make_auth(session=token_session)
        auth.get_token()
    assert calls_to(falcon, "/oauth2/token")[0].request.headers["X-Corp-Proxy"] == "yes"
