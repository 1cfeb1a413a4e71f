"""FalconSession: a ``requests.Session`` that speaks Falcon paths and revokes on close."""

from __future__ import annotations

import re
from typing import Any, Final

import requests

from . import _checks
from ._scope import direct_proxies
from .auth import FalconAuth
from .oauth2 import Timeout

__all__ = ["DEFAULT_API_TIMEOUT", "FalconSession"]

# (connect, read) seconds for API calls. requests waits forever by default, and a call that
# hangs is the commonest complaint about Falcon clients; 60 s without a byte is a dead call.
DEFAULT_API_TIMEOUT: Final[Timeout] = (10.0, 60.0)

# A scheme (RFC 3986 section 3.1) and "//" at the start: a "://" in a query does not count.
_ABSOLUTE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class _UseApiTimeout:
    """``timeout=``'s default, the session's ``api_timeout``: None already means no timeout."""


_USE_API_TIMEOUT: Final = _UseApiTimeout()


class FalconSession(requests.Session):
    """A session with FalconAuth attached and API paths relative to the home region.

    ``s.get("/sensors/queries/installers/v1")`` goes to ``auth.base_url`` as it is after
    autodiscovery; absolute URLs pass through untouched (and get a token only if they point at
    the API). ``close()`` and ``with`` revoke the token (one fetched here: a pre-issued
    ``access_token=`` is never revoked, see FalconAuth). Every call has a timeout unless you
    say otherwise: ``api_timeout`` for the session, ``timeout=`` for one call (``None``: wait
    as long as it takes). Calls to a loopback URL (the emulator, a local gateway) never go
    through a proxy: over plain http the proxy would see the token.

    Args:
        auth: a FalconAuth to use; when omitted one is built from ``auth_kwargs``.
        api_timeout: seconds, or (connect, read), for the API calls made through this session;
            ``None`` for no timeout. The token calls' own timeout is FalconAuth's ``timeout=``.
        **auth_kwargs: FalconAuth's arguments (credentials, cloud, cache...), or a token
            issued elsewhere: ``FalconSession(access_token=..., cloud="us-2")``.

    Raises:
        ConfigurationError: as FalconAuth, or an unusable ``api_timeout``.
        TypeError: both ``auth`` and FalconAuth arguments were given.
    """

    auth: FalconAuth

    def __init__(
        self,
        auth: FalconAuth | None = None,
        *,
        api_timeout: Timeout | None = DEFAULT_API_TIMEOUT,
        **auth_kwargs: Any,
    ) -> None:
        if auth is not None and auth_kwargs:
            raise TypeError("Pass a FalconAuth or FalconAuth's arguments, not both.")
        if api_timeout is not None:
            api_timeout = _checks.timeout_pair(api_timeout, "api_timeout")
        super().__init__()
        self.api_timeout = api_timeout
        self.auth = auth if auth is not None else FalconAuth(**auth_kwargs)

    # requests.Session.request's own parameters, so that none is found by its position; those
    # handed over as they are keep requests' types, which it does not export (requests._types).
    def request(  # noqa: PLR0917 -- the signature is requests'
        self,
        method: str,
        url: str | bytes,
        params: Any = None,
        data: Any = None,
        headers: Any = None,
        cookies: Any = None,
        files: Any = None,
        auth: Any = None,
        timeout: float | tuple[float | None, float | None] | _UseApiTimeout | None = (
            _USE_API_TIMEOUT
        ),
        allow_redirects: bool = True,
        proxies: Any = None,
        hooks: Any = None,
        stream: bool | None = None,
        verify: Any = None,
        cert: Any = None,
        json: Any = None,
    ) -> requests.Response:
        """As ``requests.Session.request``; a URL without a scheme is an API path, and
        ``timeout`` is the session's ``api_timeout`` unless given."""
        if isinstance(timeout, _UseApiTimeout):
            timeout = self.api_timeout
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        if not _ABSOLUTE.match(url):
            # Discovery first, so the path lands on the home region, not on us-1.
            self.auth.get_token()
            url = f"{self.auth.base_url}/{url.lstrip('/')}"
        direct = direct_proxies(url, self.proxies)
        if direct is not None:  # the token never goes through a proxy in clear
            proxies = direct
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            cookies=cookies,
            files=files,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
            proxies=proxies,
            hooks=hooks,
            stream=stream,
            verify=verify,
            cert=cert,
            json=json,
        )

    def close(self) -> None:
        """Closes the connection pools and revokes the token (never raises for the revoke)."""
        try:
            super().close()
        finally:
            self.auth.close()
