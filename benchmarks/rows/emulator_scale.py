"""Row 15: the emulator at a large customer's scale, 100,000 hosts loaded.

The emulator runs in a process of its own (:mod:`._scale_worker`), with Falcon's rate budgets
on, and loads 100,000 sample hosts; its resident memory is read before and after. This process
then calls it over loopback through this library's ``FalconSession``, as a tool listing a
large estate does: a page of 5,000 host ids (``GET /devices/queries/devices/v1``), the same
with a filter, and the details of 5,000 hosts (``POST /devices/entities/devices/v2``). Each call
is timed from request to parsed JSON, in interleaved rounds; the median counts.
"""

from __future__ import annotations

import multiprocessing
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any, Final

import requests

from requests_falcon_auth import FalconAuth, FalconSession

from ..budget import Budget
from ..peers import OURS, PEERS
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section
from . import _scale_worker
from ._scale_worker import CLIENT_ID, Loaded

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "15"
TITLE: Final = "the emulator with 100,000 hosts"

HOSTS: Final = 100_000
PAGE: Final = 5000  # the most ids a devices query or a details POST takes
ROUNDS: Final = 5
_WAIT: Final = 600.0  # building and loading 100,000 hosts takes seconds, on a busy machine more

_QUERY: Final = "/devices/queries/devices/v1"
_DETAILS: Final = "/devices/entities/devices/v2"


def _timed(send: Callable[..., requests.Response], path: str, **kwargs: Any) -> tuple[float, Any]:
    """Seconds from sending to the parsed body, and the body; any status but 200 fails."""
    began = time.perf_counter()
    response = send(path, **kwargs)
    body = response.json()
    took = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"the emulator answered {response.status_code}: {body}")
    return took, body


def _measure(session: FalconSession) -> dict[str, float]:
    """The median seconds of each call over :data:`ROUNDS` interleaved rounds."""
    times: dict[str, list[float]] = {"page": [], "filtered": [], "details": []}
    for round_ in range(ROUNDS):
        offset = round_ * (HOSTS - PAGE) // max(1, ROUNDS - 1)  # from the first page to the last
        took, body = _timed(session.get, _QUERY, params={"limit": PAGE, "offset": offset})
        ids = body["resources"]
        if len(ids) != PAGE or body["meta"]["pagination"]["total"] != HOSTS:
            raise RuntimeError(f"a page of {len(ids)} ids of {body['meta']['pagination']}")
        times["page"].append(took)
        params = {"limit": PAGE, "filter": "platform_name:'Linux'+status:'normal'"}
        took, _ = _timed(session.get, _QUERY, params=params)
        times["filtered"].append(took)
        took, body = _timed(session.post, _DETAILS, json={"ids": ids})
        if len(body["resources"]) != PAGE:
            raise RuntimeError(f"details of {len(body['resources'])} hosts, not {PAGE}")
        times["details"].append(took)
    return {name: statistics.median(values) for name, values in times.items()}


def run(lab: Lab, budget: Budget) -> Section:
    """One emulator process with 100,000 hosts, called from this one (the lab's emulator and
    the budget are not used: this emulator is measured alone, at one fixed scale)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    secret = secrets.token_urlsafe(24)
    worker = context.Process(target=_scale_worker.serve, args=(HOSTS, secret, theirs))
    worker.start()
    try:
        if not ours.poll(_WAIT):
            raise RuntimeError(f"the emulator did not load {HOSTS:,} hosts in {_WAIT:g} s")
        loaded: Loaded = ours.recv()
        auth = FalconAuth(CLIENT_ID, loaded.client_secret, base_url=loaded.base_url)
        with FalconSession(auth=auth) as session:
            session.trust_env = False
            medians = _measure(session)
    finally:
        ours.send("done")
        worker.join(_WAIT)
    return _section(loaded, medians)


def _section(loaded: Loaded, medians: dict[str, float]) -> Section:
    mib = 1024 * 1024
    memory = (
        f"{loaded.rss_loaded / mib:,.0f} MiB resident with {HOSTS:,} hosts "
        f"(+{(loaded.rss_loaded - loaded.rss_started) / mib:,.0f} MiB over the emulator with "
        f"its 37), loaded in {loaded.load_seconds:.1f} s"
    )
    speed = (
        f"a page of {PAGE:,} ids {medians['page']:.3f} s · filtered "
        f"{medians['filtered']:.3f} s · details of {PAGE:,} hosts (POST) "
        f"{medians['details']:.3f} s"
    )
    others = {name: Cell(NOT_APPLICABLE, ("scale-peers",)) for name in PEERS if name != OURS}
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell("emulator memory, 100,000 hosts", ("scale-method",)),
                {OURS: Cell(memory), **others},
            ),
            Row(
                NUMBER,
                Cell(f"seconds to serve {PAGE:,}-host answers, rate budgets on (median)"),
                {OURS: Cell(speed), **others},
            ),
        ],
        notes={
            "scale-method": (
                f"The emulator in a process of its own with Falcon's rate budgets on, "
                f"{HOSTS:,} sample hosts in the built-in hosts' shape loaded one by one "
                '(`load("hosts", iter_sample_hosts(100_000))`, no list beside the emulator\'s '
                "copies); its resident memory read from `/proc/self/statm` before the load and "
                "after it. The calls go over loopback through "
                "`FalconSession` (gzip, as `requests` asks for it), timed from request to parsed "
                f"JSON: the median of {ROUNDS} rounds, pages from the first to the last, the "
                "filter `platform_name:'Linux'+status:'normal'`."
            ),
            "scale-peers": (
                "The emulator is this library's; the other libraries have none to measure."
            ),
        },
    )
