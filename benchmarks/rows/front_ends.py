"""Row 12: what a warm token costs each front end, against a static header on the same client.

One FalconAuth, its token fetched from the emulator first, drives all four front ends: a
``requests.Session`` (``session.auth``), urllib3's ``AuthorizedPoolManager``, and
``FalconHttpxAuth`` on an ``httpx.Client`` and an ``httpx.AsyncClient``. Each is timed beside
the same library sending the same request with the same token as a static ``Authorization``
header, with the network taken out: requests mounts a transport adapter that answers in
process, urllib3 pools whose connections answer in process, httpx a ``MockTransport``. So each
figure is the library plus the auth, and the ratio is what the auth adds. Rounds are interleaved
(the order rotates) and the fastest round counts: on shared cores, noise only ever adds time.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any, Final

import httpx
import requests
import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.httpx import FalconHttpxAuth
from requests_falcon_auth.urllib3 import AuthorizedPoolManager

from .. import instructions
from ..budget import Budget
from ..peers import OURS, QUERY
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section
from ..transports import NullAdapter
from ._notes import STATIC
from ._warm import per_request, rotations

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "12"
TITLE: Final = "warm cost per front end"

FRONT_ENDS: Final = (
    ("requests", "`requests.Session`, `session.auth = FalconAuth(...)`"),
    ("urllib3", "urllib3, `AuthorizedPoolManager(auth)`"),
    ("httpx", "`httpx.Client(auth=FalconHttpxAuth(auth))`"),
    ("httpx-async", "`httpx.AsyncClient(auth=FalconHttpxAuth(auth))`"),
)
_ENVELOPE: Final = b'{"meta": {}, "resources": [], "errors": []}'
_JSON: Final = {"Content-Type": "application/json"}

Timer = Callable[[int], float]


class _InProcessConnection(HTTPConnection):
    """A urllib3 connection that answers 200 without a socket: urllib3's own pool, retry and
    response code runs, the network does not."""

    def connect(self) -> None:
        """Nothing to connect to."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self._in_process = (method, url)

    def getresponse(self) -> urllib3.HTTPResponse:  # type: ignore[override]
        method, url = self._in_process
        return urllib3.HTTPResponse(
            body=_ENVELOPE,
            headers=_JSON,
            status=200,
            preload_content=True,
            request_method=method,
            request_url=url,
        )

    @property
    def is_connected(self) -> bool:
        return True


class _InProcessPool(HTTPConnectionPool):
    ConnectionCls = _InProcessConnection


def _in_process_pools() -> urllib3.PoolManager:
    pools = urllib3.PoolManager()
    pools.pool_classes_by_scheme = {"http": _InProcessPool, "https": _InProcessPool}
    return pools


def _answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=_JSON, content=_ENVELOPE)


def _timed(send: Callable[[], int]) -> Timer:
    """Seconds per request of ``requests`` sends, one after another; all must answer 200."""

    def timer(count: int) -> float:
        gc.collect()
        started = time.perf_counter()
        failed = sum(send() != 200 for _ in range(count))
        elapsed = time.perf_counter() - started
        if failed:
            raise RuntimeError(f"{failed} of {count} in-process requests failed")
        return elapsed / count

    return timer


def _timed_async(
    loop: asyncio.AbstractEventLoop, send: Callable[[], Coroutine[Any, Any, int]]
) -> Timer:
    async def sends(count: int) -> int:
        return sum([await send() != 200 for _ in range(count)])

    def timer(count: int) -> float:
        gc.collect()
        started = time.perf_counter()
        failed = loop.run_until_complete(sends(count))
        elapsed = time.perf_counter() - started
        if failed:
            raise RuntimeError(f"{failed} of {count} in-process requests failed")
        return elapsed / count

    return timer


def _timers(
    auth: FalconAuth, url: str, loop: asyncio.AbstractEventLoop, stack: AsyncExitStack
) -> dict[tuple[str, str], Timer]:
    """(front end, OURS or STATIC) -> its timer, every client warm."""
    header = {"Authorization": auth.get_token().authorization}
    timers: dict[tuple[str, str], Timer] = {}

    def session(with_auth: bool) -> requests.Session:
        made = requests.Session()
        made.trust_env = False  # else requests scans the environment for proxies every call
        made.mount("http://", NullAdapter())
        if with_auth:
            made.auth = auth
        else:
            made.headers.update(header)
        stack.callback(made.close)
        return made

    ours_session, static_session = session(True), session(False)
    timers["requests", OURS] = _timed(lambda: ours_session.get(url, params=QUERY).status_code)
    timers["requests", STATIC] = _timed(lambda: static_session.get(url, params=QUERY).status_code)
    ours_pools = AuthorizedPoolManager(auth, _in_process_pools())
    static_pools = _in_process_pools()
    static_pools.headers = dict(header)
    timers["urllib3", OURS] = _timed(lambda: ours_pools.request("GET", url, fields=QUERY).status)
    timers["urllib3", STATIC] = _timed(
        lambda: static_pools.request("GET", url, fields=QUERY).status
    )
    transport = httpx.MockTransport(_answer)
    ours_client = httpx.Client(transport=transport, auth=FalconHttpxAuth(auth))
    static_client = httpx.Client(transport=transport, headers=header)
    stack.callback(ours_client.close)
    stack.callback(static_client.close)
    timers["httpx", OURS] = _timed(lambda: ours_client.get(url, params=QUERY).status_code)
    timers["httpx", STATIC] = _timed(lambda: static_client.get(url, params=QUERY).status_code)
    ours_async = httpx.AsyncClient(transport=transport, auth=FalconHttpxAuth(auth))
    static_async = httpx.AsyncClient(transport=transport, headers=header)
    stack.push_async_callback(ours_async.aclose)
    stack.push_async_callback(static_async.aclose)

    async def ours_get() -> int:
        return (await ours_async.get(url, params=QUERY)).status_code

    async def static_get() -> int:
        return (await static_async.get(url, params=QUERY)).status_code

    timers["httpx-async", OURS] = _timed_async(loop, ours_get)
    timers["httpx-async", STATIC] = _timed_async(loop, static_get)
    return timers


