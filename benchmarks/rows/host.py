"""Row 11: short-lived processes on one host (CLI runs, cron jobs, workers without Redis).

Two measures, each counted by the emulator:

- N ``falcon-auth token`` runs, one after another, as a shell loop or a cron job makes them:
  this library's CLI reuses the token it cached on disk (:class:`~requests_falcon_auth.
  filecache.FileTokenCache`), or with ``--no-cache`` fetches one per run; falconpy, which has no
  command line, runs as N ``python -c`` processes that each log in;
- N processes started at the same moment (a barrier) on one host: this library on one
  FileTokenCache directory, on its in-memory cache, and falconpy.

requests-auth and authlib keep tokens in the process only, as the in-memory cache does.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from typing import Final

from ..budget import Budget
from ..peers import OURS
from ..remote import Lab, RemoteEmulator, Target
from ..report import NOT_APPLICABLE, Cell, Row, Section, count
from . import _host_worker
from ._host_worker import FILE, MEMORY, HostJob
from ._notes import STATIC

__all__ = ["NUMBER", "TITLE", "run"]

NUMBER: Final = "11"
TITLE: Final = "one host"

_WAIT: Final = 120.0
_FALCONPY_RUN: Final = (
    "import os, sys\n"
    "from falconpy import OAuth2\n"
    "answer = OAuth2(client_id=os.environ['FALCON_CLIENT_ID'],\n"
    "                client_secret=os.environ['FALCON_CLIENT_SECRET'],\n"
    "                base_url=sys.argv[1]).token()\n"
    "sys.exit(0 if answer['status_code'] == 201 else 1)\n"
)


def _sequential(emulator: RemoteEmulator, kind: str, runs: int) -> int:
    """Token requests for ``runs`` processes, one after another."""
    target = emulator.new_target()
    env = {
        **os.environ,
        "FALCON_CLIENT_ID": target.client_id,
        "FALCON_CLIENT_SECRET": target.client_secret,
    }
    before = emulator.tally()
    with tempfile.TemporaryDirectory(prefix="falcon-bench-") as cache_dir:
        for _ in range(runs):
            if kind == "falconpy":
                argv = [sys.executable, "-c", _FALCONPY_RUN, target.base_url]
            else:
                argv = [
                    sys.executable,
                    "-m",
                    "requests_falcon_auth",
                    "token",
                    "--base-url",
                    target.base_url,
                    "--cache-dir",
                    cache_dir,
                ]
                if kind == MEMORY:
                    argv.append("--no-cache")
            # This interpreter and fixed arguments: nothing from outside the run.
            subprocess.run(argv, env=env, capture_output=True, check=True, timeout=_WAIT)  # noqa: S603
    return (emulator.tally() - before).token_requests


def _together(emulator: RemoteEmulator, kind: str, processes: int) -> int:
    """Token requests for ``processes`` processes started at the same moment."""
    context = multiprocessing.get_context("spawn")
    target: Target = emulator.new_target()
    barrier = context.Barrier(processes, timeout=_WAIT)
    results = context.Queue()
    before = emulator.tally()
    with tempfile.TemporaryDirectory(prefix="falcon-bench-") as cache_dir:
        job = HostJob(kind, target.base_url, target.client_id, target.client_secret, cache_dir)
        workers = [
            context.Process(target=_host_worker.work, args=(job, barrier, results), daemon=True)
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=_WAIT) for _ in workers]
        for worker in workers:
            worker.join(_WAIT)
    failed = [outcome for outcome in outcomes if outcome != "ok"]
    if failed:
        raise RuntimeError(f"a {kind} process failed: {failed[0]}")
    return (emulator.tally() - before).token_requests


def run(lab: Lab, budget: Budget) -> Section:
    """Sequential CLI runs and simultaneous processes, for both caches and falconpy."""
    runs, processes = budget.host_runs, budget.host_processes
    with lab.emulator() as emulator:
        sequential = {
            kind: _sequential(emulator, kind, runs) for kind in (FILE, MEMORY, "falconpy")
        }
        together = {
            kind: _together(emulator, kind, processes) for kind in (FILE, MEMORY, "falconpy")
        }
    in_process = Cell(NOT_APPLICABLE, ("host-in-process",))
    rows = [
        Row(
            NUMBER,
            Cell(f"token requests for {runs} CLI runs, one after another", ("host-method",)),
            {
                OURS: Cell(
                    f"{count(sequential[FILE])} with FileTokenCache (the CLI's default) · "
                    f"{count(sequential[MEMORY])} with --no-cache"
                ),
                "falconpy": Cell(count(sequential["falconpy"]), ("host-falconpy",)),
                "requests-auth": in_process,
                "authlib": in_process,
                STATIC: Cell(NOT_APPLICABLE, ("host-static",)),
            },
        ),
        Row(
            NUMBER,
            Cell(f"token requests when {processes} processes on one host start cold"),
            {
                OURS: Cell(
                    f"{count(together[FILE])} with FileTokenCache · "
                    f"{count(together[MEMORY])} in memory"
                ),
                "falconpy": Cell(count(together["falconpy"])),
                "requests-auth": in_process,
                "authlib": in_process,
                STATIC: Cell(NOT_APPLICABLE, ("host-static",)),
            },
        ),
    ]
    return Section(
        rows=rows,
        notes={
            "host-method": (
                f"Each run is a new process: `falcon-auth token` for this library ({runs} runs "
                "sharing one cache directory), `python -c` with falconpy's `OAuth2.token()`. "
                f"The second line starts {processes} processes at one `multiprocessing` "
                "barrier, each asking for a token once. Rate budgets on."
            ),
            "host-falconpy": "falconpy has no command line and keeps its token in the process.",
            "host-in-process": (
                "Keeps its token in the process only: one token request per process, as "
                "this library's in-memory cache."
            ),
            "host-static": "A static header is a token fetched by hand: no token logic.",
        },
    )
