"""The sample tenant: the sample hosts with their host groups and prevention policies.

Built around the 37 sample hosts (:mod:`._sample_hosts`) and related to them as in a real
tenant: each host lists the host groups it belongs to (``groups``) and the prevention policy
that applies to it (``device_policies.prevention.policy_id``); policies list the groups they are
assigned to. Users and the hosts' login and address histories live in :mod:`._sample_users`,
alerts and incidents in :mod:`._sample_alerts`. Every id derives from SHA-256 of a label and
every date is fixed in 2024: the same data in every run, no randomness, no wall clock. Records
carry no ``cid``: the collections set it to the caller's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final

from ._sample_hosts import sample_hosts

__all__ = [
    "SAMPLE_CID",
    "GroupSpec",
    "sample_created",
    "sample_digest",
    "sample_host_groups",
    "sample_iso",
    "precedences",
    "prevention_settings",
    "sample_prevention_policies",
    "sample_tenant_hosts",
    "static_rule",
]

# The CID inside ids that embed one (alerts' composite ids): records' own ``cid`` fields are
# the caller's, but an id cannot change with the caller.
SAMPLE_CID: Final = "5a3b1e0f9c8d4e7fa2b6c1d0e9f8a7b6"
_CREATED: Final = datetime(2024, 1, 2, 9, 30, tzinfo=timezone.utc)
_ADMIN: Final = "alice.martin@example.com"

Host = Mapping[str, object]


def sample_digest(label: str) -> str:
    """A 64-digit hex digest naming one sample object: the same label, the same id."""
    return hashlib.sha256(f"falcon-emulator sample {label}".encode()).hexdigest()


def sample_iso(moment: datetime) -> str:
    """A timestamp as Falcon writes them (UTC, seconds, ``Z``)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_created(days: int) -> str:
    """A creation date of the sample tenant: ``days`` after its first."""
    return sample_iso(_CREATED + timedelta(days=days))


# -- host groups -----------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSpec:
    """A sample host group: its record's fields and which sample hosts belong to it."""

    name: str
    group_type: str  # "static", "dynamic" or "staticByID", as Falcon names them
    description: str
    rule: str | None  # a dynamic group's FQL assignment rule
    member: Callable[[Host], bool]

    @property
    def group_id(self) -> str:
        return sample_digest(f"host group {self.name}")[:32]


def _tags(host: Host) -> Sequence[object]:
    tags = host.get("tags")
    return tags if isinstance(tags, list) else ()


_GROUPS: Final = (
    GroupSpec(
        "Windows Workstations",
        "dynamic",
        "Every Windows workstation",
        "platform_name:'Windows'+product_type_desc:'Workstation'",
        lambda h: h["platform_name"] == "Windows" and h["product_type_desc"] == "Workstation",
    ),
    GroupSpec(
        "Windows Servers",
        "dynamic",
        "Every Windows server",
        "platform_name:'Windows'+product_type_desc:'Server'",
        lambda h: h["platform_name"] == "Windows" and h["product_type_desc"] == "Server",
    ),
    GroupSpec(
        "Linux Servers",
        "dynamic",
        "Every Linux host",
        "platform_name:'Linux'",
        lambda h: h["platform_name"] == "Linux",
    ),
    GroupSpec(
        "Mac Laptops",
        "dynamic",
        "Every Mac",
        "platform_name:'Mac'",
        lambda h: h["platform_name"] == "Mac",
    ),
    GroupSpec(
        "Production",
        "static",
        "Hosts that serve customers",
        None,
        lambda h: "FalconGroupingTags/Production" in _tags(h),
    ),
    GroupSpec(
        "Finance",
        "static",
        "The finance department's workstations",
        None,
        lambda h: "FalconGroupingTags/Finance" in _tags(h),
    ),
    GroupSpec(
        "Incident Response",
        "staticByID",
        "Hosts under investigation (added by id)",
        None,
        lambda h: False,
    ),
)


