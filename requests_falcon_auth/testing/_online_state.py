"""Falcon's host online state: ``GET /devices/entities/online-state/v1?ids=``.

Each known host answers ``{"id", "state"}`` with ``state`` one of ``online``, ``offline`` or
``unknown``, as Falcon does; an id no host has gets a 404 error of its own (200 when some id was
found, 404 when none was, as the hosts' entity lookup answers). A host's state is derived from
its ``device_id`` alone (six in ten online, three offline, one unknown), so the same host shows
the same state in every run and whatever else a test changes about it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import Final

from ._api_call import ApiAnswer, ApiCall
from ._collections import HOSTS, Collection, answer_entities, make_collection

__all__ = ["ONLINE_STATE_PATH", "STATES", "host_state", "online_state"]

ONLINE_STATE_PATH: Final = "/devices/entities/online-state/v1"

STATES: Final = ("online", "offline", "unknown")


@functools.cache
def _no_hosts() -> Collection:
    return make_collection(
        HOSTS,
        query_path=None,
        entity_path=ONLINE_STATE_PATH,
        scroll_path=None,
        id_field="device_id",
        records=(),
        pagination="offset",
        cid_field=None,
        powered_by="device-api",
    )


def host_state(device_id: str) -> str:
    """The online state of the host ``device_id``."""
    tenth = hashlib.sha256(f"falcon-emulator online state {device_id}".encode()).digest()[0] % 10
    return "online" if tenth < 6 else "offline" if tenth < 9 else "unknown"


def online_state(call: ApiCall, hosts: Collection | None) -> ApiAnswer:
    """The online state of each host ``ids`` names, among ``hosts`` (None: no hosts loaded)."""
    if hosts is None:
        hosts = _no_hosts()
    found = answer_entities(hosts, call)
    states = [
        {"id": record[hosts.id_field], "state": host_state(str(record[hosts.id_field]))}
        for record in found.resources
        if isinstance(record, Mapping)
    ]
    return ApiAnswer(found.status, states, found.errors)
