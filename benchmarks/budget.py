"""How much work each row does: the full run and ``--quick``.

Every loop of every row is bounded by these counts (and the renewal row, the only one that
lets real time pass, by its cycles of a few seconds), so a run ends on its own: the full one in
a few minutes on two shared cores, the quick one in about one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Budget"]


@dataclass(frozen=True)
class Budget:
    """Counts and durations per row.

    Attributes:
        overhead_requests: requests per library per round (row 1).
        overhead_rounds: interleaved rounds; the fastest round counts (row 1).
        cold_threads: thread counts sending their first request together (row 2).
        cold_token_delay: seconds each token answer takes in row 2, so that a fetch is still
            in flight when the other threads arrive (a real one takes 0.1-0.5 s).
        renewal_threads: threads calling at a steady pace (row 3).
        renewal_pace: calls a second each of them starts (row 3); all threads together stay
            under Falcon's 6,000 calls a minute per customer over the run.
        renewal_cycles: renewals the run spans (row 3).
        renewal_cadence: seconds a token is used before its renewal is due (row 3).
        renewal_lead: seconds before expiry renewal starts; at least 120 for falconpy.
        renewal_token_delay: seconds each token answer takes in row 3.
        storm_threads: threads in flight when every token is invalidated (row 4).
        storm_calls: calls per thread (row 4).
        fleet_processes: fleet sizes (row 5).
        fleet_lifetimes: token lifetimes stepped through on the shared clock (row 5).
        fleet_calls: calls per process per lifetime (row 5).
        throughput_requests: GETs per library (row 6).
        throughput_rounds: interleaved rounds they are split into; the fastest counts.
        httpx_cold_tasks: asyncio task counts sending their first request together (row 7);
            each token answer takes ``cold_token_delay``.
        httpx_storm_tasks: asyncio tasks in flight when every token is invalidated (row 8).
        httpx_storm_calls: calls per task (row 8).
        httpx_overhead_requests: requests per library per round, httpx clients (row 9).
        httpx_overhead_rounds: interleaved rounds; the fastest round counts (row 9).
        loop_lag_token_delay: seconds each token answer takes while the event loop's lag is
            measured (row 10); a real one takes 0.1-0.5 s.
        loop_lag_tick: seconds the ticker task sleeps between its readings (row 10).
        host_runs: ``falcon-auth token`` runs one after another (row 11).
        host_processes: processes on one host starting cold together (row 11).
        rate_processes: processes calling on one account's scaled-down rate budget (row 13).
        rate_threads: threads per process calling as fast as they can (row 13).
        rate_windows: rate windows each contender calls for (row 13); the budget starts full,
            so the first window is a burst and the later ones show the steady state.
        httpx_rate_tasks: asyncio tasks on one event loop calling as fast as they can on one
            account's scaled-down rate budget (row 14).
        httpx_rate_windows: rate windows each contender calls for (row 14), as ``rate_windows``.
    """

    overhead_requests: int
    overhead_rounds: int
    cold_threads: tuple[int, ...]
    cold_token_delay: float
    renewal_threads: int
    renewal_pace: float
    renewal_cycles: int
    renewal_cadence: float
    renewal_lead: float
    renewal_token_delay: float
    storm_threads: int
    storm_calls: int
    fleet_processes: tuple[int, ...]
    fleet_lifetimes: int
    fleet_calls: int
    throughput_requests: int
    throughput_rounds: int
    httpx_cold_tasks: tuple[int, ...]
    httpx_storm_tasks: int
    httpx_storm_calls: int
    httpx_overhead_requests: int
    httpx_overhead_rounds: int
    loop_lag_token_delay: float
    loop_lag_tick: float
    host_runs: int
    host_processes: int
    rate_processes: int
    rate_threads: int
    rate_windows: int
    httpx_rate_tasks: int
    httpx_rate_windows: int


FULL = Budget(
    overhead_requests=2000,
    overhead_rounds=7,
    cold_threads=(1, 8, 64),
    cold_token_delay=0.05,
    renewal_threads=32,
    renewal_pace=10.0,
    renewal_cycles=3,
    renewal_cadence=4.0,
    renewal_lead=2.0,
    renewal_token_delay=0.5,
    storm_threads=64,
    storm_calls=50,
    fleet_processes=(1, 4, 16),
    fleet_lifetimes=3,
    fleet_calls=20,
    throughput_requests=2500,
    throughput_rounds=5,
    httpx_cold_tasks=(1, 200),
    httpx_storm_tasks=64,
    httpx_storm_calls=50,
    httpx_overhead_requests=2000,
    httpx_overhead_rounds=7,
    loop_lag_token_delay=0.5,
    loop_lag_tick=0.001,
    host_runs=20,
    host_processes=8,
    rate_processes=4,
    rate_threads=4,
    rate_windows=5,
    httpx_rate_tasks=64,
    httpx_rate_windows=5,
)

QUICK = dataclasses.replace(
    FULL,
    overhead_requests=500,
    overhead_rounds=3,
    renewal_cycles=1,
    storm_calls=20,
    fleet_lifetimes=2,
    fleet_calls=5,
    throughput_requests=500,
    throughput_rounds=3,
    httpx_cold_tasks=(1, 50),
    httpx_storm_calls=20,
    httpx_overhead_requests=500,
    httpx_overhead_rounds=3,
    host_runs=10,
    rate_windows=2,
    httpx_rate_windows=2,
)
