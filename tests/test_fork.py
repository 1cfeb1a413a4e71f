"""Fork with token calls in flight: a child never writes into its parent's sockets.

Real ``os.fork`` against the emulator: the parent and four children renew in parallel through
one FalconAuth made before the fork (gunicorn --preload, celery prefork, multiprocessing's fork
start method). Sharing the parent's pooled keep-alive socket interleaves their requests.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest
import requests
from support import in_child, tokens_of

from requests_falcon_auth import FalconAuth, FalconAuthError
from requests_falcon_auth.testing import FalconEmulator
from requests_falcon_auth.urllib3 import AuthorizedPoolManager

CHILDREN = 4
RENEWALS = 10


@pytest.fixture
def emu() -> Iterator[FalconEmulator]:
    with FalconEmulator(["us-1"]) as emulator:
        emulator.add_client("forking-client", "forking-secret-0123")
        yield emulator


def renew(auth: FalconAuth) -> int:
    """Fetches RENEWALS tokens; returns how many calls failed."""
    failures = 0
    for _ in range(RENEWALS):
        try:
            tokens_of(auth).oauth.token()
        except FalconAuthError:
            failures += 1
    return failures


def fork_children(auth: FalconAuth, go_read: int) -> list[Callable[[], str]]:
    """Forks CHILDREN children that wait for ``go`` and then renew; their reports."""

    def body() -> int:
        os.read(go_read, 1)
        return renew(auth)

    return [in_child(body) for _ in range(CHILDREN)]


def collect(children: list[Callable[[], str]], go_read: int, go_write: int) -> list[str]:
    reports = [report() for report in children]
    os.close(go_read)
    os.close(go_write)
    return reports


@pytest.mark.parametrize("session", ["own", "callers"])
def test_parent_and_children_renewing_at_once_never_share_a_socket(
    emu: FalconEmulator, session: str
) -> None:
    given = requests.Session() if session == "callers" else None
    auth = FalconAuth(
        "forking-client",
        "forking-secret-0123",
        base_url=emu.base_url("us-1"),
        session=given,
    )
    auth.get_token()  # the parent now holds a pooled keep-alive socket to the token endpoint
    go_read, go_write = os.pipe()
    children = fork_children(auth, go_read)
    os.write(go_write, b"g" * CHILDREN)
    parent_failures = renew(auth)
    reports = collect(children, go_read, go_write)
    auth.close()
    assert (parent_failures, reports) == (0, ["0"] * CHILDREN)
    assert emu.counters.token_requests == 1 + RENEWALS * (CHILDREN + 1)


def test_a_child_forked_while_a_parent_thread_holds_the_pool_lock_still_renews(
    emu: FalconEmulator,
) -> None:
    auth = FalconAuth("forking-client", "forking-secret-0123", base_url=emu.base_url("us-1"))
    auth.get_token()
    adapter = tokens_of(auth).oauth._session.get_adapter(emu.base_url("us-1"))
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    pools = adapter.poolmanager.pools
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with pools.lock:
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    go_read, go_write = os.pipe()
    children = fork_children(auth, go_read)  # they inherit the lock held, forever
    release.set()
    holder.join()
    os.write(go_write, b"g" * CHILDREN)
    reports = collect(children, go_read, go_write)
    auth.close()
    assert reports == ["0"] * CHILDREN


def test_a_forked_child_starts_the_urllib3_front_end_with_empty_pools(
    emu: FalconEmulator,
) -> None:
    auth = FalconAuth("forking-client", "forking-secret-0123", base_url=emu.base_url("us-1"))
    http = AuthorizedPoolManager(auth)
    assert http.request("GET", f"{emu.base_url('us-1')}/devices/queries/devices/v1").status == 200
    assert len(http.http.pools) == 1
    assert in_child(lambda: len(http.http.pools))() == "0"
    assert len(http.http.pools) == 1  # the parent keeps its own
    auth.close()
