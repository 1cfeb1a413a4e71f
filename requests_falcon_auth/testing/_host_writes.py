"""What Falcon's host writes do: containment, hiding, grouping tags and host groups.

Pure functions over records, built on :mod:`._writes`: a call and the records of the built-in
collections in, an :class:`~._writes.Outcome` out. A host's host groups are its ``groups``
list, as Falcon's device records show them, so membership has one home: group actions change
hosts, and a group's members are the hosts that name it (:func:`group_member_ids`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from ._api_call import ApiAnswer, ApiCall
from ._samples import static_rule
from ._writes import (
    Outcome,
    Record,
    Records,
    Refused,
    body_ids,
    body_object,
    copy_record,
    guarded,
    new_id,
    not_found,
    query_ids,
    resources,
    string_list,
)

__all__ = [
    "HIDDEN_HOSTS",
    "HOSTS",
    "HOST_GROUPS",
    "PREVENTION_POLICIES",
    "create_host_groups",
    "delete_host_groups",
    "device_action",
    "group_action",
    "group_member_ids",
    "settle",
    "update_device_tags",
    "update_host_groups",
]

# The built-in collections these writes change, by name.
HOSTS: Final = "hosts"
HIDDEN_HOSTS: Final = "hidden_hosts"
HOST_GROUPS: Final = "host_groups"
PREVENTION_POLICIES: Final = "prevention_policies"

# action_name -> (the statuses it moves a host from, the pending status it moves it to)
_CONTAINMENT: Final = {
    "contain": (frozenset({"normal", "lift_containment_pending"}), "containment_pending"),
    "lift_containment": (
        frozenset({"contained", "containment_pending"}),
        "lift_containment_pending",
    ),
}
_SETTLED: Final = {"containment_pending": "contained", "lift_containment_pending": "normal"}
# Suppressing a host's detections changes nothing a device record shows: accepted, no state.
_STATELESS: Final = ("detection_suppress", "detection_unsuppress")
_DEVICE_ACTIONS: Final = ("contain", "lift_containment", "hide_host", "unhide_host", *_STATELESS)
_TAG: Final = re.compile(r"FalconGroupingTags/[A-Za-z0-9_/\-]+")
_GROUP_TYPES: Final = ("static", "dynamic", "staticByID")
_GROUP_ACTIONS: Final = ("add-hosts", "remove-hosts")
_MEMBER_TERM: Final = re.compile(r"(device_id|hostname)\s*:\s*(\[[^\]]*\]|'[^']*'|\"[^\"]*\")")
_QUOTED: Final = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def _device_id(host: Record) -> str:
    return str(host.get("device_id"))


def _replaced(records: Records, new: Mapping[str, dict[str, object]], key: str) -> list[Record]:
    """``records`` with those named in ``new`` (by ``key``) replaced, the others as they are."""
    return [new.get(str(r.get(key))) or r for r in records]


# -- devices actions -------------------------------------------------------------------------


def settle(hosts: Records) -> list[Record] | None:
    """The hosts with pending containment settled (``containment_pending`` -> ``contained``,
    ``lift_containment_pending`` -> ``normal``); None when no host is pending.

    Falcon shows the pending status until the sensor confirms; the emulator's sensors confirm
    by the next read, so a client that contains a host reads it contained.
    """
    if not any(h.get("status") in _SETTLED for h in hosts):
        return None
    settled: list[Record] = []
    for host in hosts:
        status = host.get("status")
        if isinstance(status, str) and status in _SETTLED:
            settled.append({**copy_record(host), "status": _SETTLED[status]})
        else:
            settled.append(host)
    return settled


def device_action(call: ApiCall, hosts: Records, hidden: Records) -> Outcome:
    """``POST /devices/entities/devices-actions/v2?action_name=...`` with ``{"ids": [...]}``.

    202 with ``[{"id", "path"}]`` for the hosts acted on (gofalcon: ``MsaReplyAffectedEntities``
    under 202): containment goes pending (:func:`settle` completes it); ``hide_host`` moves a
    host to the hidden hosts (out of the device queries, still readable by id) and
    ``unhide_host`` back. Unknown ids get a 404 error each; when no id is known the status is
    404 (gofalcon lists no 404 here: the choice mirrors the entity lookups).
    """
    return guarded(lambda: _device_action(call, hosts, hidden))


def _device_action(call: ApiCall, hosts: Records, hidden: Records) -> Outcome:
    action = call.param("action_name")
    if action not in _DEVICE_ACTIONS:
        choices = ", ".join(_DEVICE_ACTIONS)
        raise Refused(f"action_name must be one of {choices}, got {action!r}")
    ids = body_ids(call)
    visible = {_device_id(h): h for h in hosts}
    known = {_device_id(h) for h in hidden} if action == "unhide_host" else set(visible)
    acted = [i for i in ids if i in known]
    errors = [not_found(i, "device") for i in ids if i not in known]
    changes: dict[str, Sequence[Record]] = {}
    if action in _CONTAINMENT:
        sources, pending = _CONTAINMENT[action]
        moved = {i: {**copy_record(visible[i]), "status": pending} for i in acted}
        moved = {i: r for i, r in moved.items() if visible[i].get("status") in sources}
        if moved:
            changes[HOSTS] = _replaced(hosts, moved, "device_id")
    elif action in ("hide_host", "unhide_host") and acted:
        chosen = set(acted)
        source, target = (hosts, hidden) if action == "hide_host" else (hidden, hosts)
        names = (HOSTS, HIDDEN_HOSTS) if action == "hide_host" else (HIDDEN_HOSTS, HOSTS)
        changes[names[0]] = [h for h in source if _device_id(h) not in chosen]
        moving = [h for h in source if _device_id(h) in chosen]
        changes[names[1]] = [*target, *moving]
    # MsaAffectedEntity's path is empty in the answers seen from Falcon.
    acknowledged: list[object] = [{"id": i, "path": ""} for i in acted]
    return Outcome(ApiAnswer(202 if acted else 404, acknowledged, errors), changes)


# -- grouping tags ---------------------------------------------------------------------------


def update_device_tags(call: ApiCall, hosts: Records) -> Outcome:
    """``PATCH /devices/entities/devices/tags/v1`` with ``{"action": "add"|"remove",
    "device_ids": [...], "tags": ["FalconGroupingTags/...", ...]}``.

    200 with one ``{"device_id", "code", "updated"}`` per device (gofalcon:
    ``UpdateDeviceTagSwaggerV1``); ``updated`` says whether its tags changed. An unknown device
    has code 404 there and an error. Tags are ``FalconGroupingTags/`` then letters, digits,
    ``_``, ``-`` or ``/``; anything else is a 400.
    """
    return guarded(lambda: _update_device_tags(call, hosts))


def _update_device_tags(call: ApiCall, hosts: Records) -> Outcome:
    body = body_object(call)
    action = body.get("action")
    if action not in ("add", "remove"):
        raise Refused(f"action must be 'add' or 'remove', got {action!r}")
    device_ids = string_list(body.get("device_ids"), "device_ids")
    tags = string_list(body.get("tags"), "tags")
    for tag in tags:
        if not _TAG.fullmatch(tag):
            raise Refused(f"invalid tag {tag!r}: use FalconGroupingTags/ and letters, digits, _-/")
    by_id = {_device_id(h): h for h in hosts}
    results: list[object] = []
    errors = []
    updated: dict[str, dict[str, object]] = {}
    for device_id in device_ids:
        host = by_id.get(device_id)
        if host is None:
            results.append({"device_id": device_id, "code": 404, "updated": False})
            errors.append(not_found(device_id, "device"))
            continue
        current = host.get("tags")
        before = [t for t in current if isinstance(t, str)] if isinstance(current, list) else []
        if action == "add":
            after = before + [t for t in tags if t not in before]
        else:
            after = [t for t in before if t not in tags]
        if after != before:
            updated[device_id] = {**copy_record(host), "tags": after}
        results.append({"device_id": device_id, "code": 200, "updated": after != before})
    changes = {HOSTS: _replaced(hosts, updated, "device_id")} if updated else {}
    status = 200 if len(errors) < len(device_ids) else 404
    return Outcome(ApiAnswer(status, results, errors), changes)


# -- host groups -----------------------------------------------------------------------------


def group_member_ids(hosts: Iterable[Record], group_id: str) -> list[str]:
    """The device ids of the hosts in host group ``group_id``, in the hosts' order."""
    return [_device_id(h) for h in hosts if group_id in _groups_of(h)]


