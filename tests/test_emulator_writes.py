"""Falcon's write semantics as pure functions: the answer each write gets and what it changes."""

from __future__ import annotations

import copy
import itertools
import json
from types import MappingProxyType

import pytest

from requests_falcon_auth.testing._api_call import ApiCall, parse_query
from requests_falcon_auth.testing._data import DataRegistry
from requests_falcon_auth.testing._host_writes import (
    HIDDEN_HOSTS,
    HOST_GROUPS,
    HOSTS,
    PREVENTION_POLICIES,
    create_host_groups,
    delete_host_groups,
    device_action,
    group_action,
    group_member_ids,
    settle,
    update_device_tags,
    update_host_groups,
)
from requests_falcon_auth.testing._policy_writes import create_policies
from requests_falcon_auth.testing._sample_alerts import sample_alerts, sample_incidents
from requests_falcon_auth.testing._sample_users import sample_user_roles, sample_users
from requests_falcon_auth.testing._samples import (
    sample_host_groups,
    sample_prevention_policies,
    sample_tenant_hosts,
)
from requests_falcon_auth.testing._tenant import tenant_collection
from requests_falcon_auth.testing._tenant_writes import (
    create_user,
    delete_user,
    incident_action,
    policy_action,
    update_alerts,
    update_user,
    user_roles_action,
)
from requests_falcon_auth.testing._wire import Headers
from requests_falcon_auth.testing._writes import create_records, delete_records, update_records

NOW = "2026-03-01T12:00:00Z"
LATER = "2026-03-02T08:30:00Z"


def call(method: str, query: str = "", body: object = None, client_id: str = "writer") -> ApiCall:
    raw = b"" if body is None else json.dumps(body).encode()
    return ApiCall(
        method=method,
        path="/any/v1",
        query=parse_query(query),
        query_string=query,
        json_body=body,
        body=raw,
        client_id=client_id,
        member_cid=None,
        cid="0123456789abcdef0123456789abcdef",
        region="us-1",
        headers=Headers(),
    )


def frozen(records):
    """Records as a collection holds them: read-only."""
    return tuple(MappingProxyType(copy.deepcopy(dict(r))) for r in records)


@pytest.fixture
def hosts():
    return frozen(sample_tenant_hosts())


@pytest.fixture
def groups():
    return frozen(sample_host_groups())


def by_id(records, key="device_id"):
    return {r[key]: r for r in records}


def group_named(groups, name):
    return next(g for g in groups if g["name"] == name)


# -- devices actions ---------------------------------------------------------------------------


def test_contain_answers_202_and_the_host_goes_pending_then_contained(hosts):
    target = hosts[0]["device_id"]
    outcome = device_action(call("POST", "action_name=contain", {"ids": [target]}), hosts, ())
    assert outcome.answer.status == 202
    assert list(outcome.answer.resources) == [{"id": target, "path": ""}]
    assert list(outcome.answer.errors) == []
    changed = by_id(outcome.changes[HOSTS])
    assert changed[target]["status"] == "containment_pending"
    assert [h["device_id"] for h in outcome.changes[HOSTS]] == [h["device_id"] for h in hosts]
    assert hosts[0]["status"] == "normal"  # the records handed in are left alone
    settled = settle(outcome.changes[HOSTS])
    assert settled is not None
    assert by_id(settled)[target]["status"] == "contained"
    assert settle(settled) is None  # nothing pending any more


def test_lift_containment_goes_pending_then_normal(hosts):
    contained = next(h for h in hosts if h["status"] == "contained")
    ident = contained["device_id"]
    lifted = device_action(
        call("POST", "action_name=lift_containment", {"ids": [ident]}), hosts, ()
    )
    assert lifted.answer.status == 202
    assert by_id(lifted.changes[HOSTS])[ident]["status"] == "lift_containment_pending"
    assert by_id(settle(lifted.changes[HOSTS]))[ident]["status"] == "normal"


