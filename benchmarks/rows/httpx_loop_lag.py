"""Row 10: how long the event loop stops while one cold request waits for a slow token answer.

An async front end must not fetch a token with a blocking call on its event loop: every other
task on the loop (other requests, heartbeats, a server's handlers) would stop for as long as the
token endpoint takes. Each library's first request is sent on a fresh client while every token
answer takes a while (as Falcon's can: 0.1-0.5 s); a ticker task on the same loop sleeps a
millisecond at a time and notes how much longer than that each of its sleeps took. The figure is
the longest such overshoot that overlapped the request. The static header's request, which has
no token to fetch, shows the loop's own lag on this machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

from ..budget import Budget
from ..httpx_peers import STATIC, httpx_peer
from ..peers import OURS, Outcome, succeeded
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section, count
from ._ticker import ticking

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "10"
TITLE: Final = "httpx: event-loop lag during a slow token fetch"

MEASURED: Final = (OURS, "httpx-auth", "authlib", STATIC)


@dataclass(frozen=True)
class _Lag:
    worst: float  # seconds: the longest overshoot of a tick that overlapped the request
    ticks: int  # ticks that ended during the request
    seconds: float  # the request, from the call to its answer
    outcome: Outcome
    token_requests: int


async def _trial(emulator: RemoteEmulator, name: str, tick: float) -> _Lag:
    async with httpx_peer(name, emulator.new_target()) as peer:
        async with ticking(tick) as gaps:
            before = emulator.tally()
            started = time.perf_counter()
            outcome = await peer.get()
            ended = time.perf_counter()
        spent = emulator.tally() - before
    during = [(began, end) for began, end in gaps if end >= started and began <= ended]
    return _Lag(
        worst=max((end - began - tick for began, end in during), default=ended - started),
        ticks=sum(started <= end <= ended for _, end in gaps),
        seconds=ended - started,
        outcome=outcome,
        token_requests=spent.token_requests,
    )


def _cell(lag: _Lag) -> Cell:
    text = (
        f"{lag.worst * 1e3:,.1f} ms (request {lag.seconds * 1e3:,.0f} ms, {count(lag.ticks)} ticks"
    )
    if lag.token_requests:
        text += f", {count(lag.token_requests)} token request"
        text += "s" if lag.token_requests != 1 else ""
    text += ")"
    if not succeeded(lag.outcome):
        text += f", failed ({lag.outcome})"
    return Cell(text)


def run(lab: Lab, budget: Budget) -> Section:
    """One trial per library, each with a fresh API client and event loop."""
    tick, delay = budget.loop_lag_tick, budget.loop_lag_token_delay
    with lab.emulator() as emulator:
        emulator.delay_token_requests(delay)
        lags = {name: asyncio.run(_trial(emulator, name, tick)) for name in MEASURED}
    cells = {name: _cell(lag) for name, lag in lags.items()}
    cells[STATIC] = Cell(cells[STATIC].text, ("httpx-lag-static",))
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell(
                    f"longest event-loop stall during one cold request, each token answer "
                    f"taking {delay} s (the request's time; {tick * 1e3:g} ms ticks that ended "
                    "during it)",
                    ("httpx-lag-method",),
                ),
                cells,
            )
        ],
        notes={
            "httpx-lag-method": (
                f"A ticker task on the request's asyncio loop runs `await asyncio.sleep({tick})` "
                "in a loop; the figure is the most any sleep overlapping the request overran "
                f"{tick * 1e3:g} ms. A library that fetches its token with a blocking call on "
                f"the loop stops the ticker for the whole {delay} s token answer. This library "
                "fetches on a worker thread (`anyio.to_thread`); authlib's async client "
                "`await`s its fetch; httpx-auth's one flow for sync and async clients fetches "
                "with a blocking `httpx.Client` inside the request."
            ),
            "httpx-lag-static": (
                "No token to fetch (it was fetched by hand before the ticker started): the "
                "loop's own lag during one request on this machine, the floor of this row."
            ),
        },
    )
