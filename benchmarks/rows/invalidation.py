"""Row 4: every token is invalidated, twice, while 64 threads are mid-flight (secret resets).

The threads share one warm object per library and each makes a fixed number of calls; when a
third of all calls are done, and again at two thirds, the thread that completes that call sets
an event, and the row invalidates every token in the emulator while the others keep calling.
Falcon's budgets are on: past 15 calls a minute with a bad token, the API answers 429
(``X-Ratelimit-Limit: 15``) instead of 401. Counted: token requests after the first
invalidation, and user calls that did not end in a 200.
"""

from __future__ import annotations

from typing import Final

from ..budget import Budget
from ..peers import OURS, PeerOptions, make_peer, succeeded
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section
from ._notes import STATIC_NO_TOKEN_LOGIC
from ._storm import StormResult, storm_cells, thread_storm

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "4"
TITLE: Final = "invalidation storm"

MEASURED: Final = (OURS, "falconpy", "requests-auth", "authlib")


def _storm(emulator: RemoteEmulator, name: str, threads: int, calls: int) -> StormResult:
    with make_peer(name, emulator.new_target(), PeerOptions(threads=threads)) as peer:
        callers = [peer.caller() for _ in range(threads)]
        warm = callers[0].get()
        if not succeeded(warm):
            raise RuntimeError(f"{name} could not fetch its first token: {warm}")
        return thread_storm(emulator, name, callers, calls, lambda caller: caller.get())


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
