"""One benchmarked call, made N times, for :mod:`benchmarks.instructions` to count under callgrind.

    python -m benchmarks.rows._instructions_driver CASE N

CASE is ``front-end:<front end>:<ours|static>`` (row 12's calls: ``requests``, ``urllib3``,
``httpx``, ``httpx-async``) or ``falconpy:<bridge|session>`` (row 16's: falconpy's ``Hosts``
on FalconPyAuth, or alone with ``session=``). Each is set up as its row sets it up, network
taken out, its token fetched first from an emulator in this process; then 20 warm calls, then
N. Only N differs between the two runs the count comes from.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack, ExitStack
from typing import Final

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.testing import FalconEmulator

from ..peers import OURS
from ..remote import Target
from ..transports import NullAdapter
from ._notes import STATIC

_CLIENT: Final = ("instructions-client", "instructions-secret-5d0b")
_WARM: Final = 20
_WHO: Final = {"ours": OURS, "static": STATIC}


def _front_end(
    target: Target, front_end: str, who: str, stack: ExitStack
) -> Callable[[int], object]:
    from . import front_ends  # each family imports only what its calls need

    loop = asyncio.new_event_loop()
    stack.callback(loop.close)
    auth = stack.enter_context(FalconAuth(*_CLIENT, base_url=target.base_url))
    closing = AsyncExitStack()
    stack.callback(lambda: loop.run_until_complete(closing.aclose()))
    url = f"{target.base_url}/devices/queries/devices/v1"
    return front_ends._timers(auth, url, loop, closing)[front_end, _WHO[who]]


def _falconpy(target: Target, kind: str, stack: ExitStack) -> Callable[[int], object]:
    from falconpy import Hosts

    from . import falconpy_bridge
    from ._falconpy_worker import call_hosts

    kinds = {"bridge": falconpy_bridge.BRIDGE, "session": falconpy_bridge.WITH_SESSION}
    setup = falconpy_bridge._shared(kinds[kind], target, 1, adapter=NullAdapter(), trust_env=False)
    hosts = Hosts(auth_object=stack.enter_context(setup))

    def calls(n: int) -> None:
        for _ in range(n):
            if call_hosts(hosts) != 200:
                raise RuntimeError("a falconpy call was not answered 200")

    return calls


def main(argv: Sequence[str]) -> None:
    case, n = argv[0], int(argv[1])
    family, *rest = case.split(":")
    with FalconEmulator(regions=("us-1",)) as emulator, ExitStack() as stack:
        emulator.add_client(*_CLIENT)
        target = Target(emulator.base_url("us-1"), *_CLIENT)
        if family == "front-end":
            calls = _front_end(target, rest[0], rest[1], stack)
        elif family == "falconpy":
            calls = _falconpy(target, rest[0], stack)
        else:
            raise SystemExit(f"unknown case {case!r}")
        calls(_WARM)
        calls(n)


if __name__ == "__main__":
    main(sys.argv[1:])
