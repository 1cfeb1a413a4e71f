"""The benchmark rows, one module each, in table order.

Each module has ``NUMBER``, ``TITLE`` and ``run(lab, budget) -> Section``.
"""

from __future__ import annotations

from . import cold_start, fleet, invalidation, overhead, renewal, throughput

__all__ = ["ROWS"]

ROWS = (overhead, cold_start, renewal, invalidation, fleet, throughput)
