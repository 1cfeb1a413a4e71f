"""The sample tenant over real sockets: falconpy, unmodified, reads it and changes it.

``FalconEmulator.load_samples()`` loads host groups, prevention policies, users, alerts and
incidents related to the sample hosts; writes (containment, tags, host groups) change what the
next read shows. falconpy runs against an emulator built with ``region_header=False``, as in
``test_falconpy.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from falconpy import (
    Alerts,
    APIHarnessV2,
    DeviceControlPolicies,
    HostGroup,
    Hosts,
    Incidents,
    PreventionPolicy,
    SensorUpdatePolicies,
    UserManagement,
)
from support import sdk_emulator

from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "tenant-client-71c2"
CLIENT_SECRET = "tenant-secret-e05a"
REGION = "us-2"
CID = "4f1c2b3a4d5e6f708192a3b4c5d6e7f8"


@pytest.fixture
def falcon() -> Iterator[FalconEmulator]:
    with sdk_emulator(CLIENT_ID, CLIENT_SECRET, REGION, samples=True, cid=CID) as emulator:
        yield emulator


def credentials(falcon: FalconEmulator) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": falcon.base_url(REGION),
    }


def service(cls: Any, falcon: FalconEmulator) -> Any:
    """A falconpy service class on the emulator (as Any: falconpy's decorators hide the
    keywords its methods take from mypy)."""
    return cls(**credentials(falcon))


def stored_hosts(falcon: FalconEmulator) -> list[dict[str, Any]]:
    """The hosts as the emulator holds them."""
    return falcon.records("hosts")


def body(result: object, status: int = 200) -> dict[str, Any]:
    """A falconpy result's body, after checking its status."""
    assert isinstance(result, dict), result
    assert result["status_code"] == status, result
    found: dict[str, Any] = result["body"]
    return found


def host_named(falcon: FalconEmulator, hostname: str) -> dict[str, Any]:
    return next(h for h in stored_hosts(falcon) if h["hostname"] == hostname)


# -- hosts -------------------------------------------------------------------------------------


def test_contain_shows_pending_then_contained_and_lifts_back(falcon: FalconEmulator) -> None:
    hosts = service(Hosts, falcon)
    target = host_named(falcon, "WKS-FIN-000")["device_id"]
    accepted = body(hosts.perform_action(action_name="contain", ids=[target]), 202)
    assert accepted["resources"] == [{"id": target, "path": ""}]
    statuses = [
        body(hosts.get_device_details(ids=[target]))["resources"][0]["status"] for _ in range(2)
    ]
    assert statuses == ["containment_pending", "contained"]
    contained = body(hosts.query_devices_by_filter(filter="status:'contained'"))["resources"]
    assert target in contained
    body(hosts.perform_action(action_name="lift_containment", ids=[target]), 202)
    statuses = [
        body(hosts.get_device_details(ids=[target]))["resources"][0]["status"] for _ in range(2)
    ]
    assert statuses == ["lift_containment_pending", "normal"]


def test_the_uber_class_contains_by_action_and_reads_the_status(falcon: FalconEmulator) -> None:
    sdk: Any = APIHarnessV2(**credentials(falcon))
    target = host_named(falcon, "SRV-APP-02")["device_id"]
    result = sdk.command("PerformActionV2", action_name="contain", body={"ids": [target]})
    assert result["status_code"] == 202
    first = sdk.command("GetDeviceDetailsV2", ids=[target])["body"]["resources"][0]
    second = sdk.command("GetDeviceDetailsV2", ids=[target])["body"]["resources"][0]
    assert (first["status"], second["status"]) == ("containment_pending", "contained")
    unknown = sdk.command("PerformActionV2", action_name="contain", body={"ids": ["0" * 32]})
    assert unknown["status_code"] == 404
    assert unknown["body"]["errors"][0]["id"] == "0" * 32


