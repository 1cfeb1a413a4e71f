"""Every Falcon operation is routed: Falcon's status and shape, 405, 404 and 400 as Falcon's.

Real sockets throughout; the catalogue (requests_falcon_auth/testing/_operations.json) is the
table of operations, generated from falconpy's by scripts/make_operations.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from falconpy import APIHarnessV2

from requests_falcon_auth.testing import ApiAnswer, ApiCall, FalconEmulator
from requests_falcon_auth.testing._builtin_operations import BUILTIN_OPERATIONS
from requests_falcon_auth.testing._operations import Operation, Param, catalogue

CLIENT_ID = "operations-client"
SECRET = "s3cret-operations"
GATEWAY = "crowdstrike-api-gateway"
HOST_PATHS = {
    "/devices/queries/devices/v1",
    "/devices/queries/devices-scroll/v1",
    "/devices/entities/devices/v2",
}
OAUTH2_PATHS = {"/oauth2/token", "/oauth2/revoke"}
RULE_GROUPS = "/ioarules/entities/rule-groups/v1"


@pytest.fixture(scope="module")
def emu() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1",), region_header=False) as emulator:
        emulator.add_client(CLIENT_ID, SECRET, region="us-1")
        yield emulator


@pytest.fixture(scope="module")
def session(emu: FalconEmulator) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        form = {"client_id": CLIENT_ID, "client_secret": SECRET}
        token = s.post(emu.base_url("us-1") + "/oauth2/token", data=form).json()
        s.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield s


def send(
    session: requests.Session, emu: FalconEmulator, method: str, path: str, **kwargs: Any
) -> requests.Response:
    return session.request(method, emu.base_url("us-1") + path, timeout=30, **kwargs)


def valid(param: Param) -> str:
    """A value Falcon's checks accept for ``param``."""
    if param.enum:
        return param.enum[0]
    kind = param.items if param.type == "array" else param.type
    if kind == "integer":
        return str(param.minimum if param.minimum is not None else 1)
    if kind == "boolean":
        return "true"
    return "x1"


def well_formed(operation: Operation) -> tuple[str, dict[str, str], dict[str, object] | None]:
    """A path, query and JSON body that pass ``operation``'s checks."""
    path = operation.path
    for param in operation.params:
        if param.where == "path":
            path = path.replace("{" + param.name + "}", valid(param))
    query = {p.name: valid(p) for p in operation.params if p.where == "query" and p.required}
    key = operation.id_key
    body = next((p for p in operation.params if p.where == "body"), None)
    json_body: dict[str, object] | None = None
    if body is not None:
        json_body = {key.name: ["x1"]} if key is not None and key.where == "body" else {}
    return path, query, json_body


def assert_envelope(response: requests.Response, powered_by: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"meta", "resources", "errors"}
    assert body["meta"]["trace_id"] == response.headers["X-Cs-Traceid"]
    if powered_by is not None:
        assert body["meta"]["powered_by"] == powered_by
    return body


# -- every operation ---------------------------------------------------------------------------


def skipped_here(operation: Operation) -> bool:
    """The sample hosts and the OAuth2 service, and the operations with answers of their own
    (``test_emulator_operations_shapes.py``)."""
    builtin = (operation.method, operation.path) in BUILTIN_OPERATIONS
    return builtin or operation.path in HOST_PATHS | OAUTH2_PATHS


