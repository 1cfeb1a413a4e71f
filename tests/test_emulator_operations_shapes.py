"""The operations with shapes of their own, answered without HTTP: online state, CCID, sensor
installers and their downloads, the sample store, event streams, configuration detections."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import datetime, timezone

import pytest
from urllib3 import encode_multipart_formdata

from requests_falcon_auth.testing._api_call import OCTET_STREAM, ApiAnswer, ApiCall, parse_query
from requests_falcon_auth.testing._builtin_operations import (
    BUILTIN_OPERATIONS,
    BuiltinContext,
    builtin_operation,
)
from requests_falcon_auth.testing._config_detections import configuration_detections
from requests_falcon_auth.testing._event_streams import (
    REFRESH_ACTION,
    SESSION_LIFETIME,
    list_streams,
    refresh_stream,
)
from requests_falcon_auth.testing._installers import (
    ccid,
    combined_installers,
    download_installer,
    installer_entities,
    query_installers,
    sample_installers,
)
from requests_falcon_auth.testing._online_state import STATES, host_state, online_state
from requests_falcon_auth.testing._operations import catalogue
from requests_falcon_auth.testing._sample_hosts import sample_hosts, sample_hosts_collection
from requests_falcon_auth.testing._sample_store import SampleStore
from requests_falcon_auth.testing._wire import Headers

CID = "0123456789abcdef0123456789abcdef"
CHILD = "fedcba9876543210fedcba9876543210"
BASE = "http://127.0.0.1:8080"


def call(
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    *,
    cid: str = CID,
    content_type: str | None = None,
) -> ApiCall:
    headers = Headers([("Content-Type", content_type)] if content_type else [])
    return ApiCall(
        method=method,
        path=path,
        query=parse_query(query),
        query_string=query,
        json_body=None,
        body=body,
        client_id="shapes",
        member_cid=None if cid == CID else cid,
        cid=cid,
        region="us-1",
        headers=headers,
        base_url=BASE,
    )


# -- ApiAnswer: a file answer ------------------------------------------------------------------


def test_a_file_answer_carries_bytes_and_its_content_type() -> None:
    answer = ApiAnswer(200, body=b"MZ\x90\x00", content_type=OCTET_STREAM)
    assert (answer.body, answer.content_type) == (b"MZ\x90\x00", "application/octet-stream")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"body": "text"}, TypeError, "must be bytes"),
        ({"body": b"x", "resources": [1]}, ValueError, "takes no resources"),
        ({"body": b"x", "meta": {"pagination": {}}}, ValueError, "takes no resources"),
        ({"body": b"x", "status": 404}, ValueError, "Falcon's errors are JSON"),
        ({"body": b"x", "content_type": ""}, ValueError, "content_type"),
        ({"resources": [1], "resource_object": {"a": 1}}, ValueError, "not both"),
    ],
)
def test_an_answer_that_cannot_be_sent_is_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ApiAnswer(**kwargs)  # type: ignore[arg-type]


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "template"), sorted(BUILTIN_OPERATIONS))
def test_every_builtin_answers_an_operation_of_the_catalogue(method: str, template: str) -> None:
    concrete = template.replace("{partition}", "0")
    known = catalogue().match(concrete)
    assert known is not None
    assert known.template == template
    assert method in known.operations
    assert builtin_operation(method, template) is BUILTIN_OPERATIONS[(method, template)]


def test_an_operation_without_a_shape_of_its_own_has_no_builtin() -> None:
    assert builtin_operation("GET", "/devices/queries/devices/v1") is None
    assert builtin_operation("PUT", "/samples/entities/samples/v3") is None


# -- online state ------------------------------------------------------------------------------

ONLINE = "/devices/entities/online-state/v1"


def ids_query(*ids: str) -> str:
    return "&".join(f"ids={i}" for i in ids)


def test_known_hosts_each_get_a_state_and_the_same_one_every_time() -> None:
    hosts = sample_hosts_collection()
    device_ids = [str(h["device_id"]) for h in sample_hosts()[:5]]
    answer = online_state(call("GET", ONLINE, ids_query(*device_ids)), hosts)
    assert answer.status == 200
    assert answer.errors == []
    assert [r["id"] for r in answer.resources] == device_ids  # type: ignore[index]
    assert all(r["state"] in STATES for r in answer.resources)  # type: ignore[index]
    again = online_state(call("GET", ONLINE, ids_query(*device_ids)), hosts)
    assert again.resources == answer.resources


def test_the_sample_hosts_are_not_all_in_one_state() -> None:
    states = {host_state(str(h["device_id"])) for h in sample_hosts()}
    assert {"online", "offline"} <= states


def test_an_unknown_host_gets_a_404_error_of_its_own() -> None:
    known = str(sample_hosts()[0]["device_id"])
    answer = online_state(call("GET", ONLINE, ids_query(known, "nope")), sample_hosts_collection())
    assert answer.status == 200
    assert [r["id"] for r in answer.resources] == [known]  # type: ignore[index]
    assert [(e["code"], e["id"]) for e in answer.errors] == [(404, "nope")]


@pytest.mark.parametrize("hosts", [sample_hosts_collection(), None])
def test_only_unknown_hosts_is_a_404(hosts: object) -> None:
    answer = online_state(call("GET", ONLINE, ids_query("a", "b")), hosts)  # type: ignore[arg-type]
    assert answer.status == 404
    assert answer.resources == []
    assert [e["id"] for e in answer.errors] == ["a", "b"]


def test_online_state_without_ids_is_a_400() -> None:
    answer = online_state(call("GET", ONLINE), sample_hosts_collection())
    assert answer.status == 400
    assert "ids" in str(answer.errors[0]["message"])


# -- CCID --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cid", [CID, CHILD])
def test_the_ccid_is_the_callers_cid_upper_case_with_a_checksum(cid: str) -> None:
    answer = ccid(call("GET", "/sensors/queries/installers/ccid/v1", cid=cid))
    assert answer.status == 200
    (value,) = answer.resources
    assert isinstance(value, str)
    assert re.fullmatch(r"[0-9A-F]{32}-[0-9A-F]{2}", value)
    assert value[:-3].lower() == cid  # what caracara's get_cid() reads back


# -- sensor installers -------------------------------------------------------------------------


def test_installers_cover_each_platform_in_several_versions() -> None:
    installers = sample_installers()
    platforms = {str(i["platform"]) for i in installers}
    assert platforms == {"windows", "mac", "linux"}
    for platform in platforms:
        versions = {i["version"] for i in installers if i["platform"] == platform}
        assert len(versions) >= 3
    assert len({i["sha256"] for i in installers}) == len(installers)


def test_an_installer_query_filters_and_sorts_as_fql_says() -> None:
    query = 'filter=platform:"linux"&sort=release_date|desc'
    answer = query_installers(call("GET", "/sensors/queries/installers/v2", query))
    assert answer.status == 200
    by_id = {i["sha256"]: i for i in sample_installers()}
    found = [by_id[i] for i in answer.resources]
    assert found
    assert all(i["platform"] == "linux" for i in found)
    dates = [str(i["release_date"]) for i in found]
    assert dates == sorted(dates, reverse=True)
    assert answer.meta["pagination"] == {"limit": 100, "total": len(found), "offset": len(found)}


def test_an_installer_query_pages_by_offset() -> None:
    first = query_installers(call("GET", "/sensors/queries/installers/v1", "limit=4"))
    rest = query_installers(call("GET", "/sensors/queries/installers/v1", "limit=4&offset=4"))
    assert len(first.resources) == 4
    assert not set(first.resources) & set(rest.resources)


@pytest.mark.parametrize("limit", ["0", "501"])
def test_an_installer_query_past_falcons_limit_is_a_400(limit: str) -> None:
    answer = query_installers(call("GET", "/sensors/queries/installers/v1", f"limit={limit}"))
    assert answer.status == 400
    assert "limit" in str(answer.errors[0]["message"])


def test_an_installer_query_with_a_bad_filter_is_a_400() -> None:
    answer = combined_installers(call("GET", "/sensors/combined/installers/v1", "filter=nope:'x'"))
    assert answer.status == 400


@pytest.mark.parametrize(
    ("version", "has_architectures", "has_lts"),
    [(1, False, False), (2, True, False), (3, True, True)],
)
def test_each_version_carries_its_own_fields(
    version: int, has_architectures: bool, has_lts: bool
) -> None:
    path = f"/sensors/combined/installers/v{version}"
    combined = combined_installers(call("GET", path, "filter=platform:'windows'"))
    assert combined.status == 200
    records = [r for r in combined.resources if isinstance(r, dict)]
    assert records
    assert all(r["platform"] == "windows" for r in records)
    ids = [str(r["sha256"]) for r in records]
    entities = installer_entities(
        call("GET", f"/sensors/entities/installers/v{version}", ids_query(*ids))
    )
    assert entities.resources == combined.resources
    for record in entities.resources:
        assert isinstance(record, dict)
        assert ("architectures" in record) is has_architectures
        assert ("is_lts" in record) is has_lts
        assert {"name", "platform", "os", "version", "release_date", "file_size"} <= set(record)


def test_an_unknown_installer_id_gets_a_404_error() -> None:
    known = str(sample_installers()[0]["sha256"])
    answer = installer_entities(
        call("GET", "/sensors/entities/installers/v1", ids_query(known, "0" * 64))
    )
    assert answer.status == 200
    assert [e["id"] for e in answer.errors] == ["0" * 64]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_a_download_is_the_installers_bytes_whose_sha256_is_its_id(version: int) -> None:
    installer = sample_installers()[4]
    path = f"/sensors/entities/download-installer/v{version}"
    answer = download_installer(call("GET", path, f"id={installer['sha256']}"))
    assert answer.status == 200
    assert answer.content_type == "application/octet-stream"
    assert answer.body is not None
    assert hashlib.sha256(answer.body).hexdigest() == installer["sha256"]
    assert len(answer.body) == installer["file_size"]
    assert (
        "Content-Disposition",
        f'attachment; filename="{installer["name"]}"',
    ) in answer.headers


def test_downloading_an_unknown_installer_is_a_404_and_no_id_a_400() -> None:
    path = "/sensors/entities/download-installer/v2"
    unknown = download_installer(call("GET", path, "id=" + "f" * 64))
    assert (unknown.status, unknown.body) == (404, None)
    assert unknown.errors[0]["code"] == 404
    assert download_installer(call("GET", path)).status == 400


# -- sample store ------------------------------------------------------------------------------

SAMPLES = "/samples/entities/samples/v3"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_a_raw_upload_is_stored_and_downloaded_byte_for_byte() -> None:
    store = SampleStore()
    uploaded = store.upload(call("POST", SAMPLES, "file_name=source.png", PNG))
    sha = hashlib.sha256(PNG).hexdigest()
    assert uploaded.status == 200
    assert uploaded.resources == [{"sha256": sha, "file_name": "source.png"}]
    downloaded = store.download(call("GET", SAMPLES, f"ids={sha}"))
    assert (downloaded.status, downloaded.body) == (200, PNG)
    assert downloaded.content_type == "application/octet-stream"


def test_a_multipart_upload_as_falconpy_sends_it_is_stored() -> None:
    body, content_type = encode_multipart_formdata(
        [
            ("sample", ("evil.exe", PNG, "application/octet-stream")),
            ("file_name", "evil.exe"),
            ("comment", "from a test"),
        ]
    )
    store = SampleStore()
    uploaded = store.upload(call("POST", SAMPLES, body=body, content_type=content_type))
    sha = hashlib.sha256(PNG).hexdigest()
    assert uploaded.resources == [{"sha256": sha, "file_name": "evil.exe"}]
    assert store.download(call("GET", SAMPLES, f"ids={sha}")).body == PNG


@pytest.mark.parametrize(
    ("query", "body", "content_type", "message"),
    [
        ("", PNG, None, "file_name is required"),
        ("file_name=a.bin", b"", None, "sample is required"),
        ("", b"--x\r\nno end", "multipart/form-data; boundary=x", "multipart"),
        ("", PNG, "multipart/form-data", "multipart"),
    ],
)
def test_an_upload_falcon_cannot_read_is_a_400(
    query: str, body: bytes, content_type: str | None, message: str
) -> None:
    answer = SampleStore().upload(call("POST", SAMPLES, query, body, content_type=content_type))
    assert answer.status == 400
    assert message in str(answer.errors[0]["message"])


def test_an_unknown_sample_is_a_404_in_falcons_envelope() -> None:
    answer = SampleStore().download(call("GET", SAMPLES, "ids=ThisIDDoesNotExit"))
    assert (answer.status, answer.body) == (404, None)
    assert answer.errors == [
        {"code": 404, "message": "ids 'ThisIDDoesNotExit' not found", "id": "ThisIDDoesNotExit"}
    ]


def test_a_deleted_sample_is_gone() -> None:
    store = SampleStore()
    store.upload(call("POST", SAMPLES, "file_name=a.bin", b"abc"))
    sha = hashlib.sha256(b"abc").hexdigest()
    deleted = store.remove(call("DELETE", SAMPLES, f"ids={sha}"))
    assert (deleted.status, deleted.resources) == (200, [sha])
    assert store.download(call("GET", SAMPLES, f"ids={sha}")).status == 404
    assert store.remove(call("DELETE", SAMPLES, f"ids={sha}")).status == 404
    assert store.size == 0


def test_samples_belong_to_the_cid_that_uploaded_them() -> None:
    store = SampleStore()
    store.upload(call("POST", SAMPLES, "file_name=a.bin", b"parent's", cid=CID))
    sha = hashlib.sha256(b"parent's").hexdigest()
    assert store.download(call("GET", SAMPLES, f"ids={sha}", cid=CHILD)).status == 404
    assert store.download(call("GET", SAMPLES, f"ids={sha}", cid=CID)).status == 200


def test_a_password_protected_download_is_refused_as_not_implemented() -> None:
    store = SampleStore()
    store.upload(call("POST", SAMPLES, "file_name=a.bin", b"abc"))
    sha = hashlib.sha256(b"abc").hexdigest()
    answer = store.download(call("GET", SAMPLES, f"ids={sha}&password_protected=true"))
    assert answer.status == 501


def test_the_store_forgets_the_oldest_samples_to_stay_within_its_capacity() -> None:
    store = SampleStore(capacity=10)
    for data in (b"aaaa", b"bbbb", b"cccc"):
        assert store.put(CID, "x", data) is not None
    assert store.size == 8
    assert store.get(CID, hashlib.sha256(b"aaaa").hexdigest()) is None
    assert store.get(CID, hashlib.sha256(b"cccc").hexdigest()) is not None
    too_large = store.upload(call("POST", SAMPLES, "file_name=big", b"z" * 11))
    assert too_large.status == 413
    assert store.size == 8


def test_uploading_the_same_bytes_again_keeps_one_copy() -> None:
    store = SampleStore()
    store.put(CID, "first", b"same")
    store.put(CID, "second", b"same")
    assert store.size == 4
    assert store.get(CID, hashlib.sha256(b"same").hexdigest()).file_name == "second"  # type: ignore[union-attr]


def test_the_store_stays_within_capacity_under_concurrent_uploads() -> None:
    store = SampleStore(capacity=1000)
    start = threading.Barrier(8)

    def upload(worker: int) -> None:
        start.wait()
        for n in range(200):
            store.put(CID, "x", f"{worker}-{n}-".encode() * 5)

    threads = [threading.Thread(target=upload, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0 < store.size <= 1000
    for data in (b"after" * 120, b"then" * 100):
        store.put(CID, "x", data)
    assert store.size == 1000  # both kept (600 + 400 bytes), every sample before forgotten


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True])
def test_a_store_needs_a_whole_positive_capacity(capacity: object) -> None:
    with pytest.raises((TypeError, ValueError), match="capacity"):
        SampleStore(capacity=capacity)  # type: ignore[arg-type]


# -- event streams -----------------------------------------------------------------------------

DATAFEED = "/sensors/entities/datafeed/v2"


def test_the_streams_of_an_app_carry_falcons_fields() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    answer = list_streams(call("GET", DATAFEED, "appId=my-app"), wall_clock=lambda: now)
    assert answer.status == 200
    (stream,) = answer.resources
    assert isinstance(stream, dict)
    assert stream["dataFeedURL"] == f"{BASE}/sensors/entities/datafeed/v1/0?appId=my-app"
    assert stream["refreshActiveSessionURL"] == (
        f"{BASE}/sensors/entities/datafeed-actions/v1/0?action_name={REFRESH_ACTION}&appId=my-app"
    )
    assert stream["refreshActiveSessionInterval"] == SESSION_LIFETIME == 1800
    token = stream["sessionToken"]
    assert token["expiration"] == "2026-03-01T12:30:00.000000Z"
    assert isinstance(token["token"], str)
    assert len(token["token"]) == 64
    json.dumps(answer.resources)  # JSON all the way down


def test_a_stream_listing_needs_an_app_id_and_a_known_format() -> None:
    assert list_streams(call("GET", DATAFEED)).status == 400
    bad = list_streams(call("GET", DATAFEED, "appId=a&format=xml"))
    assert bad.status == 400
    assert "format" in str(bad.errors[0]["message"])
    flat = list_streams(call("GET", DATAFEED, "appId=a&format=flatjson"))
    assert "format=flatjson" in flat.resources[0]["dataFeedURL"]  # type: ignore[index]


def test_refreshing_a_stream_session_answers_200() -> None:
    path = "/sensors/entities/datafeed-actions/v1/0"
    query = f"action_name={REFRESH_ACTION}&appId=my-app"
    assert refresh_stream(call("POST", path, query)).status == 200


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/sensors/entities/datafeed-actions/v1/0", "action_name=stop&appId=a", "action_name"),
        ("/sensors/entities/datafeed-actions/v1/0", f"action_name={REFRESH_ACTION}", "appId"),
        (
            "/sensors/entities/datafeed-actions/v1/x",
            f"action_name={REFRESH_ACTION}&appId=a",
            "partition",
        ),
    ],
)
def test_a_refresh_falcon_cannot_read_is_a_400(path: str, query: str, message: str) -> None:
    answer = refresh_stream(call("POST", path, query))
    assert answer.status == 400
    assert message in str(answer.errors[0]["message"])


# -- configuration detections ------------------------------------------------------------------


def test_configuration_detections_answer_resources_as_an_object() -> None:
    answer = configuration_detections(call("GET", "/detects/entities/iom/v1", "limit=1"))
    assert answer.status == 200
    assert answer.resources == ()
    assert answer.resource_object == {"events": []}
    assert answer.meta == {"pagination": {"limit": 1, "total": 0}}


@pytest.mark.parametrize("limit", ["0", "501", "x"])
def test_configuration_detections_past_their_limit_are_a_400(limit: str) -> None:
    answer = configuration_detections(call("GET", "/detects/entities/iom/v1", f"limit={limit}"))
    assert answer.status == 400


# -- the context the table hands over ----------------------------------------------------------


def test_the_table_reads_hosts_and_samples_from_its_context() -> None:
    context = BuiltinContext(hosts=sample_hosts_collection(), samples=SampleStore())
    device_id = str(sample_hosts()[0]["device_id"])
    online = BUILTIN_OPERATIONS[("GET", ONLINE)]
    assert online.answer(call("GET", ONLINE, f"ids={device_id}"), context).status == 200
    upload = BUILTIN_OPERATIONS[("POST", SAMPLES)]
    assert upload.answer(call("POST", SAMPLES, "file_name=a", b"abc"), context).status == 200
    assert context.samples.size == 3
