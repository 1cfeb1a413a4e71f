"""CrowdStrike's own Python SDK (falconpy), unmodified, against the emulator.

falconpy moves a custom ``base_url`` to the public cloud named by ``X-Cs-Region`` at every
login (it compares ``us2`` with ``US2`` case-sensitively), so it runs against an emulator built
with ``region_header=False``. Everything else is the emulator's default: sample hosts, Falcon's
rate budgets, real sockets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from falconpy import APIHarnessV2, Hosts, OAuth2

from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "falconpy-client-4d1e"
CLIENT_SECRET = "falconpy-secret-8b27c"
MEMBER_CID = "child-cid-3f09"
REGION = "us-2"


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=("us-1", REGION), region_header=False) as emulator:
        emulator.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION, member_cids=(MEMBER_CID,))
        yield emulator


def harness(falcon: FalconEmulator, **kwargs: Any) -> APIHarnessV2:
    kwargs.setdefault("client_secret", CLIENT_SECRET)
    return APIHarnessV2(client_id=CLIENT_ID, base_url=falcon.base_url(REGION), **kwargs)


def answer(result: object) -> dict[str, Any]:
    """A service class's result: falconpy types it as a dict or an int (a binary download)."""
    assert isinstance(result, dict), result
    return result


def sample_ids(falcon: FalconEmulator) -> list[str]:
    return [str(host["device_id"]) for host in falcon.records("hosts")]


def test_the_uber_class_pages_through_the_hosts_and_reads_them(falcon: FalconEmulator) -> None:
    sdk = harness(falcon)
    ids: list[str] = []
    offset = 0
    while True:
        page = sdk.command("QueryDevicesByFilter", limit=10, offset=offset)
        assert page["status_code"] == 200
        ids += page["body"]["resources"]
        offset = page["body"]["meta"]["pagination"]["offset"]
        if offset >= page["body"]["meta"]["pagination"]["total"]:
            break
    assert ids == sample_ids(falcon)  # 37 hosts in four pages, in load order
    details = sdk.command("GetDeviceDetailsV2", ids=ids[:3])
    assert details["status_code"] == 200
    hostnames = {host["device_id"]: host["hostname"] for host in falcon.records("hosts")}
    assert [h["hostname"] for h in details["body"]["resources"]] == [hostnames[i] for i in ids[:3]]
    assert sdk.base_url == falcon.base_url(REGION)  # never moved off the emulator
    assert falcon.counters.token_requests == 1


def test_a_service_class_scrolls_and_posts_for_details(falcon: FalconEmulator) -> None:
    hosts = Hosts(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=falcon.base_url(REGION)
    )
    ids: list[str] = []
    token = None
    while token != "":
        page = answer(hosts.query_devices_by_filter_scroll(limit=15, offset=token))
        assert page["status_code"] == 200
        ids += page["body"]["resources"]
        token = page["body"]["meta"]["pagination"]["offset"]
    assert ids == sample_ids(falcon)
    details = answer(hosts.get_device_details(ids=[*ids[:2], "0" * 32]))
    assert details["status_code"] == 200  # some found: the unknown id is a per-id 404
    assert [h["device_id"] for h in details["body"]["resources"]] == ids[:2]
    assert [e["code"] for e in details["body"]["errors"]] == [404]


def test_filtered_queries_and_an_invalid_filter(falcon: FalconEmulator) -> None:
    sdk = harness(falcon)
    linux = sdk.command("QueryDevicesByFilter", filter="platform_name:'Linux'")
    expected = [
        str(h["device_id"]) for h in falcon.records("hosts") if h["platform_name"] == "Linux"
    ]
    assert linux["body"]["resources"] == expected
    recent = sdk.command("QueryDevicesByFilter", filter="first_seen: >= '2024-03-01'")
    assert recent["body"]["resources"] == [
        str(h["device_id"]) for h in falcon.records("hosts") if str(h["first_seen"]) >= "2024-03-01"
    ]
    refused = sdk.command("QueryDevicesByFilter", filter="platform_name:Linux")
    assert refused["status_code"] == 400
    assert "at position 14" in refused["body"]["errors"][0]["message"]


def test_relogin_renewal_and_logout(falcon: FalconEmulator) -> None:
    sdk = harness(falcon)
    assert sdk.command("QueryDevicesByFilter", limit=1)["status_code"] == 200
    first = sdk.token_value
    assert sdk.login()  # a re-login: a new token, still on the emulator
    assert sdk.token_value != first
    assert sdk.command("QueryDevicesByFilter", limit=1)["status_code"] == 200
    assert sdk.logout()  # revokes the current token
    counters = falcon.counters
    assert (counters.token_requests, counters.revokes) == (2, 1)
    assert sdk.base_url == falcon.base_url(REGION)


def test_falconpy_renews_a_stale_token_before_the_call() -> None:
    """Tokens that live 120 s are inside falconpy's (minimum) 120 s renew window from the
    start, so each call renews first: two calls, each with a token of its own, both answered."""
    with FalconEmulator(regions=(REGION,), token_ttl=120, region_header=False) as falcon:
        falcon.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        sdk = harness(falcon)
        statuses = [sdk.command("QueryDevicesByFilter", limit=1)["status_code"] for _ in "12"]
        assert statuses == [200, 200]
        assert sorted(falcon.counters.calls_per_token.values()) == [1, 1]


def test_a_member_cid_token_sees_the_child_cid(falcon: FalconEmulator) -> None:
    sdk = harness(falcon, member_cid=MEMBER_CID)
    ids = sdk.command("QueryDevicesByFilter", limit=2)["body"]["resources"]
    hosts = sdk.command("GetDeviceDetailsV2", ids=ids)["body"]["resources"]
    assert {host["cid"] for host in hosts} == {MEMBER_CID}
    calls = [e for e in falcon.request_log if e.path.startswith("/devices/")]
    assert {(e.client_id, e.member_cid) for e in calls} == {(CLIENT_ID, MEMBER_CID)}


def test_wrong_secret_is_reported_as_falconpy_reports_it(falcon: FalconEmulator) -> None:
    sdk = harness(falcon, client_secret="not-the-secret")
    assert sdk.login() is False
    assert sdk.token_status == 403
    assert sdk.token_fail_reason == "Failed to issue access token - Not Authorized"


def test_the_oauth2_service_class_gets_and_revokes(falcon: FalconEmulator) -> None:
    oauth = OAuth2(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=falcon.base_url(REGION)
    )
    issued = answer(oauth.token())
    assert issued["status_code"] == 201
    assert answer(oauth.revoke(issued["body"]["access_token"]))["status_code"] == 200
    assert falcon.counters.revokes == 1


def test_with_the_region_header_falconpy_leaves_the_emulator() -> None:
    """Why the setting exists: by default the emulator answers as Falcon does, and falconpy
    swaps the emulator's URL for the public cloud at its first login."""
    with FalconEmulator(regions=(REGION,)) as falcon:
        falcon.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        sdk = harness(falcon)
        assert sdk.login()
        assert sdk.base_url == "https://api.us-2.crowdstrike.com"
