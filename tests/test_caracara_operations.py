"""caracara, unmodified, reading the operations with shapes of their own: the CCID and the hosts'
online state (as ``test_caracara.py``: its ``Client`` on an emulator without ``X-Cs-Region``).

caracara needs Python 3.11 or later (the test extra installs it only there).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from support import sdk_emulator

from requests_falcon_auth.testing import FalconEmulator

# caracara ships no type information: its objects are Any here.
caracara = pytest.importorskip("caracara", reason="caracara needs Python 3.11 or later")

CLIENT_ID = "caracara-shapes-90d2"
CLIENT_SECRET = "caracara-shapes-secret-1f47"
REGION = "us-2"


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with sdk_emulator(CLIENT_ID, CLIENT_SECRET, REGION) as emulator:
        yield emulator


@pytest.fixture
def client(falcon: FalconEmulator) -> Any:
    return caracara.Client(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, cloud_name=falcon.base_url(REGION)
    )


def test_get_cid_reads_the_callers_cid(falcon: FalconEmulator, client: Any) -> None:
    (registered,) = falcon.clients
    assert client.sensor_download.get_cid() == registered.cid
    ccid = client.sensor_download.get_cid(include_checksum=True)
    assert re.fullmatch(r"[0-9A-F]{32}-[0-9A-F]{2}", ccid)
    assert ccid[:-3] == registered.cid.upper()


def test_get_online_state_names_each_hosts_state(falcon: FalconEmulator, client: Any) -> None:
    ids = [str(host["device_id"]) for host in falcon.records("hosts")]
    states = client.hosts.get_online_state(ids)
    assert set(states) == set(ids)
    assert {data["state"] for data in states.values()} <= {"online", "offline", "unknown"}
    assert client.hosts.get_online_state(ids) == states  # the same every time


def test_describe_devices_enriched_and_filtered_by_online_state(client: Any) -> None:
    enriched = client.hosts.describe_devices(enrich_with_online_state=True)
    assert enriched
    assert all(data["state"] in {"online", "offline", "unknown"} for data in enriched.values())
    online = client.hosts.describe_devices(online_state="online")
    assert set(online) == {i for i, data in enriched.items() if data["state"] == "online"}
    assert online
