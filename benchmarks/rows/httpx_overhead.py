"""Row 9: what a warm httpx auth adds to every request, with the network taken out.

The httpx twin of row 1. Each library's token is fetched from the emulator first (this library's
on the FalconAuth's own token session, httpx-auth's on the ``httpx.Client`` it makes for each
fetch, authlib's by a second client on the network, the static header's by hand); then the
client the row times sends to an ``httpx.MockTransport`` that answers 200 in process, at the
emulator's base URL (the origin this library scopes its token to), so the time per request is
httpx plus the auth. The static header on the same kind of client is the floor. Rounds are
interleaved (the order rotates) and the fastest round counts: on shared cores, noise only ever
adds time. The same warm auths are then timed on a sync ``httpx.Client`` in the same rounds.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from contextlib import AsyncExitStack, ExitStack
from typing import Final

import httpx

from ..budget import Budget
from ..httpx_peers import STATIC, HttpxOptions, HttpxPeer, httpx_peer
from ..peers import OURS, QUERY
from ..remote import Lab, RemoteEmulator
from ..report import Cell, Row, Section
from ._warm import against_floor, check_warm, rotations

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "9"
TITLE: Final = "httpx: warm cost per request"

MEASURED: Final = (OURS, "httpx-auth", "authlib", STATIC)

_EMPTY_ENVELOPE: Final = b'{"meta": {}, "resources": [], "errors": []}'


def _answer(request: httpx.Request) -> httpx.Response:
    """Every request: 200 with an empty Falcon envelope, in process."""
    return httpx.Response(
        200, headers={"Content-Type": "application/json"}, content=_EMPTY_ENVELOPE
    )


async def _async_seconds(peer: HttpxPeer, requests: int) -> float:
    client, url = peer.client, peer.api_url
    gc.collect()
    started = time.perf_counter()
    failed = 0
    for _ in range(requests):
        response = await client.get(url, params=QUERY)
        failed += response.status_code != 200
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{peer.name}: {failed} of {requests} in-process requests failed")
    return elapsed / requests


def _sync_seconds(name: str, client: httpx.Client, url: str, requests: int) -> float:
    gc.collect()
    started = time.perf_counter()
    failed = sum(client.get(url, params=QUERY).status_code != 200 for _ in range(requests))
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{name}: {failed} of {requests} in-process requests failed")
    return elapsed / requests


async def _measure(
    emulator: RemoteEmulator, budget: Budget
) -> tuple[dict[str, float], dict[str, float]]:
    """The fastest round's seconds per request, per library: async clients, then sync ones."""
    best_async = dict.fromkeys(MEASURED, math.inf)
    best_sync = dict.fromkeys(MEASURED, math.inf)
    requests = budget.httpx_overhead_requests
    async with AsyncExitStack() as stack:
        peers: dict[str, HttpxPeer] = {}
        sync_clients = stack.enter_context(ExitStack())
        syncs: dict[str, httpx.Client] = {}
        for name in MEASURED:
            options = HttpxOptions(api_transport=httpx.MockTransport(_answer))
            peer = await stack.enter_async_context(httpx_peer(name, emulator.new_target(), options))
            # Fetches the token from the emulator where still needed.
            check_warm(name, await peer.get())
            peers[name] = peer
            syncs[name] = sync_clients.enter_context(peer.sync_client(httpx.MockTransport(_answer)))
            check_warm(
                f"{name}'s sync client", syncs[name].get(peer.api_url, params=QUERY).status_code
            )
        spent = emulator.tally()
        for order in rotations(MEASURED, budget.httpx_overhead_rounds):
            for name in order:
                best_async[name] = min(
                    best_async[name], await _async_seconds(peers[name], requests)
                )
            for name in order:
                url = peers[name].api_url
                best_sync[name] = min(
                    best_sync[name], _sync_seconds(name, syncs[name], url, requests)
                )
        if emulator.tally().token_requests != spent.token_requests:
            raise RuntimeError("a token was fetched while the warm cost was timed")
    return best_async, best_sync


def run(lab: Lab, budget: Budget) -> Section:
    """Times ``budget.httpx_overhead_requests`` requests per library per round, async and sync."""
    with lab.emulator() as emulator:
        best_async, best_sync = asyncio.run(_measure(emulator, budget))
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell(
                    "µs per request, warm, network taken out, `httpx.AsyncClient` "
                    "(x static header)",
                    ("httpx-overhead-method",),
                ),
                against_floor(best_async, MEASURED, STATIC),
            ),
            Row(
                NUMBER,
                Cell("the same on a sync `httpx.Client`", ("httpx-overhead-sync",)),
                against_floor(best_sync, MEASURED, STATIC),
            ),
        ],
        notes={
            "httpx-overhead-method": (
                "An `httpx.MockTransport` answers 200 in process, so each figure is httpx plus "
                "the auth; every token was fetched from the emulator beforehand (authlib's by "
                "a second `AsyncOAuth2Client` on the network, handed to the timed one as "
                "`token=`, since the timed client's transport cannot reach the token endpoint). "
                "The emulator's token count is checked unchanged over the timing. Fastest of "
                f"{budget.httpx_overhead_rounds} interleaved rounds of "
                f"{budget.httpx_overhead_requests:,} sequential requests on one event loop."
            ),
            "httpx-overhead-sync": (
                "The same auth objects, already warm, on an `httpx.Client` with the same kind "
                "of transport (authlib: its sync `OAuth2Client`, handed the same token), timed "
                "in the same rounds."
            ),
        },
    )