def test_containing_a_contained_host_is_accepted_and_changes_nothing(hosts):
    contained = next(h for h in hosts if h["status"] == "contained")["device_id"]
    again = device_action(call("POST", "action_name=contain", {"ids": [contained]}), hosts, ())
    assert again.answer.status == 202
    assert dict(again.changes) == {}


def test_unknown_hosts_get_an_error_each(hosts):
    known = hosts[1]["device_id"]
    body = {"ids": [known, "f" * 32]}
    mixed = device_action(call("POST", "action_name=contain", body), hosts, ())
    assert mixed.answer.status == 202
    assert [r["id"] for r in mixed.answer.resources] == [known]
    assert [(e["code"], e["id"]) for e in mixed.answer.errors] == [(404, "f" * 32)]
    none = device_action(call("POST", "action_name=contain", {"ids": ["f" * 32]}), hosts, ())
    assert none.answer.status == 404
    assert dict(none.changes) == {}


@pytest.mark.parametrize(
    ("query", "body", "named"),
    [
        ("action_name=explode", {"ids": ["a"]}, "action_name"),
        ("", {"ids": ["a"]}, "action_name"),
        ("action_name=contain", {}, "ids"),
        ("action_name=contain", {"ids": []}, "ids"),
        ("action_name=contain", {"ids": [7]}, "ids"),
        ("action_name=contain", ["a"], "body"),
    ],
)
def test_a_bad_device_action_is_a_400_naming_what_is_wrong(hosts, query, body, named):
    outcome = device_action(call("POST", query, body), hosts, ())
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]
    assert dict(outcome.changes) == {}


def test_hide_moves_hosts_to_the_hidden_ones_and_unhide_brings_them_back(hosts):
    chosen = [hosts[2]["device_id"], hosts[5]["device_id"]]
    hidden = device_action(call("POST", "action_name=hide_host", {"ids": chosen}), hosts, ())
    assert hidden.answer.status == 202
    visible_ids = [h["device_id"] for h in hidden.changes[HOSTS]]
    assert len(visible_ids) == len(hosts) - 2
    assert not set(chosen) & set(visible_ids)
    assert [h["device_id"] for h in hidden.changes[HIDDEN_HOSTS]] == chosen
    # A hidden host is no longer there to contain; unhiding finds it among the hidden.
    now_visible = hidden.changes[HOSTS]
    now_hidden = hidden.changes[HIDDEN_HOSTS]
    contain = call("POST", "action_name=contain", {"ids": chosen[:1]})
    assert device_action(contain, now_visible, now_hidden).answer.status == 404
    back = device_action(
        call("POST", "action_name=unhide_host", {"ids": chosen[:1]}), now_visible, now_hidden
    )
    assert back.answer.status == 202
    assert [h["device_id"] for h in back.changes[HIDDEN_HOSTS]] == chosen[1:]
    assert back.changes[HOSTS][-1] == by_id(hosts)[chosen[0]]


def test_detection_suppression_is_accepted_without_state(hosts):
    body = {"ids": [hosts[0]["device_id"]]}
    outcome = device_action(call("POST", "action_name=detection_suppress", body), hosts, ())
    assert outcome.answer.status == 202
    assert dict(outcome.changes) == {}


def test_settle_leaves_hosts_without_pending_status_alone(hosts):
    assert settle(hosts) is None


# -- grouping tags -----------------------------------------------------------------------------


def tags_call(action, device_ids, tags):
    return call("PATCH", body={"action": action, "device_ids": device_ids, "tags": tags})


def test_tags_are_added_once_and_removed(hosts):
    target = hosts[3]
    tag = "FalconGroupingTags/emulator-test"
    added = update_device_tags(tags_call("add", [target["device_id"]], [tag]), hosts)
    assert added.answer.status == 200
    assert list(added.answer.resources) == [
        {"device_id": target["device_id"], "code": 200, "updated": True}
    ]
    tagged = by_id(added.changes[HOSTS])[target["device_id"]]
    assert tagged["tags"] == [*target["tags"], tag]
    again = update_device_tags(tags_call("add", [target["device_id"]], [tag]), added.changes[HOSTS])
    assert again.answer.resources[0]["updated"] is False
    assert dict(again.changes) == {}
    removed = update_device_tags(
        tags_call("remove", [target["device_id"]], [tag]), added.changes[HOSTS]
    )
    assert by_id(removed.changes[HOSTS])[target["device_id"]]["tags"] == target["tags"]


