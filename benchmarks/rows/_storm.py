"""What the two invalidation-storm rows (4 on threads, 8 on asyncio tasks) count and print.

Both invalidate every token twice while the callers are mid-flight and report, per library, the
token requests after the first invalidation and the calls that did not end in a 200 (with what
they ended with), in one shape so that the two tables read alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..peers import Outcome, succeeded
from ..report import NOT_APPLICABLE, Cell, count
from ._notes import STATIC

__all__ = ["StormResult", "storm_cells"]


@dataclass(frozen=True)
class StormResult:
    """One library's storm."""

    token_requests: int  # after the first invalidation
    failed: int
    counted: int  # the calls ``failed`` is reported against (the row says which)
    failures: tuple[str, ...]  # what the failed calls ended with

    @classmethod
    def of(cls, token_requests: int, outcomes: Sequence[Outcome], counted: int) -> StormResult:
        """The result of a storm whose calls ended with ``outcomes``."""
        failed = [outcome for outcome in outcomes if not succeeded(outcome)]
        failures = tuple(sorted({str(outcome) for outcome in failed}))
        return cls(token_requests, len(failed), counted, failures)


def storm_cells(
    results: Mapping[str, StormResult], static_note: str
) -> tuple[dict[str, Cell], dict[str, Cell]]:
    """The cells of the row's two lines: token requests, then failed calls.

    Args:
        results: each library's storm.
        static_note: the footnote of the static header's ``n/a`` (it has no token logic).
    """
    tokens = {name: Cell(count(result.token_requests)) for name, result in results.items()}
    failed = {}
    for name, result in results.items():
        text = f"{count(result.failed)} of {count(result.counted)}"
        if result.failures:
            text += f" ({', '.join(result.failures)})"
        failed[name] = Cell(text)
    for cells in (tokens, failed):
        cells[STATIC] = Cell(NOT_APPLICABLE, (static_note,))
    return tokens, failed
