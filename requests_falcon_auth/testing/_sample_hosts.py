"""The built-in sample hosts: 37 devices with Falcon's fields, the same on every run (and more
on demand, in the same pattern).

Registered on every emulator as the ``hosts`` collection, on Falcon's device query, scroll and
entity endpoints, so code that lists hosts gets realistic data out of the box. Derived from
SHA-256 of their index with fixed 2024 dates: no randomness, no wall clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Final

from ._checks import whole
from ._collections import HOSTS, Collection, make_collection

__all__ = ["iter_sample_hosts", "sample_hosts", "sample_hosts_collection"]

_SAMPLE_SIZE: Final = 37  # with limit=10, four pages: 10, 10, 10 and 7
_FIRST_SEEN: Final = datetime(2024, 1, 2, 8, 0, tzinfo=timezone.utc)
_LAST_SEEN: Final = datetime(2024, 6, 30, 12, 0, tzinfo=timezone.utc)
_DEPARTMENTS: Final = ("Finance", "Engineering", "Sales", "Operations", "HR")
_PEOPLE: Final = ("alice", "bruno", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan")
_LINUX_ROLES: Final = ("web", "db", "k8s-node", "build", "cache")
_LINUX_OS: Final = ("Ubuntu 22.04", "RHEL 9.3", "Amazon Linux 2", "Debian 12")
_MAC_OS: Final = ("Sonoma (14)", "Ventura (13)", "Sequoia (15)")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _sample_host(index: int) -> dict[str, object]:
    digest = hashlib.sha256(f"falcon-emulator sample host {index}".encode()).digest()
    platform = ("Windows", "Windows", "Mac", "Linux")[index % 4]
    ordinal = index // 4 + 1
    if platform == "Windows" and index % 8 == 4:  # every other Windows host of the 2nd column
        hostname = f"SRV-APP-{ordinal:02d}"
        os_version, product, agent = "Windows Server 2022", "Server", "7.16.18613.0"
        tags = ["FalconGroupingTags/Servers", "FalconGroupingTags/Production"]
    elif platform == "Windows":
        department = _DEPARTMENTS[index % len(_DEPARTMENTS)]
        hostname = f"WKS-{department[:3].upper()}-{index:03d}"
        os_version = "Windows 11" if digest[0] % 3 else "Windows 10"
        product, agent = "Workstation", "7.16.18613.0" if digest[1] % 4 else "7.15.18514.0"
        tags = [f"FalconGroupingTags/{department}"]
    elif platform == "Mac":
        person = _PEOPLE[ordinal % len(_PEOPLE)]
        hostname = f"{person}-macbook-pro-{ordinal}"
        os_version, product = _MAC_OS[digest[0] % len(_MAC_OS)], "Workstation"
        agent, tags = "7.16.18607.0", ["FalconGroupingTags/Laptops"]
    else:
        role = _LINUX_ROLES[ordinal % len(_LINUX_ROLES)]
        hostname = f"{role}-{ordinal:02d}.prod.example.com"
        os_version, product, agent = _LINUX_OS[digest[0] % len(_LINUX_OS)], "Server", "7.14.16703.0"
        tags = ["FalconGroupingTags/Production"] if digest[1] % 2 else []
    # The dates repeat every 59 hosts, so first_seen stays before last_seen at any count.
    first_seen = _FIRST_SEEN + timedelta(days=index % 59 * 3, minutes=digest[2] * 5)
    last_seen = _LAST_SEEN - timedelta(minutes=digest[3] * 7)
    return {
        "device_id": digest.hex()[:32],
        "hostname": hostname,
        "platform_name": platform,
        "os_version": os_version,
        "product_type_desc": product,
        "agent_version": agent,
        "first_seen": _iso(first_seen),
        "last_seen": _iso(last_seen),
        "status": "contained" if index % 12 == 5 else "normal",
        "local_ip": f"10.{20 + index % 4}.{digest[4]}.{digest[5] % 250 + 2}",
        "mac_address": "-".join(f"{b:02x}" for b in (0x00, 0x50, 0x56, *digest[6:9])),
        "tags": tags,
    }


def sample_hosts(count: int = _SAMPLE_SIZE) -> list[dict[str, object]]:
    """``count`` sample hosts, always the same (no ``cid``: it is the caller's).

    The first 37 are the built-in ones; more (100,000 to measure the emulator at a large
    customer's scale) follow the same pattern, each with its own ``device_id`` and hostname.

    Raises:
        ValueError: ``count`` is not a whole number of at least 0.
    """
    return list(iter_sample_hosts(count))


def iter_sample_hosts(count: int = _SAMPLE_SIZE) -> Iterator[dict[str, object]]:
    """The hosts of :func:`sample_hosts` one at a time: ``emulator.load`` takes any iterable,
    so loading 100,000 of them builds no list beside the emulator's own copies.

    Raises:
        ValueError: ``count`` is not a whole number of at least 0.
    """
    whole(count, "count", 0, meaning="a whole number of at least 0")
    return (_sample_host(index) for index in range(count))


def sample_hosts_collection() -> Collection:
    """The built-in ``hosts`` collection: Falcon's device query, scroll and entity endpoints."""
    return make_collection(
        HOSTS,
        query_path="/devices/queries/devices/v1",
        scroll_path="/devices/queries/devices-scroll/v1",
        entity_path="/devices/entities/devices/v2",
        id_field="device_id",
        records=sample_hosts(),
        pagination="offset",
        cid_field="cid",
        powered_by="device-api",
    )
