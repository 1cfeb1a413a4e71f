"""The sample tenant's operations beyond plain query and entity lookups: reads that join or
filter collections, and writes that change them.

A :class:`TenantRoute` serves one method and path. A read is built under the emulator's lock
from the collections' snapshots and answers outside it, as every read does; a write runs
whole under the lock (:mod:`._host_writes` computes the answer and the new records, which the
:class:`Store` takes). A route serves only the tenant's own collections
(:func:`._tenant.is_builtin`): where a user put a collection of their own under a tenant name,
the operation falls back to the plain collection or to the catalogue's answer.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple, Protocol
from urllib.parse import urlencode

from ._api_call import ApiAnswer, ApiCall, error_entry
from ._collections import HOSTS, Collection, QueryStyle, answer_entities, answer_query
from ._host_writes import (
    HIDDEN_HOSTS,
    HOST_GROUPS,
    PREVENTION_POLICIES,
    create_host_groups,
    delete_host_groups,
    device_action,
    group_action,
    settle,
    update_device_tags,
    update_host_groups,
)
from ._policy_writes import create_policies
from ._sample_users import ROLE_NAMES
from ._tenant import (
    ALERTS,
    INCIDENTS,
    LOGIN_HISTORY,
    POLICY_KINDS,
    USER_ROLES,
    USERS,
    is_builtin,
)
from ._tenant_writes import (
    create_user,
    delete_user,
    incident_action,
    policy_action,
    update_alerts,
    update_user,
    user_roles_action,
)
from ._writes import Outcome

__all__ = ["ROUTES", "Answer", "Store", "TenantRoute", "answer_combined"]

Answer = Callable[[ApiCall], ApiAnswer]


class Store(Protocol):
    """The collections, as the emulator's state holds them (used under its lock)."""

    def snapshot(self, name: str) -> Collection | None:
        """Collection ``name`` as it is now, or None."""

    def replace(self, name: str, records: Iterable[Mapping[str, object]]) -> None:
        """Makes ``records`` collection ``name``'s (adding the tenant's collection if absent)."""


class TenantRoute(NamedTuple):
    """One operation of the tenant: a read (built under the lock, answering outside it) or a
    write (answering under the lock), and the collections it needs."""

    needs: tuple[str, ...]  # a read needs them present; a write needs them absent or the tenant's
    read: Callable[[Store], Answer] | None = None
    write: Callable[[ApiCall, Store, str], ApiAnswer] | None = None

    def serves(self, store: Store) -> bool:
        """Whether the collections it needs are the tenant's own."""
        for name in self.needs:
            found = store.snapshot(name)
            if found is None and self.write is None:
                return False
            if found is not None and not is_builtin(found):
                return False
        return True


def _tenant(store: Store, name: str) -> Collection | None:
    found = store.snapshot(name)
    return found if found is not None and is_builtin(found) else None


def _needed(store: Store, name: str) -> Collection:
    found = _tenant(store, name)
    if found is None:  # TenantRoute.serves checked it
        raise LookupError(f"the tenant's collection {name!r} is missing")
    return found


def _records(store: Store, name: str) -> tuple[Mapping[str, object], ...]:
    found = _tenant(store, name)
    return found.records if found is not None else ()


# -- reads -------------------------------------------------------------------------------------


def answer_combined(
    collection: Collection, call: ApiCall, style: QueryStyle = "offset"
) -> ApiAnswer:
    """A combined operation: the query's page, as records rather than ids."""
    page = answer_query(collection, call, style)
    if page.status != 200:
        return page
    records: list[object] = [
        collection.view(collection.records[collection.index[str(ident)]], call)
        for ident in page.resources
    ]
    return dataclasses.replace(page, resources=records)


def _subset(collection: Collection, keep: Callable[[Mapping[str, object]], bool]) -> Collection:
    return collection.with_records(r for r in collection.records if keep(r))


def _hosts(store: Store) -> Collection:
    """The hosts as this read sees them; pending containment settles for the next read."""
    hosts = _needed(store, HOSTS)
    settled = settle(hosts.records)
    if settled is not None:
        store.replace(HOSTS, settled)
    return hosts


def _hosts_query(style: QueryStyle) -> Callable[[Store], Answer]:
    def build(store: Store) -> Answer:
        hosts = _hosts(store)
        return lambda call: answer_query(hosts, call, style)

    return build