def test_tagging_an_unknown_device_reports_it(hosts):
    known = hosts[0]["device_id"]
    outcome = update_device_tags(
        tags_call("add", [known, "0" * 32], ["FalconGroupingTags/x"]), hosts
    )
    assert outcome.answer.status == 200
    assert [(r["device_id"], r["code"]) for r in outcome.answer.resources] == [
        (known, 200),
        ("0" * 32, 404),
    ]
    assert outcome.answer.errors[0]["id"] == "0" * 32
    alone = update_device_tags(tags_call("add", ["0" * 32], ["FalconGroupingTags/x"]), hosts)
    assert alone.answer.status == 404


@pytest.mark.parametrize(
    ("action", "tags", "named"),
    [
        ("add", ["no-prefix"], "no-prefix"),
        ("add", ["FalconGroupingTags/with space"], "with space"),
        ("add", ["FalconGroupingTags/"], "FalconGroupingTags/"),
        ("replace", ["FalconGroupingTags/x"], "action"),
        ("add", [], "tags"),
    ],
)
def test_bad_tags_are_a_400(hosts, action, tags, named):
    outcome = update_device_tags(tags_call(action, [hosts[0]["device_id"]], tags), hosts)
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]


# -- host groups -------------------------------------------------------------------------------


def test_creating_host_groups_stores_them_with_ids_and_dates(groups):
    ids = (f"{n:032x}" for n in itertools.count(1))
    body = {
        "resources": [
            {"name": "Canaries", "group_type": "static", "description": "first to update"},
            {"name": "Web", "group_type": "dynamic", "assignment_rule": "hostname:'web*'"},
        ]
    }
    outcome = create_host_groups(
        call("POST", body=body), groups, now=NOW, make_id=lambda: next(ids)
    )
    assert outcome.answer.status == 201
    created = list(outcome.answer.resources)
    assert [g["id"] for g in created] == [f"{1:032x}", f"{2:032x}"]
    canaries, web = created
    assert canaries["group_type"] == "static"
    assert canaries["assignment_rule"] == "device_id:[],hostname:[]"
    assert web["assignment_rule"] == "hostname:'web*'"
    assert canaries["created_by"] == "api-client-id:writer"
    assert canaries["created_timestamp"] == canaries["modified_timestamp"] == NOW
    assert outcome.changes[HOST_GROUPS] == [*map(dict, groups), canaries, web]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"resources": [{"name": "windows workstations", "group_type": "static"}]},
            "already exists",
        ),
        ({"resources": [{"name": "X", "group_type": "smart"}]}, "group_type"),
        ({"resources": [{"name": "X"}]}, "group_type"),
        ({"resources": [{"description": "no name"}]}, "name"),
        ({"name": "not wrapped"}, "resources"),
    ],
)
def test_a_bad_host_group_is_a_400(groups, body, named):
    outcome = create_host_groups(call("POST", body=body), groups, now=NOW)
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]
    assert dict(outcome.changes) == {}


def test_updating_a_host_group_changes_what_is_sent(groups):
    finance = group_named(groups, "Finance")
    body = {"resources": [{"id": finance["id"], "description": "Money"}, {"id": "9" * 32}]}
    outcome = update_host_groups(call("PATCH", body=body), groups, now=LATER)
    assert outcome.answer.status == 200
    (updated,) = outcome.answer.resources
    assert updated["description"] == "Money"
    assert updated["name"] == "Finance"
    assert updated["modified_timestamp"] == LATER
    assert updated["modified_by"] == "api-client-id:writer"
    assert [e["id"] for e in outcome.answer.errors] == ["9" * 32]
    assert by_id(outcome.changes[HOST_GROUPS], "id")[finance["id"]] == updated


