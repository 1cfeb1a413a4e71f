"""Pytest fixtures for code that talks to Falcon: an emulator and a FalconAuth wired to it.

``falcon_emulator``: a started :class:`EmulatedFalcon` (a :class:`FalconEmulator` serving
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

import contextlib
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .emulator import FalconEmulator

if TYPE_CHECKING:
    from ..auth import FalconAuth
    from ..httpx import FalconHttpxAuth

__all__ = [
    "EmulatedFalcon",
    "falcon_auth",
    "falcon_emulator",
    "falcon_httpx_auth",
    "running_emulator",
]


class EmulatedFalcon(FalconEmulator):
    """A :class:`FalconEmulator` that knows the credentials of the client it registered."""

    client_id: str
    client_secret: str


@contextlib.contextmanager
def running_emulator() -> Iterator[EmulatedFalcon]:
    """Runs an :class:`EmulatedFalcon` with a fresh random client in us-1 (the fixture's body)."""
    emulator = EmulatedFalcon()
    emulator.client_id = f"emulated-{secrets.token_hex(12)}"
    emulator.client_secret = secrets.token_urlsafe(30)
    emulator.add_client(emulator.client_id, emulator.client_secret, region="us-1")
    with emulator:
        yield emulator


@pytest.fixture
def falcon_emulator() -> Iterator[EmulatedFalcon]:
    """A running Falcon emulator with one API client in us-1 (``client_id``, ``client_secret``)."""
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
