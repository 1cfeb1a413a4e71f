"""CrowdStrike Falcon OAuth2 for ``requests``.

``session.auth = FalconAuth()`` authenticates every request to the Falcon API: a token fetched
lazily and cached, renewed before it expires, one transparent re-send on 401, revoked on close.
"""

from __future__ import annotations

from . import clouds
from .__version__ import __version__
from .auth import FalconAuth
from .cache import MemoryTokenCache, TokenCache
from .errors import (
    ConfigurationError,
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    RegionError,
    TokenEndpointError,
)
from .oauth2 import OAuth2
from .retry import FalconRetry
from .session import FalconSession
from .token import Token

__all__ = [
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
