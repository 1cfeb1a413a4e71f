"""Falcon's region names, their spellings and CrowdStrike's API base URLs: names only.

Split from :mod:`~requests_falcon_auth.clouds` (which re-exports every name here) so that
resolving a region does not import the URL parsers, and with them urllib3: ``falcon-auth
token`` finds a cached token by its region's base URL before it knows whether it needs the
HTTP stack at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from .errors import ConfigurationError

__all__ = ["AUTODISCOVER", "AUTODISCOVERABLE", "DEFAULT_CLOUDS", "ENTRY_REGION", "normalize"]

AUTODISCOVER: Final = "auto"
ENTRY_REGION: Final = "us-1"

DEFAULT_CLOUDS: Final[Mapping[str, str]] = {
    "us-1": "https://api.crowdstrike.com",
    "us-2": "https://api.us-2.crowdstrike.com",
    "eu-1": "https://api.eu-1.crowdstrike.com",
    "us-gov-1": "https://api.laggar.gcw.crowdstrike.com",
    "us-gov-2": "https://api.us-gov-2.crowdstrike.mil",
    "us-3": "https://api.us-3.crowdstrike.com",
}

# Regions whose credentials us-1 redirects to their home (308 + X-Cs-Region). GovCloud
# credentials never are: the cloud must be named. us-3 is too new to tell (only gofalcon lists it).
AUTODISCOVERABLE: Final = frozenset({"us-1", "us-2", "eu-1"})

_SPELLINGS: Final[Mapping[str, str]] = {
    "us1": "us-1",
    "us2": "us-2",
    "eu1": "eu-1",
    "us3": "us-3",
    "usgov1": "us-gov-1",
    "gov1": "us-gov-1",
    "usgov2": "us-gov-2",
    "gov2": "us-gov-2",
    "auto": AUTODISCOVER,
    "autodiscover": AUTODISCOVER,
}


def normalize(name: str) -> str:
    """Returns the canonical name of a cloud spelling (``US1`` -> ``us-1``, ``auto``).

    Raises:
        ConfigurationError: the name is no Falcon cloud.
    """
    folded = name.strip().lower().replace("-", "").replace("_", "")
    try:
        return _SPELLINGS[folded]
    except KeyError:
        known = ", ".join([*DEFAULT_CLOUDS, AUTODISCOVER])
        raise ConfigurationError(
            f"Unknown Falcon cloud {name!r}: use one of {known} "
            "(FALCON_CLOUD takes the same names)."
        ) from None