def test_hidden_hosts_leave_the_queries_and_come_back(falcon: FalconEmulator) -> None:
    hosts = service(Hosts, falcon)
    target = host_named(falcon, "bruno-macbook-pro-1")["device_id"]
    body(hosts.perform_action(action_name="hide_host", ids=[target]), 202)
    visible = body(hosts.query_devices_by_filter(limit=100))
    assert target not in visible["resources"]
    assert visible["meta"]["pagination"]["total"] == 36
    assert body(hosts.query_hidden_devices())["resources"] == [target]
    details = body(hosts.get_device_details(ids=[target]))["resources"]
    assert [d["device_id"] for d in details] == [target]  # still readable by id
    body(hosts.perform_action(action_name="unhide_host", ids=[target]), 202)
    assert body(hosts.query_hidden_devices())["resources"] == []
    assert target in body(hosts.query_devices_by_filter(limit=100))["resources"]


def test_tags_are_added_and_removed(falcon: FalconEmulator) -> None:
    hosts = service(Hosts, falcon)
    target = host_named(falcon, "WKS-FIN-005")["device_id"]
    added = body(hosts.update_device_tags(action_name="add", ids=[target], tags=["triage"]))
    assert added["resources"] == [{"device_id": target, "code": 200, "updated": True}]
    tags = body(hosts.get_device_details(ids=[target]))["resources"][0]["tags"]
    assert tags == ["FalconGroupingTags/Finance", "FalconGroupingTags/triage"]
    found = body(hosts.query_devices_by_filter(filter="tags:'FalconGroupingTags/triage'"))
    assert found["resources"] == [target]
    body(hosts.update_device_tags(action_name="remove", ids=[target], tags=["triage"]))
    tags = body(hosts.get_device_details(ids=[target]))["resources"][0]["tags"]
    assert tags == ["FalconGroupingTags/Finance"]


def test_login_and_network_history_of_a_host(falcon: FalconEmulator) -> None:
    hosts = service(Hosts, falcon)
    target = host_named(falcon, "WKS-FIN-000")
    logins = body(hosts.query_device_login_history(ids=[target["device_id"]]))["resources"]
    assert logins[0]["device_id"] == target["device_id"]
    assert logins[0]["cid"] == CID
    assert logins[0]["recent_logins"][0]["user_name"].startswith("EXAMPLE\\")
    history = body(hosts.query_network_address_history(ids=[target["device_id"]]))["resources"]
    assert history[0]["history"][0]["ip_address"] == target["local_ip"]


# -- host groups -------------------------------------------------------------------------------


def test_a_group_is_created_filled_read_and_deleted(falcon: FalconEmulator) -> None:
    groups = service(HostGroup, falcon)
    created = body(groups.create_host_groups(name="Canaries", group_type="static"), 201)
    (group,) = created["resources"]
    assert group["name"] == "Canaries"
    assert group["created_by"] == f"api-client-id:{CLIENT_ID}"
    members = [h["device_id"] for h in stored_hosts(falcon)[:3]]
    acted = body(
        groups.perform_group_action(
            action_name="add-hosts", ids=[group["id"]], filter=f"(device_id:{members})"
        )
    )
    names = ",".join(f"'{h['hostname']}'" for h in stored_hosts(falcon)[:3])
    assert acted["resources"][0]["assignment_rule"] == f"device_id:[],hostname:[{names}]"
    assert body(groups.query_group_members(id=group["id"]))["resources"] == members
    combined = body(groups.query_combined_group_members(id=group["id"]))["resources"]
    assert [h["device_id"] for h in combined] == members
    assert all(group["id"] in h["groups"] for h in combined)
    assert body(groups.get_host_groups(ids=[group["id"]]))["resources"][0]["name"] == "Canaries"
    assert group["id"] in body(groups.query_host_groups(limit=100))["resources"]
    deleted = body(groups.delete_host_groups(ids=[group["id"]]))
    assert deleted["resources"] == [group["id"]]
    assert group["id"] not in body(groups.query_host_groups(limit=100))["resources"]
    assert all(group["id"] not in h["groups"] for h in stored_hosts(falcon))


