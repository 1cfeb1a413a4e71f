"""Row 13: one account's rate budget, spent by processes and threads that all call at once.

Falcon gives each customer account (CID) a budget of API calls per sliding window; past it the
gateway answers 429 with ``X-Ratelimit-Retryafter``. Here the emulator's budget is scaled down
(:data:`LIMITS`) so that a few windows pass in about a minute, and several processes of several
threads, all on one API client, call as fast as they can for a fixed number of windows, starting
at one barrier. Each contender runs on a fresh API client (a CID of its own), one after another:
this library on a RedisTokenCache (a throwaway redis-server on loopback), on one FileTokenCache
directory, in memory, and with a per-call ``FalconRetry`` on the session; and falconpy.

Three measures, from the callers' outcomes and the emulator's counters: calls that failed with
429 as the callers saw them, the 429 answers the gateway sent per call it served, and the share
of the budget the calls served used.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from requests_falcon_auth.testing import RateLimits
from tests.redis_launcher import RedisServer

from .. import loopback
from ..budget import Budget
from ..peers import OURS
from ..remote import Lab, RemoteEmulator
from ..report import NOT_APPLICABLE, Cell, Row, Section, count
from . import _rate_worker
from ._notes import STATIC
from ._rate_worker import FILE, MEMORY, REDIS, RETRY, RateJob, RateReport

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "13"
TITLE: Final = "one account's rate budget"

# Falcon's 6,000 calls a minute per CID, scaled to 120 per 12 s. X-Ratelimit-Retryafter is a
# whole epoch second, so a client that waits for it idles up to 1 s past the freed slot: 8 % of a
# 12 s window at most (17 % of a 6 s one would hide a good client's use of the budget).
LIMITS: Final = RateLimits(api_per_cid=120, window=12.0)
# What a sane caller does after a failed call, when its library hands it the failure.
BACKOFF: Final = 1.0
KINDS: Final = (REDIS, FILE, MEMORY, RETRY, "falconpy")
_WAIT: Final = 300.0


@dataclass(frozen=True)
class _Result:
    calls: int
    failed_429: int
    failed_other: dict[str, int]  # outcome -> calls, for failures other than a 429 answer
    served: int  # calls the gateway answered 200
    answered_429: int  # 429 answers the gateway sent, retries included
    elapsed: float  # seconds from the barrier to the last thread's end

    @property
    def answered_429_share(self) -> float:
        return self.answered_429 / self.served if self.served else float("inf")

    @property
    def budget_used(self) -> float:
        return self.served / (LIMITS.api_per_cid * self.elapsed / LIMITS.window)


def _context() -> Any:
    """A fork server that has imported the worker once, so a contender's processes start in
    milliseconds (spawn where there is none)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([_rate_worker.__name__])
    return context


