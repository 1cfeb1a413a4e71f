"""Where unset settings come from: the ``FALCON_*`` environment variables every Falcon SDK reads.

Kept apart from ``auth`` (which imports requests) so that ``falcon-auth token`` can resolve the
credentials, find their token in the cache and print it without importing the HTTP stack.
"""

from __future__ import annotations

import os
from typing import Final

from .errors import ConfigurationError

__all__ = ["ENVIRONMENT", "from_env", "resolve_credentials"]

# Where unset arguments come from: the convention every Falcon SDK follows.
ENVIRONMENT: Final = {
    "client_id": "FALCON_CLIENT_ID",
    "client_secret": "FALCON_CLIENT_SECRET",
    "member_cid": "FALCON_MEMBER_CID",
    "cloud": "FALCON_CLOUD",
}


def from_env(value: str | None, name: str) -> str | None:
    """``value`` when given, else the setting's environment variable (None when unset or empty)."""
    if value is not None:
        return value
    return os.environ.get(ENVIRONMENT[name]) or None


def resolve_credentials(
    client_id: str | None,
    client_secret: str | None,
    *,
    hint: str = "pass client_id= and client_secret=",
) -> tuple[str, str]:
    """The credentials from arguments, else the environment.

    Raises:
        ConfigurationError: one is missing; the message names the environment variables.
    """
    client_id = from_env(client_id, "client_id")
    client_secret = from_env(client_secret, "client_secret")
    if client_id and client_secret:
        return client_id, client_secret
    missing = [
        ENVIRONMENT[name]
        for name, value in (("client_id", client_id), ("client_secret", client_secret))
        if not value
    ]
    raise ConfigurationError(
        f"Falcon API credentials are missing: {hint}, or set "
        f"{' and '.join(missing)} in the environment."
    )
