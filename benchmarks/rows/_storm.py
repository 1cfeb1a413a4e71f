"""What the two invalidation-storm rows (4 on threads, 8 on asyncio tasks) count and print.

Both invalidate every token twice while the callers are mid-flight and report, per library, the
token requests after the first invalidation and the calls that did not end in a 200 (with what
they ended with), in one shape so that the two tables read alike.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from ..peers import Outcome, succeeded
from ..remote import RemoteEmulator
from ..report import NOT_APPLICABLE, Cell, count
from ._notes import STATIC
from ._threads import together

__all__ = ["StormResult", "storm_cells", "thread_storm"]

_WAIT: Final = 300.0

C = TypeVar("C")
Sample = tuple[float, Outcome]  # ended, outcome


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


def thread_storm(
    emulator: RemoteEmulator,
    name: str,
    callers: Sequence[C],
    calls: int,
    call: Callable[[C], Outcome],
) -> StormResult:
    """``calls`` calls per caller, a thread each, released together; when a third of all calls
    are done, and again at two thirds, the thread that completed that call sets an event and
    every token in the emulator is invalidated while the others keep calling.

    Token requests are counted from the first invalidation on, and failures are reported
    against the calls that ended after it was sent.
    """
    total = len(callers) * calls
    triggers = {total // 3: threading.Event(), 2 * total // 3: threading.Event()}
    done = itertools.count(1)  # next() on it is atomic under the GIL

    def work(caller: C) -> list[Sample]:
        samples: list[Sample] = []
        for _ in range(calls):
            outcome = call(caller)
            samples.append((time.perf_counter(), outcome))
            trigger = triggers.get(next(done))
            if trigger is not None:
                trigger.set()
        return samples

    box: list[list[list[Sample]]] = []
    runner = threading.Thread(target=lambda: box.append(together(work, callers)[0]))
    runner.start()
    before = sent = None
    for trigger in triggers.values():
        if not trigger.wait(_WAIT):
            raise TimeoutError(f"{name}: the calls stalled before an invalidation")
        if before is None:
            before, sent = emulator.tally(), time.perf_counter()
        emulator.invalidate_all_tokens()
    assert before is not None
    assert sent is not None
    runner.join(_WAIT)
    if runner.is_alive() or not box:
        raise RuntimeError(f"{name}: the calling threads did not finish")
    spent = emulator.tally() - before
    samples = [sample for per_thread in box[0] for sample in per_thread]
    after = sum(ended > sent for ended, _ in samples)
    return StormResult.of(spent.token_requests, [outcome for _, outcome in samples], after)


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
