"""The two wire operations of Falcon's OAuth2 service: issue a token, revoke a token.

``OAuth2`` knows the credentials, the cloud table and autodiscovery (308 + ``X-Cs-Region``);
it knows nothing of caching or of the requests it authenticates.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Final, Union
from urllib.parse import urljoin

import requests
from requests.__version__ import __version__ as _REQUESTS_VERSION
from requests.auth import AuthBase
from urllib3.exceptions import MaxRetryError

from .__version__ import __version__
from .clouds import AUTODISCOVER, ENTRY_REGION, CloudTable, check_base_url, normalize, origin_of
from .errors import (
    ConfigurationError,
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    RegionError,
    TokenEndpointError,
    parse_envelope,
)
from .retry import FalconRetry
from .token import DEFAULT_EXPIRES_IN, Clock, Token

__all__ = ["DEFAULT_TIMEOUT", "OAuth2", "Timeout"]

log = logging.getLogger(__name__)

Timeout = Union[float, tuple[float, float]]

# (connect, read) seconds. The token endpoint answers in well under a second; a read that
# takes 30 s is a hung connection, and every SDK that sets no timeout has hung in the field.
DEFAULT_TIMEOUT: Final[Timeout] = (10.0, 30.0)

_REDIRECTS: Final = frozenset({307, 308})
_CREDENTIAL_STATUSES: Final = frozenset({400, 401, 403})
_REDACTED: Final = "<redacted>"
# RFC 6750 section 2.1 b64token: what an Authorization header can carry unmangled.
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_DIGITS: Final = re.compile(r"[0-9]{1,10}")
# Falcon grants 30 minutes; anything past a day is junk, and would overflow clock arithmetic.
MAX_EXPIRES_IN: Final = 86400


class _SessionAuthOff(AuthBase):
    """Keeps a caller's ``session.auth`` (maybe our own FalconAuth) off the OAuth2 calls."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class OAuth2:
    """Falcon's OAuth2 service for one set of API client credentials.

    Args:
        client_id: the API client's id.
        client_secret: its secret.
        member_cid: for an MSSP parent, the child CID to act on behalf of.
        cloud: a region name (any common spelling) or ``"auto"`` to start at us-1 and follow
            CrowdStrike's redirect to the credentials' home region.
        base_url: a custom API base URL (a proxy or gateway); never rewritten by autodiscovery.
        clouds: a region table replacing CrowdStrike's (region name -> base URL).
        timeout: seconds, or (connect, read), for every call.
        session: a ``requests.Session`` to send through (proxies, verify, client certificates).
        user_agent: a product token to put before this library's in ``User-Agent``.
        retry: the policy for transient failures (connection errors, 5xx, 429); the calls
            are retried as POSTs whatever its ``allowed_methods``.
        clock: the monotonic clock that stamps tokens.

    Raises:
        ConfigurationError: missing credentials, an unknown cloud, or an unusable URL.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        member_cid: str | None = None,
        *,
        cloud: str = AUTODISCOVER,
        base_url: str | None = None,
        clouds: Mapping[str, str] | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        user_agent: str | None = None,
        retry: FalconRetry | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not client_id or not isinstance(client_id, str):
            raise ConfigurationError("client_id must be a non-empty string.")
        if not client_secret or not isinstance(client_secret, str):
            raise ConfigurationError("client_secret must be a non-empty string.")
        self.client_id = client_id
        self._secret = client_secret
        self.member_cid = member_cid or None
        self.clouds = clouds if isinstance(clouds, CloudTable) else CloudTable(clouds)
        self.timeout = timeout
        # The token and revoke calls are POSTs that are safe to repeat, whatever methods the
        # given policy allows for API calls.
        self._retry = (retry or FalconRetry()).new(allowed_methods=None)
        self._clock = clock
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        product = f"requests-falcon-auth/{__version__} python-requests/{_REQUESTS_VERSION}"
        self.user_agent = f"{user_agent} {product}" if user_agent else product
        self._lock = threading.Lock()
        if base_url is not None:
            self.cloud = None
            self.autodiscover = False
            self._base_url = check_base_url(base_url)
            self._region: str | None = self.clouds.region_of(self._base_url)
        else:
            self.cloud = normalize(cloud)
            self.autodiscover = self.cloud == AUTODISCOVER
            start = ENTRY_REGION if self.autodiscover else self.cloud
            if self.autodiscover and ENTRY_REGION not in self.clouds:
                raise ConfigurationError(
                    "Autodiscovery starts at us-1, which the cloud table lacks: "
                    "add 'us-1' to clouds= or name the cloud."
                )
            self._base_url = self.clouds.base_url(start)
            self._region = start
        self.entry_url = self._base_url

    @property
    def base_url(self) -> str:
        """The API base URL: the home region's once autodiscovery has found it."""
        return self._base_url

    @property
    def region(self) -> str | None:
        """The canonical region name, when known."""
        return self._region

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, base_url={self._base_url!r}, "
            f"region={self._region!r}, client_secret=<hidden>)"
        )

    def __getstate__(self) -> None:
        raise TypeError(
            "OAuth2 holds a client secret and cannot be pickled; build it in the other process."
        )

    def close(self) -> None:
        """Closes the connection pool this object made (never a session it was given)."""
        if self._owns_session:
            self._session.close()

    def token(self) -> Token:
        """Asks Falcon for a new access token (operation ``oauth2AccessToken``).

        Returns:
            The token, stamped with the monotonic time just before the request went out.

        Raises:
            CredentialsError: Falcon refused the credentials (400/401/403).
            RegionError: the credentials live in another cloud than the one named.
            RateLimitError: Falcon kept answering 429.
            TokenEndpointError: 5xx, network failures, or an answer that is not a token.
        """
        form = {"client_id": self.client_id, "client_secret": self._secret}
        if self.member_cid:
            form["member_cid"] = self.member_cid
        url = f"{self._base_url}/oauth2/token"
        issued_at = self._clock()
        response = self._post(url, form, operation="token request")
        if response.status_code in _REDIRECTS:
            url = self._follow_region_redirect(url, response)
            response = self._post(url, form, operation="token request")
            if response.status_code in _REDIRECTS:
                raise RegionError(
                    "Falcon redirected the token request twice; not following. Name the "
                    "cloud explicitly (cloud= or FALCON_CLOUD).",
                    **self._context(response),
                )
        if not 200 <= response.status_code < 300:
            raise self._error(response, "token request")
        token = self._parse_token(response, url, issued_at)
        log.info(
            "Fetched a Falcon token: region=%s expires_in=%s trace_id=%s",
            token.region,
            token.expires_in,
            self._trace_id(response),
        )
        return token

    oauth2AccessToken = token

    def revoke(self, token: Token | str) -> None:
        """Revokes a token at its home region (operation ``oauth2RevokeToken``).

        Revoking an unknown or already revoked token succeeds, as on the real service.

        Raises:
            CredentialsError: Falcon refused the client credentials.
            TokenEndpointError: 5xx, network failures.
        """
        if isinstance(token, Token):
            value, base_url = token.access_token, token.base_url
        else:
            value, base_url = token, self._base_url
        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode("ascii")
        response = self._post(
            f"{base_url}/oauth2/revoke",
            {"token": value, "client_id": self.client_id},
            operation="token revocation",
            authorization=f"basic {basic}",
        )
        if response.status_code != 200:
            raise self._error(response, "token revocation")
        log.info(
            "Revoked a Falcon token: region=%s trace_id=%s",
            self.clouds.region_of(base_url) or self._region,
            self._trace_id(response),
        )

    oauth2RevokeToken = revoke

    def _post(
        self,
        url: str,
        form: Mapping[str, str],
        *,
        operation: str,
        authorization: str | None = None,
    ) -> requests.Response:
        """POSTs a form, retrying transient failures under the retry policy."""
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        retry = self._retry
        while True:
            try:
                response = self._session.post(
                    url,
                    data=form,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    auth=_SessionAuthOff(),
                    # A session's own CA bundle must win over REQUESTS_CA_BUNDLE, which
                    # requests would otherwise let override it (psf/requests#3829).
                    verify=self._session.verify,
                )
            except requests.exceptions.SSLError as exc:
                raise TokenEndpointError(
                    f"TLS verification failed for the Falcon {operation} to {url}: check the "
                    "CA bundle (session.verify, REQUESTS_CA_BUNDLE) and any intercepting proxy.",
                    region=self._region,
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                try:
                    retry = retry.increment(method="POST", url=url, error=exc)
                except MaxRetryError:
                    raise TokenEndpointError(
                        f"Could not reach the Falcon {operation} endpoint at {url}: "
                        f"{type(exc).__name__}. Check the network, proxy settings and cloud.",
                        region=self._region,
                    ) from exc
                log.warning("Falcon %s failed (%s); retrying", operation, type(exc).__name__)
                retry.sleep()
                continue
            except (requests.RequestException, ValueError) as exc:
                # ValueError: requests parses a redirect's Location even when not following it.
                raise TokenEndpointError(
                    f"The Falcon {operation} to {url} failed: {type(exc).__name__} (an "
                    "unusable answer, such as a malformed redirect); a proxy may be "
                    "intercepting the call.",
                    region=self._region,
                ) from exc
            if not retry.is_retry("POST", response.status_code, _has_retry_after(response)):
                return response
            try:
                retry = retry.increment(method="POST", url=url, response=response.raw)
            except MaxRetryError:
                return response
            log.warning(
                "Falcon %s answered %s (trace_id=%s); retrying",
                operation,
                response.status_code,
                self._trace_id(response),
            )
            response.close()
            retry.sleep(response.raw)

    def _follow_region_redirect(self, url: str, response: requests.Response) -> str:
        """Checks a 308 from autodiscovery and returns the URL to re-post to."""
        named = _region_header(response)
        location = response.headers.get("Location")
        if not self.autodiscover:
            if named:
                advice = f"Set cloud={named!r} (or FALCON_CLOUD={named})."
            else:
                advice = "Name it with cloud= (or FALCON_CLOUD), or use cloud='auto'."
            raise RegionError(
                f"These credentials belong to Falcon cloud {named or _host_of(location)}, "
                f"not {self._base_url}. {advice}",
                **self._context(response),
            )
        try:
            target = urljoin(url, location) if location else None
        except ValueError:
            target = None
        region = self.clouds.region_of(target) if target else None
        if target is None or region is None:
            host = _host_of(target)
            raise RegionError(
                f"Falcon's token endpoint redirected to {host}, which is not a Falcon host in the "
                "cloud table; not sending credentials there. Name the cloud, or add the host to "
                "clouds= if it is your gateway.",
                **self._context(response),
            )
        with self._lock:
            self._base_url = self.clouds[region]
            self._region = region
        log.info("Autodiscovered Falcon cloud %s (%s)", region, self._base_url)
        return target

    def _parse_token(self, response: requests.Response, url: str, issued_at: float) -> Token:
        """Turns a 2xx answer into a Token, or raises TokenEndpointError."""
        try:
            document = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            document = None
        if not isinstance(document, dict):
            raise TokenEndpointError(
                f"Falcon answered the token request with {response.status_code} but no JSON "
                "object; a proxy may be intercepting the call (check base_url and proxies).",
                **self._context(response),
            )
        access_token = document.get("access_token")
        if not isinstance(access_token, str) or not _BEARER_TOKEN.fullmatch(access_token):
            raise TokenEndpointError(
                f"Falcon answered the token request with {response.status_code} but no "
                "usable access_token (RFC 6750 token characters); a proxy may be intercepting "
                "the call.",
                **self._context(response),
            )
        expires_in = document.get("expires_in", DEFAULT_EXPIRES_IN)
        if isinstance(expires_in, str) and _DIGITS.fullmatch(expires_in.strip(" ")):
            expires_in = int(expires_in)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise TokenEndpointError(
                "Falcon's token answer has an invalid expires_in "
                f"({type(expires_in).__name__}); expected a positive number of seconds.",
                **self._context(response),
            )
        if expires_in > MAX_EXPIRES_IN:
            log.warning(
                "Falcon granted a token for %s s; treating it as %s s", expires_in, MAX_EXPIRES_IN
            )
            expires_in = MAX_EXPIRES_IN
        token_type = document.get("token_type")
        region = self.clouds.region_of(url) or _region_header(response) or self._region
        return Token(
            access_token=access_token,
            token_type=token_type if isinstance(token_type, str) else "bearer",
            expires_in=expires_in,
            region=region,
            base_url=self._base_url,
            issued_at=issued_at,
        )

    def _context(self, response: requests.Response) -> dict[str, Any]:
        envelope = parse_envelope(response.content, response.headers)
        return {
            "status_code": response.status_code,
            "trace_id": self._redact(envelope.trace_id) if envelope.trace_id else None,
            "errors": tuple(self._redact(m) for m in envelope.messages),
            "region": self._region,
        }

    def _trace_id(self, response: requests.Response) -> str | None:
        value = response.headers.get("X-Cs-Traceid")
        return self._redact(value) if value else None

    def _redact(self, text: str) -> str:
        # The real service never echoes a secret; a misbehaving proxy might.
        return text.replace(self._secret, _REDACTED) if self._secret else text

    def _error(self, response: requests.Response, operation: str) -> FalconAuthError:
        """The FalconAuthError that a non-success answer stands for, with advice."""
        context = self._context(response)
        status = response.status_code
        said = "; ".join(context["errors"]) or f"HTTP {status}"
        prefix = f"Falcon refused the {operation} ({status}: {said})."
        if status == 429:
            retry_after = self._retry.get_retry_after(response.raw) if response.raw else None
            wait = f"wait {retry_after:.0f} s" if retry_after is not None else "wait a minute"
            return RateLimitError(
                f"{prefix} Too many calls from this address: {wait} before asking again, and "
                "reuse tokens (one FalconAuth per process, or a shared token cache).",
                retry_after=retry_after,
                **context,
            )
        if status in _CREDENTIAL_STATUSES:
            return CredentialsError(f"{prefix} {self._credentials_advice(said)}", **context)
        if status >= 500:
            return TokenEndpointError(
                f"{prefix} This is a failure on CrowdStrike's side and it persisted through "
                "retries; try again later and quote the trace id if you contact support.",
                **context,
            )
        return TokenEndpointError(f"{prefix} Unexpected answer from the token endpoint.", **context)

    def _credentials_advice(self, said: str) -> str:
        lowered = said.lower()
        if "customer id" in lowered:
            return "Check the member CID (FALCON_MEMBER_CID): this API client cannot act for it."
        if "authorization failed" in lowered:
            return (
                "The API client may not be used from this source IP (its IP allow-list), "
                "or lacks the needed scope."
            )
        if "clientid" in lowered and self.autodiscover:
            return (
                "Check the client id (FALCON_CLIENT_ID). GovCloud credentials are never "
                "autodiscovered: name the cloud (cloud='us-gov-1' or FALCON_CLOUD=us-gov-1)."
            )
        if "clientid" in lowered:
            return "Check the client id (FALCON_CLIENT_ID) and that it belongs to this cloud."
        return "Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET)."


def _has_retry_after(response: requests.Response) -> bool:
    return bool(
        response.headers.get("Retry-After") or response.headers.get("X-Ratelimit-Retryafter")
    )


def _host_of(url: str | None) -> str:
    origin = origin_of(url) if url else None
    return origin.host if origin is not None else "an unknown host"


def _region_header(response: requests.Response) -> str | None:
    """The canonical region named by ``X-Cs-Region``, ignoring junk."""
    value = response.headers.get("X-Cs-Region")
    if not value:
        return None
    try:
        region = normalize(value)
    except ConfigurationError:
        log.debug("Ignoring unknown X-Cs-Region %r", value[:40])
        return None
    return None if region == AUTODISCOVER else region
