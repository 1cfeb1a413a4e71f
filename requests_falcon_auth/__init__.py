"""CrowdStrike Falcon OAuth2 for ``requests``.

``session.auth = FalconAuth()`` authenticates every request to the Falcon API: a token fetched
lazily and cached, renewed before it expires, one transparent re-send on 401, revoked on close.

The names below are imported on first use, so importing a submodule (the pytest plugin, which
every pytest run of a project that installs this library loads) does not import requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .__version__ import __version__
from ._lazy import exports

if TYPE_CHECKING:
    from . import clouds
    from ._flow import BAD_TOKEN_RATE_LIMIT
    from .auth import FalconAuth
    from .cache import DEFAULT_RENEW_WINDOW, MemoryTokenCache, TokenCache
    from .errors import (
        ConfigurationError,
        CredentialsError,
        FalconAuthError,
        RateLimitError,
        RegionError,
        TokenEndpointError,
    )
    from .oauth2 import CLOSE_REVOKE_BUDGET, DEFAULT_TIMEOUT, OAuth2
    from .retry import FalconRetry
    from .session import FalconSession
    from .token import Token

__all__ = [
    "BAD_TOKEN_RATE_LIMIT",
    "CLOSE_REVOKE_BUDGET",
    "DEFAULT_RENEW_WINDOW",
    "DEFAULT_TIMEOUT",
    "ConfigurationError",
    "CredentialsError",
    "FalconAuth",
    "FalconAuthError",
    "FalconRetry",
    "FalconSession",
    "MemoryTokenCache",
    "OAuth2",
    "RateLimitError",
    "RegionError",
    "Token",
    "TokenCache",
    "TokenEndpointError",
    "__version__",
    "clouds",
]

# Where each exported name lives; "clouds" is a module of its own.
_HOMES = {
    "clouds": "clouds",
    "BAD_TOKEN_RATE_LIMIT": "_flow",
    "CLOSE_REVOKE_BUDGET": "oauth2",
    "DEFAULT_RENEW_WINDOW": "cache",
    "DEFAULT_TIMEOUT": "oauth2",
    "ConfigurationError": "errors",
    "CredentialsError": "errors",
    "FalconAuth": "auth",
    "FalconAuthError": "errors",
    "FalconRetry": "retry",
    "FalconSession": "session",
    "MemoryTokenCache": "cache",
    "OAuth2": "oauth2",
    "RateLimitError": "errors",
    "RegionError": "errors",
    "Token": "token",
    "TokenCache": "cache",
    "TokenEndpointError": "errors",
}

__getattr__, __dir__ = exports(__name__, _HOMES)
