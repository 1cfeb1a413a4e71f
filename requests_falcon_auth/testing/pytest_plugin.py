"""Pytest fixtures for code that talks to Falcon: an emulator and a FalconAuth wired to it.

``falcon_emulator``: a started ``EmulatedFalcon`` (a
:class:`~requests_falcon_auth.testing.FalconEmulator` serving
us-1, us-2, eu-1 and us-gov-1 over HTTP) with one API client registered in us-1, whose
credentials are ``falcon_emulator.client_id`` and ``falcon_emulator.client_secret``.

``falcon_auth``: ``FalconAuth(client_id, client_secret, clouds=falcon_emulator.clouds)``,
closed at teardown.

``falcon_httpx_auth``: a :class:`~requests_falcon_auth.httpx.FalconHttpxAuth` on ``falcon_auth``,
for ``httpx.Client`` and ``httpx.AsyncClient`` (needs the ``httpx`` extra).

All are function-scoped, so every test starts with fresh counters, tokens and budgets. They
are plain fixtures, so async tests use them as they are: with anyio's pytest plugin (installed
with anyio, which httpx requires)::

    @pytest.mark.anyio
    async def test_hosts(falcon_emulator, falcon_httpx_auth):
        async with httpx.AsyncClient(auth=falcon_httpx_auth) as client:
            url = falcon_emulator.base_url("us-1") + "/devices/queries/devices/v1"
            assert (await client.get(url)).status_code == 200

or with pytest-asyncio's ``@pytest.mark.asyncio`` the same way. The emulator serves from its
own threads, so an event loop's tasks never wait on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..auth import FalconAuth
    from ..httpx import FalconHttpxAuth
    from ._emulated import EmulatedFalcon, running_emulator

__all__ = [
    "EmulatedFalcon",
    "falcon_auth",
    "falcon_emulator",
    "falcon_httpx_auth",
    "running_emulator",
]


def __getattr__(name: str) -> Any:
    # The emulator is imported on first use, not when pytest loads the plugin.
    if name in ("EmulatedFalcon", "running_emulator"):
        from . import _emulated

        return getattr(_emulated, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def falcon_emulator() -> Iterator[EmulatedFalcon]:
    """A running Falcon emulator with one API client in us-1 (``client_id``, ``client_secret``)."""
    from ._emulated import running_emulator

    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def falcon_auth(falcon_emulator: EmulatedFalcon) -> Iterator[FalconAuth]:
    """A FalconAuth for the emulator's client, closed (its tokens revoked) at teardown."""
    from ..auth import FalconAuth

    auth = FalconAuth(
        falcon_emulator.client_id, falcon_emulator.client_secret, clouds=falcon_emulator.clouds
    )
    try:
        yield auth
    finally:
        auth.close()


@pytest.fixture
def falcon_httpx_auth(falcon_auth: FalconAuth) -> FalconHttpxAuth:
    """A FalconHttpxAuth for the emulator's client (``falcon_auth`` revokes at teardown)."""
    from ..httpx import FalconHttpxAuth

    return FalconHttpxAuth(falcon_auth)
