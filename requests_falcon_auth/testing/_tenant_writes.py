"""What Falcon's alert updates, prevention-policy actions and user management do, as pure
functions over records.

Built on :mod:`._writes` as :mod:`._host_writes` is: a call and the records it may change in, an
:class:`~._writes.Outcome` out. Alert updates take Falcon's ``action_parameters`` (status,
tags, assignment, visibility); policy actions enable, disable and assign policies to host
groups, and the hosts of those groups then name the policy that applies to them; users are
created, renamed and deleted, and granted or revoked roles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from ._api_call import ApiAnswer, ApiCall
from ._host_writes import HOSTS, PREVENTION_POLICIES
from ._sample_users import ROLE_NAMES, role_grant
from ._tenant import ALERTS, INCIDENTS, USER_ROLES, USERS
from ._writes import (
    Outcome,
    Record,
    Records,
    Refused,
    body_ids,
    body_object,
    copy_record,
    guarded,
    not_found,
)

__all__ = [
    "create_user",
    "delete_user",
    "incident_action",
    "policy_action",
    "update_alerts",
    "update_user",
    "user_roles_action",
]

_STATUSES: Final = ("new", "in_progress", "reopened", "closed")
_ASSIGNEES: Final = {
    "assign_to_uuid": "assigned_to_uuid",
    "assign_to_user_id": "assigned_to_uid",
    "assign_to_name": "assigned_to_name",
}
_POLICY_ACTIONS: Final = (
    "enable",
    "disable",
    "add-host-group",
    "remove-host-group",
    "add-rule-group",
    "remove-rule-group",
)


def _parameters(call: ApiCall) -> list[tuple[str, str]]:
    """The ``action_parameters`` of the body: ``[{"name", "value"}, ...]``."""
    raw = body_object(call).get("action_parameters")
    if not isinstance(raw, list) or not raw:
        raise Refused('action_parameters is required: [{"name": "...", "value": "..."}]')
    found = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        value = item.get("value", "") if isinstance(item, dict) else None  # unassign has none
        if not isinstance(name, str) or not isinstance(value, (str, bool)):
            raise Refused(f"each action parameter needs a name and a value, got {item!r}")
        found.append((name, str(value).lower() if isinstance(value, bool) else value))
    return found


def _replaced(records: Records, new: Mapping[str, dict[str, object]], key: str) -> list[Record]:
    return [new.get(str(r.get(key))) or r for r in records]


class _Named(NamedTuple):
    """Records that actions change by id: their collection, what one is called in an error,
    the field that names it and the one stamped with the time of a change."""

    collection: str
    kind: str
    id_field: str
    stamp_field: str


def _changed(
    named: _Named,
    records: Records,
    ids: list[str],
    changes: list[Callable[[dict[str, object]], None]],
    now: str,
) -> Outcome:
    """The records ``ids`` name with ``changes`` applied and stamped ``now``: 200 with a 404
    error per unknown id, or 404 when none is known (nothing changes then)."""
    by_id = {str(r.get(named.id_field)): r for r in records}
    errors = [not_found(i, named.kind) for i in ids if i not in by_id]
    changed: dict[str, dict[str, object]] = {}
    for ident in (i for i in ids if i in by_id):
        record = copy_record(by_id[ident])
        for change in changes:
            change(record)
        record[named.stamp_field] = now
        changed[ident] = record
    if not changed:
        return Outcome(ApiAnswer(404, [], errors))
    new = _replaced(records, changed, named.id_field)
    return Outcome(ApiAnswer(200, [], errors), {named.collection: new})


# -- alerts ------------------------------------------------------------------------------------


def _tags(record: dict[str, object]) -> list[str]:
    tags = record.get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _status(alert: dict[str, object], value: str) -> None:
    alert["status"] = value


def _add_tag(alert: dict[str, object], value: str) -> None:
    alert["tags"] = [t for t in _tags(alert) if t != value] + [value]


def _remove_tag(alert: dict[str, object], value: str) -> None:
    alert["tags"] = [t for t in _tags(alert) if t != value]


def _remove_tags_by_prefix(alert: dict[str, object], value: str) -> None:
    alert["tags"] = [t for t in _tags(alert) if not t.startswith(value)]


def _assigner(field: str) -> Callable[[dict[str, object], str], None]:
    def assign(alert: dict[str, object], value: str) -> None:
        alert[field] = value

    return assign


def _unassign(alert: dict[str, object], value: str) -> None:
    for field in _ASSIGNEES.values():
        alert.pop(field, None)


def _show_in_ui(alert: dict[str, object], value: str) -> None:
    alert["show_in_ui"] = value == "true"


def _kept_elsewhere(alert: dict[str, object], value: str) -> None:
    """Comments and behaviour marks: accepted, but no part of an alert record."""


# PatchEntitiesAlertsV3's action parameters, and the values each takes where they are few.
_ALERT_CHANGES: Final[Mapping[str, Callable[[dict[str, object], str], None]]] = {
    "update_status": _status,
    "add_tag": _add_tag,
    "remove_tag": _remove_tag,
    "remove_tags_by_prefix": _remove_tags_by_prefix,
    **{name: _assigner(field) for name, field in _ASSIGNEES.items()},
    "unassign": _unassign,
    "show_in_ui": _show_in_ui,
    "append_comment": _kept_elsewhere,
    "new_behavior_processed": _kept_elsewhere,
}
_CHOICES: Final = {"update_status": _STATUSES, "show_in_ui": ("true", "false")}


def _alert_change(name: str, value: str) -> Callable[[dict[str, object]], None]:
    """How one action parameter changes an alert."""
    change = _ALERT_CHANGES.get(name)
    if change is None:
        raise Refused(f"unknown action parameter {name!r}")
    choices = _CHOICES.get(name)
    if choices is not None and value not in choices:
        raise Refused(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return lambda alert: change(alert, value)


def update_alerts(
    call: ApiCall, alerts: Records, *, now: str, key: str = "composite_ids"
) -> Outcome:
    """``PATCH /alerts/entities/alerts/v3`` with ``{"composite_ids": [...],
    "action_parameters": [{"name", "value"}]}`` (v2 names the composite ids ``ids``: ``key``).

    200 with no resources (gofalcon: ``MsaspecResponseFields``); the alerts take the changes
    (status, tags, assignment, ``show_in_ui``) and a new ``updated_timestamp``. Comments are
    accepted but not kept: an alert record does not carry them. Unknown composite ids get a
    404 error each; when none is known the status is 404.
    """
    return guarded(lambda: _update_alerts(call, alerts, now, key))


def _update_alerts(call: ApiCall, alerts: Records, now: str, key: str) -> Outcome:
    changes = [_alert_change(name, value) for name, value in _parameters(call)]
    named = _Named(ALERTS, "alert", "composite_id", "updated_timestamp")
    return _changed(named, alerts, body_ids(call, key), changes, now)


# -- incidents ---------------------------------------------------------------------------------

# The incidents API's statuses (its documented numbers) and the state each leaves an incident in.
_INCIDENT_STATES: Final = {"20": "open", "25": "open", "30": "open", "40": "closed"}


def _incident_change(name: str, value: str) -> Callable[[dict[str, object]], None]:
    """How one of PerformIncidentAction's parameters changes an incident."""

    def change(incident: dict[str, object]) -> None:
        tags = _tags(incident)
        if name == "update_status":
            incident["status"], incident["state"] = int(value), _INCIDENT_STATES[value]
        elif name == "add_tag":
            incident["tags"] = [t for t in tags if t != value] + [value]
        elif name == "delete_tag":
            incident["tags"] = [t for t in tags if t != value]
        elif name in ("update_name", "update_description"):
            incident[name.removeprefix("update_")] = value
        elif name == "update_assigned_to_v2":
            incident["assigned_to"] = value
        elif name == "unassign":
            incident.pop("assigned_to", None)
            incident.pop("assigned_to_name", None)

    if name == "update_status" and value not in _INCIDENT_STATES:
        raise Refused(f"update_status must be one of 20, 25, 30, 40, got {value!r}")
    known = ("update_status", "add_tag", "delete_tag", "update_name", "update_description")
    if name not in (*known, "update_assigned_to_v2", "unassign", "add_comment"):
        raise Refused(f"unknown action parameter {name!r}")
    return change  # add_comment: accepted; an incident record carries no comments