def test_sample_groups_list_their_members(falcon: FalconEmulator) -> None:
    groups = service(HostGroup, falcon)
    combined = body(groups.query_combined_host_groups(filter="name:'Linux Servers'"))
    (linux,) = combined["resources"]
    assert linux["group_type"] == "dynamic"
    members = body(groups.query_group_members(id=linux["id"], limit=100))["resources"]
    linux_hosts = [h["device_id"] for h in stored_hosts(falcon) if h["platform_name"] == "Linux"]
    assert members == linux_hosts


# -- alerts, users, policies -------------------------------------------------------------------


def test_alerts_are_read_by_composite_id(falcon: FalconEmulator) -> None:
    alerts = service(Alerts, falcon)
    ids = body(alerts.query_alerts_v2(filter="severity:>=70", limit=5))["resources"]
    assert ids
    found = body(alerts.get_alerts_v2(composite_ids=ids))["resources"]
    assert [a["composite_id"] for a in found] == ids
    assert all(a["severity"] >= 70 and a["cid"] == CID for a in found)
    hostnames = {h["device_id"]: h["hostname"] for h in stored_hosts(falcon)}
    assert all(a["device"]["hostname"] == hostnames[a["agent_id"]] for a in found)


def test_combined_alerts_page_by_after(falcon: FalconEmulator) -> None:
    alerts = service(Alerts, falcon)
    seen: list[str] = []
    after = None
    while after != "":
        page = body(alerts.get_alerts_combined(filter="platform:'Windows'", limit=5, after=after))
        seen += [a["composite_id"] for a in page["resources"]]
        assert all(a["platform"] == "Windows" for a in page["resources"])
        after = page["meta"]["pagination"]["after"]
    windows = body(alerts.query_alerts_v2(filter="platform:'Windows'", limit=100))["resources"]
    assert seen == windows
    assert len(seen) == 13


def test_an_alert_is_closed_and_tagged(falcon: FalconEmulator) -> None:
    alerts = service(Alerts, falcon)
    ids = body(alerts.query_alerts_v2(filter="status:'new'", limit=2))["resources"]
    updated = alerts.update_alerts_v3(composite_ids=ids, update_status="closed", add_tag="fp")
    assert body(updated)["errors"] == []
    found = body(alerts.get_alerts_v2(composite_ids=ids))["resources"]
    assert [(a["status"], a["tags"]) for a in found] == [("closed", ["fp"])] * 2
    assert not set(ids) & set(body(alerts.query_alerts_v2(filter="status:'new'"))["resources"])


def test_an_incident_is_closed(falcon: FalconEmulator) -> None:
    incidents = service(Incidents, falcon)
    open_ids = body(incidents.query_incidents(filter="state:'open'"))["resources"]
    assert len(open_ids) == 3
    body(incidents.perform_incident_action(ids=open_ids[:1], update_status="40", add_tag="fp"))
    (closed,) = body(incidents.get_incidents(ids=open_ids[:1]))["resources"]
    assert (closed["status"], closed["state"], closed["tags"]) == (40, "closed", ["fp"])
    assert body(incidents.query_incidents(filter="state:'open'"))["resources"] == open_ids[1:]


def test_users_and_their_roles(falcon: FalconEmulator) -> None:
    users = service(UserManagement, falcon)
    uuids = body(users.query_users(filter="first_name:'Bruno'"))["resources"]
    (bruno,) = body(users.retrieve_users(ids=uuids))["resources"]
    assert bruno["uid"] == "bruno.costa@example.com"
    grants = body(users.get_user_grants(user_uuid=bruno["uuid"]))["resources"]
    assert sorted(g["role_id"] for g in grants) == ["falconhost_analyst", "remote_responder_three"]