def test_a_static_groups_rule_cannot_be_set_by_hand(groups):
    finance = group_named(groups, "Finance")
    body = {"resources": [{"id": finance["id"], "assignment_rule": "hostname:'x'"}]}
    outcome = update_host_groups(call("PATCH", body=body), groups, now=LATER)
    assert outcome.answer.status == 400
    assert "assignment_rule" in outcome.answer.errors[0]["message"]


def test_deleting_a_group_takes_it_off_its_hosts_and_policies(groups, hosts):
    policies = frozen(sample_prevention_policies())
    servers = group_named(groups, "Windows Servers")["id"]
    query = f"ids={servers}&ids={'8' * 32}"
    outcome = delete_host_groups(call("DELETE", query), groups, hosts, policies)
    assert outcome.answer.status == 200
    assert list(outcome.answer.resources) == [servers]
    assert [e["id"] for e in outcome.answer.errors] == ["8" * 32]
    assert servers not in {g["id"] for g in outcome.changes[HOST_GROUPS]}
    assert all(servers not in h["groups"] for h in outcome.changes[HOSTS])
    assert group_member_ids(hosts, servers)  # it had members
    aggressive = next(
        p for p in outcome.changes[PREVENTION_POLICIES] if p["name"] == "Servers - Aggressive"
    )
    assert aggressive["groups"] == []
    missing = delete_host_groups(call("DELETE", f"ids={'8' * 32}"), groups, hosts, policies)
    assert missing.answer.status == 404


def group_action_call(action, group_ids, filter_text):
    body = {"ids": group_ids, "action_parameters": [{"name": "filter", "value": filter_text}]}
    return call("POST", f"action_name={action}", body)


def test_adding_hosts_as_caracara_does_makes_them_members(groups, hosts):
    response = group_named(groups, "Incident Response")
    chosen = [hosts[0]["device_id"], hosts[7]["device_id"]]
    filter_text = f"(device_id:{chosen})"  # caracara formats a Python list
    added = group_action(
        group_action_call("add-hosts", [response["id"]], filter_text), groups, hosts
    )
    assert added.answer.status == 200
    (shown,) = added.answer.resources
    ids = ",".join(f"'{i}'" for i in chosen)
    assert shown["assignment_rule"] == f"device_id:[{ids}],hostname:[]"
    assert group_member_ids(added.changes[HOSTS], response["id"]) == chosen
    removed = group_action(
        group_action_call("remove-hosts", [response["id"]], f"device_id:['{chosen[0]}']"),
        added.changes[HOST_GROUPS],
        added.changes[HOSTS],
    )
    assert group_member_ids(removed.changes[HOSTS], response["id"]) == chosen[1:]


def test_adding_hosts_by_hostname_updates_a_static_groups_rule(groups, hosts):
    finance = group_named(groups, "Finance")
    newcomer = next(h for h in hosts if finance["id"] not in h["groups"])
    filter_text = f"hostname:['{newcomer['hostname']}']"
    outcome = group_action(
        group_action_call("add-hosts", [finance["id"]], filter_text), groups, hosts
    )
    assert outcome.answer.status == 200
    assert f"'{newcomer['hostname']}'" in outcome.answer.resources[0]["assignment_rule"]
    assert newcomer["device_id"] in group_member_ids(outcome.changes[HOSTS], finance["id"])


@pytest.mark.parametrize(
    ("action", "group", "filter_text", "named"),
    [
        ("add-hosts", "Linux Servers", "device_id:['x']", "dynamic"),
        ("move-hosts", "Finance", "device_id:['x']", "action_name"),
        ("add-hosts", "Finance", "platform_name:'Linux'", "position 0"),
        ("add-hosts", "Finance", "device_id:['x']+os_version:'y'", "position 16"),
    ],
)
def test_a_bad_group_action_is_a_400(groups, hosts, action, group, filter_text, named):
    group_id = group_named(groups, group)["id"]
    outcome = group_action(group_action_call(action, [group_id], filter_text), groups, hosts)
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]


