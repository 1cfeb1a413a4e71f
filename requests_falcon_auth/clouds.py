"""Falcon clouds (regions): their names, spellings and API base URLs.

A :class:`CloudTable` maps canonical region names to base URLs. The default is CrowdStrike's;
a custom table (a gateway per region, or emulated regions on loopback in tests) replaces it
whole, and "a known Falcon host" always means a host of the table in use. The names alone
(``normalize``, ``DEFAULT_CLOUDS``) live in ``_regions``, which imports no URL parser.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from urllib3.util import parse_url

from ._regions import AUTODISCOVER, AUTODISCOVERABLE, DEFAULT_CLOUDS, ENTRY_REGION, normalize
from ._scope import Origin, Scope, is_loopback_host, origin_of, scope_of
from .errors import ConfigurationError

__all__ = [
    "AUTODISCOVER",
    "AUTODISCOVERABLE",
    "DEFAULT_CLOUDS",
    "ENTRY_REGION",
    "CloudTable",
    "Origin",
    "check_base_url",
    "is_loopback_host",
    "normalize",
    "origin_of",
]


def check_base_url(url: str, *, what: str = "base_url") -> str:
    """Validates an API base URL and returns it without a trailing slash.

    Raises:
        ConfigurationError: not an absolute URL, or plain http to anything but loopback.
    """
    origin = origin_of(url)
    if origin is None:
        raise ConfigurationError(f"{what} must be an absolute https:// URL, got {url!r}.")
    parts = parse_url(url)
    if parts.auth is not None or parts.query is not None or parts.fragment is not None:
        raise ConfigurationError(
            f"{what} must be a scheme, host, optional port and optional path prefix, without "
            "user info, query or fragment."
        )
    if origin.scheme == "http" and not is_loopback_host(origin.host):
        raise ConfigurationError(
            f"{what} {url!r} uses plain http: tokens are sent only over https "
            "(plain http is allowed for loopback addresses, for local testing)."
        )
    return url.rstrip("/")


class CloudTable(Mapping[str, str]):
    """An immutable map of canonical region name -> API base URL, with reverse lookups."""

    def __init__(self, clouds: Mapping[str, str] | None = None) -> None:
        source = DEFAULT_CLOUDS if clouds is None else clouds
        if not source:
            raise ConfigurationError("clouds must name at least one region and its base URL.")
        table: dict[str, str] = {}
        for name, url in source.items():
            region = normalize(name)
            if region == AUTODISCOVER:
                raise ConfigurationError("'auto' is not a region: clouds maps regions to URLs.")
            table[region] = check_base_url(url, what=f"clouds[{name!r}]")
        self._urls = table
        # Longest path prefix first, so a gateway's /eu-1 wins over its bare origin.
        self._scopes: list[tuple[Scope, str]] = sorted(
            ((_scope(url), region) for region, url in table.items()),
            key=lambda entry: -len(entry[0].prefix),
        )

    def __getitem__(self, region: str) -> str:
        return self._urls[region]

    def __iter__(self) -> Iterator[str]:
        return iter(self._urls)

    def __len__(self) -> int:
        return len(self._urls)

    def __repr__(self) -> str:
        return f"CloudTable({self._urls!r})"

    def base_url(self, region: str) -> str:
        """The base URL of a region (any spelling).

        Raises:
            ConfigurationError: the region is not in this table.
        """
        canonical = normalize(region)
        try:
            return self._urls[canonical]
        except KeyError:
            raise ConfigurationError(
                f"Falcon cloud {canonical!r} is not in the cloud table in use "
                f"({', '.join(self._urls)}): add it to clouds= or name another cloud."
            ) from None

    def region_of(self, url: str, origin: Origin | None = None) -> str | None:
        """The region whose base URL covers ``url`` (its origin and path prefix), if any.

        Args:
            url: the URL to place.
            origin: ``origin_of(url)``, when the caller has it already.
        """
        origin = origin if origin is not None else origin_of(url)
        if origin is None:
            return None
        for scope, region in self._scopes:
            if scope.covers(url, origin):
                return region
        return None

    def is_known(self, url: str) -> bool:
        """True when ``url`` points at a host of this table (where a token may go)."""
        return self.region_of(url) is not None


def _scope(base_url: str) -> Scope:
    scope = scope_of(base_url)
    if scope is None:  # check_base_url has vouched for the URL
        raise ConfigurationError(f"Unusable base URL {base_url!r}.")
    return scope