def test_a_user_is_created_granted_renamed_and_deleted(falcon: FalconEmulator) -> None:
    users = service(UserManagement, falcon)
    assert "falconhost_analyst" in body(users.get_available_role_ids())["resources"]
    roles = body(users.get_roles_mssp(ids=["falconhost_analyst", "no_such_role"]), 200)
    assert roles["resources"][0]["display_name"] == "Falcon Analyst"
    assert [e["id"] for e in roles["errors"]] == ["no_such_role"]
    created = body(
        users.create_user_mssp(uid="jo.lee@example.com", first_name="Jo", last_name="Lee"), 201
    )
    (jo,) = created["resources"]
    assert (jo["uid"], jo["first_name"], jo["cid"]) == ("jo.lee@example.com", "Jo", CID)
    body(users.user_roles_action(uuid=jo["uuid"], action="grant", role_ids=["falconhost_analyst"]))
    grants = body(users.get_user_grants(user_uuid=jo["uuid"]))["resources"]
    assert [g["role_id"] for g in grants] == ["falconhost_analyst"]
    renamed = body(users.update_user_mssp(user_uuid=jo["uuid"], first_name="Joanna"))
    assert renamed["resources"][0]["first_name"] == "Joanna"
    assert body(users.retrieve_users(ids=[jo["uuid"]]))["resources"][0]["first_name"] == "Joanna"
    body(users.delete_user_mssp(user_uuid=jo["uuid"]))
    assert body(users.retrieve_users(ids=[jo["uuid"]]), 404)["errors"][0]["id"] == jo["uuid"]
    assert body(users.get_user_grants(user_uuid=jo["uuid"]))["resources"] == []


def test_the_deprecated_user_endpoints_read_the_same_users(falcon: FalconEmulator) -> None:
    users: Any = service(UserManagement, falcon)
    current = body(users.query_users())["resources"]
    assert body(users.retrieve_user_uuids_by_cid())["resources"] == current
    emails = body(users.retrieve_emails_by_cid())["resources"]
    stored = {u["uuid"]: u for u in falcon.records("users")}
    assert emails == [stored[u]["uid"] for u in current]
    assert body(users.retrieve_user_uuid(uid=emails[0]))["resources"] == current[:1]
    (legacy,) = body(users.retrieve_user(ids=current[0]))["resources"]
    assert legacy == {
        "uuid": current[0],
        "uid": emails[0],
        "firstName": stored[current[0]]["first_name"],
        "lastName": stored[current[0]]["last_name"],
        "customer": CID,
    }
    assert body(users.retrieve_user(ids="nobody"), 404)["errors"][0]["id"] == "nobody"
    granted = body(users.get_user_grants(user_uuid=current[0]))["resources"]
    role_ids = body(users.get_user_role_ids(user_uuid=current[0]))["resources"]
    assert sorted(role_ids) == sorted(g["role_id"] for g in granted)
    assert body(users.get_roles(ids=role_ids[0]))["resources"][0]["id"] == role_ids[0]


def test_prevention_policies_and_the_hosts_they_cover(falcon: FalconEmulator) -> None:
    policies: Any = PreventionPolicy(
        **credentials(falcon)
    )  # falconpy's decorators hide its keywords
    combined = body(policies.query_combined_policies(filter="name:'Servers - Aggressive'"))
    (servers,) = combined["resources"]
    assert [g["name"] for g in servers["groups"]] == ["Windows Servers"]
    members = body(policies.query_policy_members(id=servers["id"]))["resources"]
    hosts = stored_hosts(falcon)
    covered = [
        h["device_id"]
        for h in hosts
        if h["device_policies"]["prevention"]["policy_id"] == servers["id"]
    ]
    assert members == covered
    assert len(covered) == 5
    disabled = body(policies.perform_policies_action(action_name="disable", ids=[servers["id"]]))
    assert disabled["resources"][0]["enabled"] is False
    assert body(policies.get_policies(ids=[servers["id"]]))["resources"][0]["enabled"] is False