def _hosts_combined(store: Store) -> Answer:
    hosts = _hosts(store)
    return lambda call: answer_combined(hosts, call)


def _devices(store: Store) -> Answer:
    """Device details by id: visible hosts, then hidden ones (still readable by id)."""
    hosts = _hosts(store)
    hidden = _tenant(store, HIDDEN_HOSTS)

    def answer(call: ApiCall) -> ApiAnswer:
        found = answer_entities(hosts, call, "ids")
        if hidden is None or found.status not in (200, 404):
            return found
        missing = [str(e.get("id")) for e in found.errors if e.get("code") == 404]
        extra = [
            hidden.view(hidden.records[hidden.index[i]], call) for i in missing if i in hidden.index
        ]
        if not extra:
            return found
        errors = [e for e in found.errors if str(e.get("id")) not in hidden.index]
        return ApiAnswer(200, [*found.resources, *extra], errors)

    return answer


def _hidden_combined(store: Store) -> Answer:
    hidden = _needed(store, HIDDEN_HOSTS)
    return lambda call: answer_combined(hidden, call)


def _groups_of(host: Mapping[str, object]) -> list[object]:
    groups = host.get("groups")
    return groups if isinstance(groups, list) else []


def _in_group(host: Mapping[str, object], wanted: str | None) -> bool:
    return wanted in _groups_of(host) if wanted else bool(_groups_of(host))


def _under_policy(host: Mapping[str, object], wanted: str | None) -> bool:
    policies = host.get("device_policies")
    prevention = policies.get("prevention") if isinstance(policies, Mapping) else None
    policy = prevention.get("policy_id") if isinstance(prevention, Mapping) else None
    return policy == wanted if wanted else True


def _members(
    belongs: Callable[[Mapping[str, object], str | None], bool], *, combined: bool
) -> Callable[[Store], Answer]:
    """The hosts that belong to the group or policy ``id`` names (``belongs``), as its
    members query (ids) or combined members query (records) answers them."""

    def build(store: Store) -> Answer:
        hosts = _hosts(store)

        def answer(call: ApiCall) -> ApiAnswer:
            wanted = call.param("id")
            members = _subset(hosts, lambda h: belongs(h, wanted))
            return (
                answer_combined(members, call)
                if combined
                else answer_query(members, call, "offset")
            )

        return answer

    return build


def _combined(name: str) -> Callable[[Store], Answer]:
    def build(store: Store) -> Answer:
        collection = _needed(store, name)
        return lambda call: answer_combined(collection, call)

    return build


def _user_roles(store: Store) -> Answer:
    """combinedUserRolesV1: the roles granted to ``user_uuid``."""
    roles = _needed(store, USER_ROLES)

    def answer(call: ApiCall) -> ApiAnswer:
        user = call.param("user_uuid")
        return answer_combined(_subset(roles, lambda r: r.get("uuid") == user), call)

    return answer


def _alerts_combined(store: Store) -> Answer:
    """PostCombinedAlertsV1: a page of alerts (records), its query (``filter``, ``sort``,
    ``limit``, ``after``) in the JSON body, paged by ``after`` cursors."""
    alerts = _needed(store, ALERTS)

    def answer(call: ApiCall) -> ApiAnswer:
        body = call.json_body if isinstance(call.json_body, dict) else {}
        sent = {k: str(body[k]) for k in ("filter", "sort", "limit", "after") if body.get(k)}
        query = MappingProxyType({k: (v,) for k, v in sent.items()})
        as_query = dataclasses.replace(call, query=query, query_string=urlencode(sent))
        return answer_combined(alerts, as_query, "after")

    return answer


def _role_ids(store: Store) -> Answer:
    """The role ids of the tenant, or of ``user_uuid`` when the operation names one."""
    roles = _needed(store, USER_ROLES)

    def answer(call: ApiCall) -> ApiAnswer:
        user = call.param("user_uuid")
        if user is None:
            return ApiAnswer(200, list(ROLE_NAMES))
        held = [r.get("role_id") for r in roles.records if r.get("uuid") == user]
        return ApiAnswer(200, [role for role in ROLE_NAMES if role in held])

    return answer


