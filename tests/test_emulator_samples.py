"""The sample tenant's data: deterministic, Falcon-shaped, and related like a real tenant's."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from requests_falcon_auth.testing._collections import make_collection
from requests_falcon_auth.testing._sample_alerts import sample_alerts, sample_incidents
from requests_falcon_auth.testing._sample_hosts import sample_hosts
from requests_falcon_auth.testing._sample_policies import (
    sample_device_control_policies,
    sample_response_policies,
    sample_sensor_update_policies,
)
from requests_falcon_auth.testing._sample_users import (
    ROLE_NAMES,
    sample_login_history,
    sample_network_history,
    sample_user_roles,
    sample_users,
)
from requests_falcon_auth.testing._samples import (
    SAMPLE_CID,
    sample_host_groups,
    sample_prevention_policies,
    sample_tenant_hosts,
)

HEX32 = re.compile(r"[0-9a-f]{32}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
COMPOSITE = re.compile(r"([0-9a-f]{32}):ind:([0-9a-f]{32}):\d+-\d+-\d+")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")

BUILDERS = [
    sample_tenant_hosts,
    sample_host_groups,
    sample_prevention_policies,
    sample_device_control_policies,
    sample_sensor_update_policies,
    sample_response_policies,
    sample_users,
    sample_user_roles,
    sample_alerts,
    sample_incidents,
    sample_login_history,
    sample_network_history,
]


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_every_sample_is_the_same_in_every_call(build):
    assert build() == build()
    assert build()  # and not empty


@pytest.mark.parametrize(
    ("build", "id_field"),
    [
        (sample_tenant_hosts, "device_id"),
        (sample_host_groups, "id"),
        (sample_prevention_policies, "id"),
        (sample_device_control_policies, "id"),
        (sample_sensor_update_policies, "id"),
        (sample_response_policies, "id"),
        (sample_users, "uuid"),
        (sample_user_roles, "id"),
        (sample_alerts, "composite_id"),
        (sample_incidents, "incident_id"),
        (sample_login_history, "device_id"),
        (sample_network_history, "device_id"),
    ],
)
def test_every_sample_loads_as_a_collection_with_unique_ids(build, id_field):
    records = build()
    collection = make_collection(
        build.__name__,
        query_path="/samples/queries/v1",
        entity_path=None,
        id_field=id_field,
        records=records,
        pagination="offset",
        scroll_path=None,
        cid_field="cid",
        powered_by="test",
    )
    assert len(collection.records) == len(records)
    assert all("cid" not in record for record in records)  # the caller's, set when served


def test_the_tenant_hosts_are_the_sample_hosts_with_groups_and_a_policy():
    hosts = sample_tenant_hosts()
    plain = sample_hosts()
    assert [h["device_id"] for h in hosts] == [h["device_id"] for h in plain]
    for host, original in zip(hosts, plain):
        assert {k: v for k, v in host.items() if k not in ("groups", "device_policies")} == original
        prevention = host["device_policies"]["prevention"]
        assert prevention["policy_type"] == "prevention"
        assert prevention["applied"] is True
        assert HEX32.fullmatch(prevention["policy_id"])


def test_each_host_group_holds_the_hosts_its_rule_or_list_names():
    hosts = sample_tenant_hosts()
    groups = {g["name"]: g for g in sample_host_groups()}
    assert Counter(g["group_type"] for g in groups.values()) == {
        "dynamic": 4,
        "static": 2,
        "staticByID": 1,
    }

    def members(name):
        return [h for h in hosts if groups[name]["id"] in h["groups"]]

    assert {h["device_id"] for h in members("Linux Servers")} == {
        h["device_id"] for h in hosts if h["platform_name"] == "Linux"
    }
    assert groups["Linux Servers"]["assignment_rule"] == "platform_name:'Linux'"
    production = members("Production")
    assert production
    assert all("FalconGroupingTags/Production" in h["tags"] for h in production)
    names = ",".join(f"'{h['hostname']}'" for h in production)
    assert groups["Production"]["assignment_rule"] == f"device_id:[],hostname:[{names}]"
    assert members("Incident Response") == []
    assert groups["Incident Response"]["assignment_rule"] == "device_id:[],hostname:[]"
    known = {g["id"] for g in groups.values()}
    assert all(set(h["groups"]) <= known for h in hosts)
    for group in groups.values():
        assert HEX32.fullmatch(group["id"])
        assert STAMP.fullmatch(group["created_timestamp"])
        assert group["created_timestamp"] < group["modified_timestamp"]


def test_each_host_runs_a_policy_of_its_platform_through_its_groups():
    hosts = sample_tenant_hosts()
    policies = {p["id"]: p for p in sample_prevention_policies()}
    groups = {g["id"]: g for g in sample_host_groups()}
    used = Counter()
    for host in hosts:
        policy = policies[host["device_policies"]["prevention"]["policy_id"]]
        used[policy["name"], policy["platform_name"]] += 1
        assert policy["platform_name"] == host["platform_name"]
        assigned = {g["id"] for g in policy["groups"]}
        if policy["name"] == "platform_default":
            assert not assigned
            custom = [
                p
                for p in policies.values()
                if p["platform_name"] == host["platform_name"]
                and {g["id"] for g in p["groups"]} & set(host["groups"])
            ]
            assert custom == []  # a default applies only where no custom policy does
        else:
            assert assigned & set(host["groups"])
    assert used["platform_default", "Mac"] == 9
    assert used["platform_default", "Linux"] > 0  # the Linux hosts outside production
    assert used["Servers - Aggressive", "Windows"] == 5
    for policy in policies.values():
        for group in policy["groups"]:
            assert group == groups[group["id"]]  # the full HostGroupV1 record, as Falcon lists it


def test_prevention_settings_have_falcons_categories_and_value_shapes():
    policy = next(p for p in sample_prevention_policies() if p["name"] == "Servers - Aggressive")
    categories = {c["name"]: c["settings"] for c in policy["prevention_settings"]}
    assert {"Cloud Machine Learning", "Execution Blocking", "Ransomware"} <= set(categories)
    for settings in categories.values():
        for setting in settings:
            assert set(setting) == {"id", "name", "type", "value"}
            if setting["type"] == "toggle":
                assert set(setting["value"]) == {"enabled"}
            else:
                assert setting["type"] == "mlslider"
                assert (
                    setting["value"]["prevention"] == "AGGRESSIVE" or setting["id"] == "AdwarePUP"
                )


def test_alerts_fire_on_sample_hosts_with_falcons_composite_ids():
    hosts = {h["device_id"]: h for h in sample_hosts()}
    alerts = sample_alerts()
    assert len(alerts) == 24
    platforms = Counter()
    for alert in alerts:
        found = COMPOSITE.fullmatch(alert["composite_id"])
        assert found is not None, alert["composite_id"]
        assert found.group(1) == SAMPLE_CID
        device_id = found.group(2)
        assert device_id == alert["agent_id"] == alert["device"]["device_id"]
        assert alert["device"]["hostname"] == hosts[device_id]["hostname"]
        assert alert["composite_id"].endswith(alert["id"])
        assert alert["id"].startswith(f"ind:{device_id}:")
        assert alert["aggregate_id"].startswith(f"aggind:{device_id}:")
        assert alert["platform"] == hosts[device_id]["platform_name"]
        assert alert["status"] in ("new", "in_progress", "closed", "reopened")
        assert re.fullmatch(r"TA\d{4}", alert["tactic_id"])
        assert re.fullmatch(r"T\d{4}", alert["technique_id"])
        assert alert["timestamp"] < alert["created_timestamp"] <= alert["updated_timestamp"]
        assert alert["timestamp"] <= hosts[device_id]["last_seen"]
        platforms[alert["platform"]] += 1
    assert set(platforms) == {"Windows", "Mac", "Linux"}


def test_incidents_group_the_hosts_of_their_alerts():
    alerts = sample_alerts()
    incidents = {i["incident_id"]: i for i in sample_incidents()}
    assert len(incidents) == 4
    grouped = Counter()
    for alert in alerts:
        if "incident" in alert:
            incident = incidents[alert["incident"]["id"]]
            assert alert["agent_id"] in incident["host_ids"]
            grouped[incident["incident_id"]] += 1
    assert set(grouped) == set(incidents)
    for incident in incidents.values():
        assert re.fullmatch(
            rf"inc:{incident['host_ids'][0]}:[0-9a-f]{{32}}", incident["incident_id"]
        )
        assert [h["device_id"] for h in incident["hosts"]] == incident["host_ids"]
        assert incident["start"] <= incident["end"]
        assert incident["state"] in ("open", "closed")
        assert incident["status"] in (20, 25, 30, 40)
    assert any(len(i["host_ids"]) > 1 for i in incidents.values())


def test_users_hold_roles_falcon_names():
    users = sample_users()
    uuids = {u["uuid"] for u in users}
    assert len({u["uid"] for u in users}) == len(users)
    for user in users:
        assert UUID.fullmatch(user["uuid"])
        assert user["uid"] == f"{user['first_name']}.{user['last_name']}@example.com".lower()
    roles = sample_user_roles()
    assert {r["uuid"] for r in roles} == uuids  # everyone holds a role
    for role in roles:
        assert role["role_name"] == ROLE_NAMES[role["role_id"]]
        assert role["id"] == f"{role['uuid']}:{role['role_id']}"
        assert role["grant_type"] == "direct"


def test_login_history_names_the_tenants_people_newest_first():
    hosts = {h["device_id"]: h for h in sample_hosts()}
    people = {u["first_name"].lower() for u in sample_users()} | {"svc_backup"}
    history = sample_login_history()
    assert [h["device_id"] for h in history] == list(hosts)
    for entry in history:
        logins = entry["recent_logins"]
        times = [login["login_time"] for login in logins]
        assert times == sorted(times, reverse=True)
        assert times[0] <= hosts[entry["device_id"]]["last_seen"]
        for login in logins:
            assert login["user_name"].removeprefix("EXAMPLE\\") in people
            windows = hosts[entry["device_id"]]["platform_name"] == "Windows"
            assert login["user_name"].startswith("EXAMPLE\\") is windows


def test_network_history_ends_at_the_hosts_address():
    hosts = {h["device_id"]: h for h in sample_hosts()}
    for entry in sample_network_history():
        host = hosts[entry["device_id"]]
        newest = entry["history"][0]
        assert newest["ip_address"] == host["local_ip"]
        assert all(e["mac_address"] == host["mac_address"] for e in entry["history"])
        stamps = [e["timestamp"] for e in entry["history"]]
        assert stamps == sorted(stamps, reverse=True)
        assert len(entry["history"]) == (3 if host["platform_name"] == "Mac" else 2)


POLICY_BUILDERS = [
    sample_prevention_policies,
    sample_device_control_policies,
    sample_sensor_update_policies,
    sample_response_policies,
]


@pytest.mark.parametrize("build", POLICY_BUILDERS, ids=lambda b: b.__name__)
def test_every_policy_kind_has_a_default_per_platform_ranked_last(build):
    policies = build()
    for platform in ("Windows", "Mac", "Linux"):
        mine = sorted(
            (p for p in policies if p["platform_name"] == platform), key=lambda p: p["precedence"]
        )
        # Falcon numbers a platform's policies 1, 2, ...; its default applies when none other does.
        assert [p["precedence"] for p in mine] == list(range(1, len(mine) + 1))
        assert mine[-1]["name"] == "platform_default"
        assert mine[-1]["created_by"] == "CS"
        assert all(p["name"] != "platform_default" for p in mine[:-1])
    assert any(p["groups"] for p in policies)  # and custom ones, assigned to host groups