def test_a_group_action_on_unknown_groups_is_a_404(groups, hosts):
    outcome = group_action(
        group_action_call("add-hosts", ["7" * 32], "device_id:['x']"), groups, hosts
    )
    assert outcome.answer.status == 404
    assert outcome.answer.errors[0]["id"] == "7" * 32


# -- the generic model ---------------------------------------------------------------------------

RECORDS = frozen(
    [
        {"id": "a1", "name": "first", "created_timestamp": NOW, "modified_timestamp": NOW},
        {"id": "b2", "name": "second", "created_timestamp": NOW, "modified_timestamp": NOW},
    ]
)


@pytest.mark.parametrize(
    "body",
    [{"resources": [{"name": "third", "id": "mine"}]}, {"name": "third", "id": "mine"}],
)
def test_create_stores_records_with_server_ids_and_dates(body):
    outcome = create_records(
        call("POST", body=body), "things", RECORDS, id_field="id", now=LATER, make_id=lambda: "c3"
    )
    assert outcome.answer.status == 201
    assert list(outcome.answer.resources) == [
        {"id": "c3", "name": "third", "created_timestamp": LATER, "modified_timestamp": LATER}
    ]
    assert [r["id"] for r in outcome.changes["things"]] == ["a1", "b2", "c3"]


def test_update_merges_fields_and_reports_unknown_ids():
    body = {"resources": [{"id": "b2", "name": "renamed", "extra": [1]}, {"id": "zz"}]}
    outcome = update_records(call("PATCH", body=body), "things", RECORDS, id_field="id", now=LATER)
    assert outcome.answer.status == 200
    assert list(outcome.answer.resources) == [
        {
            "id": "b2",
            "name": "renamed",
            "extra": [1],
            "created_timestamp": NOW,
            "modified_timestamp": LATER,
        }
    ]
    assert [(e["code"], e["id"]) for e in outcome.answer.errors] == [(404, "zz")]
    assert outcome.changes["things"][0] == dict(RECORDS[0])
    assert RECORDS[1]["name"] == "second"


def test_update_by_an_id_in_the_query():
    outcome = update_records(
        call("PATCH", "user_uuid=a1", {"name": "by query", "id": "ignored"}),
        "things",
        RECORDS,
        id_field="id",
        now=LATER,
        id_param="user_uuid",
    )
    assert outcome.answer.status == 200
    assert outcome.answer.resources[0]["id"] == "a1"
    assert outcome.answer.resources[0]["name"] == "by query"


def test_update_of_nothing_known_is_a_404_and_a_resource_without_id_a_400():
    unknown = update_records(
        call("PATCH", body={"resources": [{"id": "zz"}]}),
        "things",
        RECORDS,
        id_field="id",
        now=LATER,
    )
    assert unknown.answer.status == 404
    assert dict(unknown.changes) == {}
    anonymous = update_records(
        call("PATCH", body={"resources": [{"name": "x"}]}),
        "things",
        RECORDS,
        id_field="id",
        now=LATER,
    )
    assert anonymous.answer.status == 400
    assert "id" in anonymous.answer.errors[0]["message"]


@pytest.mark.parametrize(
    ("query", "body"), [("ids=a1&ids=zz", None), ("ids=a1,zz", None), ("", {"ids": ["a1", "zz"]})]
)
def test_delete_answers_the_ids_deleted(query, body):
    outcome = delete_records(call("DELETE", query, body), "things", RECORDS, id_field="id")
    assert outcome.answer.status == 200
    assert list(outcome.answer.resources) == ["a1"]
    assert [e["id"] for e in outcome.answer.errors] == ["zz"]
    assert [r["id"] for r in outcome.changes["things"]] == ["b2"]


