"""The operations with shapes of their own over real sockets: falconpy, unmodified, and the wire.

falconpy runs against an emulator built with ``region_header=False`` (it moves a custom base URL
to the public cloud ``X-Cs-Region`` names, see ``test_falconpy.py``); the wire checks use the
emulator's defaults, headers and gzip included.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from falconpy import (
    NGSIEM,
    APIError,
    APIHarnessV2,
    CSPMRegistration,
    EventStreams,
    Hosts,
    IdentityProtection,
    RealTimeResponseAdmin,
    SampleUploads,
    SensorDownload,
)
from support import sdk_emulator

from requests_falcon_auth.testing import FalconEmulator, RateLimits

CLIENT_ID = "shapes-client-61b0"
CLIENT_SECRET = "shapes-secret-c4f2"
REGION = "us-2"
PAYLOAD = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with sdk_emulator(CLIENT_ID, CLIENT_SECRET, REGION) as emulator:
        yield emulator


def creds(falcon: FalconEmulator) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": falcon.base_url(REGION),
    }


def own_cid(falcon: FalconEmulator) -> str:
    (client,) = falcon.clients
    return client.cid


def body(result: object) -> dict[str, Any]:
    assert isinstance(result, dict), result
    found = result["body"]
    assert isinstance(found, dict)
    return found


def device_ids(falcon: FalconEmulator) -> list[str]:
    return [str(host["device_id"]) for host in falcon.records("hosts")]


def test_hosts_get_online_state_names_each_hosts_state(falcon: FalconEmulator) -> None:
    hosts = Hosts(**creds(falcon))
    ids = device_ids(falcon)[:10]
    result = hosts.get_online_state(ids=[*ids, "0" * 32])
    assert result["status_code"] == 200
    states = {r["id"]: r["state"] for r in body(result)["resources"]}
    assert set(states) == set(ids)
    assert set(states.values()) <= {"online", "offline", "unknown"}
    assert [e["id"] for e in body(result)["errors"]] == ["0" * 32]


def test_sensor_download_ccid_is_the_callers_cid(falcon: FalconEmulator) -> None:
    result = SensorDownload(**creds(falcon)).get_sensor_installer_ccid()
    assert result["status_code"] == 200
    (value,) = body(result)["resources"]
    assert re.fullmatch(r"[0-9A-F]{32}-[0-9A-F]{2}", value)
    assert value[:-3].lower() == own_cid(falcon)


def test_sensor_download_finds_and_downloads_an_installer(
    falcon: FalconEmulator, tmp_path: Path
) -> None:
    sensors: Any = SensorDownload(**creds(falcon))
    found = sensors.get_sensor_installers_by_query_v2(
        filter='platform:"linux"', sort="release_date|desc"
    )
    ids = body(found)["resources"]
    assert ids
    details = body(sensors.get_sensor_installer_entities_v2(ids=ids))["resources"]
    assert all(d["platform"] == "linux" for d in details)
    assert [d["release_date"] for d in details] == sorted(
        (d["release_date"] for d in details), reverse=True
    )
    sensors.download_sensor_installer(id=ids[0], download_path=str(tmp_path), file_name="s.rpm")
    saved = (tmp_path / "s.rpm").read_bytes()
    assert hashlib.sha256(saved).hexdigest() == ids[0]


@pytest.mark.parametrize(
    "operation", ["DownloadSensorInstallerByIdV2", "DownloadSensorInstallerByIdV3"]
)
def test_a_download_comes_back_as_bytes(falcon: FalconEmulator, operation: str) -> None:
    sensors = SensorDownload(**creds(falcon))
    (first, *_) = body(sensors.get_sensor_installers_by_query(limit=1))["resources"]
    downloaded = getattr(sensors, operation)(parameters={"id": first})
    assert isinstance(downloaded, bytes)
    assert hashlib.sha256(downloaded).hexdigest() == first


def test_the_azure_user_script_downloads_as_bytes(falcon: FalconEmulator) -> None:
    script = CSPMRegistration(**creds(falcon)).GetCSPMAzureUserScriptsAttachment()
    assert isinstance(script, bytes)
    assert script.startswith(b"#!/bin/bash\n")


def test_identity_graphql_answers_graphqls_shape(falcon: FalconEmulator) -> None:
    idp = IdentityProtection(**creds(falcon))
    query = "query ($after: Cursor) { entities(first: 1, after: $after) { nodes { entityId } } }"
    paged: dict[str, Any] = {"query": query, "variables": {"after": None}}
    assert body(idp.graphql(**paged)) == {"data": {}, "extensions": {"remainingPoints": 500_000}}
    changed = body(idp.graphql(query='mutation { resolveAlert(id: "a") { id } }'))
    assert changed["data"] is None
    assert changed["errors"][0]["message"].endswith("mutations are not applied")
    refused = idp.graphql(body={"variables": {}})
    assert isinstance(refused, dict)
    assert refused["status_code"] == 400
    assert body(refused)["errors"][0]["message"].startswith("query is required")


def test_ngsiem_search_starts_a_job_that_finds_nothing(falcon: FalconEmulator) -> None:
    ngsiem = NGSIEM(**creds(falcon))
    search: dict[str, Any] = {"repository": "search-all", "search": {"queryString": "x=*"}}
    started = ngsiem.start_search(**search)
    assert isinstance(started, dict)
    assert started["status_code"] == 200, started
    # falconpy files LogScale's JSON under "resources" for a start, under "body" for a poll.
    job = started["resources"]
    assert isinstance(job, dict)
    assert isinstance(job["id"], str)
    poll: dict[str, Any] = {"repository": "search-all", "search_id": job["id"]}
    status = ngsiem.get_search_status(**poll)
    assert isinstance(status, dict)
    assert status["status_code"] == 200
    assert {k: body(status)[k] for k in ("done", "cancelled", "events")} == {
        "done": True,
        "cancelled": False,
        "events": [],
    }
    no_query: dict[str, Any] = {"repository": "search-all", "search": {"start": "1d"}}
    refused = ngsiem.start_search(**no_query)
    assert isinstance(refused, dict)
    assert refused["status_code"] == 400


def test_rtr_scripts_and_put_files_need_their_form(falcon: FalconEmulator) -> None:
    # CrowdStrike's test_real_time_response_admin.py: Falcon answers these 406 or 415.
    admin = RealTimeResponseAdmin(**creds(falcon))
    no_form: dict[str, Any] = {"data": {}, "files": []}
    for create in (
        admin.create_scripts,
        admin.create_scripts_v2,
        admin.create_put_files,
        admin.create_put_files_v2,
    ):
        created = create(**no_form)
        assert isinstance(created, dict)
        assert created["status_code"] == 415, created
    script = {"name": "s1", "description": "unit", "permission_type": "private"}
    form: dict[str, Any] = {"data": script, "files": [("file", ("s1", b"Write-Output 1"))]}
    made = admin.create_scripts(**form)
    assert isinstance(made, dict)
    assert made["status_code"] == 200, made


def test_combined_installers_carry_each_versions_fields(falcon: FalconEmulator) -> None:
    sensors = SensorDownload(**creds(falcon))
    v1 = body(sensors.get_combined_sensor_installers_by_query(filter='platform:"windows"'))
    v3 = body(sensors.get_combined_sensor_installers_by_query_v3(filter='platform:"windows"'))
    assert v1["meta"]["pagination"]["total"] == len(v1["resources"]) > 0
    assert all("architectures" not in r for r in v1["resources"])
    assert all("is_lts" in r for r in v3["resources"])


def test_a_sample_uploaded_by_the_service_class_downloads_and_deletes(
    falcon: FalconEmulator,
) -> None:
    samples: Any = SampleUploads(**creds(falcon))
    uploaded = samples.upload_sample(file_data=PAYLOAD, file_name="source.png")
    assert uploaded["status_code"] == 200
    (resource,) = body(uploaded)["resources"]
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert resource == {"sha256": sha, "file_name": "source.png"}
    assert samples.get_sample(ids=sha) == PAYLOAD
    assert samples.delete_sample(ids=sha)["status_code"] == 200
    gone = samples.get_sample(ids=sha)
    assert gone["status_code"] == 404


def test_an_unknown_sample_raises_apierror_in_pythonic_mode(falcon: FalconEmulator) -> None:
    samples = SampleUploads(**creds(falcon), pythonic=True)
    with pytest.raises(APIError) as raised:
        samples.get_sample("ThisIDDoesNotExit")
    assert raised.value.code == 404


def test_the_uber_class_uploads_raw_bytes_and_reads_them_back(falcon: FalconEmulator) -> None:
    falcon_uber = APIHarnessV2(**creds(falcon))
    uploaded = falcon_uber.command(
        "UploadSampleV3",
        file_name="source.png",
        data=PAYLOAD,
        content_type="application/octet-stream",
    )
    sha = body(uploaded)["resources"][0]["sha256"]
    assert sha == hashlib.sha256(PAYLOAD).hexdigest()
    assert falcon_uber.command("GetSampleV3", ids=sha) == PAYLOAD
    assert falcon_uber.command("DeleteSampleV3", ids=sha)["status_code"] == 200


def test_event_streams_list_and_refresh(falcon: FalconEmulator) -> None:
    streams: Any = EventStreams(**creds(falcon))
    listed = streams.list_available_streams(app_id="pytest-event_streams-unit-test")
    assert listed["status_code"] == 200
    (stream,) = body(listed)["resources"]
    assert stream["dataFeedURL"].startswith(falcon.base_url(REGION))
    assert set(stream["sessionToken"]) == {"token", "expiration"}
    refreshed = streams.refresh_active_stream(
        app_id="pytest-event_streams-unit-test",
        action_name="refresh_active_stream_session",
        partition=0,
    )
    assert refreshed["status_code"] == 200


def test_configuration_detections_answer_resources_as_an_object(falcon: FalconEmulator) -> None:
    result = CSPMRegistration(**creds(falcon)).get_configuration_detections(limit=1)
    assert result["status_code"] == 200
    assert body(result)["resources"] == {"events": []}


# -- the wire ----------------------------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[tuple[FalconEmulator, requests.Session]]:
    with FalconEmulator(regions=(REGION,)) as emulator:
        emulator.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        session = requests.Session()
        token = session.post(
            f"{emulator.base_url(REGION)}/oauth2/token",
            data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            timeout=10,
        ).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        with session:
            yield emulator, session


def test_a_download_is_octet_stream_with_the_gateways_headers(
    gateway: tuple[FalconEmulator, requests.Session],
) -> None:
    emulator, session = gateway
    base = emulator.base_url(REGION)
    ids = session.get(f"{base}/sensors/queries/installers/v1", timeout=10).json()["resources"]
    response = session.get(
        f"{base}/sensors/entities/download-installer/v1",
        params={"id": ids[0]},
        headers={"Accept-Encoding": "identity"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Cs-Region"] == REGION
    assert response.headers["X-Cs-Traceid"]
    assert int(response.headers["X-Ratelimit-Remaining"]) >= 0
    assert hashlib.sha256(response.content).hexdigest() == ids[0]


def test_a_download_comes_in_gzip_when_asked(
    gateway: tuple[FalconEmulator, requests.Session],
) -> None:
    emulator, session = gateway
    base = emulator.base_url(REGION)
    ids = session.get(f"{base}/sensors/queries/installers/v1", timeout=10).json()["resources"]
    response = session.get(
        f"{base}/sensors/entities/download-installer/v2",
        params={"id": ids[0]},
        headers={"Accept-Encoding": "gzip"},
        stream=True,
        timeout=10,
    )
    raw = response.raw.read(decode_content=False)
    assert response.headers["Content-Encoding"] == "gzip"
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == ids[0]


def test_an_unknown_installer_download_is_falcons_404_envelope(
    gateway: tuple[FalconEmulator, requests.Session],
) -> None:
    emulator, session = gateway
    response = session.get(
        f"{emulator.base_url(REGION)}/sensors/entities/download-installer/v1",
        params={"id": "0" * 64},
        timeout=10,
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["errors"][0]["code"] == 404
    assert payload["meta"]["trace_id"] == response.headers["X-Cs-Traceid"]


def test_a_user_handler_still_wins_over_a_builtin(
    gateway: tuple[FalconEmulator, requests.Session],
) -> None:
    emulator, session = gateway
    emulator.add_handler("GET", "/sensors/queries/installers/ccid/v1", lambda call: (200, ["X-00"]))
    response = session.get(
        f"{emulator.base_url(REGION)}/sensors/queries/installers/ccid/v1", timeout=10
    )
    assert response.json()["resources"] == ["X-00"]


def test_the_stream_refresh_url_points_back_at_the_emulator(
    gateway: tuple[FalconEmulator, requests.Session],
) -> None:
    emulator, session = gateway
    base = emulator.base_url(REGION)
    listed = session.get(
        f"{base}/sensors/entities/datafeed/v2", params={"appId": "wire"}, timeout=10
    ).json()
    (stream,) = listed["resources"]
    refreshed = session.post(stream["refreshActiveSessionURL"], timeout=10)
    assert refreshed.status_code == 200


def test_the_stream_itself_answers_404_and_spends_no_refused_token_budget() -> None:
    with FalconEmulator(regions=(REGION,), rate_limits=RateLimits()) as emulator:
        emulator.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        base = emulator.base_url(REGION)
        token = requests.post(
            f"{base}/oauth2/token",
            data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
            timeout=10,
        ).json()["access_token"]
        listed = requests.get(
            f"{base}/sensors/entities/datafeed/v2",
            params={"appId": "wire"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        (stream,) = listed["resources"]
        session_token = stream["sessionToken"]["token"]
        for _ in range(20):  # more than the 15 refused tokens allowed an address a minute
            opened = requests.get(
                stream["dataFeedURL"],
                headers={"Authorization": f"Token {session_token}"},
                timeout=10,
            )
            assert opened.status_code == 404
        payload = opened.json()
        assert payload["errors"] == [
            {"code": 404, "message": "the emulator does not serve event streams"}
        ]
        assert payload["meta"]["trace_id"] == opened.headers["X-Cs-Traceid"]
        refused = requests.get(
            f"{base}/devices/queries/devices/v1",
            headers={"Authorization": "Bearer not-a-token"},
            timeout=10,
        )
        assert refused.status_code == 401  # the budget of refused tokens is untouched
