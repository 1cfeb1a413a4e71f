"""Row 17: what ``falcon-auth token`` costs a shell script, next to starting Python at all.

``curl -H "Authorization: Bearer $(falcon-auth token)"`` in a loop starts the command on every
call. With a fresh token in the host's token cache it makes no token request and imports no
HTTP stack (:mod:`requests_falcon_auth._cached_token`), so what is left is starting Python,
reading the cache file and decrypting it. Three commands are timed in the same interleaved
rounds, each a new process, on the same interpreter: ``python -c pass`` (the floor), the cached
``falcon-auth token``, and a first call on an empty cache directory (a token request to the
emulator). The fastest round of each counts: on shared cores noise only ever adds time. The
processes run without ``PYTHONDONTWRITEBYTECODE``, as a user's do.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Final

from ..budget import Budget
from ..peers import OURS
from ..remote import Lab
from ..report import NOT_APPLICABLE, Cell, Row, Section, ratio
from ._notes import STATIC

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "17"
TITLE: Final = "a cached token from the command line"

# The target the issue set: a cached token within three times the cost of starting Python.
GOAL: Final = 3.0
_WAIT: Final = 60.0
_FLOOR: Final = "python -c pass"
_CACHED: Final = "cached"
_UNCACHED: Final = "uncached"


def _command() -> list[str]:
    """The console script beside this interpreter, as a user runs it; ``-m`` without one."""
    script = shutil.which("falcon-auth", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "requests_falcon_auth"]


def _seconds(argv: Sequence[str], env: dict[str, str]) -> float:
    """Wall-clock seconds of one process, start to exit; it must succeed."""
    start = time.perf_counter()
    # This interpreter, its console script and fixed arguments: nothing from outside the run.
    subprocess.run(argv, env=env, capture_output=True, check=True, timeout=_WAIT)  # noqa: S603
    return time.perf_counter() - start


def run(lab: Lab, budget: Budget) -> Section:
    """``budget.host_runs`` interleaved rounds of the floor, the cached and the uncached call."""
    rounds = budget.host_runs
    best = dict.fromkeys((_FLOOR, _CACHED, _UNCACHED), math.inf)
    with lab.emulator() as emulator, tempfile.TemporaryDirectory(prefix="falcon-bench-") as home:
        target = emulator.new_target()

        def user(cache_home: str) -> dict[str, str]:
            """A user's environment whose cache directory (platformdirs: XDG_CACHE_HOME) is
            ``cache_home``: the CLI finds it as it does by default, with no flag."""
            env = {
                **os.environ,
                "FALCON_CLIENT_ID": target.client_id,
                "FALCON_CLIENT_SECRET": target.client_secret,
                "XDG_CACHE_HOME": os.path.join(home, cache_home),
            }
            # A user's Python keeps the package's bytecode: with this set (some shells and CI
            # images set it), every run would compile each module changed since the last
            # cache was written, and the row would time the compiler.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            return env

        token = [*_command(), "token", "--base-url", target.base_url]
        floor = [sys.executable, "-c", "pass"]
        _seconds(token, user("cached"))  # fills the cache the cached calls read
        _seconds(token, user("cached"))  # and one cached call, which writes any bytecode
        before = emulator.tally().token_requests
        for index in range(rounds):
            commands = {
                _FLOOR: (floor, user("cached")),
                _CACHED: (token, user("cached")),
                _UNCACHED: (token, user(f"empty-{index}")),
            }
            order = list(commands)
            order = order[index % len(order) :] + order[: index % len(order)]
            for name in order:
                argv, env = commands[name]
                best[name] = min(best[name], _seconds(argv, env))
        requests = emulator.tally().token_requests - before
    if requests != rounds:  # one per uncached call: the cached ones made none
        raise RuntimeError(f"{requests} token requests for {rounds} uncached calls")
    within = best[_CACHED] / best[_FLOOR]
    verdict = "within" if within <= GOAL else "over"
    ours = Cell(
        f"{ratio(best[_CACHED], best[_FLOOR])} `python -c pass` "
        f"({best[_CACHED] * 1e3:.0f} ms vs {best[_FLOOR] * 1e3:.0f} ms; {verdict} the "
        f"{GOAL:g}x goal) · uncached first call {ratio(best[_UNCACHED], best[_FLOOR])} "
        f"({best[_UNCACHED] * 1e3:.0f} ms)"
    )
    no_cli = Cell(NOT_APPLICABLE, ("cli-token-none",))
    return Section(
        rows=[
            Row(
                NUMBER,
                Cell("`falcon-auth token` with a cached token, per run", ("cli-token-method",)),
                {
                    OURS: ours,
                    "falconpy": no_cli,
                    "requests-auth": no_cli,
                    "authlib": no_cli,
                    STATIC: no_cli,
                },
            )
        ],
        notes={
            "cli-token-method": (
                "Wall-clock time of a whole process, start to exit, as `$(falcon-auth token)` "
                "in a shell loop pays it: the console script with a fresh token in its "
                "FileTokenCache (no token request, and neither requests nor urllib3 "
                "imported), beside `python -c pass` on the same interpreter and a first call "
                "on an empty cache directory, which asks the emulator for a token. Fastest "
                f"of {rounds} interleaved rounds."
            ),
            "cli-token-none": "No command line that prints a token.",
        },
    )