def incident_action(call: ApiCall, incidents: Records, *, now: str) -> Outcome:
    """``POST /incidents/entities/incident-actions/v1`` with ``{"ids": [...],
    "action_parameters": [{"name", "value"}]}``: status (20, 25, 30, 40; 40 closes), tags,
    name, description, assignment. 200 with no resources (gofalcon: ``MsaReplyMetaOnly``);
    unknown ids get a 404 error each, and a 404 when none is known."""
    return guarded(lambda: _incident_action(call, incidents, now))


def _incident_action(call: ApiCall, incidents: Records, now: str) -> Outcome:
    changes = [_incident_change(name, value) for name, value in _parameters(call)]
    named = _Named(INCIDENTS, "incident", "incident_id", "modified_timestamp")
    return _changed(named, incidents, body_ids(call), changes, now)


# -- prevention policies -------------------------------------------------------------------------


def _prevention(host: Record) -> Mapping[str, object]:
    policies = host.get("device_policies")
    prevention = policies.get("prevention") if isinstance(policies, Mapping) else None
    return prevention if isinstance(prevention, Mapping) else {}


def _with_policy(host: Record, policy_id: str, now: str) -> dict[str, object]:
    copy = copy_record(host)
    policies = copy.get("device_policies")
    policies = dict(policies) if isinstance(policies, dict) else {}
    prevention = dict(_prevention(host))
    prevention.update(
        policy_type="prevention",
        policy_id=policy_id,
        applied=True,
        assigned_date=now,
        applied_date=now,
    )
    policies["prevention"] = prevention
    copy["device_policies"] = policies
    return copy


