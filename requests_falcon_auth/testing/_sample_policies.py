"""The sample tenant's other policy kinds: device control, sensor update and response policies.

Every Falcon tenant has a ``platform_default`` policy of each kind for each platform the kind
covers (CrowdStrike creates them with the tenant, ``created_by: "CS"``); custom policies apply
through host groups and come first in their platform's ``precedence``
(:func:`._samples.precedences`). The records are Falcon's ``DeviceControlPolicyV1``,
``SensorUpdatePolicyV2`` and ``RTResponsePolicyV1``; ids and dates are fixed, as in
:mod:`._samples`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from ._samples import precedences, sample_created, sample_digest, sample_host_groups

__all__ = [
    "POLICY_PLATFORMS",
    "device_control_settings",
    "response_settings",
    "sample_device_control_policies",
    "sample_response_policies",
    "sample_sensor_update_policies",
    "sensor_update_settings",
]

_ADMIN: Final = "alice.martin@example.com"

# The platforms each kind's policies are made for (falconpy's create operations name them).
POLICY_PLATFORMS: Final[Mapping[str, tuple[str, ...]]] = {
    "prevention": ("Windows", "Mac", "Linux"),
    "device-control": ("Windows", "Mac", "Linux"),
    "sensor-update": ("Windows", "Mac", "Linux"),
    "response": ("Windows", "Mac", "Linux"),
}


def device_control_settings(strict: bool = False) -> dict[str, object]:
    """Falcon's ``DeviceControlSettingsRespV1``: an enforcement mode and an action per USB
    class."""
    storage = "BLOCK_ALL" if strict else "FULL_ACCESS"
    return {
        "enforcement_mode": "MONITOR_ENFORCE" if strict else "MONITOR_ONLY",
        "end_user_notification": "NOTIFY_USER" if strict else "SILENT",
        "classes": [
            {"id": "ANY", "action": "FULL_ACCESS", "exceptions": []},
            {"id": "MASS_STORAGE", "action": storage, "exceptions": []},
            {"id": "IMAGING", "action": "FULL_ACCESS", "exceptions": []},
            {"id": "MOBILE", "action": storage, "exceptions": []},
        ],
    }


def sensor_update_settings(strict: bool = False) -> dict[str, object]:
    """Falcon's ``SensorUpdateSettingsRespV2``: which build hosts run, uninstall protection,
    and the update schedule."""
    return {
        "build": "n-1|tagged" if strict else "",
        "sensor_version": "",
        "stages": ["prod"],
        "uninstall_protection": "ENABLED" if strict else "DISABLED",
        "variants": [],
        "scheduler": {"enabled": False, "timezone": "Etc/UTC", "schedules": []},
        "show_early_adopter_builds": False,
    }


def _toggle(setting_id: str, name: str, enabled: bool) -> dict[str, object]:
    return {"id": setting_id, "name": name, "type": "toggle", "value": {"enabled": enabled}}


def response_settings(strict: bool = False) -> list[dict[str, object]]:
    """Falcon's response-policy ``settings``: one category of Real Time Response toggles."""
    toggles = [
        _toggle("RealTimeFunctionality", "Real Time Response", True),
        _toggle("CustomScripts", "Custom Scripts", not strict),
        _toggle("GetCommand", "get", True),
        _toggle("PutCommand", "put", not strict),
        _toggle("ExecCommand", "run", not strict),
    ]
    return [{"name": "Real Time Response", "settings": toggles}]


class _Spec(NamedTuple):
    name: str
    platform: str
    description: str
    groups: tuple[str, ...]  # the names of the host groups it is assigned to


def _defaults(kind: str) -> tuple[_Spec, ...]:
    return tuple(
        _Spec("platform_default", platform, "Platform default policy", ())
        for platform in POLICY_PLATFORMS[kind]
    )


def _policies(
    kind: str, specs: Sequence[_Spec], settings: Callable[[bool], object]
) -> list[dict[str, object]]:
    groups = {g["name"]: g for g in sample_host_groups()}
    policies: list[dict[str, object]] = [
        {
            "id": sample_digest(f"{kind} policy {spec.platform} {spec.name}")[:32],
            "name": spec.name,
            "description": spec.description,
            "platform_name": spec.platform,
            "groups": [groups[name] for name in spec.groups],
            "enabled": True,
            "created_by": "CS" if not spec.groups else _ADMIN,
            "created_timestamp": sample_created(index),
            "modified_by": _ADMIN,
            "modified_timestamp": sample_created(index + 40),
            "settings": settings(bool(spec.groups)),
        }
        for index, spec in enumerate(specs)
    ]
    for policy, rank in zip(policies, precedences(policies)):
        policy["precedence"] = rank
    return policies


def sample_device_control_policies() -> list[dict[str, object]]:
    """A platform default per platform, and USB storage blocked on the finance workstations."""
    finance = _Spec("Block USB Storage", "Windows", "No removable storage", ("Finance",))
    return _policies(
        "device-control", (*_defaults("device-control"), finance), device_control_settings
    )


def sample_sensor_update_policies() -> list[dict[str, object]]:
    """A platform default per platform (latest build), and servers held one build back with
    uninstall protection on."""
    servers = _Spec(
        "Servers - N-1", "Windows", "Servers run the previous build", ("Windows Servers",)
    )
    return _policies(
        "sensor-update", (*_defaults("sensor-update"), servers), sensor_update_settings
    )


def sample_response_policies() -> list[dict[str, object]]:
    """A platform default per platform, and production hosts where responders only read."""
    production = _Spec(
        "Production - Read Only", "Linux", "No put or run in production", ("Production",)
    )
    return _policies("response", (*_defaults("response"), production), response_settings)
