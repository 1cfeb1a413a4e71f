"""A local emulator of CrowdStrike Falcon's OAuth2 service and API gateway, for tests.

``with FalconEmulator() as emu:`` serves us-1, us-2, eu-1 and us-gov-1 on loopback;
``emu.clouds`` is the region table to hand the client. Behind its gateway it serves sample
hosts, collections added with ``emu.add_collection`` and handlers (:class:`ApiCall` in,
:class:`ApiAnswer` out) added with ``emu.add_handler``. A :class:`ManualClock` handed to both
the emulator and the client moves time on by hand. The pytest fixtures ``falcon_emulator`` and
``falcon_auth`` live in :mod:`requests_falcon_auth.testing.pytest_plugin`.

The names below are imported on first use, so loading the pytest plugin (a submodule, which
pytest loads in every project that installs this library) does not import the emulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import exports

if TYPE_CHECKING:
    from ._api_call import ApiAnswer, ApiCall
    from ._clock import ManualClock
    from ._faults import TokenGate
    from ._limits import RateLimits
    from ._records import TOKEN_OUTCOMES, Counters, RequestLogEntry
    from ._state import ApiClient
    from .emulator import DEFAULT_REGIONS, FalconEmulator

__all__ = [
    "DEFAULT_REGIONS",
    "TOKEN_OUTCOMES",
    "ApiAnswer",
    "ApiCall",
    "ApiClient",
    "Counters",
    "FalconEmulator",
    "ManualClock",
    "RateLimits",
    "RequestLogEntry",
    "TokenGate",
]

# Where each exported name lives.
_HOMES = {
    "DEFAULT_REGIONS": "emulator",
    "TOKEN_OUTCOMES": "_records",
    "ApiAnswer": "_api_call",
    "ApiCall": "_api_call",
    "ApiClient": "_state",
    "Counters": "_records",
    "FalconEmulator": "emulator",
    "ManualClock": "_clock",
    "RateLimits": "_limits",
    "RequestLogEntry": "_records",
    "TokenGate": "_faults",
}

__getattr__, __dir__ = exports(__name__, _HOMES)
