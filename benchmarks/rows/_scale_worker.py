"""The emulator process of the 100,000-host row (kept apart so that spawning it imports little).

It starts an emulator with Falcon's rate budgets on, reads its resident memory, loads the
sample hosts, reads it again, sends what it measured and serves until the row says it is done.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Final

from requests_falcon_auth.testing import FalconEmulator
from requests_falcon_auth.testing._sample_hosts import iter_sample_hosts

from .. import loopback

__all__ = ["CLIENT_ID", "Loaded", "serve"]

CLIENT_ID: Final = "scale-client"
_STATM: Final = "/proc/self/statm"


@dataclass(frozen=True)
class Loaded:
    """What the emulator process measured, and where it serves."""

    base_url: str
    client_secret: str
    rss_started: int  # bytes: the emulator running with its 37 sample hosts
    rss_loaded: int  # bytes: the same with the hosts loaded
    load_seconds: float  # building the hosts one by one and loading them


def _rss() -> int:
    """This process's resident memory in bytes (Linux: the second field of statm, in pages)."""
    with open(_STATM, encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def serve(hosts: int, secret: str, conn: Connection) -> None:
    """Measures and serves, then waits for a word on ``conn`` to stop."""
    loopback.install()
    with FalconEmulator(regions=("us-1",)) as emulator:  # Falcon's rate budgets on
        emulator.add_client(CLIENT_ID, secret, region="us-1")
        gc.collect()
        started = _rss()
        began = time.perf_counter()
        emulator.load("hosts", iter_sample_hosts(hosts))
        took = time.perf_counter() - began
        gc.collect()
        conn.send(Loaded(emulator.base_url("us-1"), secret, started, _rss(), took))
        conn.recv()
