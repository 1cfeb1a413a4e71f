"""The sample tenant's collections: their names, Falcon's paths for them, and their samples.

Besides the ``hosts`` every emulator starts with (:mod:`._sample_hosts`), a tenant has hidden
hosts, host groups, prevention, device control, sensor update and response policies
(:mod:`._sample_policies`), users and their roles, alerts, incidents and the hosts'
login and network-address histories. Each is a collection on the query and entity paths Falcon
serves it on (:func:`tenant_collection`); :func:`sample_records` gives every one its sample
records, hosts included, related to each other (:mod:`._samples`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from ._collections import HOSTS, Collection, make_collection
from ._host_writes import HIDDEN_HOSTS, HOST_GROUPS, PREVENTION_POLICIES
from ._sample_alerts import sample_alerts, sample_incidents
from ._sample_hosts import sample_hosts_collection
from ._sample_policies import (
    sample_device_control_policies,
    sample_response_policies,
    sample_sensor_update_policies,
)
from ._sample_users import (
    sample_login_history,
    sample_network_history,
    sample_user_roles,
    sample_users,
)
from ._samples import sample_host_groups, sample_prevention_policies, sample_tenant_hosts

__all__ = [
    "ALERTS",
    "DEVICE_CONTROL_POLICIES",
    "INCIDENTS",
    "LOGIN_HISTORY",
    "NETWORK_HISTORY",
    "POLICY_KINDS",
    "RESPONSE_POLICIES",
    "SENSOR_UPDATE_POLICIES",
    "TENANT",
    "USERS",
    "USER_ROLES",
    "is_builtin",
    "sample_records",
    "tenant_collection",
    "tenant_powered_by",
]

USERS: Final = "users"
USER_ROLES: Final = "user_roles"
ALERTS: Final = "alerts"
INCIDENTS: Final = "incidents"
LOGIN_HISTORY: Final = "login_history"
NETWORK_HISTORY: Final = "network_address_history"
DEVICE_CONTROL_POLICIES: Final = "device_control_policies"
SENSOR_UPDATE_POLICIES: Final = "sensor_update_policies"
RESPONSE_POLICIES: Final = "response_policies"
# Each policy collection by the name its paths give the kind (``/policy/.../{kind}/v1``).
POLICY_KINDS: Final[Mapping[str, str]] = {
    "prevention": PREVENTION_POLICIES,
    "device-control": DEVICE_CONTROL_POLICIES,
    "sensor-update": SENSOR_UPDATE_POLICIES,
    "response": RESPONSE_POLICIES,
}


class _Shape(NamedTuple):
    """Where Falcon serves a collection and how its records are keyed."""

    query_path: str | None
    entity_path: str | None
    id_field: str
    cid_field: str | None
    powered_by: str


# The paths are Falcon's query and entity operations for each kind of record (falconpy's
# operation table); powered_by is what Falcon's answers name, where a recorded answer shows it.
_SHAPES: Final[Mapping[str, _Shape]] = {
    HIDDEN_HOSTS: _Shape(
        "/devices/queries/devices-hidden/v1", None, "device_id", "cid", "device-api"
    ),
    HOST_GROUPS: _Shape(
        "/devices/queries/host-groups/v1",
        "/devices/entities/host-groups/v1",
        "id",
        None,
        "hostgroups",
    ),
    PREVENTION_POLICIES: _Shape(
        "/policy/queries/prevention/v1", "/policy/entities/prevention/v1", "id", "cid", "policy-api"
    ),
    DEVICE_CONTROL_POLICIES: _Shape(
        "/policy/queries/device-control/v1",
        "/policy/entities/device-control/v1",
        "id",
        "cid",
        "policy-api",
    ),
    # getSensorUpdatePoliciesV2: the records are SensorUpdatePolicyV2, as the v2 reads show them.
    SENSOR_UPDATE_POLICIES: _Shape(
        "/policy/queries/sensor-update/v1",
        "/policy/entities/sensor-update/v2",
        "id",
        "cid",
        "policy-api",
    ),
    RESPONSE_POLICIES: _Shape(
        "/policy/queries/response/v1", "/policy/entities/response/v1", "id", "cid", "policy-api"
    ),
    USERS: _Shape(
        "/user-management/queries/users/v1",
        "/user-management/entities/users/GET/v1",
        "uuid",
        "cid",
        "user-management",
    ),
    # Roles are read per user (combinedUserRolesV1 takes user_uuid); the path is that operation's.
    USER_ROLES: _Shape(
        None, "/user-management/combined/user-roles/v1", "id", "cid", "user-management"
    ),
    ALERTS: _Shape(
        "/alerts/queries/alerts/v2",
        "/alerts/entities/alerts/v2",
        "composite_id",
        "cid",
        "detectsapi",
    ),
    INCIDENTS: _Shape(
        "/incidents/queries/incidents/v1",
        "/incidents/entities/incidents/GET/v1",
        "incident_id",
        "cid",
        "incident-api",
    ),
    LOGIN_HISTORY: _Shape(
        None, "/devices/combined/devices/login-history/v1", "device_id", "cid", "device-api"
    ),
    NETWORK_HISTORY: _Shape(
        None,
        "/devices/combined/devices/network-address-history/v1",
        "device_id",
        "cid",
        "device-api",
    ),
}
TENANT: Final = (HOSTS, *_SHAPES)  # every collection of the sample tenant, hosts first


def tenant_collection(name: str, records: Iterable[Mapping[str, object]] = ()) -> Collection:
    """The tenant's collection ``name`` on Falcon's paths, holding ``records``.

    Raises:
        KeyError: ``name`` is not one of :data:`TENANT`.
    """
    if name == HOSTS:
        return sample_hosts_collection().with_records(records)
    shape = _SHAPES[name]
    return make_collection(
        name,
        query_path=shape.query_path,
        entity_path=shape.entity_path,
        scroll_path=None,
        id_field=shape.id_field,
        records=records,
        pagination="offset",
        cid_field=shape.cid_field,
        powered_by=shape.powered_by,
    )


@functools.cache
def _builtin(name: str) -> Collection:
    return tenant_collection(name)


def tenant_powered_by(name: str) -> str:
    """The ``meta.powered_by`` of the tenant's collection ``name``."""
    return _builtin(name).powered_by


def is_builtin(collection: Collection) -> bool:
    """Whether ``collection`` is the tenant's own on Falcon's paths (not one a user put in its
    place under the same name): the tenant's routes serve only their own."""
    return collection.name in TENANT and collection.paths == _builtin(collection.name).paths


def sample_records() -> dict[str, list[dict[str, object]]]:
    """Every tenant collection's sample records, by name (no host hidden)."""
    return {
        HOSTS: sample_tenant_hosts(),
        HIDDEN_HOSTS: [],
        HOST_GROUPS: sample_host_groups(),
        PREVENTION_POLICIES: sample_prevention_policies(),
        DEVICE_CONTROL_POLICIES: sample_device_control_policies(),
        SENSOR_UPDATE_POLICIES: sample_sensor_update_policies(),
        RESPONSE_POLICIES: sample_response_policies(),
        USERS: sample_users(),
        USER_ROLES: sample_user_roles(),
        ALERTS: sample_alerts(),
        INCIDENTS: sample_incidents(),
        LOGIN_HISTORY: sample_login_history(),
        NETWORK_HISTORY: sample_network_history(),
    }