def _contend(context: Any, emulator: RemoteEmulator, job: RateJob, processes: int) -> _Result:
    barrier = context.Barrier(processes, timeout=_WAIT)
    results = context.Queue()
    workers = [
        context.Process(target=_rate_worker.work, args=(job, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    before = emulator.tally()
    for worker in workers:
        worker.start()
    reports: list[RateReport] = [results.get(timeout=_WAIT + job.seconds) for _ in workers]
    for worker in workers:
        worker.join(_WAIT)
    results.close()
    spent = emulator.tally() - before
    for report in reports:
        loopback.record_refused(report.refused)
        if report.error is not None:
            raise RuntimeError(f"a {job.kind} process failed: {report.error}")
    outcomes: Counter[str] = Counter()
    for report in reports:
        outcomes.update(report.outcomes)
    other = {name: n for name, n in outcomes.items() if name not in ("200", "429")}
    return _Result(
        calls=sum(outcomes.values()),
        failed_429=outcomes["429"],
        failed_other=other,
        served=spent.api_ok,
        answered_429=spent.api_429,
        elapsed=max(report.busy for report in reports),
    )


def _failed(result: _Result) -> str:
    text = f"{count(result.failed_429)} of {count(result.calls)}"
    if result.failed_other:
        others = ", ".join(f"{n:,} {name}" for name, n in sorted(result.failed_other.items()))
        text += f" (and {others})"
    return text


def _answered_429(result: _Result) -> str:
    return f"{result.answered_429_share * 100:.1f} %"


def _used(result: _Result) -> str:
    return f"{result.budget_used * 100:.0f} %"


def _ours(per_kind: dict[str, _Result], text: Callable[[_Result], str]) -> Cell:
    return Cell(
        f"{text(per_kind[REDIS])} with RedisTokenCache · {text(per_kind[FILE])} with "
        f"FileTokenCache · {text(per_kind[MEMORY])} in memory · {text(per_kind[RETRY])} with "
        "FalconRetry",
        ("rate-ours",),
    )


def run(lab: Lab, budget: Budget) -> Section:
    """Each contender on one account's budget, one after another."""
    context = _context()
    processes, threads = budget.rate_processes, budget.rate_threads
    seconds = budget.rate_windows * LIMITS.window
    per_kind: dict[str, _Result] = {}
    with lab.emulator(rate_limits=LIMITS) as emulator, RedisServer() as server:
        for kind in KINDS:
            with tempfile.TemporaryDirectory(prefix="falcon-bench-") as cache_dir:
                job = RateJob(
                    kind=kind,
                    target=emulator.new_target(),  # a CID of its own: a full budget
                    threads=threads,
                    seconds=seconds,
                    backoff=0.0 if kind == RETRY else BACKOFF,
                    window=LIMITS.window,
                    redis_port=server.port if kind == REDIS else None,
                    cache_dir=cache_dir if kind == FILE else None,
                )
                per_kind[kind] = _contend(context, emulator, job, processes)
    falconpy = per_kind["falconpy"]
    others = {name: Cell(NOT_APPLICABLE, ("rate-peers",)) for name in ("requests-auth", "authlib")}
    others[STATIC] = Cell(NOT_APPLICABLE, ("rate-peers",))

    rows = [
        Row(
            NUMBER,
            Cell(
                f"calls that failed with 429 as the caller saw them (goal 0), {processes} "
                f"processes of {threads} threads on one account",
                ("rate-method", "rate-budgets"),
            ),
            {
                OURS: _ours(per_kind, _failed),
                "falconpy": Cell(_failed(falconpy), ("rate-falconpy",)),
                **others,
            },
        ),
        Row(
            NUMBER,
            Cell("429 answers the gateway sent, % of calls it served (goal ≤ 5 %)"),
            {
                OURS: _ours(per_kind, _answered_429),
                "falconpy": Cell(_answered_429(falconpy)),
                **others,
            },
        ),
        Row(
            NUMBER,
            Cell("share of the account's budget used (goal ≥ 90 %)", ("rate-used",)),
            {OURS: _ours(per_kind, _used), "falconpy": Cell(_used(falconpy)), **others},
        ),
    ]
    return Section(
        rows=rows,
        notes={
            "rate-method": (
                f"{processes} processes of {threads} threads, all with one API client (one "
                "CID), each thread calling `GET /devices/queries/devices/v1` as fast as it can "
                f"for {budget.rate_windows} windows ({seconds:g} s), all released by one "
                "`multiprocessing` barrier. Each contender runs on an API client of its own "
                "(a full budget), one after another. After a call that failed (not 200) the "
                f"caller waits {BACKOFF:g} s, as a sane caller would; with FalconRetry it does "
                "not: the retry policy is its back-off. Failures are counted by the callers; "
                "429 answers (retries included) and calls served (answered 200) by the "
                "emulator."
            ),
            "rate-budgets": (
                "The emulator's rate budgets are ON for this row and scaled down: "
                f"{LIMITS.api_per_cid} calls per CID per {LIMITS.window:g} s sliding window "
                "(Falcon: 6,000 per 60 s), so a few windows pass in about a minute. "
                "`X-Ratelimit-Retryafter` is a whole epoch second (rounded up): a client that "
                "waits for it idles up to 1 s past the slot that freed, at most "
                f"{100 / LIMITS.window:.0f} % of a {LIMITS.window:g} s window (a 6 s one would "
                "lose up to 17 % to rounding alone). The per-IP budgets keep their counts over "
                f"the shorter window ({LIMITS.token_per_ip} token requests, "
                f"{LIMITS.bad_token_per_ip} bad-token calls); nothing here comes near them."
            ),
            "rate-ours": (
                "This library four ways, one run each: FalconAuth on a `RedisTokenCache` (a "
                "throwaway redis-server on loopback), on one `FileTokenCache` directory shared "
                "by the processes, on its in-memory cache (one per process), and per-call "
                "`HTTPAdapter(max_retries=FalconRetry())` on each thread's session (3 tries, "
                "honouring `X-Ratelimit-Retryafter`, at most 30 s of waits a call). "
                + f"FalconAuth at its default `rate_limit_wait` on Redis, on the file cache and "
                f"in memory, told the scaled window (`rate_limit_window={LIMITS.window:g}`); "
                "`rate_limit_wait=0` (it returns the 429 at once) under FalconRetry."
                + " The table has one column per library, so the four share this one."
            ),
            "rate-falconpy": (
                "`APIHarnessV2` shared by each process's threads, set up as in the header's "
                f"note; the caller backs off {BACKOFF:g} s after a failed call."
            ),
            "rate-used": (
                "Calls served / (budget x elapsed / window), elapsed from the barrier to the "
                "last thread's end (a call in flight at the deadline finishes). The budget "
                "starts full: the first window's calls go out at once, and calls in flight at the "
                "deadline can take the slots that free as it passes, so a client can pass "
                "100 % slightly."
            ),
            "rate-peers": "This row measures this library and falconpy only.",
        },
    )