def _groups_of(host: Record) -> list[str]:
    groups = host.get("groups")
    return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []


def _author(call: ApiCall) -> str:
    """Who an API write is recorded as: Falcon records the API client."""
    return f"api-client-id:{call.client_id}"


def _text(item: Mapping[str, object], name: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise Refused(f"{name} must be a string, got {value!r}")
    return value


def create_host_groups(
    call: ApiCall, groups: Records, *, now: str, make_id: Callable[[], str] = new_id
) -> Outcome:
    """``POST /devices/entities/host-groups/v1`` with ``{"resources": [{"name", "group_type",
    "description", "assignment_rule"}]}``: 201 with the stored groups (Falcon's
    ``HostGroupV1``: id, author and timestamps assigned; a ``static`` group's assignment rule
    lists its members). ``name`` and ``group_type`` are required, as falconpy's own tests find
    Falcon refusing a group without a type. A name already taken is a 400: Falcon refuses
    duplicate names, with a status it does not document."""
    return guarded(lambda: _create_host_groups(call, groups, now, make_id))


def _create_host_groups(
    call: ApiCall, groups: Records, now: str, make_id: Callable[[], str]
) -> Outcome:
    taken = {str(g.get("name", "")).casefold() for g in groups}
    created: list[dict[str, object]] = []
    for item in resources(call):
        name = _text(item, "name")
        if not name or not name.strip():
            raise Refused("name is required")
        group_type = item.get("group_type")
        if not isinstance(group_type, str) or group_type not in _GROUP_TYPES:
            choices = ", ".join(_GROUP_TYPES)
            raise Refused(f"group_type must be one of {choices}, got {group_type!r}")
        if name.casefold() in taken:
            raise Refused(f"a host group named {name!r} already exists")
        taken.add(name.casefold())
        rule = _text(item, "assignment_rule") if group_type == "dynamic" else None
        created.append(
            {
                "id": make_id(),
                "group_type": group_type,
                "name": name,
                "description": _text(item, "description") or "",
                "assignment_rule": rule if rule is not None else static_rule(group_type, []),
                "created_by": _author(call),
                "created_timestamp": now,
                "modified_by": _author(call),
                "modified_timestamp": now,
            }
        )
    changes = {HOST_GROUPS: [*groups, *created]}
    return Outcome(ApiAnswer(201, list(created)), changes)


def update_host_groups(call: ApiCall, groups: Records, *, now: str) -> Outcome:
    """``PATCH /devices/entities/host-groups/v1`` with ``{"resources": [{"id", "name",
    "description", "assignment_rule"}]}``: 200 with the groups as changed; unknown ids get a
    404 error each. A static group's assignment rule follows its members and is refused
    (Falcon: "If the group type is static, this field cannot be updated manually")."""
    return guarded(lambda: _update_host_groups(call, groups, now))


def _update_host_groups(call: ApiCall, groups: Records, now: str) -> Outcome:
    by_id = {str(g.get("id")): g for g in groups}
    changed: dict[str, dict[str, object]] = {}
    errors = []
    for item in resources(call):
        ident = _text(item, "id")
        if not ident:
            raise Refused("each resource needs its id")
        group = changed.get(ident) or (copy_record(by_id[ident]) if ident in by_id else None)
        if group is None:
            errors.append(not_found(ident, "host group"))
            continue
        for name in ("name", "description", "assignment_rule"):
            value = _text(item, name)
            if value is None:
                continue
            if name == "assignment_rule" and group["group_type"] != "dynamic":
                raise Refused(f"the assignment_rule of host group {ident!r} follows its members")
            group[name] = value
        group["modified_by"] = _author(call)
        group["modified_timestamp"] = now
        changed[ident] = group
    answer = ApiAnswer(200 if changed else 404, list(changed.values()), errors)
    return Outcome(answer, {HOST_GROUPS: _replaced(groups, changed, "id")} if changed else {})


def delete_host_groups(
    call: ApiCall, groups: Records, hosts: Records, policies: Records
) -> Outcome:
    """``DELETE /devices/entities/host-groups/v1?ids=...``: 200 with the ids deleted. The
    groups leave their hosts' ``groups`` and their policies' ``groups`` too."""
    return guarded(lambda: _delete_host_groups(call, groups, hosts, policies))


def _delete_host_groups(
    call: ApiCall, groups: Records, hosts: Records, policies: Records
) -> Outcome:
    ids = query_ids(call, "ids")
    present = {str(g.get("id")) for g in groups}
    deleted = [i for i in ids if i in present]
    errors = [not_found(i, "host group") for i in ids if i not in present]
    if not deleted:
        return Outcome(ApiAnswer(404, [], errors))
    gone = set(deleted)
    changes: dict[str, Sequence[Record]] = {
        HOST_GROUPS: [g for g in groups if str(g.get("id")) not in gone]
    }
    members = {
        _device_id(h): {**copy_record(h), "groups": [g for g in _groups_of(h) if g not in gone]}
        for h in hosts
        if gone & set(_groups_of(h))
    }
    if members:
        changes[HOSTS] = _replaced(hosts, members, "device_id")
    assigned = {}
    for policy in policies:
        attached = policy.get("groups")
        if isinstance(attached, list) and any(
            isinstance(g, dict) and g.get("id") in gone for g in attached
        ):
            kept = [g for g in attached if not (isinstance(g, dict) and g.get("id") in gone)]
            assigned[str(policy.get("id"))] = {**copy_record(policy), "groups": kept}
    if assigned:
        changes[PREVENTION_POLICIES] = _replaced(policies, assigned, "id")
    listed: list[object] = list(deleted)
    return Outcome(ApiAnswer(200, listed, errors), changes)


def _filter_members(text: str, hosts: Records) -> set[str]:
    """The device ids a group action's filter names: ``device_id:[...]`` or ``hostname:[...]``
    terms (or one quoted value), joined by ``+`` or ``,``, in brackets or not.

    This is the filter that tools send (caracara: ``(device_id:['a', 'b'])``); any other FQL is
    refused with a 400 rather than matched wrongly.
    """
    body = text.strip()
    while body.startswith("(") and body.endswith(")"):
        body = body[1:-1].strip()
    wanted: dict[str, set[str]] = {"device_id": set(), "hostname": set()}
    position = 0
    while position < len(body):
        term = _MEMBER_TERM.match(body, position)
        if term is None:
            raise Refused(
                f"unsupported filter {text!r} at position {position}: "
                "name the hosts as device_id:['...'] or hostname:['...']"
            )
        values = {a or b for a, b in _QUOTED.findall(term.group(2))}
        wanted[term.group(1)].update(v for v in values if v)
        position = term.end()
        rest = body[position:].lstrip()
        if rest[:1] in ("+", ","):
            rest = rest[1:].lstrip()
        position = len(body) - len(rest)
    return {
        _device_id(h)
        for h in hosts
        if _device_id(h) in wanted["device_id"] or h.get("hostname") in wanted["hostname"]
    }


def _action_filter(call: ApiCall) -> str:
    parameters = body_object(call).get("action_parameters")
    if isinstance(parameters, list):
        for parameter in parameters:
            if isinstance(parameter, dict) and parameter.get("name") == "filter":
                value = parameter.get("value")
                if isinstance(value, str) and value.strip():
                    return value
    raise Refused('action_parameters needs a filter: [{"name": "filter", "value": "..."}]')


def group_action(call: ApiCall, groups: Records, hosts: Records) -> Outcome:
    """``POST /devices/entities/host-group-actions/v1?action_name=add-hosts|remove-hosts`` with
    ``{"ids": [group ids], "action_parameters": [{"name": "filter", "value": "..."}]}``.

    200 with the groups (gofalcon: ``HostGroupsRespV1``), their static assignment rules
    following their members. Unknown group ids get a 404 error each. A dynamic group's members
    follow its rule, so adding or removing hosts by hand is a 400 (the emulator's choice: Falcon
    does not document it).
    """
    return guarded(lambda: _group_action(call, groups, hosts))


def _group_action(call: ApiCall, groups: Records, hosts: Records) -> Outcome:
    action = call.param("action_name")
    if action not in _GROUP_ACTIONS:
        raise Refused(f"action_name must be add-hosts or remove-hosts, got {action!r}")
    ids = body_ids(call)
    by_id = {str(g.get("id")): g for g in groups}
    errors = [not_found(i, "host group") for i in ids if i not in by_id]
    chosen = [i for i in ids if i in by_id]
    for ident in chosen:
        if by_id[ident].get("group_type") == "dynamic":
            raise Refused(f"host group {ident!r} is dynamic: its assignment rule picks its hosts")
    if not chosen:
        return Outcome(ApiAnswer(404, [], errors))
    targets = _filter_members(_action_filter(call), hosts)
    members: dict[str, dict[str, object]] = {}
    for host in hosts:
        if _device_id(host) not in targets:
            continue
        current = _groups_of(host)
        if action == "add-hosts":
            new = current + [g for g in chosen if g not in current]
        else:
            new = [g for g in current if g not in chosen]
        if new != current:
            members[_device_id(host)] = {**copy_record(host), "groups": new}
    new_hosts = _replaced(hosts, members, "device_id")
    changed = {}
    for ident in chosen:
        group = copy_record(by_id[ident])
        in_group = [h for h in new_hosts if ident in _groups_of(h)]
        group["assignment_rule"] = static_rule(str(group.get("group_type")), in_group)
        changed[ident] = group
    changes = {HOST_GROUPS: _replaced(groups, changed, "id")}
    if members:
        changes[HOSTS] = new_hosts
    shown: list[object] = list(changed.values())
    return Outcome(ApiAnswer(200, shown, errors), changes)