def test_every_catalogued_operation_is_routed_with_falcons_empty_answer(
    emu: FalconEmulator, session: requests.Session
) -> None:
    statuses: Counter[int] = Counter()
    for operation in catalogue().operations:
        if skipped_here(operation):
            continue  # answered with data elsewhere: hosts, OAuth2, operations of their own
        path, query, json_body = well_formed(operation)
        response = send(session, emu, operation.method, path, params=query, json=json_body)
        statuses[response.status_code] += 1
        where = f"{operation.ids[0]}: {operation.method} {path}"
        if operation.method == "HEAD":
            assert response.status_code == 200, where
            continue
        body = assert_envelope(response, "falcon-emulator")
        assert body["resources"] == [], where
        key = operation.id_key
        if operation.kind == "entity" and key is not None and (key.required or key.where == "body"):
            assert response.status_code == 404, where
            assert [e["code"] for e in body["errors"]] == [404], where
            continue
        assert body["errors"] == [], where
        if operation.kind in ("query", "combined"):
            assert response.status_code == 200, where
            assert body["meta"]["pagination"]["total"] == 0, where
        else:
            assert response.status_code in (200, 201, 202), where
    skipped = [o for o in catalogue().operations if skipped_here(o)]
    assert sum(statuses.values()) == len(catalogue().operations) - len(skipped)
    assert set(statuses) == {200, 201, 202, 404}


def test_the_catalogue_names_its_source() -> None:
    assert catalogue().source.startswith("crowdstrike-falconpy 1.6.6")
    assert len(catalogue().operations) > 1500


# -- shapes by kind ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "pagination"),
    [
        ("/aidr/queries/agents/v1", {"limit": 7, "offset": 3}, {"offset": 3, "limit": 7}),
        ("/aidr/queries/agents/v1", {}, {"offset": 0, "limit": 100}),
        ("/agentic-studio/queries/agent-templates/v1", {}, {"offset": 0, "limit": 30}),
        ("/discover/queries/iot-hosts/v2", {"limit": 5}, {"after": "", "limit": 5}),
        ("/hunting/queries/hunting-guides/v1", {"limit": 5}, {"offset": "", "limit": 5}),
    ],
)
def test_queries_answer_an_empty_page_in_their_pagination_style(
    emu: FalconEmulator,
    session: requests.Session,
    path: str,
    params: dict[str, int],
    pagination: dict[str, object],
) -> None:
    response = send(session, emu, "GET", path, params=params)
    assert response.status_code == 200
    body = assert_envelope(response)
    assert (body["resources"], body["errors"]) == ([], [])
    assert body["meta"]["pagination"] == {**pagination, "total": 0}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "key", "ids"),
    [
        ("GET", "/samples/entities/samples/v3", {"params": {"ids": "ab" * 32}}, "ids", ["ab" * 32]),
        ("GET", RULE_GROUPS, {"params": {"ids": ["g1", "g2", "g1"]}}, "ids", ["g1", "g2"]),
        (
            "POST",
            "/alerts/entities/alerts/v2",
            {"json": {"composite_ids": ["c:1", "c:2"]}},
            "composite_ids",
            ["c:1", "c:2"],
        ),
        (
            "POST",
            "/user-management/entities/users/GET/v1",
            {"json": {"ids": ["u1"]}},
            "ids",
            ["u1"],
        ),
    ],
)
def test_entity_lookups_of_unknown_ids_are_a_404_for_each(
    emu: FalconEmulator,
    session: requests.Session,
    method: str,
    path: str,
    kwargs: Any,
    key: str,
    ids: list[str],
) -> None:
    response = send(session, emu, method, path, **kwargs)
    assert response.status_code == 404
    body = assert_envelope(response)
    assert body["errors"] == [
        {"code": 404, "message": f"{key} {i!r} not found", "id": i} for i in ids
    ]
    assert body["resources"] == []


def test_an_entity_lookup_reads_the_key_its_operation_takes(
    emu: FalconEmulator, session: requests.Session
) -> None:
    wrong = send(session, emu, "POST", "/alerts/entities/alerts/v2", json={"ids": ["c:1"]})
    assert wrong.status_code == 400
    assert assert_envelope(wrong)["errors"] == [
        {"code": 400, "message": "composite_ids is required"}
    ]


