"""Row 2: N threads send their first request at the same moment; how many token requests?

One object per library is shared by the threads (a session each where the library allows),
and a barrier releases them together. Each token answer takes a little time (as across the
internet), so a fetch is still in flight when the others arrive: a library without single
flight then asks once per thread. The emulator counts the token requests.
"""

from __future__ import annotations

import time
from typing import Final

from ..budget import Budget
from ..peers import OURS, Caller, Outcome, PeerOptions, make_peer
from ..remote import Lab, RemoteEmulator
from ..report import NOT_APPLICABLE, Cell, Row, Section
from ._cold import cold_cell, cold_lines, cold_measure
from ._notes import STATIC, STATIC_NO_TOKEN_LOGIC
from ._threads import together

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "2"
TITLE: Final = "cold start"

MEASURED: Final = (OURS, "falconpy", "requests-auth", "authlib")


def _first_call(caller: Caller) -> tuple[Outcome, float]:
    outcome = caller.get()
    return outcome, time.perf_counter()


def _trial(emulator: RemoteEmulator, name: str, threads: int) -> Cell:
    with make_peer(name, emulator.new_target(), PeerOptions(threads=threads)) as peer:
        callers = [peer.caller() for _ in range(threads)]
        before = emulator.tally()
        answers, released = together(_first_call, callers)
        spent = emulator.tally() - before
    return cold_cell(spent.token_requests, answers, released, name_failures=False)


def _line(emulator: RemoteEmulator, threads: int, first: bool) -> Row:
    cells = {name: _trial(emulator, name, threads) for name in MEASURED}
    cells[STATIC] = Cell(NOT_APPLICABLE, (STATIC_NO_TOKEN_LOGIC[0],))
    measure = cold_measure(threads, "thread", note="cold-method" if first else None)
    return Row(NUMBER, measure, cells)


def run(lab: Lab, budget: Budget) -> Section:
    """One trial per library and thread count, each with a fresh API client."""
    return Section(
        rows=cold_lines(lab, budget, budget.cold_threads, _line),
        notes={
            "cold-method": (
                "One object per library shared by the threads (a `requests.Session` per "
                "thread for this library and requests-auth; authlib keeps its token on its "
                "session and falconpy on its Uber class, so those are shared whole), released "
                f"together by a `threading.Barrier`; each token answer takes "
                f"{budget.cold_token_delay} s. This library makes one token request and the "
                "other threads wait for it; falconpy and authlib let every thread that finds "
                "no token fetch at once; requests-auth makes its threads fetch one after "
                "another behind a lock, none looking again for the token the previous one got."
            ),
            STATIC_NO_TOKEN_LOGIC[0]: STATIC_NO_TOKEN_LOGIC[1],
        },
    )
