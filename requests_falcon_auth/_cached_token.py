"""``falcon-auth token`` served from the host's token cache, without importing the HTTP stack.

A shell loop running ``curl -H "Authorization: Bearer $(falcon-auth token)"`` pays for the
command's start on every call, and a fresh token in the
:class:`~requests_falcon_auth.filecache.FileTokenCache` needs no token request: nothing on its
way needs requests or urllib3. This module finds it through modules that import neither (the
region names, the cache key, the sealed format, the file store); the CLI imports the HTTP
stack only when this finds nothing. Whatever it cannot decide alone (no token, a stale one, an
unknown cloud, a base URL FalconAuth would refuse) is a miss, and FalconAuth decides, with its
own checks and messages: this path only ever answers what FalconAuth would have answered.
"""

from __future__ import annotations

from typing import NamedTuple

from ._regions import AUTODISCOVER, DEFAULT_CLOUDS, ENTRY_REGION, normalize
from .cache import CacheKey, Timing
from .errors import ConfigurationError
from .filecache import FileTokenCache
from .token import Token

__all__ = ["Cached", "cached_fresh", "entry_url"]


class Cached(NamedTuple):
    """A token before its renew window, from the cache, and its seconds left."""

    token: Token
    remaining: float


def entry_url(cloud: str | None, base_url: str | None) -> str | None:
    """The URL FalconAuth keys these settings' cache entry by; None for an unknown cloud.

    FalconAuth keys by ``check_base_url(base_url)``: the URL without trailing slashes, once
    it passes the checks (which need urllib3's parser). A URL that fails them was never a key,
    so taking it unchecked here can only miss, and FalconAuth then refuses it.
    """
    if base_url is not None:
        return base_url.rstrip("/")
    try:
        region = normalize(cloud or AUTODISCOVER)
    except ConfigurationError:
        return None  # FalconAuth says which names it takes
    return DEFAULT_CLOUDS[ENTRY_REGION if region == AUTODISCOVER else region]


def cached_fresh(
    cache: FileTokenCache,
    client_id: str,
    client_secret: str,
    member_cid: str | None,
    *,
    cloud: str | None,
    base_url: str | None,
) -> Cached | None:
    """The token FalconAuth(...) with these settings and ``cache`` would serve without a token
    request, when it is before its renew window; None when it would have to ask Falcon."""
    url = entry_url(cloud, base_url)
    if url is None:
        return None
    key = CacheKey.for_credentials(url, client_id, client_secret, member_cid)
    timing = Timing()  # FalconAuth's own: the CLI sets neither its clock nor its renew window
    cache.bind(timing)
    token = cache.get(key)
    if token is None or not timing.fresh(token):
        return None
    return Cached(token, max(0.0, token.expires_at - timing.clock()))