def static_rule(group_type: str, members: Sequence[Host]) -> str:
    """The assignment rule Falcon shows for a static group: its members by hostname (static)
    or by device id (staticByID)."""
    if group_type == "staticByID":
        ids = ",".join(f"'{h['device_id']}'" for h in members)
        return f"device_id:[{ids}],hostname:[]"
    names = ",".join(f"'{h['hostname']}'" for h in members)
    return f"device_id:[],hostname:[{names}]"


def _group_record(spec: GroupSpec, index: int, hosts: Sequence[Host]) -> dict[str, object]:
    members = [h for h in hosts if spec.member(h)]
    rule = spec.rule if spec.rule is not None else static_rule(spec.group_type, members)
    return {
        "id": spec.group_id,
        "group_type": spec.group_type,
        "name": spec.name,
        "description": spec.description,
        "assignment_rule": rule,
        "created_by": _ADMIN,
        "created_timestamp": sample_created(index),
        "modified_by": _ADMIN,
        "modified_timestamp": sample_created(index + 30),
    }


def sample_host_groups() -> list[dict[str, object]]:
    """The sample host groups (Falcon's ``HostGroupV1``): dynamic ones by platform and role,
    static ones by hostname, one empty staticByID group."""
    hosts = sample_hosts()
    return [_group_record(spec, index, hosts) for index, spec in enumerate(_GROUPS)]


# -- prevention policies ---------------------------------------------------------------------


def _toggle(setting_id: str, name: str, enabled: bool) -> dict[str, object]:
    return {"id": setting_id, "name": name, "type": "toggle", "value": {"enabled": enabled}}


def _slider(setting_id: str, name: str, detection: str, prevention: str) -> dict[str, object]:
    value = {"detection": detection, "prevention": prevention}
    return {"id": setting_id, "name": name, "type": "mlslider", "value": value}


def prevention_settings(platform: str, strict: bool = False) -> list[dict[str, object]]:
    """Falcon's ``prevention_settings``: categories of toggles and machine-learning sliders."""
    level = "AGGRESSIVE" if strict else "MODERATE"
    ml = [
        _slider("CloudAntiMalware", "Cloud Anti-malware", level, level),
        _slider("AdwarePUP", "Adware & PUP", "MODERATE", "CAUTIOUS" if strict else "DISABLED"),
    ]
    sensor_ml = [_slider("OnSensorMLSlider", "Sensor Anti-malware", level, level)]
    categories: list[dict[str, object]] = [
        {"name": "Cloud Machine Learning", "settings": ml},
        {"name": "Sensor Machine Learning", "settings": sensor_ml},
    ]
    execution = [
        _toggle("PreventSuspiciousProcesses", "Suspicious Processes", True),
        _toggle("CustomBlacklisting", "Custom Blocking", True),
        _toggle("IntelPrevention", "Intelligence-Sourced Threats", strict),
    ]
    if platform == "Windows":
        execution.append(_toggle("MaliciousPowershell", "Suspicious Scripts and Commands", True))
        categories.append(
            {
                "name": "Ransomware",
                "settings": [
                    _toggle("BackupDeletion", "Backup Deletion", True),
                    _toggle("Cryptowall", "Cryptowall", True),
                    _toggle("FileEncryption", "File Encryption", True),
                    _toggle("VolumeShadowCopyProtect", "Volume Shadow Copy - Protect", strict),
                ],
            }
        )
    categories.append({"name": "Execution Blocking", "settings": execution})
    quarantine = [_toggle("NextGenAV", "Quarantine", True)]
    categories.append({"name": "Quarantine", "settings": quarantine})
    return categories


@dataclass(frozen=True)
class _PolicySpec:
    name: str
    platform: str
    description: str
    groups: tuple[str, ...]  # the names of the host groups it is assigned to
    strict: bool

    @property
    def policy_id(self) -> str:
        return sample_digest(f"prevention policy {self.platform} {self.name}")[:32]


