"""Row 3: 32 threads call steadily across several renewals; who waits for a renewal?

The only row where real time passes, because what it measures is time: each library is set
to renew a few seconds after each fetch (the emulator issues short tokens; falconpy, which
clamps its renew window to at least 120 s, gets tokens that long plus the same few seconds),
and every token answer is delayed so a renewal is visibly in flight. A transport adapter on
the library's token session notes when each token request runs; each user request is then
"during a renewal" if its span overlaps one. The row counts the calls that waited as long as
a token answer takes, and compares the latency tails during renewals and outside them.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..budget import Budget
from ..peers import OURS, PEERS, Caller, Outcome, PeerOptions, make_peer, succeeded
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section, count, ratio
from ..transports import TokenCallLog
from ._notes import STATIC, STATIC_NO_TOKEN_LOGIC
from ._threads import together

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "3"
TITLE: Final = "renewal under load"

MEASURED: Final = (OURS, "falconpy", "requests-auth", "authlib")
_MAX_CALLS_PER_THREAD: Final = 100_000
_SETTLE: Final = 0.5  # seconds after the last renewal is due, for it to land

Sample = tuple[float, float, Outcome]  # started, ended, outcome


@dataclass(frozen=True)
class _Result:
    token_requests: int
    calls: int
    failed: int
    stalled: int  # calls that took at least one token answer's delay
    p99_during: float | None
    p99_outside: float
    max_during: float | None
    max_outside: float


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlaps(spans: list[tuple[float, float]], starts: list[float], sample: Sample) -> bool:
    """True if ``sample`` overlaps one of the disjoint, sorted ``spans``."""
    index = bisect.bisect_left(starts, sample[1]) - 1
    return index >= 0 and spans[index][1] > sample[0]


def _steady(deadline: float, pace: float) -> Callable[[Caller], list[Sample]]:
    """Each thread starts a call every ``1 / pace`` seconds (at once if it is behind)."""

    def work(caller: Caller) -> list[Sample]:
        samples: list[Sample] = []
        due = time.perf_counter()
        while len(samples) < _MAX_CALLS_PER_THREAD:
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # the load's pace, not synchronisation
            started = time.perf_counter()
            if started >= deadline:
                break
            outcome = caller.get()
            samples.append((started, time.perf_counter(), outcome))
            due += 1 / pace
        return samples

    return work


def _measure(lab: Lab, budget: Budget, name: str) -> _Result:
    lead = max(budget.renewal_lead, PEERS[name].min_renew_lead)
    log = TokenCallLog()
    options = PeerOptions(renew_lead=lead, threads=budget.renewal_threads, token_log=log)
    with lab.emulator(token_ttl=math.ceil(budget.renewal_cadence + lead)) as emulator:
        emulator.delay_token_requests(budget.renewal_token_delay)
        with make_peer(name, emulator.new_target(), options) as peer:
            callers = [peer.caller() for _ in range(budget.renewal_threads)]
            warm = callers[0].get()  # the first token, fetched before the clock starts
            if not succeeded(warm):
                raise RuntimeError(f"{name} could not fetch its first token: {warm}")
            warmed = time.perf_counter()
            before = emulator.tally()
            deadline = (
                warmed
                + budget.renewal_cycles * budget.renewal_cadence
                + budget.renewal_token_delay
                + _SETTLE
            )
            per_thread, _ = together(_steady(deadline, budget.renewal_pace), callers)
            spent = emulator.tally() - before
    samples: list[Sample] = [sample for samples in per_thread for sample in samples]
    spans = _merged(log.calls(since=warmed))
    starts = [start for start, _ in spans]
    during: list[float] = []
    outside: list[float] = []
    for sample in samples:
        latency = sample[1] - sample[0]
        (during if _overlaps(spans, starts, sample) else outside).append(latency)
    return _Result(
        token_requests=spent.token_requests,
        calls=len(samples),
        failed=sum(not succeeded(sample[2]) for sample in samples),
        stalled=sum(latency >= budget.renewal_token_delay for latency in during + outside),
        p99_during=_p99(during) if during else None,
        p99_outside=_p99(outside) if outside else math.nan,
        max_during=max(during) if during else None,
        max_outside=max(outside) if outside else math.nan,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def run(lab: Lab, budget: Budget) -> Section:
    """One run per library, ``budget.renewal_cycles`` renewals long."""
    results = {name: _measure(lab, budget, name) for name in MEASURED}
    cycles = budget.renewal_cycles
    delay = budget.renewal_token_delay
    tokens: dict[str, Cell] = {}
    stalls: dict[str, Cell] = {}
    tails: dict[str, Cell] = {}
    peaks: dict[str, Cell] = {}
    for name, result in results.items():
        text = count(result.token_requests)
        if result.failed:
            text += f", {count(result.failed)} of {count(result.calls)} calls failed"
        notes = ("requests-auth-queue",) if name == "requests-auth" else ()
        tokens[name] = Cell(text, notes)
        stalls[name] = Cell(f"{count(result.stalled)} of {count(result.calls)}")
        if result.p99_during is None or result.max_during is None:
            tails[name] = peaks[name] = Cell(NOT_APPLICABLE, ("no-overlap",))
            continue
        tails[name] = Cell(
            f"{ratio(result.p99_during, result.p99_outside)} "
            f"({_ms(result.p99_during)} vs {_ms(result.p99_outside)})"
        )
        peaks[name] = Cell(
            f"{ratio(result.max_during, result.max_outside)} "
            f"({result.max_during:.2f} s vs {result.max_outside:.2f} s)",
            ("renewing-call",) if name == OURS else (),
        )
    for cells in (tokens, stalls, tails, peaks):
        cells[STATIC] = Cell(NOT_APPLICABLE, (STATIC_NO_TOKEN_LOGIC[0],))
    threads = budget.renewal_threads
    due = "1 renewal due" if cycles == 1 else f"{cycles} renewals due"
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell(
                    f"token requests, {threads} threads calling for {due}",
                    ("renewal-method", "falconpy-window"),
                ),
                tokens,
            ),
            Row(NUMBER, Cell(f"calls that waited {delay} s or more (a token answer)"), stalls),
            Row(NUMBER, Cell("p99 latency while a renewal is in flight ÷ p99 outside"), tails),
            Row(NUMBER, Cell("slowest call while a renewal is in flight ÷ slowest outside"), peaks),
        ],
        notes={
            "renewal-method": (
                f"Each library renews {budget.renewal_cadence:.0f} s after each fetch "
                f"(FalconAuth `renew_window`, requests-auth `early_expiry`, authlib `leeway`: "
                f"{budget.renewal_lead:.0f} s before a "
                f"{budget.renewal_cadence + budget.renewal_lead:.0f} s token expires); every "
                f"token answer takes {delay} s. {threads} threads each start "
                f"{budget.renewal_pace:.0f} calls a second for {cycles} x "
                f"{budget.renewal_cadence:.0f} s, which keeps the run under Falcon's 6,000 "
                "calls a minute per customer (the emulator enforces it); a call is in flight "
                "during a renewal if it overlaps a token request (timed by a transport adapter "
                "on the library's token session). This library renews on a background thread "
                "while every caller keeps using the current token; falconpy and authlib let "
                "every thread that finds the token stale fetch and wait for its own answer."
            ),
            "falconpy-window": (
                "falconpy clamps `renew_window` to 120-1200 s, so its emulator issues "
                f"{budget.renewal_cadence + PEERS['falconpy'].min_renew_lead:.0f} s tokens: "
                f"it too renews {budget.renewal_cadence:.0f} s after each fetch."
            ),
            "requests-auth-queue": (
                "requests-auth drops an expiring token and queues every thread behind one "
                f"lock, each fetching in turn: {threads} x {delay} s per renewal, longer "
                "than the token's cadence, so fewer renewals fit in the run. Threads already "
                "through call at full speed meanwhile, so its p99 ratio depends on how much "
                "of the run the queue covers; its slowest call shows the stall."
            ),
            "renewing-call": (
                "No call waits for the token answer (the renewal runs on a thread of its own), "
                "so the slowest calls during and outside renewals are alike: thread scheduling "
                "on two shared cores."
            ),
            "no-overlap": "No call of this library overlapped a token request.",
            STATIC_NO_TOKEN_LOGIC[0]: STATIC_NO_TOKEN_LOGIC[1],
        },
    )
