"""Row 1: what a warm auth adds to every request, with the network taken out.

Each library's token is fetched from the emulator first; then its user-facing session sends to
a transport adapter that answers 200 in process (:class:`~benchmarks.transports.NullAdapter`),
so the time per request is ``requests`` plus the auth. The static header is the floor. Rounds
are interleaved (the order rotates) and the fastest round counts: on shared cores, noise only
ever adds time.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from contextlib import ExitStack
from typing import Final

import redis

from requests_falcon_auth.redis import RedisTokenCache
from tests.redis_launcher import RedisServer

from ..budget import Budget
from ..peers import OURS, Caller, PeerOptions, make_peer
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section
from ..transports import NullAdapter
from ._notes import STATIC
from ._warm import against_floor, check_warm, per_request, rotations, time_calls

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "1"
TITLE: Final = "warm cost per request"

MEASURED: Final = (OURS, "requests-auth", "authlib", STATIC)
# This library again, on the fleet cache: a separate caller, timed in the same rounds.
REDIS: Final = "requests-falcon-auth + RedisTokenCache"


def _seconds_per_request(caller: Caller, requests: int) -> float:
    gc.collect()
    return time_calls(caller.get, requests, "in-process requests") / requests


def run(lab: Lab, budget: Budget) -> Section:
    """Times ``budget.overhead_requests`` requests per library per round."""
    timed = (*MEASURED, REDIS)
    best = dict.fromkeys(timed, math.inf)
    with lab.emulator() as emulator, ExitStack() as stack:
        server = stack.enter_context(RedisServer())
        client = redis.Redis(host="127.0.0.1", port=server.port)
        stack.callback(client.close)
        callers: dict[str, Caller] = {}
        for name in timed:
            options = PeerOptions(api_adapter=NullAdapter(), trust_env=False)
            if name == REDIS:
                options = dataclasses.replace(options, cache=RedisTokenCache(client))
            peer = stack.enter_context(
                make_peer(OURS if name == REDIS else name, emulator.new_target(), options)
            )
            callers[name] = peer.caller()
            check_warm(name, callers[name].get())  # fetches the token from the emulator
        for order in rotations(timed, budget.overhead_rounds):
            for name in order:
                spent = _seconds_per_request(callers[name], budget.overhead_requests)
                best[name] = min(best[name], spent)

    cells = against_floor(best, MEASURED, STATIC)
    cells["falconpy"] = Cell(NOT_APPLICABLE, ("falconpy-not-an-auth",))
    measure = Cell(
        "µs per request, warm, network taken out (x static header)", ("overhead-method",)
    )
    fleet_cells = {name: Cell(NOT_APPLICABLE, ("no-shared-store",)) for name in MEASURED}
    fleet_cells["falconpy"] = Cell(NOT_APPLICABLE, ("no-shared-store",))
    fleet_cells[OURS] = Cell(per_request(best[REDIS], best[OURS]))
    fleet_measure = Cell(
        "µs per request, warm, with the token shared through Redis (x in-memory cache)",
        ("overhead-redis",),
    )
    return Section(
        rows=[Row(NUMBER, measure, cells), Row(NUMBER, fleet_measure, fleet_cells)],
        notes={
            "overhead-method": (
                "A `requests` transport adapter (a `BaseAdapter` subclass) answers 200 in "
                "process, so each figure is `requests` plus the auth; the token was fetched "
                "beforehand. The sessions have `trust_env=False`: otherwise requests scans "
                "the environment for proxies on every call, which costs more than any auth "
                f"here. Fastest of {budget.overhead_rounds} interleaved rounds of "
                f"{budget.overhead_requests:,} requests."
            ),
            "overhead-redis": (
                "The same measurement with `FalconAuth(cache=RedisTokenCache(client))` and a "
                "throwaway redis-server on loopback, timed in the same interleaved rounds. "
                "Each process serves its copy of the fleet's token until the token's renew "
                "window opens, so the warm path makes no Redis round trip."
            ),
            "no-shared-store": "No peer has a token store shared between processes.",
            "falconpy-not-an-auth": (
                "falconpy is not an auth for `requests`: it builds and sends its own calls "
                "(`command()`), so its auth cannot be timed apart from them. Row 6 compares "
                "its calls end to end."
            ),
        },
    )
