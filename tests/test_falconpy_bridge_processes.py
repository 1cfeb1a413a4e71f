"""FalconPyAuth across processes: falconpy scripts that share one token through a store.

Eight real processes ("spawn", :mod:`falconpy_bridge_worker`), each with its own
``FalconPyAuth(FalconAuth(..., cache=store))`` on one FileTokenCache directory, one redis-server
or one 3-node Redis Cluster, are released together by a barrier; each builds
``Hosts(auth_object=...)`` (which logs in) and makes one call. The emulator holds the first token
answer until every process has passed the barrier, so the others arrive while it is in flight.
falconpy alone makes one token request per process (benchmarks/, row 16); here the store's lock
makes it one for all.

Synchronisation is by a barrier and the emulator's token gate, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from falconpy_bridge_worker import BridgeJob, ClusterSpec, bridge_worker
from fleet_worker import FileSpec, Processes, RedisSpec

from requests_falcon_auth.testing import FalconEmulator

CLIENT_ID = "bridge-fleet-client-7e2a"
SECRET = "bridge-fleet-secret-c40b19"
PROCESSES = 8


@pytest.fixture
def emulator() -> Iterator[FalconEmulator]:
    """us-1 only, Falcon's rate budgets on (the default)."""
    with FalconEmulator(regions=("us-1",)) as emu:
        emu.add_client(CLIENT_ID, SECRET)
        yield emu


@pytest.fixture
def processes() -> Iterator[Processes]:
    with Processes() as started:
        yield started


@pytest.fixture(params=["file", "redis", "cluster"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileSpec | RedisSpec | ClusterSpec:
    """Where the processes share their token: each process opens its own instance on it."""
    if request.param == "redis":
        return RedisSpec(request.getfixturevalue("redis_server").port)
    if request.param == "cluster":
        return ClusterSpec(request.getfixturevalue("redis_cluster").ports[0])
    return FileSpec(str(tmp_path / "tokens"))


def test_eight_cold_falconpy_processes_make_one_token_request(
    store: FileSpec | RedisSpec | ClusterSpec, emulator: FalconEmulator, processes: Processes
) -> None:
    start = processes.context.Barrier(PROCESSES + 1)  # the processes, and this test
    job = BridgeJob(store, emulator.clouds, CLIENT_ID, SECRET)
    with emulator.hold_token_requests() as gate:
        for _ in range(PROCESSES):
            processes.start(bridge_worker, job, start, processes.results)
        start.wait(120)  # every process is built; all of them go now
        assert gate.wait_for_held(1, timeout=120)  # one fetch, held while the others arrive
        gate.release()
        statuses = processes.collect(PROCESSES)
    assert statuses == [200] * PROCESSES
    counters = emulator.counters
    assert counters.token_requests == 1
    assert counters.tokens_issued == 1
    assert list(counters.calls_per_token.values()) == [PROCESSES]
    assert counters.revokes == 0  # a token the store shares is left live when a process ends
