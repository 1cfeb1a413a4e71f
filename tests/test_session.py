from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from requests_falcon_auth import ConfigurationError, FalconAuth, FalconSession

US1 = "https://api.crowdstrike.com"
US2 = "https://api.us-2.crowdstrike.com"


@pytest.fixture
def falcon() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            f"{US1}/oauth2/token",
            status=308,
            headers={"Location": f"{US2}/oauth2/token", "X-Cs-Region": "us-2"},
        )
        mock.post(f"{US2}/oauth2/token", status=201, json={"access_token": "tok-1"})
        mock.post(f"{US2}/oauth2/revoke", status=200, json={"errors": []})
        yield mock


def test_relative_paths_resolve_against_the_discovered_home(falcon: responses.RequestsMock) -> None:
    api = falcon.get(f"{US2}/sensors/queries/installers/v1", json={"resources": []})
    with FalconSession(client_id="id", client_secret="secret") as session:
        response = session.get("/sensors/queries/installers/v1", params={"limit": 5})
        assert response.status_code == 200
        assert session.auth.region == "us-2"
    assert api.calls[0].request.url == f"{US2}/sensors/queries/installers/v1?limit=5"
    assert api.calls[0].request.headers["Authorization"] == "Bearer tok-1"
    assert falcon.calls[-1].request.url == f"{US2}/oauth2/revoke"  # closed: revoked


def test_a_scheme_in_the_query_does_not_make_a_path_absolute(
    falcon: responses.RequestsMock,
) -> None:
    api = falcon.get(f"{US2}/fwmgr/queries/rules/v1", json={"resources": []})
    with FalconSession(client_id="id", client_secret="secret") as session:
        session.get("fwmgr/queries/rules/v1?filter=url:'https://example.org/x'")
    assert api.calls[0].request.headers["Authorization"] == "Bearer tok-1"


def test_absolute_urls_pass_through(falcon: responses.RequestsMock) -> None:
    other = falcon.get("https://example.org/feed", json={})
    with FalconSession(client_id="id", client_secret="secret") as session:
        session.get("https://example.org/feed")
    assert "Authorization" not in other.calls[0].request.headers
    assert len(falcon.calls) == 1  # no token was needed, none fetched, none revoked


@pytest.mark.parametrize(
    ("session_kwargs", "call_kwargs", "timeout"),
    [
        ({}, {}, (10.0, 60.0)),
        ({"api_timeout": 5}, {}, (5.0, 5.0)),
        ({"api_timeout": (1, 2)}, {"timeout": 7}, 7),
        ({}, {"timeout": None}, None),
        ({"api_timeout": None}, {}, None),
    ],
)
def test_api_calls_have_a_timeout_unless_told_otherwise(
    falcon: responses.RequestsMock,
    session_kwargs: dict[str, Any],
    call_kwargs: dict[str, Any],
    timeout: object,
) -> None:
    api = falcon.get(f"{US2}/devices/queries/devices/v1", json={"resources": []})
    with FalconSession(client_id="id", client_secret="secret", **session_kwargs) as session:
        session.get("/devices/queries/devices/v1", **call_kwargs)
    assert api.calls[0].request.req_kwargs["timeout"] == timeout


def test_arguments_by_position_are_taken_in_requests_order(
    falcon: responses.RequestsMock,
) -> None:
    api = falcon.get(f"{US2}/devices/queries/devices/v1", json={"resources": []})
    with FalconSession(client_id="id", client_secret="secret") as session:
        positional = ({"limit": 5}, None, None, None, None, None, 7)  # params ... auth, timeout
        session.request("GET", "/devices/queries/devices/v1", *positional)
    assert api.calls[0].request.url == f"{US2}/devices/queries/devices/v1?limit=5"
    assert api.calls[0].request.req_kwargs["timeout"] == 7


@pytest.mark.parametrize("api_timeout", [0, -1, "5", (1, 2, 3)])
def test_an_unusable_api_timeout_is_refused(api_timeout: Any) -> None:
    with pytest.raises(ConfigurationError, match="api_timeout"):
        FalconSession(client_id="id", client_secret="secret", api_timeout=api_timeout)


def test_takes_an_existing_auth() -> None:
    auth = FalconAuth("id", "secret")
    session = FalconSession(auth)
    assert session.auth is auth
    session.close()


def test_auth_and_auth_arguments_together_are_refused() -> None:
    with pytest.raises(TypeError):
        FalconSession(FalconAuth("id", "secret"), cloud="us-2")