def policy_action(
    call: ApiCall, policies: Records, groups: Records, hosts: Records, *, now: str
) -> Outcome:
    """``POST /policy/entities/prevention-actions/v1?action_name=...`` with ``{"ids": [policy
    ids], "action_parameters": [{"name": "group_id" | "rule_group_id", "value": "..."}]}``.

    200 with the policies as changed (gofalcon: ``PreventionPoliciesRespV1``). ``enable`` and
    ``disable`` set ``enabled``; ``add-host-group`` lists the group in the policy's ``groups``
    and makes the policy apply to the group's hosts of its platform; ``remove-host-group`` undoes
    that, the hosts falling back to their platform's ``platform_default``; the rule-group
    actions list or unlist ``{"id"}`` in ``ioa_rule_groups``. Unknown policy ids get a 404 error
    each; an unknown group is a 400.
    """
    return guarded(lambda: _policy_action(call, policies, groups, hosts, now))


def _policy_action(
    call: ApiCall, policies: Records, groups: Records, hosts: Records, now: str
) -> Outcome:
    action = call.param("action_name")
    if action not in _POLICY_ACTIONS:
        raise Refused(f"action_name must be one of {', '.join(_POLICY_ACTIONS)}, got {action!r}")
    ids = body_ids(call)
    by_id = {str(p.get("id")): p for p in policies}
    errors = [not_found(i, "prevention policy") for i in ids if i not in by_id]
    chosen = [i for i in ids if i in by_id]
    if not chosen:
        return Outcome(ApiAnswer(404, [], errors))
    changed = {i: copy_record(by_id[i]) for i in chosen}
    changes: dict[str, Sequence[Record]] = {}
    if action in ("enable", "disable"):
        for policy in changed.values():
            policy["enabled"] = action == "enable"
    elif action in ("add-rule-group", "remove-rule-group"):
        rule_group = _parameter(call, "rule_group_id")
        for policy in changed.values():
            listed = [g for g in _list(policy, "ioa_rule_groups") if g.get("id") != rule_group]
            policy["ioa_rule_groups"] = listed + (
                [{"id": rule_group}] if action == "add-rule-group" else []
            )
    else:
        group_id = _parameter(call, "group_id")
        group = next((g for g in groups if g.get("id") == group_id), None)
        if group is None:
            raise Refused(f"host group {group_id!r} not found")
        new_hosts = _assign(action, changed, dict(group), policies, hosts, now=now)
        if new_hosts is not None:
            changes[HOSTS] = new_hosts
    for policy in changed.values():
        policy["modified_timestamp"] = now
    changes[PREVENTION_POLICIES] = _replaced(policies, changed, "id")
    return Outcome(ApiAnswer(200, list(changed.values()), errors), changes)


def _parameter(call: ApiCall, name: str) -> str:
    for found, value in _parameters(call):
        if found == name:
            return value
    raise Refused(f'action_parameters needs {{"name": "{name}", "value": "..."}}')


def _list(record: Mapping[str, object], name: str) -> list[Mapping[str, object]]:
    value = record.get(name)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _assign(
    action: str,
    changed: dict[str, dict[str, object]],
    group: dict[str, object],
    policies: Records,
    hosts: Records,
    *,
    now: str,
) -> list[Record] | None:
    """Lists (or unlists) ``group`` in the changed policies; the new hosts, if any changed."""
    group_id = group.get("id")
    defaults = {
        p.get("platform_name"): str(p.get("id"))
        for p in policies
        if p.get("name") == "platform_default"
    }
    moved: dict[str, dict[str, object]] = {}
    for policy_id, policy in changed.items():
        listed = [g for g in _list(policy, "groups") if g.get("id") != group_id]
        policy["groups"] = listed + ([group] if action == "add-host-group" else [])
        for host in hosts:
            groups = host.get("groups")
            if not isinstance(groups, list) or group_id not in groups:
                continue
            if host.get("platform_name") != policy.get("platform_name"):
                continue
            current = _prevention(host).get("policy_id")
            if action == "add-host-group" and current != policy_id:
                moved[str(host.get("device_id"))] = _with_policy(host, policy_id, now)
            elif action == "remove-host-group" and current == policy_id:
                fallback = defaults.get(host.get("platform_name"))
                if fallback is not None:
                    moved[str(host.get("device_id"))] = _with_policy(host, fallback, now)
    return _replaced(hosts, moved, "device_id") if moved else None


