"""The emulator's admin server, driven as a test suite in another language would: with curl.

Every admin call goes through the curl command line over a real socket (nothing Python-aware
on the admin side of the wire); the emulator's API is then exercised with plain requests.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import requests

from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "admin-test-client"
SECRET = "admin-test-s3cret"
NO_DATA = "/aidr/queries/agents/v1"  # catalogued, no data: Falcon's empty answer
RULE_GROUPS = "/ioarules/entities/rule-groups/v1"  # catalogued, its POST creates (201)
INVALID = "access denied, invalid bearer token"
WIDGETS_QUERY = "/widgets/queries/widgets/v1"
WIDGETS_ENTITIES = "/widgets/entities/widgets/v1"


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]  # names lowercased
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def curl(method: str, url: str, body: str | bytes | None = None, *options: str) -> Reply:
    """One request with the curl command line; fails the test if curl cannot get an answer."""
    args = ["curl", "--silent", "--show-error", "--include", "--max-time", "30", "-X", method]
    data = body.encode() if isinstance(body, str) else body
    if data is not None:
        args += ["--data-binary", "@-", "-H", "Content-Type: application/json"]
    result = subprocess.run(
        [*args, *options, url], input=data or b"", capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    raw = result.stdout
    while raw.startswith(b"HTTP/1.1 100"):  # an interim answer to Expect: 100-continue
        raw = raw.split(b"\r\n\r\n", 1)[1]
    head, _, payload = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(status_line.split()[1]), headers, payload.decode())


def ok(method: str, url: str, body: object = None, status: int = 200) -> Any:
    """An admin call that must succeed: its JSON answer."""
    reply = curl(method, url, None if body is None else json.dumps(body))
    assert reply.status == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert int(reply.headers["content-length"]) == len(reply.text.encode())
    return reply.json()


def assert_error(reply: Reply, status: int, message: str) -> None:
    assert (reply.status, reply.json()) == (status, {"error": message})
    assert reply.headers["content-type"] == "application/json"
    assert reply.text.count("\n") == 1
    assert reply.text.endswith("\n")


def own_cid(client_id: str) -> str:
    return hashlib.sha256(client_id.encode()).hexdigest()[:32]


def get_token(
    emu: FalconEmulator, client_id: str = CLIENT_ID, secret: str = SECRET, **form: str
) -> requests.Response:
    return requests.post(
        emu.base_url(form.pop("region", "us-1")) + "/oauth2/token",
        data={"client_id": client_id, "client_secret": secret, **form},
        allow_redirects=False,
        timeout=30,
    )


def token_of(emu: FalconEmulator, **kwargs: str) -> str:
    response = get_token(emu, **kwargs)
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def api(
    emu: FalconEmulator, token: str, path: str = NO_DATA, method: str = "GET", **kwargs: Any
) -> requests.Response:
    return requests.request(
        method,
        emu.base_url(kwargs.pop("region", "us-1")) + path,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kwargs,
    )


@pytest.fixture
def emu() -> Iterator[FalconEmulator]:
    emulator = FalconEmulator()
    emulator.add_client(CLIENT_ID, SECRET, region="us-1")
    with emulator:
        yield emulator


@pytest.fixture
def admin(emu: FalconEmulator) -> str:
    return emu.start_admin()


# -- what a script needs -----------------------------------------------------------------------


def test_the_root_lists_regions_and_clients(emu: FalconEmulator, admin: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", admin)
    assert emu.admin_url == admin
    assert admin not in emu.clouds.values()
    assert ok("GET", admin + "/") == {
        "regions": emu.clouds,
        "ca_bundle": None,
        "admin": admin,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "region": "us-1",
                "member_cids": [],
                "cid": own_cid(CLIENT_ID),
            }
        ],
    }
    assert ok("GET", admin) == ok("GET", admin + "/")  # curl sends "/" for a bare origin


def test_a_client_added_with_curl_gets_tokens_for_its_member_cids(
    emu: FalconEmulator, admin: str
) -> None:
    body = {
        "client_id": "curl-client",
        "client_secret": "curl-client-s3cret",
        "region": "us-2",
        "member_cids": ["Child-CID-1", "child-cid-2"],
        "cid": "PARENT-CID",
    }
    added = {**body, "member_cids": ["child-cid-1", "child-cid-2"], "cid": "parent-cid"}
    assert ok("POST", admin + "/clients", body, status=201) == added
    assert ok("GET", admin + "/clients")["clients"][1] == added
    assert ok("GET", admin + "/")["clients"][1] == added

    credentials = {"client_id": "curl-client", "secret": "curl-client-s3cret", "region": "us-2"}
    token = token_of(emu, **credentials, member_cid="child-cid-1")
    assert api(emu, token, region="us-2").status_code == 200
    called = emu.request_log[-1]
    assert (called.client_id, called.member_cid) == ("curl-client", "child-cid-1")
    assert get_token(emu, **credentials, member_cid="stranger").status_code == 403

    # A client added without the optional fields: us-1, no member CIDs, a derived CID.
    minimal = {"client_id": "plain", "client_secret": "plain-s3cret-1"}
    assert ok("POST", admin + "/clients", minimal, status=201) == {
        **minimal,
        "region": "us-1",
        "member_cids": [],
        "cid": own_cid("plain"),
    }
    assert get_token(emu, "plain", "plain-s3cret-1").status_code == 201


def test_collections_loaded_with_curl_are_served_through_the_api(
    emu: FalconEmulator, admin: str
) -> None:
    widgets = [{"id": "w1", "colour": "red"}, {"id": "w2", "colour": "blue"}]
    collection = {
        "name": "widgets",
        "id_field": "id",
        "query_path": WIDGETS_QUERY,
        "entity_path": WIDGETS_ENTITIES,
        "records": widgets,
    }
    created = ok("POST", admin + "/collections", collection, status=201)
    assert created == {"name": "widgets", "loaded": 2}
    assert ok("GET", admin + "/collections/widgets/records") == {
        "name": "widgets",
        "records": widgets,
    }
    token = token_of(emu)
    query = api(emu, token, WIDGETS_QUERY, params={"filter": "colour:'blue'"})
    assert query.json()["resources"] == ["w2"]

    more = [*widgets, {"id": "w3", "colour": "blue"}]
    loaded = ok("PUT", admin + "/collections/widgets/records", more)
    assert loaded == {"name": "widgets", "loaded": 3}
    query = api(emu, token, WIDGETS_QUERY, params={"filter": "colour:'blue'"})
    assert query.json()["resources"] == ["w2", "w3"]
    entities = api(emu, token, WIDGETS_ENTITIES, params={"ids": ["w3", "w1"]})
    assert entities.json()["resources"] == [more[2], more[0]]
    assert emu.records("widgets") == more

    # The object form, and the sample hosts emptied.
    assert ok("PUT", admin + "/collections/widgets/records", {"records": widgets[:1]}) == {
        "name": "widgets",
        "loaded": 1,
    }
    assert api(emu, token, WIDGETS_QUERY).json()["resources"] == ["w1"]
    assert ok("PUT", admin + "/collections/hosts/records", []) == {"name": "hosts", "loaded": 0}
    assert api(emu, token, "/devices/queries/devices/v1").json()["resources"] == []

    assert ok("DELETE", admin + "/collections/widgets") == {"ok": True}
    assert api(emu, token, WIDGETS_QUERY).status_code == 404  # a path Falcon does not know
    assert_error(
        curl("GET", admin + "/collections/widgets/records"),
        404,
        "No collection 'widgets' (collections: 'hosts').",
    )


def test_collection_names_in_paths_are_percent_decoded(emu: FalconEmulator, admin: str) -> None:
    collection = {"name": "a/b c", "id_field": "id", "entity_path": "/ab/entities/v1"}
    assert ok("POST", admin + "/collections", collection, status=201) == {
        "name": "a/b c",
        "loaded": 0,
    }
    assert ok("PUT", admin + "/collections/a%2Fb%20c/records", [{"id": "x"}])["loaded"] == 1
    assert emu.records("a/b c") == [{"id": "x"}]


# -- faults ------------------------------------------------------------------------------------


def test_token_failures_with_a_status_and_retry_after(emu: FalconEmulator, admin: str) -> None:
    applied = ok(
        "POST", admin + "/faults/token-failures", {"n": 2, "status": 503, "retry_after": 30}
    )
    assert applied == {"n": 2, "status": 503, "retry_after": 30}
    for _ in range(2):
        before = time.time()
        failed = get_token(emu)
        assert failed.status_code == 503
        retry_at = int(failed.headers["X-Ratelimit-Retryafter"])
        assert before + 30 <= retry_at <= time.time() + 31
    assert get_token(emu).status_code == 201
    outcomes = ok("GET", admin + "/counters")["token_outcomes"]
    assert (outcomes["injected"], outcomes["issued"]) == (2, 1)

    # The defaults: 500, no Retry-After.
    assert ok("POST", admin + "/faults/token-failures", {"n": 1}) == {
        "n": 1,
        "status": 500,
        "retry_after": None,
    }
    failed = get_token(emu)
    assert failed.status_code == 500
    assert "X-Ratelimit-Retryafter" not in failed.headers


def test_token_delay(emu: FalconEmulator, admin: str) -> None:
    assert ok("POST", admin + "/faults/token-delay", {"seconds": 0.5}) == {"seconds": 0.5}
    started = time.monotonic()
    assert get_token(emu).status_code == 201
    assert time.monotonic() - started >= 0.5
    assert ok("POST", admin + "/faults/token-delay", {"seconds": 0}) == {"seconds": 0}
    started = time.monotonic()
    assert get_token(emu).status_code == 201
    assert time.monotonic() - started < 0.5
    assert ok("GET", admin + "/counters")["tokens_issued"] == 2


def test_token_hold_and_release(emu: FalconEmulator, admin: str) -> None:
    hold = admin + "/faults/token-hold"
    assert ok("GET", hold) == {"holding": False, "held": 0}
    assert ok("POST", hold) == {"holding": True, "held": 0}
    # A script's wait, in the background: no sleeping, the answer comes once 2 are held.
    answers: list[requests.Response] = []
    requesters = [threading.Thread(target=lambda: answers.append(get_token(emu))) for _ in "ab"]
    with subprocess.Popen(
        ["curl", "--silent", "--show-error", "--max-time", "30", hold + "?wait_for_held=2"],
        stdout=subprocess.PIPE,
    ) as waiting:
        try:
            requesters[0].start()
            assert ok("GET", hold + "?wait_for_held=1&timeout=30") == {"holding": True, "held": 1}
            counters = ok("GET", admin + "/counters")
            assert (counters["token_requests"], counters["tokens_issued"]) == (1, 0)
            assert waiting.poll() is None  # still waiting for the second
            requesters[1].start()
            assert json.loads(waiting.communicate(timeout=60)[0]) == {"holding": True, "held": 2}
            assert answers == []
            assert ok("POST", admin + "/faults/token-release") == {"released": 2}
        finally:
            curl("POST", admin + "/faults/token-release")  # whatever happened above
            for requester in requesters:
                if requester.ident is not None:
                    requester.join(30)
            if waiting.poll() is None:
                waiting.kill()
    assert [answer.status_code for answer in answers] == [201, 201]
    assert ok("GET", hold) == {"holding": False, "held": 0}
    assert ok("POST", admin + "/faults/token-release") == {"released": 0}  # idempotent
    assert get_token(emu).status_code == 201  # not held any more


def test_waiting_for_held_requests_times_out_with_the_count(
    emu: FalconEmulator, admin: str
) -> None:
    hold = admin + "/faults/token-hold"
    assert ok("POST", hold) == {"holding": True, "held": 0}
    started = time.monotonic()
    assert ok("GET", hold + "?wait_for_held=1&timeout=0.3") == {"holding": True, "held": 0}
    assert time.monotonic() - started >= 0.3
    # A gate the Python side installs releases the admin's one: nothing to wait for.
    with emu.hold_token_requests():
        assert ok("GET", hold + "?wait_for_held=1") == {"holding": False, "held": 0}


def test_stop_releases_a_held_token_request(emu: FalconEmulator, admin: str) -> None:
    assert ok("POST", admin + "/faults/token-hold") == {"holding": True, "held": 0}
    outcome: list[object] = []

    def request_a_token() -> None:
        try:
            outcome.append(get_token(emu).status_code)
        except requests.ConnectionError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=request_a_token)
    waiter.start()
    assert ok("GET", admin + "/faults/token-hold?wait_for_held=1") == {"holding": True, "held": 1}
    emu.stop()
    waiter.join(30)
    assert not waiter.is_alive()
    assert len(outcome) == 1


def test_api_rejections(emu: FalconEmulator, admin: str) -> None:
    token = token_of(emu)
    assert ok("POST", admin + "/faults/api-rejections", {"n": 1}) == {"n": 1}
    rejected = api(emu, token)
    assert rejected.status_code == 401
    assert rejected.json()["errors"] == [{"code": 401, "message": INVALID}]
    assert api(emu, token).status_code == 200
    counters = ok("GET", admin + "/counters")
    assert (counters["api_401"], counters["api_ok"]) == (1, 1)


def test_dropped_connections(emu: FalconEmulator, admin: str) -> None:
    assert ok("POST", admin + "/faults/dropped-connections", {"n": 1}) == {"n": 1}
    with pytest.raises(requests.ConnectionError):
        get_token(emu)
    assert get_token(emu).status_code == 201
    counters = ok("GET", admin + "/counters")
    assert (counters["dropped_connections"], counters["token_requests"]) == (1, 1)


def test_invalidate_all_tokens(emu: FalconEmulator, admin: str) -> None:
    old = token_of(emu)
    assert api(emu, old).status_code == 200
    assert ok("POST", admin + "/tokens/invalidate") == {"ok": True}
    assert api(emu, old).status_code == 401
    assert api(emu, token_of(emu)).status_code == 200


# -- what the emulator saw ---------------------------------------------------------------------


def test_counters_and_their_reset(emu: FalconEmulator, admin: str) -> None:
    token = token_of(emu)
    assert api(emu, token).status_code == 200
    assert get_token(emu, secret="wrong-secret-value").status_code == 403
    zero_outcomes = {
        "issued": 0,
        "redirected": 0,
        "unknown_client": 0,
        "wrong_secret": 0,
        "wrong_member_cid": 0,
        "rate_limited": 0,
        "injected": 0,
        "bad_request": 0,
    }
    assert ok("GET", admin + "/counters") == {
        "token_requests": 2,
        "token_outcomes": {**zero_outcomes, "issued": 1, "wrong_secret": 1},
        "tokens_issued": 1,
        "revokes": 0,
        "api_calls": 1,
        "api_ok": 1,
        "api_401": 0,
        "api_429": 0,
        "calls_per_token": {emu.token_id(token): 1},
        "dropped_connections": 0,
    }
    assert ok("POST", admin + "/counters/reset") == {"ok": True}
    assert ok("GET", admin + "/counters") == {
        "token_requests": 0,
        "token_outcomes": zero_outcomes,
        "tokens_issued": 0,
        "revokes": 0,
        "api_calls": 0,
        "api_ok": 0,
        "api_401": 0,
        "api_429": 0,
        "calls_per_token": {},
        "dropped_connections": 0,
    }


def test_the_request_log(emu: FalconEmulator, admin: str) -> None:
    token = token_of(emu)
    body = b'{"ids": ["a", "b"], "note": "caf\\u00e9"}'
    created = api(emu, token, RULE_GROUPS, "POST", params={"x": "1"}, data=body)
    assert created.status_code == 201
    log = ok("GET", admin + "/requests")["requests"]
    entries = emu.request_log
    assert [entry["headers"] for entry in log] == [dict(entry.headers) for entry in entries]
    assert log == [
        {
            "region": "us-1",
            "method": "POST",
            "path": "/oauth2/token",
            "query": "",
            "status": 201,
            "headers": log[0]["headers"],
            "client_ip": "127.0.0.1",
            "client_id": None,
            "member_cid": None,
            "body_length": None,
            "body_sha256": None,
            "json_body": None,
        },
        {
            "region": "us-1",
            "method": "POST",
            "path": RULE_GROUPS,
            "query": "x=1",
            "status": 201,
            "headers": log[1]["headers"],
            "client_ip": "127.0.0.1",
            "client_id": CLIENT_ID,
            "member_cid": None,
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "json_body": {"ids": ["a", "b"], "note": "café"},
        },
    ]
    assert log[1]["headers"]["Authorization"] == "Bearer <redacted>"
    assert token not in json.dumps(log)
    assert ok("DELETE", admin + "/requests") == {"ok": True}
    assert ok("GET", admin + "/requests") == {"requests": []}
    assert emu.request_log == []


# -- errors --------------------------------------------------------------------------------------

FAILURES = "/faults/token-failures"
CLIENT_FIELDS = "'client_id', 'client_secret', 'region', 'member_cids', 'cid'"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        (
            "POST",
            FAILURES,
            "{n",
            400,
            "The body is not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 2.",
        ),
        ("POST", FAILURES, '{"n": NaN}', 400, "The body is not valid JSON: NaN is no JSON number."),
        ("POST", FAILURES, b"\xff\xfe\xfd", 400, "The body is not UTF-8 text."),
        ("POST", FAILURES, "[1]", 400, "The body must be a JSON object, got an array."),
        (
            "POST",
            FAILURES,
            "",
            400,
            f"Missing field 'n': POST {FAILURES} takes 'n', 'status', 'retry_after'.",
        ),
        (
            "POST",
            FAILURES,
            '{"n": 1, "retryAfter": 5}',
            400,
            f"Unknown field 'retryAfter': POST {FAILURES} takes 'n', 'status', 'retry_after'.",
        ),
        ("POST", FAILURES, '{"n": -1}', 400, "n must be a non-negative int, got -1."),
        (
            "POST",
            FAILURES,
            '{"n": 1, "status": 200}',
            400,
            "status must be an error status (400-599), got 200.",
        ),
        (
            "POST",
            "/faults/token-delay",
            '{"seconds": "1"}',
            400,
            "seconds must be a non-negative number of seconds, got '1'.",
        ),
        (
            "POST",
            "/clients",
            '{"client_id": "x"}',
            400,
            f"Missing field 'client_secret': POST /clients takes {CLIENT_FIELDS}.",
        ),
        (
            "POST",
            "/clients",
            '{"client_id": "x", "client_secret": 12345678}',
            400,
            "Field 'client_secret' must be a string, got a number.",
        ),
        (
            "POST",
            "/clients",
            '{"client_id": "x", "client_secret": "y", "member_cids": "c1"}',
            400,
            "Field 'member_cids' must be an array, got a string.",
        ),
        (
            "POST",
            "/clients",
            '{"client_id": "x", "client_secret": "y", "member_cids": [1]}',
            400,
            "Field 'member_cids' must be an array of strings.",
        ),
        (
            "POST",
            "/clients",
            '{"client_id": "", "client_secret": "y"}',
            400,
            "client_id and client_secret must be non-empty strings.",
        ),
        (
            "POST",
            "/collections",
            '{"name": "x", "id_field": "id", "query_path": "x/v1"}',
            400,
            "query_path must be a path starting with '/' (no query), got 'x/v1'.",
        ),
        (
            "PUT",
            "/collections/hosts/records",
            "3",
            400,
            "The body must be a JSON array of records, or an object with 'records'.",
        ),
        (
            "PUT",
            "/collections/hosts/records",
            "{}",
            400,
            "Missing field 'records': PUT /collections/hosts/records takes 'records'.",
        ),
        (
            "POST",
            "/tokens/invalidate",
            '{"all": true}',
            400,
            "Unknown field 'all': POST /tokens/invalidate takes no fields.",
        ),
        (
            "GET",
            "/counters?verbose=1",
            None,
            400,
            "Unknown query parameter 'verbose' for GET /counters.",
        ),
        (
            "GET",
            "/faults/token-hold?timeout=1",
            None,
            400,
            "Query parameter 'timeout' goes with 'wait_for_held'.",
        ),
        (
            "GET",
            "/faults/token-hold?wait_for_held=one",
            None,
            400,
            "Query parameter 'wait_for_held' must be a number.",
        ),
        (
            "GET",
            "/faults/token-hold?wait_for_held=1&timeout=61",
            None,
            400,
            "Query parameter 'timeout' must be at most 60.",
        ),
        (
            "GET",
            "/nowhere",
            None,
            404,
            "Unknown admin path '/nowhere'; GET / describes the emulator.",
        ),
        (
            "GET",
            "/collections/nothing/records",
            None,
            404,
            "No collection 'nothing' (collections: 'hosts').",
        ),
        (
            "DELETE",
            "/collections/nothing",
            None,
            404,
            "No collection 'nothing' (collections: 'hosts').",
        ),
    ],
)
def test_errors_are_one_line_of_json(
    admin: str, method: str, path: str, body: str | bytes | None, status: int, message: str
) -> None:
    assert_error(curl(method, admin + path, body), status, message)


def test_an_unknown_region_is_refused(admin: str) -> None:
    reply = curl(
        "POST", admin + "/clients", '{"client_id": "x", "client_secret": "y", "region": "mars"}'
    )
    assert reply.status == 400
    assert reply.json()["error"].startswith("Unknown Falcon cloud 'mars': use one of us-1, ")
    assert reply.text.count("\n") == 1


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/counters", "GET"),
        ("GET", FAILURES, "POST"),
        ("PUT", "/clients", "GET, POST"),
        ("POST", "/collections/hosts", "DELETE"),
        ("DELETE", "/collections/hosts/records", "GET, PUT"),
        ("POST", "/", "GET"),
    ],
)
def test_a_wrong_method_is_a_405_with_allow(
    emu: FalconEmulator, admin: str, method: str, path: str, allow: str
) -> None:
    reply = curl(method, admin + path)
    assert_error(reply, 405, f"{path} takes {allow}, not {method}.")
    assert reply.headers["allow"] == allow
    assert emu.records("hosts") != []  # nothing was done


def test_a_foreign_host_is_refused(admin: str) -> None:
    reply = curl("GET", admin + "/", None, "-H", "Host: attacker.example")
    assert_error(
        reply,
        403,
        "The admin API answers requests to 127.0.0.1 or localhost, not 'attacker.example'.",
    )
    port = admin.rsplit(":", 1)[1]
    assert curl("GET", admin + "/counters", None, "-H", f"Host: localhost:{port}").status == 200


def exchange_until_closed(admin: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """Sends raw bytes to the admin port; its status and JSON answer, once it closes."""
    port = int(admin.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        with sock.makefile("rb") as reply:
            head, _, body = reply.read().partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("head", "error"),
    [
        (
            "GET /counters HTTP/1.1\r\nHost: localhost:evil.example",
            "Malformed Host header 'localhost:evil.example': send a host and an optional "
            "numeric port.",
        ),
        (
            "GET /counters HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example",
            "The request carries 2 Host headers; send exactly one.",
        ),
        (
            "GET /counters HTTP/1.1",
            "An HTTP/1.1 request needs a Host header, such as Host: 127.0.0.1.",
        ),
        (
            "GET http://evil.example/counters HTTP/1.1\r\nHost: 127.0.0.1",
            "The request target names 'evil.example' but the Host header '127.0.0.1'; send a "
            "path as the target, or name the same host in both.",
        ),
    ],
    ids=["non-digit-port", "two-hosts", "no-host", "absolute-form-elsewhere"],
)
def test_a_request_that_names_no_single_plain_host_is_a_400(
    admin: str, head: str, error: str
) -> None:
    request = f"{head}\r\nConnection: close\r\n\r\n".encode()
    assert exchange_until_closed(admin, request) == (400, {"error": error})


def test_an_absolute_form_target_is_the_host_an_http10_request_names(admin: str) -> None:
    request = b"GET http://evil.example/counters HTTP/1.0\r\n\r\n"
    assert exchange_until_closed(admin, request) == (
        403,
        {"error": "The admin API answers requests to 127.0.0.1 or localhost, not 'evil.example'."},
    )


@pytest.mark.parametrize(
    "head",
    [
        "GET /counters HTTP/1.1\r\nHost: localhost:{port}",
        "GET /counters HTTP/1.0",
        "GET http://127.0.0.1:{port}/counters HTTP/1.1\r\nHost: 127.0.0.1:{port}",
        "GET http://localhost/counters HTTP/1.0",
    ],
)
def test_a_request_that_names_the_admin_plainly_is_answered(admin: str, head: str) -> None:
    request = f"{head}\r\nConnection: close\r\n\r\n".format(port=admin.rsplit(":", 1)[1])
    status, counters = exchange_until_closed(admin, request.encode())
    assert (status, counters["token_requests"]) == (200, 0)


def test_a_body_over_16_mib_is_refused(admin: str) -> None:
    # curl announces it (Expect: 100-continue): refused before it is sent.
    reply = curl("PUT", admin + "/collections/hosts/records", b" " * (16 * 1024 * 1024 + 1))
    assert_error(reply, 413, "The body is larger than 16 MiB.")
    # Without Expect, from a socket: refused unread, and the connection closed.
    port = int(admin.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"PUT /collections/hosts/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 16777217\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nConnection: close" in head
    assert json.loads(body) == {"error": "The body is larger than 16 MiB."}


def test_connections_are_kept_alive(admin: str) -> None:
    port = int(admin.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/faults/api-rejections", body=b'{"n": 0}')
        first = conn.getresponse()
        assert (first.status, json.loads(first.read())) == (200, {"n": 0})
        sock = conn.sock
        conn.request("GET", "/nowhere")
        second = conn.getresponse()
        assert second.status == 404
        second.read()
        assert conn.sock is sock  # the same connection
        assert first.getheader("Connection") is None
    finally:
        conn.close()


def test_nothing_reaches_stderr(admin: str, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    ok("GET", admin + "/")
    curl("GET", admin + "/nowhere")
    curl("POST", admin + FAILURES, "{")
    assert capfd.readouterr().err == ""


# -- lifecycle ---------------------------------------------------------------------------------


def test_start_admin_needs_a_running_emulator() -> None:
    emulator = FalconEmulator()
    with pytest.raises(RuntimeError, match="not running"):
        emulator.start_admin()
    assert emulator.admin_url is None
    emulator.start()
    emulator.stop()
    with pytest.raises(RuntimeError, match="not running"):
        emulator.start_admin()


def test_start_admin_twice_is_refused(emu: FalconEmulator, admin: str) -> None:
    with pytest.raises(RuntimeError, match="already serves its admin API"):
        emu.start_admin()
    assert emu.admin_url == admin
    assert ok("GET", admin + "/counters")["token_requests"] == 0


@pytest.mark.parametrize("port", [-1, 65536, 1.5, True, "8080"])
def test_a_bad_admin_port_is_refused(emu: FalconEmulator, port: Any) -> None:
    with pytest.raises(ValueError, match="port must be 0 or a TCP port"):
        emu.start_admin(port)
    assert emu.admin_url is None


def test_an_admin_port_in_use_raises_oserror_and_leaves_nothing(emu: FalconEmulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            emu.start_admin(port)
        assert emu.admin_url is None
    url = emu.start_admin()  # the failed attempt left no admin server behind
    assert ok("GET", url + "/")["admin"] == url


def test_stop_stops_the_admin_server(emu: FalconEmulator, admin: str) -> None:
    port = int(admin.rsplit(":", 1)[1])
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        idle.request("GET", "/counters")
        assert idle.getresponse().read()
        started = time.monotonic()
        emu.stop()
        assert time.monotonic() - started < 2  # the idle keep-alive connection held nothing up
        assert emu.admin_url is None

        def ask_again() -> None:
            idle.request("GET", "/counters")
            idle.getresponse()

        with pytest.raises((ConnectionError, http.client.HTTPException)):
            ask_again()
    finally:
        idle.close()
    refused = subprocess.run(
        ["curl", "--silent", "--max-time", "30", admin + "/"], capture_output=True, check=False
    )
    assert refused.returncode == 7  # curl: failed to connect
    emu.stop()  # idempotent
