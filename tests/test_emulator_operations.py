"""Every Falcon operation is routed: Falcon's status and shape, 405, 404 and 400 as Falcon's.

Real sockets throughout; the catalogue (requests_falcon_auth/testing/_operations.json) is the
table of operations, generated from falconpy's by scripts/make_operations.py.
"""

from __future__ import annotations

import re
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


# An id of each format the catalogue knows (``ID_FORMATS`` in scripts/make_operations.py).
WELL_FORMED_IDS = {
    "[a-fA-F0-9]{32}_[a-fA-F0-9]{32}": "a" * 32 + "_" + "b" * 32,
    "[a-fA-F0-9]{64}_[a-fA-F0-9]{64}": "a" * 64 + "_" + "b" * 64,
    "[a-fA-F0-9]{64}": "c" * 64,
    "[^:]+:[^:]+": "fn1:2",
    "[a-z_]+:.+": "pid:" + "d" * 32 + ":42",
    r"\w{8}-\w{4}-\w{4}-\w{4}-\w{12}": "0f6e2a64-5d4c-4b3a-9a8b-7c6d5e4f3a2b",
}


def well_formed(operation: Operation) -> tuple[str, dict[str, Any]]:
    """A path and the request's arguments (query, JSON body or form) that pass ``operation``'s
    checks: a write's body has a field, a form-taking write sends a multipart form."""
    path = operation.path
    for param in operation.params:
        if param.where == "path":
            path = path.replace("{" + param.name + "}", valid(param))
    query = {p.name: valid(p) for p in operation.params if p.where == "query" and p.required}
    query.update({n: WELL_FORMED_IDS[f] for n, f in operation.id_formats if n in query})
    kwargs: dict[str, Any] = {"params": query}
    key = operation.id_key
    if any(p.where == "body" for p in operation.params):
        by_key = key is not None and key.where == "body"
        kwargs["json"] = {key.name: ["x1"]} if key is not None and by_key else {"name": "x1"}
    form = [p for p in operation.params if p.where == "formData"]
    if form and operation.kind in ("create", "update"):
        kwargs["files"] = {p.name: ("x1.txt", b"x1") for p in form if p.type == "file"}
        kwargs["files"].update({p.name: (None, "x1") for p in form if p.type != "file"})
    return path, kwargs


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
        path, kwargs = well_formed(operation)
        response = send(session, emu, operation.method, path, **kwargs)
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
        ("PUT", "/fwmgr/entities/network-locations/v1", {"json": {"name": "office"}}, 200),
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


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/message-center/aggregates/cases/GET/v1", [{}]),
        ("/exclusions/aggregates/exclusions/GET/v2", {"field": "value", "size": 10}),
        ("/alerts/aggregates/alerts/v2", [{"name": "by_status", "field": "status"}]),
        ("/exclusions/entities/exclusions/reports/v2", {"report_format": "csv"}),
        ("/malquery/entities/samples-multidownload/v1", {}),
    ],
)
def test_reads_sent_as_a_post_find_nothing_rather_than_create(
    emu: FalconEmulator, session: requests.Session, path: str, body: object
) -> None:
    response = send(session, emu, "POST", path, json=body)
    assert response.status_code == 200, response.text
    answer = assert_envelope(response)
    assert (answer["resources"], answer["errors"]) == ([], [])
    assert "pagination" not in answer["meta"]


@pytest.mark.parametrize(
    ("path", "pagination"),
    [
        ("/exclusions/sdmf/query/v1", {"total": 0}),
        ("/customobjects/v1/collections/c1/objects", {"offset": 0, "limit": 100, "total": 0}),
    ],
)
def test_searches_sent_as_a_post_answer_an_empty_page(
    emu: FalconEmulator, session: requests.Session, path: str, pagination: dict[str, object]
) -> None:
    query = {"filter": "name:'x'"}
    response = send(session, emu, "POST", path, json=query, params=query)
    assert response.status_code == 200, response.text
    answer = assert_envelope(response)
    assert (answer["resources"], answer["meta"]["pagination"]) == ([], pagination)


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", RULE_GROUPS, {}, "body is required: the JSON body has no fields"),
        ("POST", "/policy/entities/ioa-exclusions/v1", [{}], "body is required"),
        ("PATCH", "/users/entities/users/v1", {"firstName": None, "lastName": ""}, "no fields"),
        ("PATCH", "/alerts/entities/alerts/v3", {}, "body 'composite_ids' is required"),
        ("POST", "/filevantage/entities/policies/v1", {"resources": [{}]}, "no fields"),
    ],
)
def test_a_write_with_an_empty_body_is_a_400_naming_the_body(
    emu: FalconEmulator,
    session: requests.Session,
    method: str,
    path: str,
    body: object,
    message: str,
) -> None:
    response = send(session, emu, method, path, json=body, params={"user_uuid": "u1"})
    assert response.status_code == 400
    (error,) = assert_envelope(response)["errors"]
    assert error["code"] == 400
    assert message in error["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/filevantage/entities/policies/v1", 200),  # createPolicies: 200 in Falcon's swagger
        ("/message-center/entities/case/v2", 200),  # CreateCaseV2
        ("/policy/entities/ml-exclusions/v1", 200),  # createMLExclusionsV1
        ("/filevantage/entities/actions/v1", 202),  # startActions: Falcon acts later
        ("/policy/entities/prevention/v1", 201),  # createPreventionPolicies: the kind's 201
    ],
)
def test_a_create_answers_the_status_falcon_documents_for_it(
    emu: FalconEmulator, session: requests.Session, path: str, status: int
) -> None:
    response = send(session, emu, "POST", path, json={"resources": [{"name": "unit"}]})
    assert response.status_code == status, response.text


