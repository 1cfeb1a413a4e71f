"""Row 6: authenticated GETs per second over loopback, one thread, same call everywhere.

``FalconSession.get("/devices/queries/devices/v1", params={"limit": 1})`` beside falconpy's
``command("QueryDevicesByFilter", limit=1)`` (with a ``requests.Session``, its 1.6 option for
connection reuse, and with its default of a new connection per call) and the other libraries
on a ``requests.Session``. Rounds are interleaved and the fastest counts.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Final

from ..budget import Budget
from ..peers import OURS, Caller, FalconPyPeer, PeerOptions, make_peer
from ..remote import Lab
from ..report import Cell, Row, Section, count, ratio
from ._notes import STATIC
from ._warm import check_warm, rotations, time_calls

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "6"
TITLE: Final = "throughput"

FALCONPY_DEFAULT: Final = "falconpy, default"

# variant -> (library, options)
_VARIANTS: Final = {
    OURS: (OURS, PeerOptions(falcon_session=True)),
    "falconpy": ("falconpy", PeerOptions(keep_alive=True)),
    FALCONPY_DEFAULT: ("falconpy", PeerOptions(keep_alive=False)),
    "requests-auth": ("requests-auth", PeerOptions()),
    "authlib": ("authlib", PeerOptions()),
    STATIC: (STATIC, PeerOptions()),
}


def _rate(caller: Caller, requests: int) -> float:
    return requests / time_calls(caller.get, requests, "GETs")


def run(lab: Lab, budget: Budget) -> Section:
    """``budget.throughput_requests`` GETs per variant, in interleaved rounds."""
    rounds = budget.throughput_rounds
    per_round = max(1, budget.throughput_requests // rounds)
    best = dict.fromkeys(_VARIANTS, 0.0)
    rewrites = 0
    with lab.emulator() as emulator, ExitStack() as stack:
        callers: dict[str, Caller] = {}
        falconpy_peers: list[FalconPyPeer] = []
        for variant, (name, options) in _VARIANTS.items():
            peer = stack.enter_context(make_peer(name, emulator.new_target(), options))
            if isinstance(peer, FalconPyPeer):
                falconpy_peers.append(peer)
            callers[variant] = peer.caller()
            check_warm(variant, callers[variant].get())
        for order in rotations(list(_VARIANTS), rounds):
            for variant in order:
                best[variant] = max(best[variant], _rate(callers[variant], per_round))
        rewrites = sum(peer.harness.base_url_rewrites for peer in falconpy_peers)

    reference = best[OURS]

    def text(variant: str) -> str:
        return f"{count(round(best[variant]))}/s ({ratio(best[variant], reference)})"

    cells = {
        OURS: Cell(text(OURS), ("falcon-session",)),
        "falconpy": Cell(
            f"{text('falconpy')} with `session=`; {text(FALCONPY_DEFAULT)} by default",
            ("falconpy-base-url",),
        ),
        "requests-auth": Cell(text("requests-auth")),
        "authlib": Cell(text("authlib")),
        STATIC: Cell(text(STATIC)),
    }
    measure = Cell("authenticated GETs per second, one thread (x requests-falcon-auth)")
    return Section(
        rows=[Row(NUMBER, measure, cells)],
        notes={
            "falcon-session": (
                f"`FalconSession` with an API path, {rounds} interleaved rounds of "
                f"{per_round:,} GETs per library against the emulator (in its own process) "
                "over loopback; the fastest round counts."
            ),
            "falconpy-base-url": (
                "By default falconpy opens a new connection for every call; with `session=` "
                f"(new in 1.6) it reuses them. In this row it moved to another base URL after "
                f"each of its {rewrites} tokens (pinned back: see its column heading)."
            ),
        },
    )
