"""Row 7: N asyncio tasks send their first request at the same moment; how many token requests?

The asyncio twin of row 2. One ``httpx.AsyncClient`` per library, with its auth, is shared by
every task on one event loop; the tasks wait on one event and are released together. Each token
answer takes a little time (as across the internet), so a fetch is still in flight when the
other tasks arrive: a library without single flight then asks once per task. The emulator
counts the token requests. The static header's tasks, whose token was fetched by hand before,
show what the same burst of requests takes with no token to get.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

from ..budget import Budget
from ..httpx_peers import STATIC, HttpxOptions, httpx_peer
from ..peers import OURS, Outcome, succeeded
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section, count
from ._tasks import together

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "7"
TITLE: Final = "httpx: cold start, asyncio tasks"

MEASURED: Final = (OURS, "httpx-auth", "authlib", STATIC)


@dataclass(frozen=True)
class _Trial:
    token_requests: int
    failed: int
    failures: tuple[str, ...]
    seconds: float  # from the release until every task had its answer


async def _trial(emulator: RemoteEmulator, name: str, tasks: int) -> _Trial:
    target = emulator.new_target()
    async with httpx_peer(name, target, HttpxOptions()) as peer:

        async def first_call(_: int) -> tuple[Outcome, float]:
            outcome = await peer.get()
            return outcome, time.perf_counter()

        before = emulator.tally()
        answers, released = await together(first_call, range(tasks))
        spent = emulator.tally() - before
    failures = sorted({str(outcome) for outcome, _ in answers if not succeeded(outcome)})
    return _Trial(
        token_requests=spent.token_requests,
        failed=sum(not succeeded(outcome) for outcome, _ in answers),
        failures=tuple(failures),
        seconds=max(end for _, end in answers) - released,
    )


def _cell(trial: _Trial) -> Cell:
    text = count(trial.token_requests)
    if trial.failed:
        text += f", {count(trial.failed)} failed ({', '.join(trial.failures)})"
    return Cell(f"{text} ({trial.seconds:.2f} s)")


def run(lab: Lab, budget: Budget) -> Section:
    """One trial per library and task count, each with a fresh API client and event loop."""
    rows = []
    with lab.emulator() as emulator:
        emulator.delay_token_requests(budget.cold_token_delay)
        for tasks in budget.httpx_cold_tasks:
            cells = {name: _cell(asyncio.run(_trial(emulator, name, tasks))) for name in MEASURED}
            if tasks == budget.httpx_cold_tasks[0]:
                cells[STATIC] = Cell(cells[STATIC].text, ("httpx-cold-static",))
            who = "1 task starts" if tasks == 1 else f"{tasks} tasks start"
            measure = Cell(
                f"token requests when {who} cold on one event loop (time to the last answer)",
                ("httpx-cold-method",) if tasks == budget.httpx_cold_tasks[0] else (),
            )
            rows.append(Row(NUMBER, measure, cells))
    return Section(
        rows=rows,
        notes={
            "httpx-cold-method": (
                "One `httpx.AsyncClient` per library, with its auth and httpx's default pool "
                "(100 connections), shared by the tasks of one asyncio loop, released together "
                f"by an `asyncio.Event`; each token answer takes {budget.cold_token_delay} s "
                "(as in row 2). This library makes one token request on a worker thread and "
                "the other tasks await it; authlib's tasks queue on its `anyio.Lock` and find "
                "the token the first one fetched; httpx-auth's first task fetches with a "
                "blocking call that stops the whole loop, so no other task runs until the token "
                "is there (row 10). The time to the last answer is mostly the burst of requests "
                "that follows: authlib takes its lock for every request, warm or cold (row 9), "
                "so its tasks start their requests one at a time and the emulator is spared the "
                "burst."
            ),
            "httpx-cold-static": (
                "No token logic: the token was fetched by hand before the tasks were released. "
                "Its time is what the same burst of requests takes with a token in hand."
            ),
        },
    )
