"""Falcon's Sensor Download service: the caller's CCID and a catalogue of sample installers.

Every tenant sees the same installers (Windows, macOS and three Linux packages, each in a few
sensor versions), as on Falcon, where the installers are CrowdStrike's, not the customer's.
An installer's bytes are made up (a few kilobytes derived from its name and version) and its
``sha256``, which is its id, is the SHA-256 of those bytes, so a client that checks a download
against the id it asked for finds them equal. The queries take FQL, sort and offset paging
(:func:`._collections.answer_query`); entity and combined answers carry each version's fields
(``architectures`` from v2, ``is_lts`` from v3). Everything is derived from fixed labels and
2024 dates: no randomness, no wall clock.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Final, NamedTuple

from ._api_call import OCTET_STREAM, ApiAnswer, ApiCall, error_entry, refuse
from ._collections import Collection, answer_entities, answer_query, make_collection

__all__ = [
    "INSTALLERS",
    "POWERED_BY",
    "ccid",
    "combined_installers",
    "download_installer",
    "installer_bytes",
    "installer_entities",
    "query_installers",
    "sample_installers",
]

INSTALLERS: Final = "sensor_installers"
POWERED_BY: Final = "sensor-download"  # the emulator's name for the service (not recorded)
MAX_LIMIT: Final = 500  # "default: 100, max: 500" in the installer queries' swagger
_PAYLOAD_SIZE: Final = 4096
# The fields each API version does not have yet (gofalcon's domain.SensorInstallerV1..V3).
_NOT_YET: Final[Mapping[int, frozenset[str]]] = {
    1: frozenset({"architectures", "is_lts"}),
    2: frozenset({"is_lts"}),
}


class _Package(NamedTuple):
    platform: str
    os: str
    os_version: str
    file_type: str
    description: str
    name: str  # with {version} and {build}
    architectures: tuple[str, ...]


_PACKAGES: Final = (
    _Package(
        "windows", "Windows", "", "exe", "Falcon Sensor for Windows",
        "WindowsSensor.MaverickGyr.exe", ("x86_64", "arm64"),
    ),
    _Package(
        "mac", "macOS", "", "pkg", "Falcon Sensor for macOS",
        "FalconSensorMacOS.MaverickGyr.pkg", ("x86_64", "arm64"),
    ),
    _Package(
        "linux", "RHEL/CentOS/Oracle", "9", "rpm", "Falcon Sensor for Linux",
        "falcon-sensor-{version}-{build}.el9.x86_64.rpm", ("x86_64",),
    ),
    _Package(
        "linux", "Ubuntu", "16/18/20/22", "deb", "Falcon Sensor for Linux",
        "falcon-sensor_{version}-{build}_amd64.deb", ("x86_64",),
    ),
    _Package(
        "linux", "Amazon Linux", "2", "rpm", "Falcon Sensor for Linux",
        "falcon-sensor-{version}-{build}.amzn2.x86_64.rpm", ("x86_64",),
    ),
)  # fmt: skip
# (minor version, build, release date): newest first; the oldest is a long-term release.
_RELEASES: Final = (
    ("7.16", 18613, "2024-06-18T17:02:11Z"),
    ("7.15", 18514, "2024-05-14T16:40:27Z"),
    ("7.14", 16703, "2024-04-02T18:15:09Z"),
)


def _record(
    package: _Package, minor: str, build: int, released: str, lts: bool
) -> dict[str, object]:
    name = package.name.format(version=f"{minor}.0", build=build)
    version = f"{minor}.{build}"
    return {
        "name": name,
        "description": package.description,
        "platform": package.platform,
        "os": package.os,
        "os_version": package.os_version,
        "file_type": package.file_type,
        "file_size": _PAYLOAD_SIZE,
        "version": version,
        "release_date": released,
        "architectures": list(package.architectures),
        "is_lts": lts,
        "sha256": hashlib.sha256(_payload(name, version)).hexdigest(),
    }


def _payload(name: str, version: str) -> bytes:
    """An installer's made-up bytes: its label, repeated to the size its record states."""
    label = f"falcon-emulator sample installer {name} {version}\n".encode()
    return (label * (_PAYLOAD_SIZE // len(label) + 1))[:_PAYLOAD_SIZE]


@functools.cache
def _collection() -> Collection:
    records = [
        _record(package, minor, build, released, position == len(_RELEASES) - 1)
        for package in _PACKAGES
        for position, (minor, build, released) in enumerate(_RELEASES)
    ]
    return make_collection(
        INSTALLERS,
        query_path="/sensors/queries/installers/v1",
        entity_path="/sensors/entities/installers/v1",
        scroll_path=None,
        id_field="sha256",
        records=records,
        pagination="offset",
        cid_field=None,
        powered_by=POWERED_BY,
    )


@functools.cache
def _bytes_by_id() -> Mapping[str, bytes]:
    return {
        str(record["sha256"]): _payload(str(record["name"]), str(record["version"]))
        for record in _collection().records
    }


def sample_installers() -> list[dict[str, object]]:
    """The sample installers, as ``/sensors/entities/installers/v3`` serves them (copies)."""
    return [dict(record) for record in _collection().records]


def installer_bytes(sha256: str) -> bytes | None:
    """The bytes of the installer ``sha256``, or None for an id no installer has."""
    return _bytes_by_id().get(sha256)


def _version(path: str) -> int:
    """The API version a path ends in (``.../v2`` is 2)."""
    return int(path.rsplit("/v", 1)[1])


def _shown(record: Mapping[str, object], version: int) -> dict[str, object]:
    """A record with the fields of API ``version`` only."""
    hidden = _NOT_YET.get(version, frozenset())
    return {key: value for key, value in record.items() if key not in hidden}


def _limit_problem(call: ApiCall) -> str | None:
    raw = call.param("limit")
    if raw and raw.lstrip("+-").isdigit() and not 1 <= int(raw) <= MAX_LIMIT:
        return f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}"
    return None


def query_installers(call: ApiCall) -> ApiAnswer:
    """``GET /sensors/queries/installers/v{1,2,3}``: the ids matching ``filter``, paged."""
    problem = _limit_problem(call)
    return refuse(problem) if problem else answer_query(_collection(), call, "offset")


def combined_installers(call: ApiCall) -> ApiAnswer:
    """``GET /sensors/combined/installers/v{1,2,3}``: the records matching ``filter``, paged."""
    problem = _limit_problem(call)
    if problem:
        return refuse(problem)
    collection = _collection()
    page = answer_query(collection, call, "offset")
    if page.status != 200:
        return page
    version = _version(call.path)
    records = [
        _shown(collection.records[collection.index[str(ident)]], version)
        for ident in page.resources
    ]
    return ApiAnswer(200, records, meta=page.meta)


def installer_entities(call: ApiCall) -> ApiAnswer:
    """``GET /sensors/entities/installers/v{1,2,3}?ids=``: the records of the ids asked, a 404
    error for each unknown one."""
    found = answer_entities(_collection(), call)
    version = _version(call.path)
    shown = [_shown(record, version) for record in found.resources if isinstance(record, dict)]
    return ApiAnswer(found.status, shown, found.errors)


def download_installer(call: ApiCall) -> ApiAnswer:
    """``GET /sensors/entities/download-installer/v{1,2,3}?id=``: the installer's bytes."""
    ident = call.param("id") or ""
    if not ident:
        return refuse("id is required")
    payload = installer_bytes(ident)
    if payload is None:
        return ApiAnswer(404, errors=[error_entry(404, f"installer {ident!r} not found")])
    name = str(_collection().records[_collection().index[ident]]["name"])
    disposition = ("Content-Disposition", f'attachment; filename="{name}"')
    return ApiAnswer(200, body=payload, content_type=OCTET_STREAM, headers=[disposition])


def ccid(call: ApiCall) -> ApiAnswer:
    """``GET /sensors/queries/installers/ccid/v1``: the caller's CID with its checksum.

    A CCID is the CID in upper case, a hyphen and two hex digits (``<CID>-A1``); how Falcon
    computes the two digits is not public, so the emulator takes the first byte of the CID's
    SHA-256. Clients read the CID back by dropping the last three characters.
    """
    checksum = hashlib.sha256(call.cid.encode()).digest()[0]
    return ApiAnswer(200, [f"{call.cid.upper()}-{checksum:02X}"])