def run(lab: Lab, budget: Budget) -> Section:
    """Times ``budget.overhead_requests`` requests per front end and floor per round."""
    names = [(front_end, who) for front_end, _ in FRONT_ENDS for who in (OURS, STATIC)]
    best = dict.fromkeys(names, math.inf)
    loop = asyncio.new_event_loop()
    try:
        with lab.emulator() as emulator:
            target = emulator.new_target()
            with FalconAuth(
                target.client_id, target.client_secret, base_url=target.base_url
            ) as auth:
                stack = AsyncExitStack()
                timers = _timers(auth, f"{target.base_url}/devices/queries/devices/v1", loop, stack)
                try:
                    for name in names:
                        timers[name](1)  # warm: imports, pools, the flow's memo
                    spent = emulator.tally().token_requests
                    for order in rotations(names, budget.overhead_rounds):
                        for name in order:
                            best[name] = min(best[name], timers[name](budget.overhead_requests))
                    if emulator.tally().token_requests != spent:
                        raise RuntimeError("a token was fetched while the warm cost was timed")
                finally:
                    loop.run_until_complete(stack.aclose())
    finally:
        loop.close()
    counts = _instruction_counts(names)
    rows = []
    for index, (front_end, title) in enumerate(FRONT_ENDS):
        ours, floor = best[front_end, OURS], best[front_end, STATIC]
        cells = {peer: Cell(NOT_APPLICABLE, ("front-ends-ours-only",)) for peer in _OTHERS}
        ours_text = per_request(ours, floor)
        floor_text = per_request(floor, floor, difference=False)
        if counts is not None:
            ours_counted, floor_counted = counts[front_end, OURS], counts[front_end, STATIC]
            ours_text += f" · {instructions.ratio_text(ours_counted, floor_counted)}"
            floor_text += f" · {floor_counted / 1000:,.0f}k instructions"
        cells[OURS] = Cell(ours_text)
        cells[STATIC] = Cell(floor_text)
        measure = (
            f"µs per request, warm, network taken out, {title} (x static header, same client)"
            if index == 0
            else f"the same, {title}"
        )
        rows.append(Row(NUMBER, Cell(measure, ("front-ends-method",) if index == 0 else ()), cells))
    return Section(
        rows=rows,
        notes={
            "front-ends-method": (
                "One FalconAuth, its token fetched from the emulator beforehand, drives every "
                "front end; the floor is the same library sending the same request with that "
                "token as a static header. The network is taken out: requests mounts a "
                "transport adapter answering 200 in process (`trust_env=False`, as in row 1), "
                "urllib3's pools get connections that answer 200 without a socket (urllib3's "
                "own pool, retry and response code still runs), httpx a `MockTransport`. The "
                "emulator's token count is checked unchanged over the timing. Fastest of "
                f"{budget.overhead_rounds} interleaved rounds of "
                f"{budget.overhead_requests:,} sequential requests. "
                + (
                    "Beside each time, the machine instructions one request executes, counted "
                    "by callgrind (`benchmarks/instructions.py`: the same setup run with 50 and "
                    "250 requests, the difference over 200), which other tenants of the cores "
                    "cannot blur: the times of this row move by tens of µs from run to run."
                    if counts is not None
                    else "valgrind is not installed here, so instructions were not counted."
                )
            ),
            "front-ends-ours-only": "This row times this library's front ends only.",
        },
    )


_OTHERS: Final = ("falconpy", "requests-auth", "authlib")


def _instruction_counts(names: list[tuple[str, str]]) -> dict[tuple[str, str], float] | None:
    """Instructions per request of each (front end, OURS or STATIC); None without valgrind."""
    if not instructions.available():
        return None
    cases = {
        name: f"front-end:{name[0]}:{'ours' if name[1] == OURS else 'static'}" for name in names
    }
    counted = instructions.per_call(list(cases.values()))
    return {name: counted[case] for name, case in cases.items()}
