"""Row 4: every token is invalidated, twice, while 64 threads are mid-flight (secret resets).

The threads share one warm object per library and each makes a fixed number of calls; when a
third of all calls are done, and again at two thirds, the thread that completes that call sets
an event, and the row invalidates every token in the emulator while the others keep calling.
Falcon's budgets are on: past 15 calls a minute with a bad token, the API answers 429
(``X-Ratelimit-Limit: 15``) instead of 401. Counted: token requests after the first
invalidation, and user calls that did not end in a 200.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Final

from ..budget import Budget
from ..peers import OURS, Caller, Outcome, PeerOptions, make_peer, succeeded
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section
from ._notes import STATIC_NO_TOKEN_LOGIC
from ._storm import StormResult, storm_cells
from ._threads import together

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "4"
TITLE: Final = "invalidation storm"

MEASURED: Final = (OURS, "falconpy", "requests-auth", "authlib")
_WAIT: Final = 300.0

Sample = tuple[float, Outcome]  # ended, outcome


def _caller_work(
    calls: int, triggers: dict[int, threading.Event]
) -> Callable[[Caller], list[Sample]]:
    done = itertools.count(1)  # next() on it is atomic under the GIL

    def work(caller: Caller) -> list[Sample]:
        samples: list[Sample] = []
        for _ in range(calls):
            outcome = caller.get()
            samples.append((time.perf_counter(), outcome))
            trigger = triggers.get(next(done))
            if trigger is not None:
                trigger.set()
        return samples

    return work


def _storm(emulator: RemoteEmulator, name: str, threads: int, calls: int) -> StormResult:
    total = threads * calls
    triggers = {total // 3: threading.Event(), 2 * total // 3: threading.Event()}
    work = _caller_work(calls, triggers)
    with make_peer(name, emulator.new_target(), PeerOptions(threads=threads)) as peer:
        callers = [peer.caller() for _ in range(threads)]
        warm = callers[0].get()
        if not succeeded(warm):
            raise RuntimeError(f"{name} could not fetch its first token: {warm}")
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
    # Failures are reported against the calls that ended after the invalidation was sent.
    after = sum(ended > sent for ended, _ in samples)
    return StormResult.of(spent.token_requests, [outcome for _, outcome in samples], after)


def run(lab: Lab, budget: Budget) -> Section:
    """One storm per library, each with a fresh API client."""
    threads, calls = budget.storm_threads, budget.storm_calls
    with lab.emulator() as emulator:
        results = {name: _storm(emulator, name, threads, calls) for name in MEASURED}
    tokens, failed = storm_cells(results, STATIC_NO_TOKEN_LOGIC[0])
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell(
                    f"token requests after every token is invalidated twice, {threads} "
                    "threads mid-flight, Falcon's bad-token budget on",
                    ("storm-method", "rate-limits"),
                ),
                tokens,
            ),
            Row(
                NUMBER,
                Cell("failed calls of those that ended after the first invalidation"),
                failed,
            ),
        ],
        notes={
            "storm-method": (
                f"{threads} threads share one warm object per library and make {calls} calls "
                "each; when a third of all calls are done, and again at two thirds, "
                "`invalidate_all_tokens()` (as after a secret reset). Only this library drops "
                "a token the API rejects and retries once; the others keep sending the dead "
                "token until it would have expired (30 minutes on Falcon)."
            ),
            "rate-limits": (
                "Every row runs the emulator with Falcon's rate budgets on: 300 token requests "
                "a minute per IP, 6,000 API calls a minute per customer, and 15 calls a minute "
                "per IP with a missing or bad token, past which the API answers 429 with "
                "`X-Ratelimit-Limit: 15` instead of 401. This library reads that 429 as a "
                "rejected token (one fresh token, one re-send), as it reads a 401; the peers' "
                "calls past the 15th fail with 429. Any other 429 is the caller's."
            ),
            STATIC_NO_TOKEN_LOGIC[0]: STATIC_NO_TOKEN_LOGIC[1],
        },
    )
