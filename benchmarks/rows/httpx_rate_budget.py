"""Row 14: one account's rate budget, spent by asyncio tasks on one event loop.

The asyncio twin of row 13. The emulator's budget is scaled down as there
(:data:`~benchmarks.rows.rate_budget.LIMITS`), and many tasks share one warm
``httpx.AsyncClient`` per library on one event loop, each calling as fast as it can for a fixed
number of windows, all released at once. A ticker task on the same loop, as in row 10, notes how
much each of its short sleeps overran: an auth that waited out a 429 with a blocking sleep, or
looked in a shared store on the loop, would stop every task for that long. Each contender runs
on a fresh API client (a CID of its own) and event loop, one after another: this library waiting
out the budget (its default), and failing fast (``rate_limit_wait=0``); httpx-auth, authlib and
a static header, which hand every 429 to the caller.

Four measures, from the tasks' outcomes, the emulator's counters and the ticker: calls that did
not end in a 200, the 429 answers the gateway sent per call it served, the share of the budget
the calls served used, and how long the loop lagged after the opening second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ..budget import Budget
from ..httpx_peers import STATIC, HttpxOptions, HttpxPeer, httpx_peer
from ..peers import OURS, succeeded
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section, count
from ._tasks import together
from ._ticker import ticking
from .rate_budget import BACKOFF, LIMITS

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "14"
TITLE: Final = "httpx: one account's rate budget, asyncio tasks"

FAIL_FAST: Final = "requests-falcon-auth, rate_limit_wait=0"
# Contender -> (its column's peer, how it is set up). This library is told the emulator's
# window, as its README says to do for a scaled-down budget.
CONTENDERS: Final = {
    OURS: (OURS, HttpxOptions(rate_limit_window=LIMITS.window)),
    FAIL_FAST: (OURS, HttpxOptions(rate_limit_wait=0.0, rate_limit_window=LIMITS.window)),
    "httpx-auth": ("httpx-auth", HttpxOptions()),
    "authlib": ("authlib", HttpxOptions()),
    STATIC: (STATIC, HttpxOptions()),
}
# Seconds after the release in which every task makes its first calls at once: the loop's own
# busiest stretch, whatever the auth, reported apart from the rest of the run.
_OPENING: Final = 1.0
_LAG_GOAL: Final = 0.005  # seconds a tick may overrun


@dataclass(frozen=True)
class _Result:
    outcomes: dict[str, int]  # outcome (a status or an exception's name) -> calls
    served: int  # calls the gateway answered 200
    answered_429: int  # 429 answers the gateway sent, re-sends included
    elapsed: float  # seconds from the release to the last task's end
    worst_lag: float  # seconds: the most a tick overlapping the run after the opening overran
    p99_lag: float  # the 99th percentile of those ticks' overruns
    slow_ticks: int  # those ticks that overran more than _LAG_GOAL
    opening_lag: float  # the most a tick overlapping the opening overran
    warnings: int  # WARNING records this library logged

    @property
    def calls(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> dict[str, int]:
        return {name: n for name, n in self.outcomes.items() if name != "200"}

    @property
    def answered_429_share(self) -> float:
        return self.answered_429 / self.served if self.served else float("inf")

    @property
    def budget_used(self) -> float:
        return self.served / (LIMITS.api_per_cid * self.elapsed / LIMITS.window)


class _WarningCount(logging.Handler):
    """Counts the library's warnings (one per 429 it hands back) instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


def _caller(peer: HttpxPeer, seconds: float) -> Callable[[int], Awaitable[Counter[str]]]:
    deadline: float | None = None

    async def call_until(_: int) -> Counter[str]:
        """One task: calls until the deadline, waiting ``BACKOFF`` after each failed call."""
        nonlocal deadline
        if deadline is None:  # the first task released: the run begins
            deadline = time.perf_counter() + seconds
        outcomes: Counter[str] = Counter()
        while time.perf_counter() < deadline:
            outcome = await peer.get()
            outcomes[str(outcome)] += 1
            if not succeeded(outcome):
                await asyncio.sleep(max(0.0, min(BACKOFF, deadline - time.perf_counter())))
        return outcomes

    return call_until