def _roles(store: Store) -> Answer:
    """entitiesRolesV1 (``?ids=``) and entitiesRolesGETV2 (a body ``{"ids": [...]}``): each
    role asked (``id``, ``display_name``, ``description``, ``cid``)."""
    _needed(store, USER_ROLES)

    def answer(call: ApiCall) -> ApiAnswer:
        body = call.json_body
        sent = body.get("ids") if call.method == "POST" and isinstance(body, dict) else None
        if isinstance(sent, list):
            ids = [i for i in sent if isinstance(i, str) and i]
        else:
            ids = [i for value in call.query.get("ids", ()) for i in value.split(",") if i]
        found: list[object] = []
        errors = []
        for ident in dict.fromkeys(ids):
            name = ROLE_NAMES.get(ident)
            if name is None:
                errors.append(error_entry(404, f"role {ident!r} not found", id=ident))
            else:
                found.append(
                    {"id": ident, "display_name": name, "description": name, "cid": call.cid}
                )
        return ApiAnswer(200 if found else 404, found, errors)

    return answer


def _legacy_user_ids(field: str) -> Callable[[Store], Answer]:
    """The deprecated ``/users/queries/...`` operations: the ``field`` of every user
    (RetrieveEmailsByCID, RetrieveUserUUIDsByCID), or of those whose ``uid`` is asked
    (RetrieveUserUUID); unpaginated, as Falcon answers them."""

    def build(store: Store) -> Answer:
        users = _needed(store, USERS)

        def answer(call: ApiCall) -> ApiAnswer:
            asked = {
                u.casefold() for value in call.query.get("uid", ()) for u in value.split(",") if u
            }
            found: list[object] = [
                u.get(field)
                for u in users.records
                if not asked or str(u.get("uid")).casefold() in asked
            ]
            if found or not asked:
                return ApiAnswer(200, found)
            return ApiAnswer(404, [], [error_entry(404, "no user with that uid")])

        return answer

    return build


def _legacy_users(store: Store) -> Answer:
    """RetrieveUser (``GET /users/entities/users/v1?ids=``): each user as the deprecated API
    shows one (``uuid``, ``uid``, ``firstName``, ``lastName``, ``customer``); unknown: 404."""
    users = _needed(store, USERS)

    def answer(call: ApiCall) -> ApiAnswer:
        ids = [i for value in call.query.get("ids", ()) for i in value.split(",") if i]
        found: list[object] = []
        errors = []
        for ident in dict.fromkeys(ids):
            position = users.index.get(ident)
            if position is None:
                errors.append(error_entry(404, f"user {ident!r} not found", id=ident))
                continue
            user = users.records[position]
            found.append(
                {
                    "uuid": ident,
                    "uid": user.get("uid"),
                    "firstName": user.get("first_name"),
                    "lastName": user.get("last_name"),
                    "customer": call.cid,
                }
            )
        return ApiAnswer(200 if found else 404, found, errors)

    return answer


def _login_history(store: Store) -> Answer:
    history = _needed(store, LOGIN_HISTORY)
    return lambda call: answer_entities(history, call, "ids")


# -- writes ------------------------------------------------------------------------------------


def _applied(
    store: Store, outcome: Outcome, call: ApiCall | None = None, shown: str | None = None
) -> ApiAnswer:
    """Stores the outcome's changes; its answer, with the records of collection ``shown`` as
    served to ``call`` (the caller's CID in the collection's ``cid_field``)."""
    for name, records in outcome.changes.items():
        store.replace(name, records)
    collection = store.snapshot(shown) if shown is not None else None
    if call is None or collection is None or collection.cid_field is None:
        return outcome.answer
    served = [
        collection.view(r, call) if isinstance(r, Mapping) else r for r in outcome.answer.resources
    ]
    return dataclasses.replace(outcome.answer, resources=served)


