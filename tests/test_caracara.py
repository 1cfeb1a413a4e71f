"""caracara, CrowdStrike's developer toolkit on falconpy, unmodified, against the emulator.

Each scenario runs as caracara's README shows (a ``Client`` given credentials and a cloud, then
its modules) over real sockets, and asserts what Falcon answers. caracara authenticates with
falconpy, which moves a custom base URL to the public cloud that ``X-Cs-Region`` names, so the
emulator leaves that header out of token answers (``region_header=False``). The emulator holds
its sample tenant (``load_samples``): hosts in groups under prevention policies, users, login
and network address history.

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

CLIENT_ID = "caracara-client-7a3c"
CLIENT_SECRET = "caracara-secret-51e9d"
REGION = "us-2"


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with sdk_emulator(CLIENT_ID, CLIENT_SECRET, REGION, samples=True) as emulator:
        yield emulator


@pytest.fixture
def client(falcon: FalconEmulator) -> Any:
    return caracara.Client(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, cloud_name=falcon.base_url(REGION)
    )


def hosts_by_id(falcon: FalconEmulator) -> dict[str, dict[str, object]]:
    return {str(host["device_id"]): host for host in falcon.records("hosts")}


def first_host(falcon: FalconEmulator) -> tuple[str, str]:
    """The first sample host's id and hostname."""
    device_id, host = next(iter(hosts_by_id(falcon).items()))
    return device_id, str(host["hostname"])


def hostname_filter(client: Any, hostname: str) -> Any:
    filters = client.FalconFilter(dialect="hosts")
    filters.create_new_filter("Hostname", hostname)
    return filters


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
    device_id, hostname = first_host(falcon)
    assert client.hosts.get_device_ids(hostname_filter(client, hostname)) == [device_id]


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


def test_online_state(falcon: FalconEmulator, client: Any) -> None:
    ids = list(hosts_by_id(falcon))
    states = client.hosts.get_online_state(ids)
    assert list(states) == ids
    assert {state["state"] for state in states.values()} <= {"online", "offline", "unknown"}


def test_devices_enriched_with_online_state(falcon: FalconEmulator, client: Any) -> None:
    described = client.hosts.describe_devices(enrich_with_online_state=True)
    assert set(described) == set(hosts_by_id(falcon))
    assert {data["state"] for data in described.values()} <= {"online", "offline", "unknown"}


def test_contain_then_lift_containment(falcon: FalconEmulator, client: Any) -> None:
    device_id, hostname = first_host(falcon)
    contained = client.hosts.contain(hostname_filter(client, hostname))
    assert [action["id"] for action in contained] == [device_id]
    status = client.hosts.get_device_data([device_id])[device_id]["status"]
    assert status in {"containment_pending", "contained"}
    released = client.hosts.release(hostname_filter(client, hostname))
    assert [action["id"] for action in released] == [device_id]
    status = client.hosts.get_device_data([device_id])[device_id]["status"]
    assert status in {"lift_containment_pending", "normal"}


def test_tag_then_untag(falcon: FalconEmulator, client: Any) -> None:
    device_id, hostname = first_host(falcon)
    tag = "FalconGroupingTags/Emulated"
    updated = [{"device_id": device_id, "code": 200, "updated": True}]
    assert client.hosts.tag([tag], hostname_filter(client, hostname)) == updated
    assert tag in client.hosts.get_device_data([device_id])[device_id]["tags"]
    assert client.hosts.untag([tag], hostname_filter(client, hostname)) == updated
    assert tag not in client.hosts.get_device_data([device_id])[device_id].get("tags", [])


def test_hide_then_unhide(falcon: FalconEmulator, client: Any) -> None:
    device_id, hostname = first_host(falcon)
    hidden = client.hosts.hide(hostname_filter(client, hostname))
    assert [action["id"] for action in hidden] == [device_id]
    assert device_id not in client.hosts.get_device_ids()
    assert client.hosts.get_hidden_ids() == [device_id]
    client.hosts.unhide(hostname_filter(client, hostname))
    assert device_id in client.hosts.get_device_ids()


