"""The sample tenant's users and their roles, and the hosts' login and address histories.

Users are the people whose logins the sample hosts' login histories show; a history's newest
address is the host's own. Deterministic, as :mod:`._samples` is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Final

from ._sample_hosts import sample_hosts
from ._samples import sample_created, sample_digest, sample_iso

__all__ = [
    "ROLE_NAMES",
    "role_grant",
    "sample_login_history",
    "sample_network_history",
    "sample_user_roles",
    "sample_users",
]

_DOMAIN: Final = "EXAMPLE"

Host = Mapping[str, object]


# -- users -----------------------------------------------------------------------------------


def _uuid(label: str) -> str:
    digest = sample_digest(label)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


# first, last, roles (ids as Falcon names them; one user may hold several)
_PEOPLE: Final = (
    ("Alice", "Martin", ("falconhost_admin",)),
    ("Bruno", "Costa", ("falconhost_analyst", "remote_responder_three")),
    ("Chen", "Wei", ("falconhost_analyst",)),
    ("Dana", "Kowalski", ("falconhost_read_only",)),
    ("Emeka", "Obi", ("endpoint_manager",)),
    ("Farah", "Haddad", ("falconhost_analyst",)),
    ("Goran", "Petrovic", ("falconhost_read_only",)),
    ("Hana", "Sato", ("falconhost_admin", "falconhost_analyst")),
    ("Ivan", "Novak", ("falcon_console_guest",)),
)
ROLE_NAMES: Final = {
    "falconhost_admin": "Falcon Administrator",
    "falconhost_analyst": "Falcon Analyst",
    "falconhost_read_only": "Falcon Analyst - Read Only",
    "remote_responder_three": "Real Time Responder - Administrator",
    "endpoint_manager": "Endpoint Manager",
    "falcon_console_guest": "Falcon Console Guest",
}


def _login_name(first: str) -> str:
    return first.lower()


def sample_users() -> list[dict[str, object]]:
    """The sample users (Falcon's user-management ``User``): ``uuid``, ``uid`` (the e-mail
    address, their login), names and dates. Their roles: :func:`sample_user_roles`."""
    return [
        {
            "uuid": _uuid(f"user {first}"),
            "uid": f"{first.lower()}.{last.lower()}@example.com",
            "first_name": first,
            "last_name": last,
            "status": "active",
            "factors": ["Google Authenticator"] if index % 3 == 0 else [],
            "created_at": sample_created(index),
            "updated_at": sample_created(index + 10),
            "last_login_at": sample_iso(datetime(2024, 6, 28, 8, tzinfo=timezone.utc))
            if index % 4 != 3
            else sample_created(index + 100),
        }
        for index, (first, last, _roles) in enumerate(_PEOPLE)
    ]


def role_grant(uuid: str, role: str) -> dict[str, object]:
    """One role granted to user ``uuid`` directly (Falcon's ``CombinedUserRolesResourceV1``);
    ``id`` is ``<uuid>:<role_id>``."""
    return {
        "id": f"{uuid}:{role}",
        "uuid": uuid,
        "role_id": role,
        "role_name": ROLE_NAMES[role],
        "grant_type": "direct",
        "cid_group_id": "",
        "cid_group_name": "",
        "user_group_id": "",
        "user_group_name": "",
    }


def sample_user_roles() -> list[dict[str, object]]:
    """Which user holds which role: one :func:`role_grant` per user and role."""
    return [
        role_grant(_uuid(f"user {first}"), role)
        for first, _last, roles in _PEOPLE
        for role in roles
    ]


# -- login and network-address history -------------------------------------------------------


def _last_seen(host: Host) -> datetime:
    moment = datetime.strptime(str(host["last_seen"]), "%Y-%m-%dT%H:%M:%SZ")
    return moment.replace(tzinfo=timezone.utc)


def _logins(host: Host, index: int) -> list[dict[str, object]]:
    """Newest first, as Falcon lists them: the host's people, and a service account on servers."""
    digest = bytes.fromhex(sample_digest(f"logins {index}"))
    people = [_login_name(first) for first, _last, _roles in _PEOPLE]
    if host["product_type_desc"] == "Server":
        names = ["svc_backup", people[digest[0] % len(people)], "svc_backup"]
    else:
        owner = people[index % len(people)]
        names = [owner, owner, people[digest[1] % len(people)], owner]
    logins: list[dict[str, object]] = []
    for step, name in enumerate(names):
        moment = _last_seen(host) - timedelta(hours=step * 9 + digest[2 + step] % 7)
        user = name if host["platform_name"] != "Windows" else f"{_DOMAIN}\\{name}"
        logins.append({"login_time": sample_iso(moment), "user_name": user})
    return logins


def sample_login_history() -> list[dict[str, object]]:
    """Each sample host's recent logins (Falcon's ``LoginDetailV1``: ``device_id`` and
    ``recent_logins`` of ``login_time`` and ``user_name``), newest first."""
    return [
        {"device_id": host["device_id"], "recent_logins": _logins(host, index)}
        for index, host in enumerate(sample_hosts())
    ]


def sample_network_history() -> list[dict[str, object]]:
    """Each sample host's addresses over time (Falcon's ``NetworkAddressHistoryV1``:
    ``device_id`` and ``history`` of ``ip_address``, ``mac_address``, ``timestamp``), newest
    first; the newest is the host's ``local_ip`` and ``mac_address``."""
    records = []
    for index, host in enumerate(sample_hosts()):
        digest = bytes.fromhex(sample_digest(f"addresses {index}"))
        local_ip = str(host["local_ip"])
        prefix = local_ip.rsplit(".", 1)[0]
        seen = _last_seen(host)
        mac = host["mac_address"]
        addresses = [
            (local_ip, seen),
            (f"{prefix}.{digest[0] % 250 + 2}", seen - timedelta(days=digest[1] % 20 + 5)),
        ]
        if host["platform_name"] == "Mac":  # laptops roam: a home network too
            home = f"192.168.1.{digest[2] % 200 + 10}"
            addresses.append((home, seen - timedelta(days=digest[3] % 20 + 30)))
        history = [
            {"ip_address": ip, "mac_address": mac, "timestamp": sample_iso(moment)}
            for ip, moment in addresses
        ]
        records.append({"device_id": host["device_id"], "history": history})
    return records
