"""caracara, CrowdStrike's developer toolkit on falconpy, unmodified, against the emulator.

Each scenario runs as caracara's README shows (a ``Client`` given credentials and a cloud, then
its modules) over real sockets, and asserts what Falcon answers. caracara authenticates with
falconpy, which moves a custom base URL to the public cloud that ``X-Cs-Region`` names, so the
emulator leaves that header out of token answers (``region_header=False``).

caracara needs Python 3.11 or later (the test extra installs it only there).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from requests_falcon_auth.testing import FalconEmulator

# caracara ships no type information: its objects are Any here.
caracara = pytest.importorskip("caracara", reason="caracara needs Python 3.11 or later")

CLIENT_ID = "caracara-client-7a3c"
CLIENT_SECRET = "caracara-secret-51e9d"
REGION = "us-2"


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with FalconEmulator(regions=(REGION,), region_header=False) as emulator:
        emulator.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        yield emulator


@pytest.fixture
def client(falcon: FalconEmulator) -> Any:
    return caracara.Client(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, cloud_name=falcon.base_url(REGION)
    )


def hosts_by_id(falcon: FalconEmulator) -> dict[str, dict[str, object]]:
    return {str(host["device_id"]): host for host in falcon.records("hosts")}


def many_hosts(n: int) -> list[dict[str, object]]:
    platforms = ("Windows", "Linux", "Mac")
    return [
        {"device_id": f"{i:032x}", "hostname": f"HOST-{i:05d}", "platform_name": platforms[i % 3]}
        for i in range(n)
    ]


def test_describe_devices_lists_every_host(falcon: FalconEmulator, client: Any) -> None:
    described = client.hosts.describe_devices()
    hostnames = {device_id: host["hostname"] for device_id, host in hosts_by_id(falcon).items()}
    assert {device_id: data["hostname"] for device_id, data in described.items()} == hostnames


def test_an_empty_tenant_has_no_devices(falcon: FalconEmulator, client: Any) -> None:
    falcon.load("hosts", [])
    assert client.hosts.get_device_ids() == []
    assert client.hosts.describe_devices() == {}


def test_a_filter_from_caracaras_generator(falcon: FalconEmulator, client: Any) -> None:
    filters = client.FalconFilter()
    filters.create_new_filter("OS", "Linux")  # FQL with a space: platform_name: 'Linux'
    linux = {
        i: h["hostname"] for i, h in hosts_by_id(falcon).items() if h["platform_name"] == "Linux"
    }
    assert linux
    described = client.hosts.describe_devices(filters)
    assert {device_id: data["hostname"] for device_id, data in described.items()} == linux


def test_generated_filters_are_joined_with_and(falcon: FalconEmulator, client: Any) -> None:
    filters = client.FalconFilter(dialect="hosts")
    filters.create_new_filter("OS", "Windows")
    filters.create_new_filter("Role", "Server")
    servers = [
        device_id
        for device_id, h in hosts_by_id(falcon).items()
        if h["platform_name"] == "Windows" and h["product_type_desc"] == "Server"
    ]
    assert servers
    assert client.hosts.get_device_ids(filters) == servers


def test_a_hostname_filter_finds_one_host(falcon: FalconEmulator, client: Any) -> None:
    device_id, host = next(iter(hosts_by_id(falcon).items()))
    filters = client.FalconFilter(dialect="hosts")
    filters.create_new_filter("Hostname", host["hostname"])
    assert client.hosts.get_device_ids(filters) == [device_id]


def test_a_filter_string_written_by_hand(falcon: FalconEmulator, client: Any) -> None:
    macs = [
        device_id for device_id, h in hosts_by_id(falcon).items() if h["platform_name"] == "Mac"
    ]
    assert macs
    assert client.hosts.get_device_ids("platform_name:'Mac'") == macs


def test_scrolling_through_ten_thousand_hosts(falcon: FalconEmulator, client: Any) -> None:
    hosts = many_hosts(10_500)
    falcon.load("hosts", hosts)
    # Three scroll pages of 5,000, in load order; then details in 21 batches of 500, in threads.
    assert client.hosts.get_device_ids() == [host["device_id"] for host in hosts]
    described = client.hosts.describe_devices()
    assert len(described) == 10_500
    assert described[f"{10_499:032x}"]["hostname"] == "HOST-10499"


def test_device_details_by_id(falcon: FalconEmulator, client: Any) -> None:
    hosts = hosts_by_id(falcon)
    ids = list(hosts)[:3]
    data = client.hosts.get_device_data(ids)
    assert {i: d["hostname"] for i, d in data.items()} == {i: hosts[i]["hostname"] for i in ids}


def test_the_context_manager_revokes_its_token(falcon: FalconEmulator) -> None:
    with caracara.Client(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, cloud_name=falcon.base_url(REGION)
    ) as client:
        assert client.hosts.get_device_ids() == list(hosts_by_id(falcon))
    counters = falcon.counters
    assert (counters.token_requests, counters.revokes) == (1, 1)
