"""Row 5: 1, 4 and 16 worker processes behind one IP; token requests per token lifetime.

This library runs twice, with :class:`~requests_falcon_auth.redis.RedisTokenCache` (one token
for the fleet) and with its default in-memory cache (one per process). The emulator and every
worker read one :class:`~benchmarks.clock.SharedClock`, which the row steps one token lifetime
at a time between phases (Falcon's 1799 s tokens, 120 s renew window), so several lifetimes
take no waiting. The peers have no store shared between processes, and their clocks cannot be
stepped: they are measured over the first lifetime. A throwaway redis-server is started on a
free loopback port and stopped at the end. Workers come from a fork server that has imported
the libraries once, so a fleet starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from requests_falcon_auth.auth import DEFAULT_RENEW_WINDOW
from tests.redis_launcher import RedisServer

from .. import loopback
from ..budget import Budget
from ..clock import SharedClock
from ..peers import OURS
from ..remote import FALCON_TOKEN_TTL, Lab, RemoteEmulator
from ..report import NOT_APPLICABLE, Cell, Row, Section, count
from . import _fleet_worker
from ._fleet_worker import MEMORY, REDIS, FleetJob, FleetReport
from ._notes import STATIC

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "5"
TITLE: Final = "fleet"

PEER_NAMES: Final = ("falconpy", "requests-auth", "authlib")
# One step of the shared clock: from one fetch into the next renew window.
LIFETIME: Final = FALCON_TOKEN_TTL - int(DEFAULT_RENEW_WINDOW) + 1
_WAIT: Final = 300.0


# Each token answer takes this long, so that a call that waits for one shows.
TOKEN_DELAY: Final = 0.25


@dataclass(frozen=True)
class _Result:
    token_requests: int
    calls: int
    failed: int
    waited: int  # calls after the first lifetime that took a token answer's time


def _context() -> Any:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([_fleet_worker.__name__])
    return context


def _fleet(context: Any, emulator: RemoteEmulator, job: FleetJob, processes: int) -> _Result:
    barrier = context.Barrier(processes + 1, timeout=_WAIT)
    results = context.Queue()
    workers = [
        context.Process(target=_fleet_worker.work, args=(job, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    before = emulator.tally()
    for worker in workers:
        worker.start()
    try:
        for _ in range(job.lifetimes):
            barrier.wait()  # every worker is ready: go
            barrier.wait()  # every worker has made this lifetime's calls
            job.clock.advance(LIFETIME)
    except threading.BrokenBarrierError:
        pass  # a worker failed; its report says why
    reports: list[FleetReport] = [results.get(timeout=_WAIT) for _ in workers]
    for worker in workers:
        worker.join(_WAIT)
    results.close()
    spent = emulator.tally() - before
    for report in reports:
        loopback.record_refused(report.refused)
        if report.error is not None:
            raise RuntimeError(f"a {job.kind} worker failed: {report.error}")
    outcomes: Counter[str] = Counter()
    for report in reports:
        outcomes.update(report.outcomes)
    calls = sum(outcomes.values())
    waited = sum(report.waited for report in reports)
    return _Result(spent.token_requests, calls, calls - outcomes["200"], waited)


def _cell(result: _Result, lifetimes: int) -> str:
    text = count(round(result.token_requests / lifetimes, 1))
    if result.failed:
        text += f", {count(result.failed)} of {count(result.calls)} calls failed"
    return text


def run(lab: Lab, budget: Budget) -> Section:
    """Every fleet size, for both of this library's caches and each peer."""
    context = _context()
    clock = SharedClock.create()
    rows = []
    try:
        with lab.emulator(clock=clock) as emulator, RedisServer() as server:
            emulator.delay_token_requests(TOKEN_DELAY)
            for processes in budget.fleet_processes:
                per_kind: dict[str, _Result] = {}
                for kind in (REDIS, MEMORY, *PEER_NAMES):
                    ours = kind in (REDIS, MEMORY)
                    job = FleetJob(
                        kind=kind,
                        target=emulator.new_target(),
                        clock=clock,
                        redis_port=server.port if kind == REDIS else None,
                        lifetimes=budget.fleet_lifetimes if ours else 1,
                        calls=budget.fleet_calls,
                        slow=TOKEN_DELAY,
                    )
                    per_kind[kind] = _fleet(context, emulator, job, processes)
                lifetimes = budget.fleet_lifetimes
                cells = {
                    OURS: Cell(
                        f"{_cell(per_kind[REDIS], lifetimes)} with RedisTokenCache · "
                        f"{_cell(per_kind[MEMORY], lifetimes)} in memory"
                    ),
                    **{
                        name: Cell(_cell(per_kind[name], 1), ("fleet-peers",))
                        for name in PEER_NAMES
                    },
                    STATIC: Cell(NOT_APPLICABLE, ("fleet-static",)),
                }
                noun = "process" if processes == 1 else "processes"
                notes = ("fleet-method",) if processes == budget.fleet_processes[0] else ()
                measure = Cell(f"token requests per token lifetime, {processes} {noun}", notes)
                rows.append(Row(NUMBER, measure, cells))
                renewals = lifetimes - 1
                after_cold = count(processes * budget.fleet_calls * renewals)
                waits = Cell(
                    f"{count(per_kind[REDIS].waited)} of {after_cold} with RedisTokenCache · "
                    f"{count(per_kind[MEMORY].waited)} of {after_cold} in memory"
                )
                plural = "renewal" if renewals == 1 else "renewals"
                waits_measure = Cell(
                    f"calls that waited for a renewal, {processes} {noun}, {renewals} {plural}",
                    ("fleet-waits",) if processes == budget.fleet_processes[0] else (),
                )
                peer_cells = {name: Cell(NOT_APPLICABLE, ("fleet-peers",)) for name in PEER_NAMES}
                rows.append(
                    Row(
                        NUMBER,
                        waits_measure,
                        {
                            OURS: waits,
                            **peer_cells,
                            STATIC: Cell(NOT_APPLICABLE, ("fleet-static",)),
                        },
                    )
                )
    finally:
        clock.remove()
    return Section(
        rows=rows,
        notes={
            "fleet-method": (
                "Each process builds its own client and makes "
                f"{budget.fleet_calls} calls per lifetime. The emulator and every process "
                f"read one clock that the row steps by {LIFETIME} s (a 1799 s token less "
                f"the 120 s renew window, plus 1) between lifetimes: {budget.fleet_lifetimes}"
                " lifetimes, no waiting. A throwaway redis-server on loopback holds the "
                "shared token."
            ),
            "fleet-waits": (
                f"Every token answer takes {TOKEN_DELAY} s; a call after the first lifetime "
                "(the cold start) that takes that long waited for a token. At each step the "
                "fleet's token is inside its renew window: one process renews it in the "
                "background (under the Redis lock) while every process goes on with the "
                "current one, and picks up the new one from Redis. Before a step, each process "
                "lets a renewal in flight land (real lifetimes last 28 minutes)."
            ),
            "fleet-peers": (
                "No peer has a token store shared between processes: each process fetches "
                "its own, as this library's in-memory cache does. Their clocks cannot be "
                "stepped, so they are measured over the first lifetime only."
            ),
            "fleet-static": (
                "A static header is whatever token the fleet was handed: no token logic."
            ),
        },
    )