# -- users and their roles -----------------------------------------------------------------------


def _name(body: Mapping[str, object], snake: str, camel: str) -> str | None:
    """A name field as falconpy sends it (``first_name``) or as the API documents it
    (``firstName``)."""
    value = body.get(snake, body.get(camel))
    if value is not None and not isinstance(value, str):
        raise Refused(f"{snake} must be a string, got {value!r}")
    return value


def create_user(call: ApiCall, users: Records, *, now: str, make_id: Callable[[], str]) -> Outcome:
    """``POST /user-management/entities/users/v1`` with ``{"uid", "first_name", "last_name"}``
    (or ``firstName``/``lastName``): 201 with the user (Falcon's ``User``, a new ``uuid``).
    ``validate_only=true`` checks without creating (200, nothing stored). A ``uid`` (e-mail)
    already taken is a 400."""
    return guarded(lambda: _create_user(call, users, now, make_id))


def _create_user(call: ApiCall, users: Records, now: str, make_id: Callable[[], str]) -> Outcome:
    body = body_object(call)
    uid = body.get("uid")
    if not isinstance(uid, str) or "@" not in uid:
        raise Refused(f"uid must be the user's e-mail address, got {uid!r}")
    if any(str(u.get("uid")).casefold() == uid.casefold() for u in users):
        raise Refused(f"a user {uid!r} already exists")
    user: dict[str, object] = {
        "uuid": make_id(),
        "uid": uid,
        "first_name": _name(body, "first_name", "firstName") or "",
        "last_name": _name(body, "last_name", "lastName") or "",
        "status": "active",
        "factors": [],
        "created_at": now,
        "updated_at": now,
    }
    if call.param("validate_only") == "true":
        return Outcome(ApiAnswer(200, []))
    return Outcome(ApiAnswer(201, [user]), {USERS: [*users, user]})


def update_user(call: ApiCall, users: Records, *, now: str) -> Outcome:
    """``PATCH /user-management/entities/users/v1?user_uuid=...`` with the first and last
    names: 200 with the user as changed; an unknown uuid is a 404."""
    return guarded(lambda: _update_user(call, users, now))


def _update_user(call: ApiCall, users: Records, now: str) -> Outcome:
    ident = call.param("user_uuid") or ""
    by_id = {str(u.get("uuid")): u for u in users}
    if ident not in by_id:
        return Outcome(ApiAnswer(404, [], [not_found(ident, "user")]))
    body = body_object(call)
    user = copy_record(by_id[ident])
    for snake, camel in (("first_name", "firstName"), ("last_name", "lastName")):
        value = _name(body, snake, camel)
        if value is not None:
            user[snake] = value
    user["updated_at"] = now
    return Outcome(ApiAnswer(200, [user]), {USERS: _replaced(users, {ident: user}, "uuid")})


def delete_user(call: ApiCall, users: Records, roles: Records) -> Outcome:
    """``DELETE /user-management/entities/users/v1?user_uuid=...``: 200 with no resources
    (gofalcon: ``MsaspecResponseFields``); the user's roles go with them. Unknown: 404."""
    ident = call.param("user_uuid") or ""
    if not any(u.get("uuid") == ident for u in users):
        return Outcome(ApiAnswer(404, [], [not_found(ident, "user")]))
    changes = {
        USERS: [u for u in users if u.get("uuid") != ident],
        USER_ROLES: [r for r in roles if r.get("uuid") != ident],
    }
    return Outcome(ApiAnswer(200, []), changes)


def user_roles_action(call: ApiCall, users: Records, roles: Records) -> Outcome:
    """``POST /user-management/entities/user-role-actions/v1`` with ``{"uuid", "action":
    "grant"|"revoke", "role_ids": [...]}``: 200 with no resources; the user's grants change.
    Roles are those of :data:`~._sample_users.ROLE_NAMES`; another role id is a 400."""
    return guarded(lambda: _user_roles_action(call, users, roles))


def _user_roles_action(call: ApiCall, users: Records, roles: Records) -> Outcome:
    body = body_object(call)
    action = body.get("action")
    if action not in ("grant", "revoke"):
        raise Refused(f"action must be grant or revoke, got {action!r}")
    role_ids = body_ids(call, "role_ids")
    unknown = [r for r in role_ids if r not in ROLE_NAMES]
    if unknown:
        raise Refused(f"unknown role id {unknown[0]!r}")
    user = body.get("uuid")
    if not any(u.get("uuid") == user for u in users):
        return Outcome(ApiAnswer(404, [], [not_found(str(user), "user")]))
    kept: list[Record] = [
        r for r in roles if not (r.get("uuid") == user and r.get("role_id") in role_ids)
    ]
    if action == "grant":
        kept += [role_grant(str(user), role) for role in role_ids]
    return Outcome(ApiAnswer(200, []), {USER_ROLES: kept})