def _device_action(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    hosts, hidden = _records(store, HOSTS), _records(store, HIDDEN_HOSTS)
    return _applied(store, device_action(call, hosts, hidden))


def _tags(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    return _applied(store, update_device_tags(call, _records(store, HOSTS)))


def _create_groups(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    return _applied(store, create_host_groups(call, _records(store, HOST_GROUPS), now=now))


def _update_groups(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    return _applied(store, update_host_groups(call, _records(store, HOST_GROUPS), now=now))


def _delete_groups(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    groups = _records(store, HOST_GROUPS)
    hosts, policies = _records(store, HOSTS), _records(store, PREVENTION_POLICIES)
    return _applied(store, delete_host_groups(call, groups, hosts, policies))


def _group_action(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    groups, hosts = _records(store, HOST_GROUPS), _records(store, HOSTS)
    return _applied(store, group_action(call, groups, hosts))


def _alerts_update(key: str) -> Callable[[ApiCall, Store, str], ApiAnswer]:
    def write(call: ApiCall, store: Store, now: str) -> ApiAnswer:
        return _applied(store, update_alerts(call, _records(store, ALERTS), now=now, key=key))

    return write


def _incident_action(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    return _applied(store, incident_action(call, _records(store, INCIDENTS), now=now))


def _policy_action(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    policies, groups = _records(store, PREVENTION_POLICIES), _records(store, HOST_GROUPS)
    outcome = policy_action(call, policies, groups, _records(store, HOSTS), now=now)
    return _applied(store, outcome, call, PREVENTION_POLICIES)


def _create_policies(kind: str) -> Callable[[ApiCall, Store, str], ApiAnswer]:
    name = POLICY_KINDS[kind]

    def write(call: ApiCall, store: Store, now: str) -> ApiAnswer:
        outcome = create_policies(call, kind, name, _records(store, name), now=now)
        return _applied(store, outcome, call, name)

    return write


def _entities(name: str) -> Callable[[Store], Answer]:
    """An entity lookup of collection ``name`` on a path other than its own (another version)."""

    def build(store: Store) -> Answer:
        collection = _needed(store, name)
        return lambda call: answer_entities(collection, call, "ids")

    return build


def _create_user(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    users = _records(store, USERS)
    outcome = create_user(call, users, now=now, make_id=lambda: str(uuid.uuid4()))
    return _applied(store, outcome, call, USERS)


def _update_user(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    return _applied(store, update_user(call, _records(store, USERS), now=now), call, USERS)


def _delete_user(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    users, roles = _records(store, USERS), _records(store, USER_ROLES)
    return _applied(store, delete_user(call, users, roles))


def _user_roles_action(call: ApiCall, store: Store, now: str) -> ApiAnswer:
    users, roles = _records(store, USERS), _records(store, USER_ROLES)
    return _applied(store, user_roles_action(call, users, roles))


_DEVICES: Final = "/devices/entities/devices/v2"
_USERS: Final = "/user-management/entities/users/v1"
_HOST_GROUPS: Final = "/devices/entities/host-groups/v1"
_GROUP_WRITES: Final = (HOST_GROUPS, HOSTS, PREVENTION_POLICIES)

ROUTES: Final[Mapping[tuple[str, str], TenantRoute]] = {
    ("GET", "/devices/queries/devices/v1"): TenantRoute((HOSTS,), read=_hosts_query("offset")),
    ("GET", "/devices/queries/devices-scroll/v1"): TenantRoute(
        (HOSTS,), read=_hosts_query("scroll")
    ),
    ("GET", "/devices/combined/devices/v1"): TenantRoute((HOSTS,), read=_hosts_combined),
    ("GET", _DEVICES): TenantRoute((HOSTS,), read=_devices),
    ("POST", _DEVICES): TenantRoute((HOSTS,), read=_devices),
    ("GET", "/devices/entities/devices/v1"): TenantRoute((HOSTS,), read=_devices),
    ("GET", "/devices/combined/devices-hidden/v1"): TenantRoute(
        (HIDDEN_HOSTS,), read=_hidden_combined
    ),
    ("GET", "/devices/queries/host-group-members/v1"): TenantRoute(
        (HOSTS,), read=_members(_in_group, combined=False)
    ),
    ("GET", "/devices/combined/host-group-members/v1"): TenantRoute(
        (HOSTS,), read=_members(_in_group, combined=True)
    ),
    ("GET", "/devices/combined/host-groups/v1"): TenantRoute(
        (HOST_GROUPS,), read=_combined(HOST_GROUPS)
    ),
    ("GET", "/policy/combined/prevention/v1"): TenantRoute(
        (PREVENTION_POLICIES,), read=_combined(PREVENTION_POLICIES)
    ),
    **{
        ("GET", f"/policy/combined/{kind}/{version}"): TenantRoute((name,), read=_combined(name))
        for kind, name in POLICY_KINDS.items()
        if kind != "prevention"
        for version in (("v1", "v2") if kind == "sensor-update" else ("v1",))
    },
    **{
        ("POST", f"/policy/entities/{kind}/v1"): TenantRoute((name,), write=_create_policies(kind))
        for kind, name in POLICY_KINDS.items()
    },
    ("POST", "/policy/entities/sensor-update/v2"): TenantRoute(
        (POLICY_KINDS["sensor-update"],), write=_create_policies("sensor-update")
    ),
    ("GET", "/policy/entities/sensor-update/v1"): TenantRoute(
        (POLICY_KINDS["sensor-update"],), read=_entities(POLICY_KINDS["sensor-update"])
    ),
    ("GET", "/policy/entities/device-control/v2"): TenantRoute(
        (POLICY_KINDS["device-control"],), read=_entities(POLICY_KINDS["device-control"])
    ),
    ("GET", "/policy/queries/prevention-members/v1"): TenantRoute(
        (HOSTS, PREVENTION_POLICIES), read=_members(_under_policy, combined=False)
    ),
    ("GET", "/policy/combined/prevention-members/v1"): TenantRoute(
        (HOSTS, PREVENTION_POLICIES), read=_members(_under_policy, combined=True)
    ),
    **{
        ("GET", f"/user-management/combined/user-roles/{version}"): TenantRoute(
            (USER_ROLES,), read=_user_roles
        )
        for version in ("v1", "v2", "v3")
    },
    ("POST", "/devices/combined/devices/login-history/v2"): TenantRoute(
        (LOGIN_HISTORY,), read=_login_history
    ),
    ("POST", "/devices/entities/devices-actions/v2"): TenantRoute(
        (HOSTS, HIDDEN_HOSTS), write=_device_action
    ),
    ("PATCH", "/devices/entities/devices/tags/v1"): TenantRoute((HOSTS,), write=_tags),
    ("POST", _HOST_GROUPS): TenantRoute((HOST_GROUPS,), write=_create_groups),
    ("PATCH", _HOST_GROUPS): TenantRoute((HOST_GROUPS,), write=_update_groups),
    ("DELETE", _HOST_GROUPS): TenantRoute(_GROUP_WRITES, write=_delete_groups),
    ("POST", "/devices/entities/host-group-actions/v1"): TenantRoute(
        (HOST_GROUPS, HOSTS), write=_group_action
    ),
    ("POST", "/alerts/combined/alerts/v1"): TenantRoute((ALERTS,), read=_alerts_combined),
    ("PATCH", "/alerts/entities/alerts/v3"): TenantRoute(
        (ALERTS,), write=_alerts_update("composite_ids")
    ),
    ("PATCH", "/alerts/entities/alerts/v2"): TenantRoute((ALERTS,), write=_alerts_update("ids")),
    ("POST", "/incidents/entities/incident-actions/v1"): TenantRoute(
        (INCIDENTS,), write=_incident_action
    ),
    ("POST", "/policy/entities/prevention-actions/v1"): TenantRoute(
        (PREVENTION_POLICIES, HOST_GROUPS, HOSTS), write=_policy_action
    ),
    ("GET", "/user-roles/queries/user-role-ids-by-cid/v1"): TenantRoute(
        (USER_ROLES,), read=_role_ids
    ),
    ("GET", "/user-roles/queries/user-role-ids-by-user-uuid/v1"): TenantRoute(
        (USER_ROLES,), read=_role_ids
    ),
    ("GET", "/user-management/queries/roles/v1"): TenantRoute((USER_ROLES,), read=_role_ids),
    ("GET", "/users/queries/emails-by-cid/v1"): TenantRoute((USERS,), read=_legacy_user_ids("uid")),
    ("GET", "/users/queries/user-uuids-by-cid/v1"): TenantRoute(
        (USERS,), read=_legacy_user_ids("uuid")
    ),
    ("GET", "/users/queries/user-uuids-by-email/v1"): TenantRoute(
        (USERS,), read=_legacy_user_ids("uuid")
    ),
    ("GET", "/users/entities/users/v1"): TenantRoute((USERS,), read=_legacy_users),
    ("GET", "/user-roles/entities/user-roles/v1"): TenantRoute((USER_ROLES,), read=_roles),
    ("GET", "/user-management/entities/roles/v1"): TenantRoute((USER_ROLES,), read=_roles),
    ("POST", "/user-management/entities/roles/GET/v2"): TenantRoute((USER_ROLES,), read=_roles),
    ("POST", _USERS): TenantRoute((USERS,), write=_create_user),
    ("PATCH", _USERS): TenantRoute((USERS,), write=_update_user),
    ("DELETE", _USERS): TenantRoute((USERS, USER_ROLES), write=_delete_user),
    ("POST", "/user-management/entities/user-role-actions/v1"): TenantRoute(
        (USERS, USER_ROLES), write=_user_roles_action
    ),
}
