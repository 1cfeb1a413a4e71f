"""Where the Falcon API lives for one set of credentials, shared by routing and token sources.

The cloud table, the cloud named (or autodiscovery), and the base URL and region that the
calls go to. Autodiscovery moves the home once, when the first token answer names the
credentials' region; the request routing, the token calls and a pre-issued token all read this
one value, so none can go on using a home the others have left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from .clouds import AUTODISCOVER, ENTRY_REGION, CloudTable, check_base_url, normalize
from .errors import ConfigurationError

__all__ = ["ApiHome"]


class _Place(NamedTuple):
    base_url: str
    region: str | None


class ApiHome:
    """The API base URL and region, and how they were chosen.

    Args:
        cloud: a region name (any common spelling) or ``"auto"`` to start at us-1 and follow
            CrowdStrike's redirect to the credentials' home region.
        base_url: a custom API base URL (a proxy or gateway); never moved by autodiscovery.
        clouds: a region table replacing CrowdStrike's (region name -> base URL).

    Raises:
        ConfigurationError: an unknown cloud, an unusable URL, or autodiscovery with a cloud
            table that lacks its entry point.
    """

    def __init__(
        self,
        *,
        cloud: str = AUTODISCOVER,
        base_url: str | None = None,
        clouds: Mapping[str, str] | None = None,
    ) -> None:
        self.clouds = clouds if isinstance(clouds, CloudTable) else CloudTable(clouds)
        if base_url is not None:
            self.cloud: str | None = None
            self.autodiscover = False
            checked = check_base_url(base_url)
            self._place = _Place(checked, self.clouds.region_of(checked))
        else:
            self.cloud = normalize(cloud)
            self.autodiscover = self.cloud == AUTODISCOVER
            start = ENTRY_REGION if self.autodiscover else self.cloud
            if self.autodiscover and ENTRY_REGION not in self.clouds:
                raise ConfigurationError(
                    "Autodiscovery starts at us-1, which the cloud table lacks: "
                    "add 'us-1' to clouds= or name the cloud."
                )
            self._place = _Place(self.clouds.base_url(start), start)
        self.entry_url = self._place.base_url

    @property
    def base_url(self) -> str:
        """The API base URL (the home region's, once autodiscovery has found it)."""
        return self._place.base_url

    @property
    def region(self) -> str | None:
        """The canonical region name, when known."""
        return self._place.region

    def move_to(self, region: str) -> None:
        """Autodiscovery found the credentials' home: ``region``, a name in the cloud table."""
        self._place = _Place(self.clouds[region], region)  # one assignment: readers never mix

    def __repr__(self) -> str:
        return f"ApiHome(base_url={self.base_url!r}, region={self.region!r})"
