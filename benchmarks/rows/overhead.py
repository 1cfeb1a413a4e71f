"""Row 1: what a warm auth adds to every request, with the network taken out.

Each library's token is fetched from the emulator first; then its user-facing session sends to
a transport adapter that answers 200 in process (:class:`~benchmarks.transports.NullAdapter`),
so the time per request is ``requests`` plus the auth. The static header is the floor. Rounds
are interleaved (the order rotates) and the fastest round counts: on shared cores, noise only
ever adds time.
"""

from __future__ import annotations

import gc
import math
import time
from contextlib import ExitStack
from typing import Final

from ..budget import Budget
from ..peers import OURS, Caller, PeerOptions, make_peer
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section, ratio
from ..transports import NullAdapter
from ._notes import STATIC

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "1"
TITLE: Final = "warm cost per request"

MEASURED: Final = (OURS, "requests-auth", "authlib", STATIC)


def _seconds_per_request(caller: Caller, requests: int) -> float:
    gc.collect()
    started = time.perf_counter()
    failed = sum(caller.get() != 200 for _ in range(requests))
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{failed} of {requests} in-process requests failed")
    return elapsed / requests


def run(lab: Lab, budget: Budget) -> Section:
    """Times ``budget.overhead_requests`` requests per library per round."""
    best = dict.fromkeys(MEASURED, math.inf)
    with lab.emulator() as emulator, ExitStack() as stack:
        callers: dict[str, Caller] = {}
        for name in MEASURED:
            options = PeerOptions(api_adapter=NullAdapter(), trust_env=False)
            peer = stack.enter_context(make_peer(name, emulator.new_target(), options))
            callers[name] = peer.caller()
            warm = callers[name].get()  # fetches the token from the emulator
            if warm != 200:
                raise RuntimeError(f"{name} could not be warmed: {warm}")
        for round_number in range(budget.overhead_rounds):
            shift = round_number % len(MEASURED)
            for name in MEASURED[shift:] + MEASURED[:shift]:
                spent = _seconds_per_request(callers[name], budget.overhead_requests)
                best[name] = min(best[name], spent)

    floor = best[STATIC]
    cells = {}
    for name in MEASURED:
        text = f"{best[name] * 1e6:.0f} µs ({ratio(best[name], floor)}"
        if name != STATIC:
            text += f", {(best[name] - floor) * 1e6:+.0f} µs"
        cells[name] = Cell(text + ")")
    cells["falconpy"] = Cell(NOT_APPLICABLE, ("falconpy-not-an-auth",))
    measure = Cell(
        "µs per request, warm, network taken out (x static header)", ("overhead-method",)
    )
    return Section(
        rows=[Row(NUMBER, measure, cells)],
        notes={
            "overhead-method": (
                "A `requests` transport adapter (a `BaseAdapter` subclass) answers 200 in "
                "process, so each figure is `requests` plus the auth; the token was fetched "
                "beforehand. The sessions have `trust_env=False`: otherwise requests scans "
                "the environment for proxies on every call, which costs more than any auth "
                f"here. Fastest of {budget.overhead_rounds} interleaved rounds of "
                f"{budget.overhead_requests:,} requests."
            ),
            "falconpy-not-an-auth": (
                "falconpy is not an auth for `requests`: it builds and sends its own calls "
                "(`command()`), so its auth cannot be timed apart from them. Row 6 compares "
                "its calls end to end."
            ),
        },
    )