def test_delete_of_nothing_known_is_a_404_and_of_nothing_named_a_400():
    none = delete_records(call("DELETE", "ids=zz"), "things", RECORDS, id_field="id")
    assert none.answer.status == 404
    assert dict(none.changes) == {}
    unnamed = delete_records(call("DELETE"), "things", RECORDS, id_field="id")
    assert unnamed.answer.status == 400
    assert "ids is required" in unnamed.answer.errors[0]["message"]


# -- alerts and prevention policies ----------------------------------------------------------------


def alert_update(ids, *parameters, key="composite_ids"):
    body = {key: ids, "action_parameters": [{"name": n, "value": v} for n, v in parameters]}
    return call("PATCH", body=body)


def test_alert_updates_change_status_tags_and_assignment():
    alerts = frozen(sample_alerts())
    first, second = alerts[0]["composite_id"], alerts[1]["composite_id"]
    outcome = update_alerts(
        alert_update(
            [first, "missing"],
            ("update_status", "in_progress"),
            ("add_tag", "triaged"),
            ("assign_to_name", "Chen Wei"),
            ("append_comment", "looking"),
        ),
        alerts,
        now=LATER,
    )
    assert outcome.answer.status == 200
    assert list(outcome.answer.resources) == []
    assert [e["id"] for e in outcome.answer.errors] == ["missing"]
    changed = by_id(outcome.changes["alerts"], "composite_id")
    assert changed[first]["status"] == "in_progress"
    assert changed[first]["tags"] == ["triaged"]
    assert changed[first]["assigned_to_name"] == "Chen Wei"
    assert changed[first]["updated_timestamp"] == LATER
    assert changed[second] == dict(alerts[1])
    undone = update_alerts(
        alert_update([first], ("remove_tag", "triaged"), ("unassign", ""), key="ids"),
        outcome.changes["alerts"],
        now=LATER,
        key="ids",
    )
    again = by_id(undone.changes["alerts"], "composite_id")[first]
    assert again["tags"] == []
    assert "assigned_to_name" not in again


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ([("update_status", "done")], "update_status"),
        ([("show_in_ui", "maybe")], "show_in_ui"),
        ([("explode", "x")], "explode"),
        ([], "action_parameters"),
    ],
)
def test_a_bad_alert_update_is_a_400(parameters, named):
    alerts = frozen(sample_alerts())
    outcome = update_alerts(alert_update([alerts[0]["composite_id"]], *parameters), alerts, now=NOW)
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]


def policy_call(action, ids, *parameters):
    body = {"ids": ids, "action_parameters": [{"name": n, "value": v} for n, v in parameters]}
    return call("POST", f"action_name={action}", body)


def test_disabling_and_enabling_a_policy(groups, hosts):
    policies = frozen(sample_prevention_policies())
    ident = policies[3]["id"]
    outcome = policy_action(policy_call("disable", [ident]), policies, groups, hosts, now=LATER)
    assert outcome.answer.status == 200
    (shown,) = outcome.answer.resources
    assert shown["enabled"] is False
    assert shown["modified_timestamp"] == LATER
    assert HOSTS not in outcome.changes


def test_assigning_a_policy_to_a_group_moves_its_hosts_of_that_platform(groups, hosts):
    policies = frozen(sample_prevention_policies())
    finance = group_named(groups, "Finance")
    windows_default = next(
        p for p in policies if p["name"] == "platform_default" and p["platform_name"] == "Windows"
    )
    added = policy_action(
        policy_call("add-host-group", [windows_default["id"]], ("group_id", finance["id"])),
        policies,
        groups,
        hosts,
        now=LATER,
    )
    assert added.answer.status == 200
    assert [g["id"] for g in added.answer.resources[0]["groups"]] == [finance["id"]]
    moved = [h for h in added.changes[HOSTS] if finance["id"] in h["groups"]]
    assert moved
    for host in moved:
        prevention = host["device_policies"]["prevention"]
        assert prevention["policy_id"] == windows_default["id"]
        assert prevention["assigned_date"] == LATER
    removed = policy_action(
        policy_call("remove-host-group", [windows_default["id"]], ("group_id", finance["id"])),
        added.changes[PREVENTION_POLICIES],
        groups,
        added.changes[HOSTS],
        now=LATER,
    )
    assert removed.answer.resources[0]["groups"] == []
    unchanged = by_id(added.changes[HOSTS])  # they run the Windows default already
    assert {
        h["device_id"]: h for h in removed.changes.get(HOSTS, added.changes[HOSTS])
    } == unchanged