def test_device_control_and_sensor_update_policies_list_their_defaults(
    falcon: FalconEmulator,
) -> None:
    for cls in (DeviceControlPolicies, SensorUpdatePolicies):
        policies = service(cls, falcon)
        ids = body(policies.query_policies(filter="name:'platform_default'"))["resources"]
        assert len(ids) == 3
        found = body(policies.query_combined_policies(sort="precedence.asc"))["resources"]
        assert {p["id"] for p in found if p["name"] == "platform_default"} == set(ids)
        assert all(p["cid"] == CID for p in found)
    device_control = service(DeviceControlPolicies, falcon)
    (default,) = body(device_control.query_policies(filter="platform_name:'Mac'"))["resources"]
    (first,) = body(device_control.get_policies(ids=[default]))["resources"]
    assert first["settings"]["classes"]


def test_a_policy_create_needs_a_name_and_is_listed(falcon: FalconEmulator) -> None:
    policies = service(PreventionPolicy, falcon)
    refused = body(policies.create_policies(platform_name="Linux", description="no name"), 400)
    assert "name" in refused["errors"][0]["message"]
    created = body(policies.create_policies(name="Builders", platform_name="Linux"), 201)
    (policy,) = created["resources"]
    assert policy["cid"] == CID
    listed = body(policies.query_combined_policies(filter="platform_name:'Linux'"))["resources"]
    assert {p["name"]: p["precedence"] for p in listed} == {
        "Linux Production": 1,
        "Builders": 2,
        "platform_default": 3,
    }


# -- writes on the wire: under one lock, for any collection ------------------------------------


def raw_call(
    falcon: FalconEmulator, method: str, path: str, token: str, **kwargs: Any
) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        headers = {"Authorization": f"Bearer {token}"}
        url = falcon.base_url(REGION) + path
        return session.request(method, url, headers=headers, **kwargs)


def token_of(falcon: FalconEmulator) -> str:
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(falcon.base_url(REGION) + "/oauth2/token", data=form)
    assert response.status_code == 201
    return str(response.json()["access_token"])


def test_concurrent_tag_writes_all_land(falcon: FalconEmulator) -> None:
    token = token_of(falcon)
    target = host_named(falcon, "WKS-ENG-001")["device_id"]
    tags = [f"FalconGroupingTags/wave-{n:02d}" for n in range(12)]
    start = threading.Barrier(len(tags))

    def tag(name: str) -> int:
        start.wait()
        payload = {"action": "add", "device_ids": [target], "tags": [name]}
        return raw_call(
            falcon, "PATCH", "/devices/entities/devices/tags/v1", token, json=payload
        ).status_code

    with ThreadPoolExecutor(len(tags)) as pool:
        statuses = list(pool.map(tag, tags))
    assert statuses == [200] * len(tags)
    stored = host_named(falcon, "WKS-ENG-001")["tags"]
    assert sorted(stored) == sorted(["FalconGroupingTags/Engineering", *tags])


def test_a_bad_write_is_a_400_and_changes_nothing(falcon: FalconEmulator) -> None:
    token = token_of(falcon)
    before = falcon.records("hosts")
    path = "/devices/entities/devices-actions/v2"
    missing = raw_call(falcon, "POST", path, token, json={"ids": [before[0]["device_id"]]})
    assert missing.status_code == 400
    assert "action_name" in missing.json()["errors"][0]["message"]
    wrong = raw_call(falcon, "POST", path, token, params={"action_name": "contain"}, json={})
    assert wrong.status_code == 400
    assert "ids" in wrong.json()["errors"][0]["message"]
    assert falcon.records("hosts") == before


RULE_GROUPS = "/ioarules/entities/rule-groups/v1"