def test_a_host_group_and_its_members(falcon: FalconEmulator, client: Any) -> None:
    ids = list(hosts_by_id(falcon))[:2]
    created = client.hosts.create_group("Emulated", "made by a test")
    assert [group["name"] for group in created] == ["Emulated"]
    group_id = created[0]["id"]
    client.hosts.add_to_group(group_ids=[group_id], device_ids=ids)
    assert sorted(client.hosts.get_group_member_ids(group_id)) == sorted(ids)
    assert client.hosts.describe_groups()[group_id]["name"] == "Emulated"


def test_login_history(falcon: FalconEmulator, client: Any) -> None:
    device_id, hostname = first_host(falcon)
    history = client.hosts.describe_login_history(hostname_filter(client, hostname))
    assert list(history) == [device_id]
    assert isinstance(history[device_id]["recent_logins"], list)


def test_network_address_history(falcon: FalconEmulator, client: Any) -> None:
    device_id, hostname = first_host(falcon)
    history = client.hosts.describe_network_address_history(hostname_filter(client, hostname))
    assert list(history) == [device_id]
    assert isinstance(history[device_id]["history"], list)


def test_users_and_their_roles(falcon: FalconEmulator, client: Any) -> None:
    users = client.users.describe_users()
    assert users  # a tenant has at least the user who made the API client
    for uuid, user in users.items():
        assert user["uuid"] == uuid
        assert isinstance(user["roles"], list)


@pytest.mark.parametrize("module", ["prevention_policies", "response_policies"])
def test_policies_in_precedence_order(falcon: FalconEmulator, client: Any, module: str) -> None:
    # describe_policies sorts by precedence.asc: each platform's default comes last.
    policies = getattr(client, module).describe_policies()
    for platform in ("Windows", "Mac", "Linux"):
        names = [p.name for p in policies if p.platform_name == platform]
        assert names[-1] == "platform_default"
        assert names.count("platform_default") == 1


def test_a_pushed_prevention_policy_is_listed(falcon: FalconEmulator, client: Any) -> None:
    policy = client.prevention_policies.new_policy("Linux")
    policy.name, policy.description = "Build Servers", "made by caracara"
    pushed = client.prevention_policies.push_policy(policy)
    listed = {p.policy_id: p for p in client.prevention_policies.describe_policies()}
    assert listed[pushed.policy_id].name == "Build Servers"
    linux = [p.name for p in listed.values() if p.platform_name == "Linux"]
    assert linux[-2:] == ["Build Servers", "platform_default"]


def test_the_ccid(falcon: FalconEmulator, client: Any) -> None:
    ccid = client.sensor_download.get_cid(include_checksum=True)
    assert re.fullmatch(r"[0-9A-F]{32}-[0-9A-F]{2}", ccid)
    (registered,) = [c for c in falcon.clients if c.client_id == CLIENT_ID]
    assert client.sensor_download.get_cid() == registered.cid.lower() == ccid[:-3].lower()


def test_caracara_on_falconpy_auth_pages_hosts_with_one_token() -> None:
    """caracara given a FalconPyAuth (its ``falconpy_authobject=``): X-Cs-Region sent as Falcon
    does (falconpy's own login would follow it to the public cloud), home region found by
    autodiscovery, its worker threads on one token, revoked when the client's block ends."""
    from requests_falcon_auth import FalconAuth
    from requests_falcon_auth.falconpy import FalconPyAuth

    with FalconEmulator(regions=("us-1", REGION)) as falcon:
        falcon.add_client(CLIENT_ID, CLIENT_SECRET, region=REGION)
        hosts = many_hosts(10_500)
        falcon.load("hosts", hosts)
        engine = FalconAuth(CLIENT_ID, CLIENT_SECRET, cloud="auto", clouds=falcon.clouds)
        with caracara.Client(falconpy_authobject=FalconPyAuth(engine)) as client:
            assert client.hosts.get_device_ids() == [host["device_id"] for host in hosts]
            described = client.hosts.describe_devices()
            assert len(described) == 10_500
        counters = falcon.counters
        assert (counters.tokens_issued, counters.revokes) == (1, 1)
        assert counters.api_calls == counters.api_ok
        assert {e.region for e in falcon.request_log if not e.path.startswith("/oauth2/")} == {
            REGION
        }
