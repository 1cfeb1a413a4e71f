"""A local emulator of CrowdStrike Falcon's OAuth2 service and API gateway, for tests.

``with FalconEmulator() as emu:`` serves us-1, us-2, eu-1 and us-gov-1 on loopback;
``emu.clouds`` is the region table to hand the client. The pytest fixtures ``falcon_emulator``
and ``falcon_auth`` live in :mod:`requests_falcon_auth.testing.pytest_plugin`.
"""

from __future__ import annotations

from ._faults import TokenGate
from ._limits import RateLimits
from ._records import TOKEN_OUTCOMES, Counters, RequestLogEntry
from ._service import ApiClient
from .emulator import DEFAULT_REGIONS, FalconEmulator

__all__ = [
    "DEFAULT_REGIONS",
    "TOKEN_OUTCOMES",
    "ApiClient",
    "Counters",
    "FalconEmulator",
    "RateLimits",
    "RequestLogEntry",
    "TokenGate",
]
