"""What Falcon's policy creates do, for every policy kind of the sample tenant, as a pure
function over records (built on :mod:`._writes`, as :mod:`._tenant_writes` is)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from ._api_call import ApiAnswer, ApiCall
from ._sample_policies import (
    POLICY_PLATFORMS,
    device_control_settings,
    response_settings,
    sensor_update_settings,
)
from ._samples import precedences, prevention_settings
from ._writes import Outcome, Record, Records, Refused, copy_record, guarded, new_id, resources

__all__ = ["POLICY_TEMPLATES", "PolicyTemplate", "create_policies"]


class PolicyTemplate(NamedTuple):
    """A kind of policy: the field its settings live in, and a new policy's settings."""

    settings_field: str
    settings: Callable[[str], object]  # by platform


POLICY_TEMPLATES: Final[Mapping[str, PolicyTemplate]] = {
    "prevention": PolicyTemplate("prevention_settings", prevention_settings),
    "device-control": PolicyTemplate("settings", lambda _: device_control_settings()),
    "sensor-update": PolicyTemplate("settings", lambda _: sensor_update_settings()),
    "response": PolicyTemplate("settings", lambda _: response_settings()),
}


def create_policies(
    call: ApiCall,
    kind: str,
    name: str,
    policies: Records,
    *,
    now: str,
    make_id: Callable[[], str] = new_id,
) -> Outcome:
    """``POST /policy/entities/{kind}/v1`` with ``{"resources": [{"name", "platform_name",
    "description"}]}``: 201 with the new policies (an id, the API client as author, disabled
    until enabled, no groups, the kind's default settings), stored in collection ``name``.

    ``name`` and ``platform_name`` are required: Falcon refuses a create without them (400),
    and a policy without a name breaks every reader of the list. A new policy takes its
    platform's last custom ``precedence``; the ``platform_default`` stays last.
    """
    return guarded(lambda: _create(call, kind, name, policies, now=now, make_id=make_id))


def _create(
    call: ApiCall,
    kind: str,
    name: str,
    policies: Records,
    *,
    now: str,
    make_id: Callable[[], str],
) -> Outcome:
    template = POLICY_TEMPLATES[kind]
    platforms = POLICY_PLATFORMS[kind]
    created: list[dict[str, object]] = []
    for item in resources(call):
        policy_name = item.get("name")
        if not isinstance(policy_name, str) or not policy_name.strip():
            raise Refused("name is required")
        platform = item.get("platform_name")
        if platform not in platforms:
            choices = ", ".join(platforms)
            raise Refused(f"platform_name must be one of {choices}, got {platform!r}")
        description = item.get("description", "")
        if not isinstance(description, str):
            raise Refused(f"description must be a string, got {description!r}")
        author = f"api-client-id:{call.client_id}"
        created.append(
            {
                "id": make_id(),
                "name": policy_name,
                "description": description,
                "platform_name": platform,
                "groups": [],
                "enabled": False,
                "created_by": author,
                "created_timestamp": now,
                "modified_by": author,
                "modified_timestamp": now,
                template.settings_field: template.settings(str(platform)),
            }
        )
    every: list[Record] = [*policies, *created]
    ranked: list[Record] = []
    for policy, rank in zip(every, precedences(every)):
        if policy.get("precedence") == rank:
            ranked.append(policy)  # unchanged: kept as the collection's own record
        else:
            moved = copy_record(policy)
            moved["precedence"] = rank
            ranked.append(moved)
    answered = ranked[len(policies) :]
    return Outcome(ApiAnswer(201, list(answered)), {name: ranked})