# Falcon gives every platform a "platform_default" policy that applies to hosts no other
# policy covers; custom policies apply through host groups.
_POLICIES: Final = (
    _PolicySpec("platform_default", "Windows", "Platform default policy", (), False),
    _PolicySpec("platform_default", "Mac", "Platform default policy", (), False),
    _PolicySpec("platform_default", "Linux", "Platform default policy", (), False),
    _PolicySpec(
        "Servers - Aggressive",
        "Windows",
        "Strict prevention for Windows servers",
        ("Windows Servers",),
        True,
    ),
    _PolicySpec(
        "Workstations - Standard",
        "Windows",
        "Prevention for Windows workstations",
        ("Windows Workstations",),
        False,
    ),
    _PolicySpec(
        "Linux Production",
        "Linux",
        "Strict prevention for Linux in production",
        ("Production",),
        True,
    ),
)


def _policy_of(host: Host) -> _PolicySpec:
    """The custom policy of the host's first group that has one, else its platform default."""
    for spec in _POLICIES:
        if spec.platform != host["platform_name"]:
            continue
        if any(g.member(host) for g in _GROUPS if g.name in spec.groups):
            return spec
    return next(p for p in _POLICIES if p.platform == host["platform_name"] and not p.groups)


def precedences(policies: Sequence[Mapping[str, object]]) -> list[int]:
    """Each policy's ``precedence`` as Falcon numbers a platform's policies: 1, 2, ... for the
    custom ones in their order, the ``platform_default`` last (it applies when none other does).
    """
    custom: dict[object, int] = {}
    for policy in policies:
        if policy.get("name") != "platform_default":
            custom[policy.get("platform_name")] = custom.get(policy.get("platform_name"), 0) + 1
    seen: dict[object, int] = {}
    ranks = []
    for policy in policies:
        platform = policy.get("platform_name")
        if policy.get("name") == "platform_default":
            ranks.append(custom.get(platform, 0) + 1)
        else:
            seen[platform] = seen.get(platform, 0) + 1
            ranks.append(seen[platform])
    return ranks


def sample_prevention_policies() -> list[dict[str, object]]:
    """The sample prevention policies (Falcon's ``PreventionPolicyV1``): one platform default
    per platform and custom policies assigned to host groups (listed in full in ``groups``),
    each with its ``precedence`` (:func:`precedences`)."""
    groups = {g["name"]: g for g in sample_host_groups()}
    policies: list[dict[str, object]] = [
        {
            "id": spec.policy_id,
            "name": spec.name,
            "description": spec.description,
            "platform_name": spec.platform,
            "groups": [groups[name] for name in spec.groups],
            "enabled": True,
            "created_by": "CS" if not spec.groups else _ADMIN,
            "created_timestamp": sample_created(index),
            "modified_by": _ADMIN,
            "modified_timestamp": sample_created(index + 45),
            "prevention_settings": prevention_settings(spec.platform, spec.strict),
            "ioa_rule_groups": [],
        }
        for index, spec in enumerate(_POLICIES)
    ]
    for policy, rank in zip(policies, precedences(policies)):
        policy["precedence"] = rank
    return policies


# -- hosts of the tenant ---------------------------------------------------------------------


def sample_tenant_hosts() -> list[dict[str, object]]:
    """The 37 sample hosts with their tenant: ``groups`` (the ids of the groups they belong to)
    and ``device_policies.prevention`` (the policy that applies to them)."""
    hosts = sample_hosts()
    for index, host in enumerate(hosts):
        policy = _policy_of(host)
        applied = sample_iso(_CREATED + timedelta(days=index % 20 + 50, minutes=index))
        host["groups"] = [g.group_id for g in _GROUPS if g.member(host)]
        host["device_policies"] = {
            "prevention": {
                "policy_type": "prevention",
                "policy_id": policy.policy_id,
                "applied": True,
                "settings_hash": sample_digest(f"settings {policy.policy_id}")[:8],
                "assigned_date": applied,
                "applied_date": applied,
                "rule_groups": [],
            }
        }
    return hosts