def test_an_entity_operation_that_takes_no_ids_finds_nothing(
    emu: FalconEmulator, session: requests.Session
) -> None:
    response = send(session, emu, "GET", "/api-clients/entities/accessible-scopes/v1")
    assert response.status_code == 200
    assert assert_envelope(response)["resources"] == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", RULE_GROUPS, {"json": {"name": "g"}}, 201),
        ("PATCH", RULE_GROUPS, {"json": {"id": "g"}}, 200),
        ("DELETE", RULE_GROUPS, {"params": {"ids": "g"}}, 200),
        ("PUT", "/fwmgr/entities/network-locations/v1", {"json": {}}, 200),
        (
            "POST",
            "/policy/entities/prevention-actions/v1",
            {"params": {"action_name": "enable"}},
            200,
        ),
        (
            "POST",
            "/devices/entities/devices-actions/v2",
            {"params": {"action_name": "contain"}, "json": {"ids": ["d1"]}},
            202,
        ),
    ],
)
def test_writes_answer_falcons_status_for_their_kind(
    emu: FalconEmulator,
    session: requests.Session,
    method: str,
    path: str,
    kwargs: Any,
    status: int,
) -> None:
    if "json" not in kwargs and "data" not in kwargs:
        kwargs = {**kwargs, "json": {"ids": ["p1"]}}
    response = send(session, emu, method, path, **kwargs)
    assert response.status_code == status, response.text
    body = assert_envelope(response)
    assert (body["resources"], body["errors"]) == ([], [])


# -- 404, 405, templates -----------------------------------------------------------------------


