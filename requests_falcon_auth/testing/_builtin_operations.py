"""The operations the emulator answers with shapes of their own, and who answers each.

Most operations with no data get the empty answer of their kind (:mod:`._operation_answers`).
These do not: a host's online state, the caller's CCID, the sensor installers and their
downloads, the sample store, the event streams, ``GetConfigurationDetections``, Identity
Protection's GraphQL endpoint (GraphQL's shape, not the envelope), NGSIEM's LogScale query jobs
(LogScale's shape) and the Azure registration script (a download) each answer as Falcon does,
with data or state of their own. The table is keyed by method and the catalogue's path template
(``/sensors/entities/datafeed-actions/v1/{partition}``); a user's handler or collection on the
same path still comes first (:mod:`._data`). ``meta.powered_by`` names the service as the
emulator calls it where Falcon's own name is not recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

from . import _event_streams, _identity_graphql, _installers, _ngsiem_search, _sample_store
from ._api_call import ApiAnswer, ApiCall
from ._collections import Collection
from ._config_detections import configuration_detections
from ._cspm_scripts import AZURE_SCRIPT_PATH, azure_user_script
from ._identity_graphql import GRAPHQL_PATH, graphql
from ._online_state import ONLINE_STATE_PATH, online_state
from ._sample_store import SampleStore

__all__ = ["BUILTIN_OPERATIONS", "Builtin", "BuiltinContext", "builtin_operation"]


class BuiltinContext(NamedTuple):
    """What the built-in answers read besides the call: the hosts (a snapshot, None when the
    collection was removed) and the sample store."""

    hosts: Collection | None
    samples: SampleStore


class Builtin(NamedTuple):
    """One built-in answer and the ``meta.powered_by`` it answers with."""

    answer: Callable[[ApiCall, BuiltinContext], ApiAnswer]
    powered_by: str


def _plain(answer: Callable[[ApiCall], ApiAnswer], powered_by: str) -> Builtin:
    def answer_call(call: ApiCall, context: BuiltinContext) -> ApiAnswer:
        return answer(call)

    return Builtin(answer_call, powered_by)


def _hosts_online(call: ApiCall, context: BuiltinContext) -> ApiAnswer:
    return online_state(call, context.hosts)


def _upload(call: ApiCall, context: BuiltinContext) -> ApiAnswer:
    return context.samples.upload(call)


def _download(call: ApiCall, context: BuiltinContext) -> ApiAnswer:
    return context.samples.download(call)


def _delete(call: ApiCall, context: BuiltinContext) -> ApiAnswer:
    return context.samples.remove(call)


def _table() -> dict[tuple[str, str], Builtin]:
    sensors = _installers.POWERED_BY
    samples = _sample_store.POWERED_BY
    table = {
        ("GET", ONLINE_STATE_PATH): Builtin(_hosts_online, "device-api"),
        ("GET", "/sensors/queries/installers/ccid/v1"): _plain(_installers.ccid, sensors),
        ("GET", "/sensors/entities/datafeed/v2"): _plain(
            _event_streams.list_streams, _event_streams.POWERED_BY
        ),
        ("POST", "/sensors/entities/datafeed-actions/v1/{partition}"): _plain(
            _event_streams.refresh_stream, _event_streams.POWERED_BY
        ),
        ("GET", "/detects/entities/iom/v1"): _plain(configuration_detections, "cspm-registration"),
        ("GET", AZURE_SCRIPT_PATH): _plain(azure_user_script, "cspm-registration"),
        ("POST", GRAPHQL_PATH): _plain(graphql, _identity_graphql.POWERED_BY),
        ("POST", _ngsiem_search.QUERY_JOBS): _plain(
            _ngsiem_search.start_search, _ngsiem_search.POWERED_BY
        ),
        ("GET", _ngsiem_search.QUERY_JOBS + "/{id}"): _plain(
            _ngsiem_search.search_status, _ngsiem_search.POWERED_BY
        ),
    }
    for version in (1, 2, 3):
        table.update(
            {
                ("GET", f"/sensors/queries/installers/v{version}"): _plain(
                    _installers.query_installers, sensors
                ),
                ("GET", f"/sensors/combined/installers/v{version}"): _plain(
                    _installers.combined_installers, sensors
                ),
                ("GET", f"/sensors/entities/installers/v{version}"): _plain(
                    _installers.installer_entities, sensors
                ),
                ("GET", f"/sensors/entities/download-installer/v{version}"): _plain(
                    _installers.download_installer, sensors
                ),
            }
        )
    for version in (2, 3):
        path = f"/samples/entities/samples/v{version}"
        table[("POST", path)] = Builtin(_upload, samples)
        table[("GET", path)] = Builtin(_download, samples)
        table[("DELETE", path)] = Builtin(_delete, samples)
    return table


BUILTIN_OPERATIONS: Final[Mapping[tuple[str, str], Builtin]] = MappingProxyType(_table())


def builtin_operation(method: str, template: str) -> Builtin | None:
    """The built-in answer of ``method`` on the catalogue's path ``template``, or None."""
    return BUILTIN_OPERATIONS.get((method, template))