def test_a_users_collection_gets_falcons_write_semantics(falcon: FalconEmulator) -> None:
    falcon.add_collection(
        "rule_groups",
        id_field="id",
        query_path="/ioarules/queries/rule-groups/v1",
        entity_path=RULE_GROUPS,
        cid_field="customer_id",
    )
    token = token_of(falcon)
    created = raw_call(falcon, "POST", RULE_GROUPS, token, json={"name": "Block tools"})
    assert created.status_code == 201
    (group,) = created.json()["resources"]
    assert group["name"] == "Block tools"
    assert len(group["id"]) == 32
    assert group["created_timestamp"] == group["modified_timestamp"]
    assert group["customer_id"] == CID
    update = {"id": group["id"], "name": "Block hacking tools"}
    updated = raw_call(falcon, "PATCH", RULE_GROUPS, token, json=update)
    assert updated.status_code == 200
    assert updated.json()["resources"][0]["name"] == "Block hacking tools"
    found = raw_call(falcon, "GET", RULE_GROUPS, token, params={"ids": group["id"]})
    assert found.json()["resources"][0]["name"] == "Block hacking tools"
    deleted = raw_call(falcon, "DELETE", RULE_GROUPS, token, params={"ids": [group["id"], "x"]})
    assert deleted.status_code == 200
    assert deleted.json()["resources"] == [group["id"]]
    assert [e["id"] for e in deleted.json()["errors"]] == ["x"]
    gone = raw_call(falcon, "GET", RULE_GROUPS, token, params={"ids": group["id"]})
    assert gone.status_code == 404
    assert falcon.records("rule_groups") == []


def test_a_collection_on_its_own_path_takes_patch_and_delete(falcon: FalconEmulator) -> None:
    falcon.add_collection(
        "widgets",
        id_field="id",
        entity_path="/widgets/entities/v1",
        records=[{"id": "w1", "size": 1}],
    )
    token = token_of(falcon)
    path = "/widgets/entities/v1"
    patched = raw_call(falcon, "PATCH", path, token, json={"resources": [{"id": "w1", "size": 2}]})
    assert patched.status_code == 200
    assert falcon.records("widgets")[0]["size"] == 2
    refused = raw_call(falcon, "PUT", path, token, json={})
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "DELETE, GET, PATCH, POST"
    assert raw_call(falcon, "DELETE", path, token, params={"ids": "w1"}).status_code == 200
    assert falcon.records("widgets") == []


# -- load_samples ------------------------------------------------------------------------------


def test_loading_the_samples_again_restores_them(falcon: FalconEmulator) -> None:
    hosts = service(Hosts, falcon)
    target = host_named(falcon, "WKS-FIN-000")["device_id"]
    body(hosts.perform_action(action_name="hide_host", ids=[target]), 202)
    assert falcon.records("hidden_hosts") != []
    falcon.load_samples()
    assert falcon.records("hidden_hosts") == []
    assert host_named(falcon, "WKS-FIN-000")["device_id"] == target


def test_samples_that_would_share_a_path_are_refused_whole() -> None:
    with FalconEmulator(regions=(REGION,)) as emulator:
        emulator.add_collection("mine", id_field="id", query_path="/alerts/queries/alerts/v2")
        with pytest.raises(ValueError, match="'mine' already answers '/alerts/queries/alerts/v2'"):
            emulator.load_samples()
        with pytest.raises(KeyError):
            emulator.records("host_groups")  # nothing was loaded
        assert "groups" not in emulator.records("hosts")[0]


def test_without_the_samples_writes_get_the_catalogues_answer() -> None:
    with sdk_emulator(CLIENT_ID, CLIENT_SECRET, REGION, cid=CID) as emulator:
        hosts = service(Hosts, emulator)
        target = str(emulator.records("hosts")[0]["device_id"])
        result = body(hosts.perform_action(action_name="contain", ids=[target]), 202)
        assert result["resources"] == []
        assert emulator.records("hosts")[0]["status"] == "normal"