def test_an_unknown_path_is_falcons_404(emu: FalconEmulator, session: requests.Session) -> None:
    for method in ("GET", "POST", "DELETE"):
        response = send(session, emu, method, "/echo/v1")
        assert response.status_code == 404
        assert assert_envelope(response, GATEWAY)["errors"] == [
            {"code": 404, "message": "Not Found"}
        ]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/sensors/queries/installers/ccid/v1", "GET"),
        ("PUT", RULE_GROUPS, "DELETE, GET, PATCH, POST"),
        ("DELETE", "/customobjects/v1/collections/c1/schemas", "GET"),  # a template
    ],
)
def test_a_known_path_with_another_method_is_a_405_with_allow(
    emu: FalconEmulator, session: requests.Session, method: str, path: str, allow: str
) -> None:
    response = send(session, emu, method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    errors = assert_envelope(response, GATEWAY)["errors"]
    assert [e["code"] for e in errors] == [405]


def test_path_templates_match_one_segment_each(
    emu: FalconEmulator, session: requests.Session
) -> None:
    objects = "/customobjects/v1/collections/c1/objects"
    assert send(session, emu, "GET", objects).status_code == 200
    assert send(session, emu, "GET", "/customobjects/v1/collections//objects").status_code == 404
    versioned = "/customobjects/v1/collections/c1/v2/objects"  # {collection_version} too
    assert send(session, emu, "GET", versioned).status_code == 200
    assert (
        send(session, emu, "GET", "/customobjects/v1/collections/a/b/c/objects").status_code == 404
    )
    deleted = send(session, emu, "DELETE", "/aspm-api-gateway/api/v1/group/42")
    assert deleted.status_code == 200
    refused = send(session, emu, "DELETE", "/aspm-api-gateway/api/v1/group/forty-two")
    assert refused.status_code == 400
    assert "ID must be an integer" in refused.json()["errors"][0]["message"]


# -- 400: the parameters, as Falcon checks them --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "message"),
    [
        ("GET", "/samples/entities/samples/v3", {}, "ids is required"),
        (
            "GET",
            "/aidr/queries/agents/v1",
            {"params": {"limit": "ten"}},
            "limit must be an integer",
        ),
        (
            "GET",
            "/agentic-studio/queries/agents/v2",
            {"params": {"limit": "501"}},
            "limit must be an integer from 1 to 500, got '501'",
        ),
        (
            "GET",
            "/devices/queries/devices/v1",
            {"params": {"limit": "0"}},
            "limit must be an integer from 1 to 5000, got '0'",
        ),
        (
            "GET",
            "/it-automation/queries/policies/v1",
            {"params": {"platform": "BeOS"}},
            "platform must be one of Windows, Mac, Linux, got 'BeOS'",
        ),
        (
            "GET",
            "/alerts/queries/alerts/v2",
            {"params": {"include_hidden": "maybe"}},
            "include_hidden must be a boolean",
        ),
        (
            "GET",
            "/admission-control-policies/entities/policies/v1",
            {"params": {"ids": [f"p{n}" for n in range(101)]}},
            "ids takes at most 100 items, got 101",
        ),
        ("POST", RULE_GROUPS, {}, "a JSON request body is required"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    emu: FalconEmulator,
    session: requests.Session,
    method: str,
    path: str,
    kwargs: Any,
    message: str,
) -> None:
    response = send(session, emu, method, path, **kwargs)
    assert response.status_code == 400
    (error,) = assert_envelope(response)["errors"]
    assert error["code"] == 400
    assert message in error["message"]


# -- what wins over the catalogue ----------------------------------------------------------------


def test_handlers_and_collections_win_over_the_catalogue(
    emu: FalconEmulator, session: requests.Session
) -> None:
    def ccid(call: ApiCall) -> ApiAnswer:
        return ApiAnswer(200, ["0123456789ABCDEF0123456789ABCDEF-12"])

    emu.add_handler("GET", "/sensors/queries/installers/ccid/v1", ccid)
    emu.add_collection(
        "mine", query_path="/mine/queries/things/v1", id_field="id", records=[{"id": "t1"}]
    )
    emu.add_collection(
        "my-alerts",
        entity_path="/alerts/entities/alerts/v2",
        id_field="composite_id",
        records=[{"composite_id": "cid:ind:1"}],
    )
    try:
        answered = send(session, emu, "GET", "/sensors/queries/installers/ccid/v1")
        assert answered.json()["resources"] == ["0123456789ABCDEF0123456789ABCDEF-12"]
        assert send(session, emu, "GET", "/mine/queries/things/v1").json()["resources"] == ["t1"]
        found = send(
            session,
            emu,
            "POST",
            "/alerts/entities/alerts/v2",
            json={"composite_ids": ["cid:ind:1", "cid:ind:2"]},
        )
        assert found.status_code == 200
        assert found.json()["resources"] == [{"composite_id": "cid:ind:1"}]
        assert [e["id"] for e in found.json()["errors"]] == ["cid:ind:2"]
    finally:
        emu.remove_handler("GET", "/sensors/queries/installers/ccid/v1")
        emu.remove_collection("mine")
        emu.remove_collection("my-alerts")
    assert send(session, emu, "GET", "/mine/queries/things/v1").status_code == 404


# -- CrowdStrike's SDK, with no data loaded ------------------------------------------------------


def test_falconpy_gets_falcons_shapes_with_no_data_loaded(emu: FalconEmulator) -> None:
    sdk = APIHarnessV2(client_id=CLIENT_ID, client_secret=SECRET, base_url=emu.base_url("us-1"))
    alerts = sdk.command("GetQueriesAlertsV2", limit=50)
    assert alerts["status_code"] == 200
    assert alerts["body"]["resources"] == []
    assert alerts["body"]["meta"]["pagination"] == {"offset": 0, "limit": 50, "total": 0}
    details = sdk.command("GetDeviceDetails", body={"ids": ["0" * 32]})
    assert details["status_code"] == 404
    assert details["body"]["errors"][0]["id"] == "0" * 32
    installers = sdk.command("GetCombinedSensorInstallersByQuery", filter="platform:'solaris'")
    assert installers["status_code"] == 200
    assert installers["body"]["resources"] == []
    assert installers["body"]["meta"]["pagination"]["total"] == 0
    sample = sdk.command("GetSampleV3", ids="ab" * 32)
    assert sample["status_code"] == 404
    assert sample["body"]["errors"][0]["code"] == 404
