"""What the two cold-start rows (2 on threads, 7 on asyncio tasks) count and print, written once.

Both release N callers together against an emulator whose token answers are slow, and report
each library's token requests, failed calls and the time to the last answer in one shape, so
that the two tables read alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..budget import Budget
from ..peers import Outcome, succeeded
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, count

__all__ = ["cold_cell", "cold_lines", "cold_measure"]


def cold_lines(
    lab: Lab,
    budget: Budget,
    counts: Sequence[int],
    line: Callable[[RemoteEmulator, int, bool], Row],
) -> list[Row]:
    """``line(emulator, callers, first)`` for each count of callers, in order.

    Every trial runs on one emulator whose token answers take ``budget.cold_token_delay`` s, so
    that a fetch is still in flight when the other callers arrive. ``first`` is true for the
    first count, whose line carries the row's footnotes.
    """
    with lab.emulator() as emulator:
        emulator.delay_token_requests(budget.cold_token_delay)
        return [line(emulator, callers, callers == counts[0]) for callers in counts]


def cold_cell(
    token_requests: int,
    answers: Sequence[tuple[Outcome, float]],
    released: float,
    *,
    name_failures: bool,
) -> Cell:
    """One library's cold start: ``3 (0.12 s)``, or ``3, 2 failed (0.12 s)``.

    Args:
        token_requests: what the emulator counted during the trial.
        answers: each caller's outcome and the ``perf_counter`` reading when it came.
        released: the ``perf_counter`` reading when the callers were released.
        name_failures: say what the failed calls ended with, ``2 failed (ReadTimeout)``.
    """
    text = count(token_requests)
    failed = [outcome for outcome, _ in answers if not succeeded(outcome)]
    if failed:
        text += f", {count(len(failed))} failed"
        if name_failures:
            text += f" ({', '.join(sorted({str(outcome) for outcome in failed}))})"
    seconds = max(end for _, end in answers) - released
    return Cell(f"{text} ({seconds:.2f} s)")


def cold_measure(callers: int, noun: str, *, where: str = "", note: str | None = None) -> Cell:
    """The measure cell: ``token requests when 8 threads start cold (time to the last answer)``.

    Args:
        callers: how many started together.
        noun: what they are, singular (``thread``, ``task``).
        where: said after "cold" (`` on one event loop``).
        note: the footnote key, on the row's first line only.
    """
    who = f"1 {noun} starts" if callers == 1 else f"{callers} {noun}s start"
    return Cell(
        f"token requests when {who} cold{where} (time to the last answer)",
        (note,) if note is not None else (),
    )
