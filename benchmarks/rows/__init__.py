"""The benchmark rows, one module each, in table order.

Each module has ``NUMBER``, ``TITLE`` and ``run(lab, budget) -> Section``. :data:`ROWS` make the
main table (``requests`` and threads); :data:`HTTPX_ROWS` the second one, "httpx and asyncio",
whose columns are the httpx peers (:mod:`benchmarks.httpx_peers`).
"""

from __future__ import annotations

from . import (
    cli_token,
    cold_start,
    emulator_scale,
    falconpy_bridge,
    fleet,
    front_ends,
    host,
    httpx_cold_start,
    httpx_invalidation,
    httpx_loop_lag,
    httpx_overhead,
    httpx_rate_budget,
    invalidation,
    overhead,
    rate_budget,
    renewal,
    throughput,
)

__all__ = ["HTTPX_ROWS", "ROWS"]

ROWS = (
    overhead,
    cold_start,
    renewal,
    invalidation,
    fleet,
    throughput,
    host,
    front_ends,
    rate_budget,
    emulator_scale,
    falconpy_bridge,
    cli_token,
)
HTTPX_ROWS = (
    httpx_cold_start,
    httpx_invalidation,
    httpx_overhead,
    httpx_loop_lag,
    httpx_rate_budget,
)