def test_the_catalogue_records_success_statuses_and_id_formats() -> None:
    operations = {o.ids[0]: o for o in catalogue().operations}
    assert operations["createPolicies"].status == 200
    assert operations["createPreventionPolicies"].status is None
    assert dict(operations["getVulnerabilities"].id_formats) == {
        "ids": "[a-fA-F0-9]{32}_[a-fA-F0-9]{32}"
    }
    kinds = {
        "AggregateCases": "read",
        "exclusions_get_reports_v2": "read",
        "PostMalQueryEntitiesSamplesMultidownloadV1": "read",
        "exclusions_sdmf_query_v1": "query",
        "SearchObjects": "query",
        "createPreventionPolicies": "create",
        "GetDeviceDetails": "entity",
    }
    assert {name: operations[name].kind for name in kinds} == kinds
    for pattern, sample in WELL_FORMED_IDS.items():
        assert re.fullmatch(pattern, sample)


@pytest.mark.parametrize(
    ("path", "params", "name", "value"),
    [
        ("/spotlight/entities/vulnerabilities/v2", {"ids": "1234567890"}, "ids", "1234567890"),
        ("/threatgraph/entities/incident/v2", {"ids": "whatever"}, "ids", "whatever"),
        (
            "/faas-gateway/entities/execution-request-body/v2",
            {"id": "whatever", "sha256": "whatever", "fn": "f:1", "filename": "f"},
            "sha256",
            "whatever",
        ),
        ("/hunting/entities/intelligence-queries/v1", {"ids": "12345678"}, "ids", "12345678"),
    ],
)
def test_an_id_that_cannot_be_one_is_a_400_naming_it(
    emu: FalconEmulator,
    session: requests.Session,
    path: str,
    params: dict[str, str],
    name: str,
    value: str,
) -> None:
    response = send(session, emu, "GET", path, params=params)
    assert response.status_code == 400
    (error,) = assert_envelope(response)["errors"]
    assert error["message"].startswith(f"{name} {value!r} is not a valid id: it must match ")


def test_a_user_uuid_that_cannot_be_one_is_a_400_before_the_body(
    emu: FalconEmulator, session: requests.Session
) -> None:
    roles = "/user-roles/entities/user-roles/v1"
    grant = {"json": {"roleIds": ["falconhost_admin"]}}
    refused = send(session, emu, "POST", roles, params={"user_uuid": "12345678"}, **grant)
    assert refused.status_code == 400
    (error,) = assert_envelope(refused)["errors"]
    assert error["message"].startswith("user_uuid '12345678' is not a valid id")
    uuid = WELL_FORMED_IDS[r"\w{8}-\w{4}-\w{4}-\w{4}-\w{12}"]
    granted = send(session, emu, "POST", roles, params={"user_uuid": uuid}, **grant)
    assert assert_envelope(granted)["errors"] == []


@pytest.mark.parametrize(
    ("path", "ids"),
    [
        ("/spotlight/entities/vulnerabilities/v2", "a" * 32 + "_" + "b" * 32),
        ("/threatgraph/entities/incident/v2", "inc:" + "a" * 32 + ":" + "b" * 32),
    ],
)
def test_a_well_formed_unknown_id_stays_a_404(
    emu: FalconEmulator, session: requests.Session, path: str, ids: str
) -> None:
    response = send(session, emu, "GET", path, params={"ids": ids})
    assert response.status_code == 404
    assert [e["id"] for e in assert_envelope(response)["errors"]] == [ids]


@pytest.mark.parametrize("version", [1, 2])
def test_a_form_write_needs_its_form_and_its_file(
    emu: FalconEmulator, session: requests.Session, version: int
) -> None:
    path = f"/real-time-response/entities/put-files/v{version}"
    fields = {"description": (None, "unit"), "name": (None, "f.txt")}
    bare = send(session, emu, "POST", path)
    assert bare.status_code == 415
    assert assert_envelope(bare)["errors"] == [
        {"code": 415, "message": "Content-Type must be multipart/form-data, got none"}
    ]
    as_json = send(session, emu, "POST", path, json={"description": "unit"})
    assert as_json.status_code == 415
    no_file = send(session, emu, "POST", path, files=fields)
    assert no_file.status_code == 400
    assert assert_envelope(no_file)["errors"][0]["message"] == (
        "file is required: a file part of the multipart/form-data body"
    )
    whole = send(session, emu, "POST", path, files={**fields, "file": ("f.txt", b"x")})
    assert whole.status_code == 200, whole.text


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