async def _trial(
    emulator: RemoteEmulator, contender: str, tasks: int, seconds: float, tick: float
) -> _Result:
    name, options = CONTENDERS[contender]
    async with httpx_peer(name, emulator.new_target(), options) as peer:
        warm = await peer.get()
        if not succeeded(warm):
            raise RuntimeError(f"{contender} could not make its first call: {warm}")
        async with ticking(tick) as gaps:
            before = emulator.tally()
            per_task, released = await together(_caller(peer, seconds), range(tasks))
            ended = time.perf_counter()
        spent = emulator.tally() - before
    outcomes: Counter[str] = Counter()
    for counted in per_task:
        outcomes.update(counted)
    settled = released + _OPENING
    overruns = sorted(
        end - began - tick for began, end in gaps if end >= settled and began <= ended
    )
    opening = [end - began - tick for began, end in gaps if end >= released and began < settled]
    return _Result(
        outcomes=dict(outcomes),
        served=spent.api_ok,
        answered_429=spent.api_429,
        elapsed=ended - released,
        worst_lag=overruns[-1],
        p99_lag=overruns[int(0.99 * (len(overruns) - 1))],
        slow_ticks=sum(overrun > _LAG_GOAL for overrun in overruns),
        opening_lag=max(opening),
        warnings=0,
    )


def _contend(
    emulator: RemoteEmulator, contender: str, tasks: int, seconds: float, tick: float
) -> _Result:
    """One trial on a fresh event loop, the library's warnings counted, not printed."""
    warnings = _WarningCount()
    logger = logging.getLogger("requests_falcon_auth")
    logger.addHandler(warnings)
    # The benchmark's own heap (every library imported, the earlier rows' leftovers) is left
    # out of the collector's full passes: one took 60-170 ms here, a pause of the harness's.
    gc.collect()
    gc.freeze()
    try:
        result = asyncio.run(_trial(emulator, contender, tasks, seconds, tick))
    finally:
        gc.unfreeze()
        logger.removeHandler(warnings)
    return dataclasses.replace(result, warnings=warnings.records)


def _failed(result: _Result) -> str:
    failed = result.failed
    text = f"{count(sum(failed.values()))} of {count(result.calls)}"
    if set(failed) - {"429"}:
        text += " (" + ", ".join(f"{n:,} {name}" for name, n in sorted(failed.items())) + ")"
    return text


def _answered_429(result: _Result) -> str:
    return f"{result.answered_429_share * 100:.1f} %"


def _used(result: _Result) -> str:
    return f"{result.budget_used * 100:.0f} %"


def _lag(result: _Result) -> str:
    return (
        f"{result.worst_lag * 1e3:,.1f} ms, {count(result.slow_ticks)} ticks over "
        f"{_LAG_GOAL * 1e3:g} ms, p99 {result.p99_lag * 1e3:,.1f} ms (first second "
        f"{result.opening_lag * 1e3:,.0f} ms)"
    )


def _cells(results: dict[str, _Result], text: Callable[[_Result], str]) -> dict[str, Cell]:
    return {
        OURS: Cell(
            f"{text(results[OURS])} waiting (default) · {text(results[FAIL_FAST])} with "
            "`rate_limit_wait=0`",
            ("httpx-rate-ours",),
        ),
        "httpx-auth": Cell(text(results["httpx-auth"]), ("httpx-rate-peers",)),
        "authlib": Cell(text(results["authlib"]), ("httpx-rate-peers",)),
        STATIC: Cell(text(results[STATIC]), ("httpx-rate-static",)),
    }


