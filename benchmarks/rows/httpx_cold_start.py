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
from typing import Final

from ..budget import Budget
from ..httpx_peers import STATIC, HttpxOptions, httpx_peer
from ..peers import OURS, Outcome
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section
from ._cold import cold_cell, cold_lines, cold_measure
from ._tasks import together

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "7"
TITLE: Final = "httpx: cold start, asyncio tasks"

MEASURED: Final = (OURS, "httpx-auth", "authlib", STATIC)


async def _trial(emulator: RemoteEmulator, name: str, tasks: int) -> Cell:
    target = emulator.new_target()
    async with httpx_peer(name, target, HttpxOptions()) as peer:

        async def first_call(_: int) -> tuple[Outcome, float]:
            outcome = await peer.get()
            return outcome, time.perf_counter()

        before = emulator.tally()
        answers, released = await together(first_call, range(tasks))
        spent = emulator.tally() - before
    return cold_cell(spent.token_requests, answers, released, name_failures=True)


def _line(emulator: RemoteEmulator, tasks: int, first: bool) -> Row:
    cells = {name: asyncio.run(_trial(emulator, name, tasks)) for name in MEASURED}
    if first:
        cells[STATIC] = Cell(cells[STATIC].text, ("httpx-cold-static",))
    measure = cold_measure(
        tasks, "task", where=" on one event loop", note="httpx-cold-method" if first else None
    )
    return Row(NUMBER, measure, cells)


def run(lab: Lab, budget: Budget) -> Section:
    """One trial per library and task count, each with a fresh API client and event loop."""
    return Section(
        rows=cold_lines(lab, budget, budget.httpx_cold_tasks, _line),
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
