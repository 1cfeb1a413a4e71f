"""What every token store shared between processes must do, whatever it is kept in.

The Redis and file stores each run these with their own store: ``make_auth()`` gives a new
FalconAuth (a new "process") on a new client of the same shared store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.testing import FalconEmulator

DEVICES = "/devices/queries/devices/v1"


def threads_and_instances_share_one_token(
    emulator: FalconEmulator, make_auth: Callable[[], FalconAuth]
) -> None:
    """16 threads over two instances start together: one token request."""
    auths = [make_auth() for _ in range(2)]
    start = threading.Barrier(16)
    statuses: list[int] = []

    def work(auth: FalconAuth) -> None:
        with requests.Session() as session:
            session.auth = auth
            start.wait()
            statuses.append(session.get(emulator.clouds["us-1"] + DEVICES).status_code)

    threads = [threading.Thread(target=work, args=(auths[i % 2],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for auth in auths:
        auth.close()
    assert statuses == [200] * 16
    assert emulator.counters.token_requests == 1


def a_401_drops_the_shared_token_and_one_fresh_token_serves_everyone(
    emulator: FalconEmulator, make_auth: Callable[[], FalconAuth]
) -> None:
    """After every token is invalidated, the first to see a 401 deletes the shared token
    (compare-and-delete) and fetches; the other finds its copy rejected too and takes the
    fresh one from the store instead of fetching its own."""
    first, second = make_auth(), make_auth()
    url = emulator.clouds["us-1"] + DEVICES
    with first, second, requests.Session() as s1, requests.Session() as s2:
        s1.auth, s2.auth = first, second
        assert s1.get(url).status_code == 200
        assert s2.get(url).status_code == 200  # both now hold the token locally
        emulator.invalidate_all_tokens()
        assert s1.get(url).status_code == 200  # 401, compare-and-delete, fetch, re-send
        assert s2.get(url).status_code == 200
        assert s2.get(url).status_code == 200
    counters = emulator.counters
    assert (counters.token_requests, counters.api_401, counters.api_ok) == (2, 2, 5)
