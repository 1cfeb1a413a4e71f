"""Timing warm callers in interleaved rounds: rows 1, 6 and 9, written once.

Each of those rows warms every library first (its token fetched, so no fetch is timed), then
times them round after round, rotating the order so that no library always goes first; on shared
cores noise only ever adds time, so each library's fastest round counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

from ..peers import Outcome
from ..report import Cell, ratio

__all__ = ["against_floor", "check_warm", "per_request", "rotations", "time_calls"]

T = TypeVar("T")


def check_warm(what: str, outcome: Outcome) -> None:
    """Raises unless the warming call (the one that fetched the token) answered 200."""
    if outcome != 200:
        raise RuntimeError(f"{what} could not be warmed: {outcome}")


def rotations(names: Sequence[T], rounds: int) -> Iterator[list[T]]:
    """``names`` once a round, each round starting one further along."""
    for number in range(rounds):
        shift = number % len(names)
        yield [*names[shift:], *names[:shift]]


def time_calls(call: Callable[[], Outcome], calls: int, what: str) -> float:
    """The seconds ``calls`` calls of ``call`` take; raises if any did not answer 200.

    Args:
        call: one request.
        calls: how many to make, one after another.
        what: the calls, in the error (``in-process requests``).
    """
    started = time.perf_counter()
    failed = sum(call() != 200 for _ in range(calls))
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{failed} of {calls} {what} failed")
    return elapsed


def per_request(seconds: float, reference: float, *, difference: bool = True) -> str:
    """Seconds per request in µs against a reference's: ``12 µs (1.50x, +4 µs)``.

    Args:
        seconds: the library's.
        reference: what it is compared with.
        difference: add the difference in µs (not for the reference itself).
    """
    text = f"{seconds * 1e6:.0f} µs ({ratio(seconds, reference)}"
    if difference:
        text += f", {(seconds - reference) * 1e6:+.0f} µs"
    return text + ")"


def against_floor(best: Mapping[str, float], names: Iterable[str], floor: str) -> dict[str, Cell]:
    """A cell for each of ``names``: its best seconds per request against the floor's."""
    return {
        name: Cell(per_request(best[name], best[floor], difference=name != floor)) for name in names
    }
