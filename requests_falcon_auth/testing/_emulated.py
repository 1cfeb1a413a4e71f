"""The pytest plugin's emulator: a :class:`FalconEmulator` that knows its one client.

Kept apart from ``pytest_plugin`` so that loading the plugin (every pytest run of every project
that installs this library) imports none of the emulator until a fixture is used.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from .emulator import FalconEmulator

__all__ = ["EmulatedFalcon", "running_emulator"]


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