@pytest.mark.parametrize(
    ("action", "parameters", "named"),
    [
        ("explode", [], "action_name"),
        ("add-host-group", [("group_id", "nope")], "nope"),
        ("add-host-group", [], "action_parameters"),
        ("add-rule-group", [("group_id", "g")], "rule_group_id"),
    ],
)
def test_a_bad_policy_action_is_a_400(groups, hosts, action, parameters, named):
    policies = frozen(sample_prevention_policies())
    outcome = policy_action(
        policy_call(action, [policies[0]["id"]], *parameters), policies, groups, hosts, now=NOW
    )
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]


# -- users ---------------------------------------------------------------------------------------


def test_users_are_created_renamed_granted_and_deleted():
    users, roles = frozen(sample_users()), frozen(sample_user_roles())
    body = {"uid": "jo.lee@example.com", "firstName": "Jo", "last_name": "Lee"}
    created = create_user(call("POST", body=body), users, now=NOW, make_id=lambda: "u-1")
    assert created.answer.status == 201
    (jo,) = created.answer.resources
    assert (jo["uuid"], jo["first_name"], jo["last_name"], jo["created_at"]) == (
        "u-1",
        "Jo",
        "Lee",
        NOW,
    )
    users = frozen(created.changes["users"])
    taken = create_user(call("POST", body=body), users, now=NOW, make_id=lambda: "u-2")
    assert taken.answer.status == 400
    assert "already exists" in taken.answer.errors[0]["message"]
    checked = create_user(
        call("POST", "validate_only=true", {"uid": "x@example.com"}), users, now=NOW, make_id=str
    )
    assert (checked.answer.status, dict(checked.changes)) == (200, {})
    renamed = update_user(
        call("PATCH", "user_uuid=u-1", {"first_name": "Joanna"}), users, now=LATER
    )
    assert renamed.answer.resources[0]["first_name"] == "Joanna"
    assert renamed.answer.resources[0]["updated_at"] == LATER
    assert update_user(call("PATCH", "user_uuid=nobody", {}), users, now=LATER).answer.status == 404
    granted = user_roles_action(
        call("POST", body={"uuid": "u-1", "action": "grant", "role_ids": ["falconhost_analyst"]}),
        users,
        roles,
    )
    assert granted.answer.status == 200
    mine = [r for r in granted.changes["user_roles"] if r["uuid"] == "u-1"]
    assert [r["role_id"] for r in mine] == ["falconhost_analyst"]
    deleted = delete_user(
        call("DELETE", "user_uuid=u-1"), users, frozen(granted.changes["user_roles"])
    )
    assert deleted.answer.status == 200
    assert "u-1" not in {u["uuid"] for u in deleted.changes["users"]}
    assert "u-1" not in {r["uuid"] for r in deleted.changes["user_roles"]}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"uuid": "u", "action": "give", "role_ids": ["falconhost_analyst"]}, "action"),
        ({"uuid": "u", "action": "grant", "role_ids": ["root"]}, "root"),
        ({"uuid": "u", "action": "grant"}, "role_ids"),
    ],
)
def test_a_bad_role_action_is_a_400(body, named):
    outcome = user_roles_action(call("POST", body=body), frozen(sample_users()), ())
    assert outcome.answer.status == 400
    assert named in outcome.answer.errors[0]["message"]


def test_a_bad_new_user_is_a_400():
    outcome = create_user(call("POST", body={"uid": "no-at-sign"}), (), now=NOW, make_id=str)
    assert outcome.answer.status == 400
    assert "uid" in outcome.answer.errors[0]["message"]


# -- applying changes: untouched records are kept, not copied ------------------------------------


