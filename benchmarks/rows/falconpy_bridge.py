"""Row 16: falconpy's service classes on this library's token engine, beside falconpy alone.

falconpy's ``Hosts`` is used three ways in one run: on ``FalconPyAuth(FalconAuth(...))`` (this
library's column), and alone, with its own ``OAuth2`` auth object, by default (a new
connection for every call) and with a pooled ``requests.Session`` (``session=``, falconpy 1.6.5
and later) (falconpy's column). Falcon's rate budgets are on throughout. Four measures:

- 64 threads, one shared auth object, each building ``Hosts(auth_object=shared)`` and calling
  ``query_devices_by_filter(limit=1)``, released together: token requests, calls answered 200;
- every token invalidated twice while 32 threads call, as row 4 does: token requests after the
  first invalidation, failed calls;
- 8 processes released together, each with its own auth object (this library's on one
  FileTokenCache directory, one Redis, or its in-memory cache): token requests;
- the warm cost of a call, through the bridge against falconpy alone, with the network taken
  out (a transport adapter mounted on both sessions) and over loopback against the emulator.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Final

import requests
from falconpy import Hosts, OAuth2
from requests.adapters import BaseAdapter

from tests.redis_launcher import RedisServer

from .. import instructions
from ..budget import Budget
from ..peers import OURS, PATH, Outcome, succeeded
from ..remote import Lab, RemoteEmulator, Target
from ..report import NOT_APPLICABLE, Cell, Row, Section, count
from ..transports import NullAdapter, pooled
from . import _falconpy_worker
from ._falconpy_worker import (
    FALCONPY,
    FILE,
    MEMORY,
    REDIS,
    BridgeJob,
    BridgeReport,
    PinnedOAuth2,
    bridge,
    call_hosts,
    falconpy_alone,
)
from ._notes import STATIC
from ._storm import StormResult, thread_storm
from ._threads import together
from ._warm import check_warm, per_request, rotations, time_calls

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "16"
TITLE: Final = "falconpy on this engine"

BRIDGE: Final = "falconpy + FalconPyAuth"
WITH_SESSION: Final = "falconpy alone, session="
DEFAULT: Final = "falconpy alone, default"
CONTENDERS: Final = (BRIDGE, WITH_SESSION, DEFAULT)

STORM_THREADS: Final = 32
_OTHERS: Final = ("requests-auth", "authlib", STATIC)
_WAIT: Final = 300.0


def _outcome(call: Callable[[], int]) -> Outcome:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 -- whatever falconpy raises is the measurement
        return type(exc).__name__


@contextmanager
def _shared(
    kind: str,
    target: Target,
    threads: int,
    *,
    adapter: BaseAdapter | None = None,
    trust_env: bool = True,
) -> Iterator[OAuth2]:
    """The auth object ``kind`` shares between ``threads`` threads, released at the end.

    ``adapter`` is mounted at the API path of the session falconpy's calls go out on (the
    token calls keep theirs); the session's connection pools are sized for the threads.
    """
    with ExitStack() as stack:
        session: requests.Session | None = None
        made: OAuth2
        if kind == BRIDGE:
            made = bridge(target)
            stack.callback(made.close)  # as its owner would: revokes
            session = made.session
        else:
            if kind == WITH_SESSION:
                session = stack.enter_context(requests.Session())
            made = falconpy_alone(target, session)
            stack.callback(made.logout)  # what leaving its ``with`` block does: revoke
        if session is not None:
            pooled(session, threads)
            session.trust_env = trust_env
            if adapter is not None:
                session.mount(target.base_url + PATH, adapter)
        elif adapter is not None or not trust_env:
            raise ValueError("falconpy by default makes a session per call: nothing to set up")
        yield made


def _rewrites(made: OAuth2) -> int:
    return made.base_url_rewrites if isinstance(made, PinnedOAuth2) else 0


# -- 64 threads start cold ------------------------------------------------------------------------


def _first_call(shared: OAuth2) -> tuple[Outcome, float]:
    outcome = _outcome(lambda: call_hosts(Hosts(auth_object=shared)))
    return outcome, time.perf_counter()


@dataclass(frozen=True)
class _Cold:
    """One cold start."""

    token_requests: int
    outcomes: list[Outcome]  # each thread's
    seconds: float  # from the release to the last answer
    rewrites: int  # base URL rewrites falconpy alone made (pinned back)


def _cold(emulator: RemoteEmulator, kind: str, threads: int) -> _Cold:
    target = emulator.new_target()
    with _shared(kind, target, threads) as shared:
        before = emulator.tally()
        answers, released = together(_first_call, [shared] * threads)
        spent = emulator.tally() - before
        rewrites = _rewrites(shared)
    last = max(ended for _, ended in answers) - released
    return _Cold(spent.token_requests, [outcome for outcome, _ in answers], last, rewrites)


# -- every token invalidated twice ---------------------------------------------------------------


def _storm(lab: Lab, kind: str, threads: int, calls: int) -> tuple[StormResult, int]:
    """One storm on an emulator of its own (a fresh bad-token budget), and base URL rewrites."""
    with lab.emulator() as emulator, _shared(kind, emulator.new_target(), threads) as shared:
        every = [Hosts(auth_object=shared) for _ in range(threads)]  # the first one logs in
        check_warm(kind, _outcome(lambda: call_hosts(every[0])))
        result = thread_storm(
            emulator, kind, every, calls, lambda hosts: _outcome(lambda: call_hosts(hosts))
        )
        return result, _rewrites(shared)


# -- 8 processes start cold ----------------------------------------------------------------------


def _processes(emulator: RemoteEmulator, kind: str, processes: int, redis_port: int) -> int:
    """Token requests for ``processes`` processes released together, each making one call."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes, timeout=_WAIT)
    results = context.Queue()
    target = emulator.new_target()
    before = emulator.tally()
    with tempfile.TemporaryDirectory(prefix="falcon-bench-") as cache_dir:
        job = BridgeJob(kind, target, cache_dir, redis_port)
        workers = [
            context.Process(target=_falconpy_worker.work, args=(job, barrier, results), daemon=True)
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        reports: list[BridgeReport] = [results.get(timeout=_WAIT) for _ in workers]
        for worker in workers:
            worker.join(_WAIT)
    for report in reports:
        if report.refused:
            raise RuntimeError(f"a {kind} process tried to leave loopback: {report.refused}")
        if report.error is not None or report.status != 200:
            raise RuntimeError(f"a {kind} process failed: {report.error or report.status}")
    return (emulator.tally() - before).token_requests


# -- warm cost per call --------------------------------------------------------------------------


def _timer(hosts: Hosts, calls: int) -> Callable[[], float]:
    def seconds_per_call() -> float:
        gc.collect()
        return time_calls(lambda: call_hosts(hosts), calls, "falconpy calls") / calls

    return seconds_per_call


def _fastest(timers: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Each timer's fastest of ``rounds`` interleaved rounds."""
    best = dict.fromkeys(timers, math.inf)
    for order in rotations(list(timers), rounds):
        for name in order:
            best[name] = min(best[name], timers[name]())
    return best


def _warm(lab: Lab, budget: Budget) -> tuple[dict[str, float], dict[str, float], int]:
    """Seconds per call, network taken out and over loopback, and base URL rewrites."""
    null_calls, null_rounds = budget.overhead_requests, budget.overhead_rounds
    wire_rounds = budget.throughput_rounds
    wire_calls = max(1, budget.throughput_requests // wire_rounds)
    with lab.emulator() as emulator, ExitStack() as stack:
        made: list[OAuth2] = []

        def warm_hosts(kind: str, adapter: BaseAdapter | None = None) -> Hosts:
            # Network taken out: the adapter answers, and requests skips its scan of the
            # environment for proxies (row 1 does the same).
            setup = _shared(kind, emulator.new_target(), 1, adapter=adapter, trust_env=not adapter)
            shared = stack.enter_context(setup)
            made.append(shared)
            hosts = Hosts(auth_object=shared)
            check_warm(kind, _outcome(lambda: call_hosts(hosts)))  # the token, from the emulator
            return hosts

        null = {
            kind: _timer(warm_hosts(kind, NullAdapter()), null_calls)
            for kind in (BRIDGE, WITH_SESSION)
        }
        wire = {kind: _timer(warm_hosts(kind), wire_calls) for kind in CONTENDERS}
        spent = emulator.tally().token_requests
        null_best = _fastest(null, null_rounds)
        wire_best = _fastest(wire, wire_rounds)
        if emulator.tally().token_requests != spent:
            raise RuntimeError("a token was fetched while the warm cost was timed")
        rewrites = sum(_rewrites(shared) for shared in made)
    return null_best, wire_best, rewrites


# -- the row -------------------------------------------------------------------------------------


def _instruction_counts() -> dict[str, float] | None:
    """Instructions per warm call, network taken out, of the bridge and of falconpy with
    ``session=``; None without valgrind."""
    if not instructions.available():
        return None
    counted = instructions.per_call(["falconpy:bridge", "falconpy:session"])
    return {BRIDGE: counted["falconpy:bridge"], WITH_SESSION: counted["falconpy:session"]}


def _counted(counts: Mapping[str, float] | None, kind: str) -> str:
    if counts is None:
        return ""
    if kind == WITH_SESSION:
        return f" · {counts[kind] / 1000:,.0f}k instructions"
    return f" · {instructions.ratio_text(counts[kind], counts[WITH_SESSION])}"


def _either(by_default: str, with_session: str) -> str:
    return f"{by_default} by default · {with_session} with `session=`"


def _answered(outcomes: Sequence[Outcome]) -> str:
    """``64 of 64``, or ``60 of 64 (ReadTimeout)``."""
    ok = sum(succeeded(outcome) for outcome in outcomes)
    text = f"{count(ok)} of {count(len(outcomes))}"
    failures = sorted({str(outcome) for outcome in outcomes if not succeeded(outcome)})
    return text + (f" ({', '.join(failures)})" if failures else "")


def _failed(result: StormResult) -> str:
    text = f"{count(result.failed)} of {count(result.counted)}"
    return text + (f" ({', '.join(result.failures)})" if result.failures else "")


def _line(measure: Cell, ours: Cell, falconpy: Cell) -> Row:
    cells = {OURS: ours, "falconpy": falconpy}
    cells.update({name: Cell(NOT_APPLICABLE, ("bridge-falconpy-only",)) for name in _OTHERS})
    return Row(NUMBER, measure, cells)


def run(lab: Lab, budget: Budget) -> Section:
    """The four measures, each for every way of using falconpy, in one run."""
    threads, processes = max(budget.cold_threads), budget.host_processes
    rewrites = 0
    with lab.emulator() as emulator:
        emulator.delay_token_requests(budget.cold_token_delay)
        cold = {kind: _cold(emulator, kind, threads) for kind in CONTENDERS}
        rewrites += sum(result.rewrites for result in cold.values())
        with RedisServer() as server:
            spawned = {
                kind: _processes(emulator, kind, processes, server.port)
                for kind in (FILE, REDIS, MEMORY, FALCONPY)
            }
    storms = {}
    for kind in CONTENDERS:
        storms[kind], more = _storm(lab, kind, STORM_THREADS, budget.storm_calls)
        rewrites += more
    null, wire, more = _warm(lab, budget)
    rewrites += more
    counts = _instruction_counts()

    def cold_tokens(kind: str) -> str:
        return f"{count(cold[kind].token_requests)} ({cold[kind].seconds:.2f} s)"

    reference = wire[WITH_SESSION]
    rows = [
        _line(
            Cell(
                f"token requests when {threads} threads each build `Hosts(auth_object=shared)` "
                "and call at once (time to the last answer)",
                ("bridge-setup", "bridge-cold"),
            ),
            Cell(cold_tokens(BRIDGE)),
            Cell(_either(cold_tokens(DEFAULT), cold_tokens(WITH_SESSION)), ("bridge-pinned",)),
        ),
        _line(
            Cell("calls of those that were answered 200"),
            Cell(_answered(cold[BRIDGE].outcomes)),
            Cell(
                _either(_answered(cold[DEFAULT].outcomes), _answered(cold[WITH_SESSION].outcomes))
            ),
        ),
        _line(
            Cell(
                f"token requests after every token is invalidated twice, {STORM_THREADS} "
                "threads mid-flight, Falcon's bad-token budget on",
                ("bridge-storm",),
            ),
            Cell(count(storms[BRIDGE].token_requests)),
            Cell(
                _either(
                    count(storms[DEFAULT].token_requests),
                    count(storms[WITH_SESSION].token_requests),
                )
            ),
        ),
        _line(
            Cell("failed calls of those that ended after the first invalidation"),
            Cell(_failed(storms[BRIDGE])),
            Cell(_either(_failed(storms[DEFAULT]), _failed(storms[WITH_SESSION]))),
        ),
        _line(
            Cell(
                f"token requests when {processes} processes each build their auth object "
                "and call at once",
                ("bridge-processes",),
            ),
            Cell(
                f"{count(spawned[FILE])} with FileTokenCache · {count(spawned[REDIS])} with "
                f"RedisTokenCache · {count(spawned[MEMORY])} in memory"
            ),
            Cell(count(spawned[FALCONPY])),
        ),
        _line(
            Cell(
                "µs per `query_devices_by_filter(limit=1)`, warm, network taken out "
                "(x falconpy with `session=`)",
                ("bridge-null",),
            ),
            Cell(per_request(null[BRIDGE], null[WITH_SESSION]) + _counted(counts, BRIDGE)),
            Cell(
                f"{per_request(null[WITH_SESSION], null[WITH_SESSION], difference=False)}"
                f"{_counted(counts, WITH_SESSION)} with `session=` · n/a by default",
                ("bridge-no-session",),
            ),
        ),
        _line(
            Cell(
                "µs per `query_devices_by_filter(limit=1)`, warm, over loopback against the "
                "emulator (x falconpy with `session=`)",
                ("bridge-wire",),
            ),
            Cell(per_request(wire[BRIDGE], reference)),
            Cell(
                _either(
                    per_request(wire[DEFAULT], reference),
                    per_request(reference, reference, difference=False),
                )
            ),
        ),
    ]
    notes = _notes(budget, threads, processes, rewrites, counted=counts is not None)
    return Section(rows=rows, notes=notes)


def _notes(
    budget: Budget, threads: int, processes: int, rewrites: int, *, counted: bool
) -> dict[str, str]:
    wire_rounds = budget.throughput_rounds
    wire_calls = max(1, budget.throughput_requests // wire_rounds)
    return {
        "bridge-setup": (
            "falconpy's service class `Hosts` three ways, in one run. This library's column: "
            "`Hosts(auth_object=FalconPyAuth(FalconAuth(client_id, client_secret, "
            "base_url=...)))`, falconpy's calls going out on the bridge's session (its `auth` "
            "the FalconAuth; pools sized for the threads). falconpy's column: falconpy alone, "
            "its own `OAuth2(client_id=, client_secret=, base_url=, timeout=30)` as the auth "
            "object, by default (a new connection for every call) and with a pooled "
            "`requests.Session` (`session=`, falconpy 1.6.5 and later). Falcon's rate budgets "
            "are on throughout (15 calls a minute per IP with a bad token, then 429)."
        ),
        "bridge-cold": (
            f"One auth object shared by {threads} threads; a `threading.Barrier` releases them "
            "and each builds `Hosts(auth_object=shared)` (which logs in if the object has no "
            "token) and calls `query_devices_by_filter(limit=1)`. Each token answer takes "
            f"{budget.cold_token_delay} s, as in row 2. The bridge's login asks the "
            "FalconAuth, whose single flight makes one token request for every thread; "
            "falconpy lets every thread that finds no token log in."
        ),
        "bridge-pinned": (
            "falconpy alone replaces a custom `base_url` with `https://api.crowdstrike.com` "
            "after every token (see its column heading): its `OAuth2` is pinned to the URL it "
            "was given, as its Uber class is in the other rows (a property override; "
            f"{rewrites} rewrites pinned back in this row); its token logic is untouched. The "
            "bridge's base URL is the FalconAuth's, which falconpy's region handling never "
            "moves."
        ),
        "bridge-storm": (
            f"{STORM_THREADS} threads, each with its own `Hosts` on one shared warm auth "
            f"object, make {budget.storm_calls} calls each; when a third of all calls are "
            "done, and again at two thirds, `invalidate_all_tokens()`, as row 4 does. Each of "
            "the three runs on an emulator of its own, so each starts with a full bad-token "
            "budget. The bridge's session heals a 401 or the bad-token 429 with one fresh "
            "token and one re-send; falconpy keeps sending the dead token until it would have "
            "expired."
        ),
        "bridge-processes": (
            f"{processes} new processes (`multiprocessing`, spawn), released by one barrier, "
            "each building `Hosts(auth_object=...)` and calling once, all answered 200: this "
            "library with `FalconPyAuth(FalconAuth(..., cache=FileTokenCache(path=dir)))` on "
            "one directory, with `RedisTokenCache` on one throwaway redis-server on loopback, "
            "and with its in-memory cache; falconpy with its own `OAuth2` in each process (it "
            f"has no way to share a token between processes). Token answers take "
            f"{budget.cold_token_delay} s."
        ),
        "bridge-null": (
            "A `requests` transport adapter answering 200 in process is mounted at the API "
            "path of the session falconpy's calls go out on (`FalconPyAuth.session`, and the "
            "session given to falconpy), so each figure is falconpy's own work plus its auth "
            "plus `requests`; the token was fetched from the emulator beforehand and the "
            "emulator's token count is checked unchanged over the timing. `trust_env=False` on "
            "both sessions, as in row 1. Fastest of "
            f"{budget.overhead_rounds} interleaved rounds of {budget.overhead_requests:,} calls. "
            + (
                "Beside each time, the machine instructions one call executes, counted by "
                "callgrind (`benchmarks/instructions.py`), which other tenants of the cores "
                "cannot blur."
                if counted
                else "valgrind is not installed here, so instructions were not counted."
            )
        ),
        "bridge-no-session": (
            "By default falconpy makes each call through `requests.request`, a new session "
            "every time: there is no session to mount a transport adapter on."
        ),
        "bridge-wire": (
            f"The same calls against the emulator (in its own process) over loopback, "
            f"{wire_rounds} interleaved rounds of {wire_calls:,} calls each; the fastest round "
            "counts. Sessions as a user gets them (`trust_env` on)."
        ),
        "bridge-falconpy-only": (
            "This row measures falconpy's service classes, alone and on this library's engine."
        ),
    }