def run(lab: Lab, budget: Budget) -> Section:
    """Each contender on one account's budget, one after another, each on a fresh loop."""
    tasks, tick = budget.httpx_rate_tasks, budget.loop_lag_tick
    seconds = budget.httpx_rate_windows * LIMITS.window
    with lab.emulator(rate_limits=LIMITS) as emulator:
        results = {
            contender: _contend(emulator, contender, tasks, seconds, tick)
            for contender in CONTENDERS
        }
    fail_fast = results[FAIL_FAST]
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell(
                    f"calls that failed (not 200) as the tasks saw them (goal 0), {tasks} "
                    "asyncio tasks on one event loop, one account",
                    ("httpx-rate-method", "httpx-rate-budgets"),
                ),
                _cells(results, _failed),
            ),
            Row(
                NUMBER,
                Cell("429 answers the gateway sent, % of calls it served (goal ≤ 5 %)"),
                _cells(results, _answered_429),
            ),
            Row(
                NUMBER,
                Cell("share of the account's budget used (goal ≥ 90 %)", ("httpx-rate-used",)),
                _cells(results, _used),
            ),
            Row(
                NUMBER,
                Cell(
                    "the event loop's worst lag over the run after its first second (goal "
                    f"< {_LAG_GOAL * 1e3:g} ms), the ticks that lagged more, and the 99th "
                    f"percentile ({tick * 1e3:g} ms ticks)",
                    ("httpx-rate-lag",),
                ),
                _cells(results, _lag),
            ),
        ],
        notes={
            "httpx-rate-method": (
                f"{tasks} asyncio tasks on one event loop share one warm `httpx.AsyncClient` "
                "per library (its first call made before the run), all on one API client (one "
                "CID); each task calls `GET /devices/queries/devices/v1` as fast as it can for "
                f"{budget.httpx_rate_windows} windows ({seconds:g} s), all released by one "
                "`asyncio.Event`. Each contender runs on an API client of its own (a full "
                "budget) and a fresh event loop, one after another. After a call that failed "
                f"(not 200) the task waits {BACKOFF:g} s (`await asyncio.sleep`), as a sane "
                "caller would and as row 13's threads do. Failures are counted by the tasks; "
                "429 answers (re-sends included) and calls served (answered 200) by the "
                "emulator."
            ),
            "httpx-rate-budgets": (
                "The emulator's rate budgets are ON for this row and scaled down as in row 13: "
                f"{LIMITS.api_per_cid} calls per CID per {LIMITS.window:g} s sliding window "
                "(Falcon: 6,000 per 60 s), so a few windows pass in about a minute; this "
                f"library is told the window (`FalconAuth(rate_limit_window={LIMITS.window:g})`),"
                " which spaces its calls while the budget is nearly spent. "
                "`X-Ratelimit-Retryafter` is a whole epoch second (rounded up): a client that "
                "waits for it idles up to 1 s past the slot that freed."
            ),
            "httpx-rate-ours": (
                "This library two ways, one run each: `FalconHttpxAuth(FalconAuth(..., "
                f"rate_limit_window={LIMITS.window:g}))` with `rate_limit_wait` at its default "
                "(it `await`s the account's cooldown, shared by the tasks, and re-sends), and "
                "with `rate_limit_wait=0` (it returns each 429 at once; the task backs off "
                f"{BACKOFF:g} s), as a caller that would rather fail fast sets it up. Failing "
                f"fast, it logged {fail_fast.warnings:,} WARNINGs, one per 429 it returned "
                "(counted by the benchmark, not printed). The table has one column per library, "
                "so the two share this one."
            ),
            "httpx-rate-peers": (
                f"No handling of 429: httpx hands it to the task, which backs off {BACKOFF:g} s."
            ),
            "httpx-rate-static": (
                "A reference: plain httpx with a token fetched by hand, no auth logic at all; "
                f"its task backs off {BACKOFF:g} s after a 429, as the peers' do."
            ),
            "httpx-rate-used": (
                "Calls served / (budget x elapsed / window), elapsed from the release to the "
                "last task's end (a call in flight at the deadline finishes), as in row 13; the "
                "budget starts full (less the warm call), so a client can pass 100 % slightly."
            ),
            "httpx-rate-lag": (
                f"A ticker task on the same loop runs `await asyncio.sleep({tick})` in a loop, "
                "as in row 10; the figures are the most any sleep overlapping the run overran "
                f"{tick * 1e3:g} ms, how many overran it by more than {_LAG_GOAL * 1e3:g} ms, "
                f"and the 99th percentile, from {_OPENING:g} s after the release to the end "
                "(about a thousand ticks a second). The first second is shown apart: there all "
                f"{tasks} tasks start their calls in the same turns of the loop, whatever the "
                "auth (the static header shows what that costs on this machine). A wait for "
                "the budget with a blocking sleep, or a blocking look in a shared store, would "
                "stop every task on the loop for as long; so, for a moment, do many tasks made "
                f"ready in one turn: the peers' tasks, backing off {BACKOFF:g} s after the same "
                "burst of 429s, wake together each second. Before each trial the benchmark's "
                "own heap is frozen (`gc.freeze()`), so that the collector's full passes over "
                "it (60-170 ms here) do not land in one trial by chance; the two shared cores "
                "also run other work, and a worst case over a minute can be a moment the "
                "process was not scheduled."
            ),
        },
    )