def test_the_registry_keeps_the_records_a_write_left_alone():
    registry = DataRegistry()
    registry.load_tenant([tenant_collection("hosts", sample_tenant_hosts())])
    before = registry.snapshot("hosts")
    target = before.records[4]["device_id"]
    outcome = device_action(
        call("POST", "action_name=contain", {"ids": [target]}), before.records, ()
    )
    registry.replace("hosts", outcome.changes[HOSTS])
    after = registry.snapshot("hosts")
    assert after.records[4]["status"] == "containment_pending"
    assert after.records[4] is not before.records[4]
    assert all(after.records[i] is before.records[i] for i in range(len(after.records)) if i != 4)
    assert after.index[target] == 4
    with pytest.raises(ValueError, match="repeat the device_id"):
        registry.replace("hosts", [*after.records, {**after.records[0]}])
    assert registry.snapshot("hosts") is after  # refused whole


def test_incident_actions_close_tag_and_rename():
    incidents = frozen(sample_incidents())
    ident = incidents[1]["incident_id"]
    body = {
        "ids": [ident, "inc:missing"],
        "action_parameters": [
            {"name": "update_status", "value": "40"},
            {"name": "add_tag", "value": "reviewed"},
            {"name": "update_name", "value": "Phishing wave"},
            {"name": "unassign"},
        ],
    }
    outcome = incident_action(call("POST", body=body), incidents, now=LATER)
    assert outcome.answer.status == 200
    assert [e["id"] for e in outcome.answer.errors] == ["inc:missing"]
    changed = by_id(outcome.changes["incidents"], "incident_id")[ident]
    assert (changed["status"], changed["state"], changed["tags"], changed["name"]) == (
        40,
        "closed",
        ["reviewed"],
        "Phishing wave",
    )
    assert changed["modified_timestamp"] == LATER
    bad = {"ids": [ident], "action_parameters": [{"name": "update_status", "value": "50"}]}
    refused = incident_action(call("POST", body=bad), incidents, now=LATER)
    assert refused.answer.status == 400
    assert "update_status" in refused.answer.errors[0]["message"]


# -- policy creates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {"platform_name": "Windows"},
        {"name": "", "platform_name": "Windows"},
        {"name": 7, "platform_name": "Windows"},
        {"name": "Kiosks"},
        {"name": "Kiosks", "platform_name": "Amiga"},
    ],
)
@pytest.mark.parametrize("kind", ["prevention", "device-control", "sensor-update", "response"])
def test_a_policy_without_a_name_or_platform_is_refused(kind, item):
    policies = frozen(sample_prevention_policies())
    outcome = create_policies(
        call("POST", body={"resources": [item]}), kind, PREVENTION_POLICIES, policies, now=NOW
    )
    assert outcome.answer.status == 400
    assert outcome.changes == {}


def test_a_created_policy_ranks_before_its_platform_default():
    policies = frozen(sample_prevention_policies())
    body = {"resources": [{"name": "Kiosks", "platform_name": "Windows", "description": "k"}]}
    outcome = create_policies(
        call("POST", body=body),
        "prevention",
        PREVENTION_POLICIES,
        policies,
        now=NOW,
        make_id=lambda: "f" * 32,
    )
    assert outcome.answer.status == 201
    (created,) = outcome.answer.resources
    assert created["id"] == "f" * 32
    assert created["enabled"] is False
    assert created["created_by"] == "api-client-id:writer"
    assert created["prevention_settings"]
    windows = sorted(
        (p for p in outcome.changes[PREVENTION_POLICIES] if p["platform_name"] == "Windows"),
        key=lambda p: p["precedence"],
    )
    assert [p["name"] for p in windows] == [
        "Servers - Aggressive",
        "Workstations - Standard",
        "Kiosks",
        "platform_default",
    ]
    kept = [p for p in outcome.changes[PREVENTION_POLICIES] if p["platform_name"] == "Mac"]
    assert all(any(p is q for q in policies) for p in kept)  # untouched records are not copied
