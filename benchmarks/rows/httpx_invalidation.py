"""Row 8: every token is invalidated, twice, while 64 asyncio tasks are mid-flight.

The asyncio twin of row 4. The tasks share one warm ``httpx.AsyncClient`` per library on one
event loop and each makes a fixed number of calls; when a third of all calls are done, and again
at two thirds, the task that completes that call sets an event, and a controller task on the same
loop invalidates every token in the emulator (on a worker thread, so the loop goes on) while the
others keep calling. Falcon's budgets are on: past 15 calls a minute with a bad token, the API
answers 429 (``X-Ratelimit-Limit: 15``) instead of 401. Counted: token requests after the first
invalidation, and user calls that did not end in a 200, of all the calls.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Final

from ..budget import Budget
from ..httpx_peers import HttpxOptions, HttpxPeer, httpx_peer
from ..peers import OURS, Outcome, succeeded
from ..remote import Lab, RemoteEmulator, Tally
from ..report import Cell, Row, Section
from ._notes import HTTPX_NO_TOKEN_LOGIC
from ._storm import StormResult, storm_cells
from ._tasks import together

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "8"
TITLE: Final = "httpx: invalidation storm, asyncio tasks"

MEASURED: Final = (OURS, "httpx-auth", "authlib")
_WAIT: Final = 300.0


def _task_work(
    peer: HttpxPeer, calls: int, triggers: dict[int, asyncio.Event]
) -> Callable[[int], Awaitable[list[Outcome]]]:
    done = itertools.count(1)  # one loop: no two tasks run this at once

    async def work(_: int) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for _call in range(calls):
            outcomes.append(await peer.get())
            trigger = triggers.get(next(done))
            if trigger is not None:
                trigger.set()
        return outcomes

    return work


async def _storm(emulator: RemoteEmulator, name: str, tasks: int, calls: int) -> StormResult:
    total = tasks * calls
    triggers = {total // 3: asyncio.Event(), 2 * total // 3: asyncio.Event()}
    target = emulator.new_target()
    async with httpx_peer(name, target, HttpxOptions()) as peer:
        warm = await peer.get()
        if not succeeded(warm):
            raise RuntimeError(f"{name} could not fetch its first token: {warm}")
        callers = asyncio.create_task(together(_task_work(peer, calls, triggers), range(tasks)))
        before: Tally | None = None
        for trigger in triggers.values():
            try:
                await asyncio.wait_for(trigger.wait(), _WAIT)
            except asyncio.TimeoutError:
                callers.cancel()
                raise TimeoutError(f"{name}: the calls stalled before an invalidation") from None
            if before is None:
                before = await asyncio.to_thread(emulator.tally)
            await asyncio.to_thread(emulator.invalidate_all_tokens)
        assert before is not None
        per_task, _ = await asyncio.wait_for(callers, _WAIT)
        spent = await asyncio.to_thread(emulator.tally)
    outcomes = [outcome for outcomes in per_task for outcome in outcomes]
    # Failures are reported against all the calls.
    return StormResult.of((spent - before).token_requests, outcomes, len(outcomes))


def run(lab: Lab, budget: Budget) -> Section:
    """One storm per library, each with a fresh API client and event loop."""
    tasks, calls = budget.httpx_storm_tasks, budget.httpx_storm_calls
    with lab.emulator() as emulator:
        results = {name: asyncio.run(_storm(emulator, name, tasks, calls)) for name in MEASURED}
    tokens, failed = storm_cells(results, HTTPX_NO_TOKEN_LOGIC[0])
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell(
                    f"failed calls of all, every token invalidated twice, {tasks} tasks "
                    "mid-flight, Falcon's bad-token budget on",
                    ("httpx-storm-method", "httpx-rate-limits"),
                ),
                failed,
            ),
            Row(NUMBER, Cell("token requests after the first invalidation"), tokens),
        ],
        notes={
            "httpx-storm-method": (
                f"{tasks} asyncio tasks share one warm `httpx.AsyncClient` per library and make "
                f"{calls} calls each; when a third of all calls are done, and again at two "
                "thirds, a task on the same loop has the emulator `invalidate_all_tokens()` (as "
                "after a secret reset) on a worker thread while the others keep calling. Only "
                "this library drops a token the API rejects and retries once; the others keep "
                "sending the dead token until it would have expired (30 minutes on Falcon)."
            ),
            "httpx-rate-limits": (
                "As in every row, the emulator runs with Falcon's rate budgets on: 300 token "
                "requests a minute per IP, 6,000 API calls a minute per customer, and 15 calls a "
                "minute per IP with a missing or bad token, past which the API answers 429 with "
                "`X-Ratelimit-Limit: 15` instead of 401. This library reads that 429 as a "
                "rejected token (one fresh token, one re-send), as it reads a 401; the peers' "
                "calls past the 15th fail with 429. The trials run one after another on one "
                "emulator within the minute, so the peers find this IP's 15 already spent and "
                "their dead-token calls get 429 from the first (as in row 4)."
            ),
            HTTPX_NO_TOKEN_LOGIC[0]: HTTPX_NO_TOKEN_LOGIC[1],
        },
    )
