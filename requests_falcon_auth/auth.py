"""FalconAuth: the credentials, the token's lifecycle, and the ``requests`` driver.

The token engine (cache, single flight, renewal) is ``_provider.py``; what one request's
authentication does (scope, attach, one re-send after a rejection) is ``_flow.py``. Both know no
HTTP library. The requests driver here answers the flow's steps within requests' contract:
``__call__`` returns the prepared request, and a per-request response hook returns a
replacement response or None (as ``HTTPDigestAuth``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlparse

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import UnrewindableBodyError
from requests.utils import requote_uri, rewind_body

from . import _checks
from ._environment import ENVIRONMENT, resolve_credentials
from ._environment import from_env as _from_env
from ._flow import Flow, Reply, Resend, Routing, Step, advance, carries
from ._home import ApiHome
from ._port import Port
from ._ratelimit import (
    DEFAULT_RATE_LIMIT_WAIT,
    FALCON_WINDOW,
    RateBudget,
    RateLimitStats,
    account_of,
    token_budget,
)
from ._sources import CANNOT_REVOKE, FetchedTokens, IssuedToken, TokenSource
from .cache import DEFAULT_RENEW_WINDOW, CacheKey, MemoryTokenCache, TokenCache
from .clouds import AUTODISCOVER, CloudTable
from .errors import ConfigurationError, FalconAuthError
from .oauth2 import DEFAULT_TIMEOUT, OAuth2, Timeout
from .retry import FalconRetry
from .token import Clock, Token

__all__ = [
    "DEFAULT_RENEW_WINDOW",
    "ENVIRONMENT",
    "FalconAuth",
    "resolve_credentials",
]

log = logging.getLogger(__name__)


class FalconAuth(AuthBase):
    """Authenticates ``requests`` calls to the CrowdStrike Falcon API.

    ``session.auth = FalconAuth()`` is all it takes: the first request to the API fetches a
    token, later ones reuse it, it is renewed ahead of expiry, a 401 gets one fresh token and one
    transparent re-send, and ``close()`` revokes it. Safe to share between threads.

    A token issued elsewhere (by another service, a vault, ``falcon-auth token``) is used with
    ``FalconAuth(access_token=..., cloud="us-2")`` or ``base_url=...``, as falconpy's
    ``access_token=``. It is attached and scoped like a fetched one, and used until the API
    rejects it or ``expires_in`` runs out; then requests raise
    :class:`~requests_falcon_auth.CredentialsError`: with no secret nothing can be renewed.
    No token request is ever made, and it is never revoked (Falcon's revoke needs the
    client's id and secret). The credentials in the environment
    (``FALCON_CLIENT_ID``, ``FALCON_CLIENT_SECRET``, ``FALCON_MEMBER_CID``) are not read: the
    token alone decides who calls; ``FALCON_CLOUD`` still names the cloud.

    Args:
        client_id: API client id; defaults to ``FALCON_CLIENT_ID``.
        client_secret: API client secret; defaults to ``FALCON_CLIENT_SECRET``.
        access_token: a token issued elsewhere, instead of client_id and client_secret; needs
            ``cloud`` (not ``"auto"``) or ``base_url``, and excludes ``member_cid``, ``cache``
            and ``revoke_on_close=True``. The token-call settings (``renew_window``,
            ``timeout``, ``session``, ``retry``, ``user_agent``) have nothing to act on.
        expires_in: seconds from now until ``access_token`` expires, when known; without it
            the token is used until the API rejects it.
        member_cid: child CID for MSSP parents; defaults to ``FALCON_MEMBER_CID``.
        cloud: region name or ``"auto"``; defaults to ``FALCON_CLOUD``, then ``"auto"``.
        base_url: custom API base URL (gateway, proxy); never rewritten by autodiscovery.
        clouds: region table replacing CrowdStrike's (region -> base URL).
        renew_window: seconds before expiry from which the token is renewed.
        timeout: seconds, or (connect, read), for the token and revoke calls.
        session: ``requests.Session`` for the token and revoke calls (proxies, verify, certs).
        cache: a token store implementing :class:`~requests_falcon_auth.cache.TokenCache`;
            share one between FalconAuth objects to share tokens.
        user_agent: product token to put before this library's in ``User-Agent``.
        revoke_on_close: revoke tokens this process fetched on ``close()``; defaults to True,
            or False with a cache shared across processes.
        retry: retry policy for transient token-endpoint failures.
        rate_limit_wait: the most seconds one API call may wait in all for the account's
            rate budget (Falcon's 429 past its calls a minute): the call waits for the time
            the gateway names and is re-sent, and every other call of the account waits with
            it (through ``cache``: a process, a host, a fleet). Past it the 429 is returned.
            0 returns every 429 at once (a handler that would rather fail fast).
        rate_limit_window: the window Falcon counts that budget over (a minute); only an
            emulator with scaled-down budgets needs another.
        clock: monotonic clock (tests inject a fake one).

    Raises:
        ConfigurationError: missing credentials (naming the environment variables), an unknown
            cloud, an unusable URL, or an access_token with credentials or without a cloud.
            No network I/O happens here.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        access_token: str | None = None,
        expires_in: float | None = None,
        member_cid: str | None = None,
        cloud: str | None = None,
        base_url: str | None = None,
        clouds: Mapping[str, str] | None = None,
        renew_window: float = DEFAULT_RENEW_WINDOW,
        timeout: Timeout = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        cache: TokenCache | None = None,
        user_agent: str | None = None,
        revoke_on_close: bool | None = None,
        retry: FalconRetry | None = None,
        rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT,
        rate_limit_window: float = FALCON_WINDOW,
        clock: Clock = time.monotonic,
    ) -> None:
        window = _checks.seconds(renew_window, "renew_window", allow_zero=True)
        if base_url is None:
            cloud = _from_env(cloud, "cloud") or AUTODISCOVER
        elif cloud is not None:
            raise ConfigurationError("Pass cloud= or base_url=, not both.")
        self._oauth: OAuth2 | None = None
        self._pickle_args: dict[str, Any] | None = None
        tokens: TokenSource
        if access_token is not None:
            _check_token_only(client_id, client_secret, member_cid, cache, revoke_on_close)
            home = ApiHome(cloud=cloud or AUTODISCOVER, base_url=base_url, clouds=clouds)
            tokens = IssuedToken(home, access_token, expires_in, clock)
            window = 0.0  # never renewed: there is no secret to ask with
            account = account_of(home.entry_url, tokens.key.name, None)
            self.revoke_on_close = False
        else:
            if expires_in is not None:
                raise ConfigurationError(
                    "expires_in= is the lifetime of a pre-issued access_token=; tokens fetched "
                    "with client_id and client_secret come with their own."
                )
            secret_from_env = client_secret is None
            entry = ApiHome(cloud=cloud or AUTODISCOVER, base_url=base_url, clouds=clouds)
            client_id, client_secret = resolve_credentials(client_id, client_secret)
            member_cid = _from_env(member_cid, "member_cid")
            self._oauth = OAuth2(
                client_id,
                client_secret,
                member_cid,
                cloud=cloud or AUTODISCOVER,
                base_url=base_url,
                clouds=clouds,
                timeout=timeout,
                session=session,
                user_agent=user_agent,
                retry=retry,
                budget=token_budget(entry.entry_url, rate_limit_window),
                clock=clock,
            )
            store = cache if cache is not None else MemoryTokenCache()
            key = CacheKey.for_credentials(
                self._oauth.entry_url, client_id, client_secret, member_cid
            )
            tokens = FetchedTokens(self._oauth, store, key, renew_window=window, clock=clock)
            account = account_of(self._oauth.entry_url, client_id, member_cid)
            self.revoke_on_close = (
                revoke_on_close if revoke_on_close is not None else not store.shared
            )
            if secret_from_env:
                self._pickle_args = {
                    "client_id": client_id,
                    "member_cid": member_cid,
                    "cloud": self._oauth.cloud,
                    "base_url": base_url,
                    "clouds": dict(self._oauth.clouds),
                    "renew_window": renew_window,
                    "timeout": timeout,
                    "user_agent": user_agent,
                    "revoke_on_close": revoke_on_close,
                    "rate_limit_wait": rate_limit_wait,
                    "rate_limit_window": rate_limit_window,
                    # A shared store must travel (or refuse to); a private one starts empty.
                    "cache": None if isinstance(store, MemoryTokenCache) else store,
                }
        self._tokens = tokens
        self._home = tokens.home
        self._renew_window = window
        self.cache: TokenCache = tokens.cache
        budget = RateBudget(
            tokens.cache, account, max_wait=rate_limit_wait, window=rate_limit_window
        )
        self._port = Port(tokens, Routing(tokens.home, budget))

    @property
    def client_id(self) -> str | None:
        """The API client id; None for a pre-issued token (it does not say whose it is)."""
        return self._oauth.client_id if self._oauth is not None else None

    @property
    def member_cid(self) -> str | None:
        """The child CID acted for, if any."""
        return self._oauth.member_cid if self._oauth is not None else None

    @property
    def base_url(self) -> str:
        """The API base URL (the home region's, once autodiscovery has found it)."""
        return self._home.base_url

    @property
    def region(self) -> str | None:
        """The canonical region name, when known (after the first token with autodiscovery)."""
        return self._home.region

    @property
    def clouds(self) -> CloudTable:
        """The region table in use."""
        return self._home.clouds

    @property
    def renew_window(self) -> float:
        """Seconds before expiry from which the token is renewed (0 for a pre-issued token,
        which is never renewed)."""
        return self._renew_window

    @property
    def oauth2(self) -> OAuth2 | None:
        """The raw token/revoke operations for these credentials; None for a pre-issued token
        (nothing to call the service with)."""
        return self._oauth

    @property
    def rate_limits(self) -> RateLimitStats:
        """What the account's API rate budget has cost so far: waits, seconds waited,
        re-sends after a 429, 429s returned, and the budget the last answer stated."""
        return self._port.budget.stats()

    @property
    def port(self) -> Port:
        """What the front ends (``requests_falcon_auth.urllib3``, ``.httpx``) drive: the token
        and the flow of each request. Not for application code, which has :meth:`get_token`."""
        return self._port

    def __repr__(self) -> str:
        if self._oauth is None:
            return (
                f"FalconAuth(base_url={self.base_url!r}, region={self.region!r}, "
                "access_token=<hidden>)"
            )
        return (
            f"FalconAuth(client_id={self.client_id!r}, base_url={self.base_url!r}, "
            f"region={self.region!r}, client_secret=<hidden>)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        if self._oauth is None:
            raise TypeError(
                "A FalconAuth given access_token= cannot be pickled: the token would be written "
                "into the pickle. Hand the token to the other process by a channel meant for "
                "secrets and build FalconAuth(access_token=...) there."
            )
        if self._pickle_args is None:
            raise TypeError(
                "A FalconAuth given client_secret= cannot be pickled: the secret would be written "
                "into the pickle. Set FALCON_CLIENT_SECRET in the environment instead (the "
                "unpickled copy reads it there), or build FalconAuth in the other process."
            )
        return (_unpickle, (self._pickle_args,))

    def get_token(self) -> Token:
        """A usable token, fetching or renewing as needed.

        Raises:
            FalconAuthError: no token could be had.
        """
        return self._port.token()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        flow, attach = self._port.begin(r.method or "GET", r.url or "")
        if attach is None:
            return r
        r.url = attach.url
        r.headers["Authorization"] = attach.token.authorization
        # The flow rides with the hook: requests copies the request at every redirect hop,
        # keeping hooks but not attributes, and shows the hook every hop's answer.
        hook = functools.partial(self._on_response, flow, attach.token, attach.url)
        r.register_hook("response", hook)
        return r

    def _on_response(
        self, flow: Flow, token: Token, url: str, r: requests.Response, **kwargs: Any
    ) -> requests.Response | None:
        """Drives the flow with one answer (to the request sent to ``url``, or to a redirect
        hop): None keeps it, a response replaces it (the answer to the last re-send)."""
        _guard_next_hop(r, token)
        port = self._port
        inside = r.url == url or carries(token, r.url)
        if not port.noted(r.status_code, r.headers, inside):
            return None  # nothing to heal: the flow would only say KEEP
        request = r.request
        prep = request.copy()
        rewind = functools.partial(_rewind, prep)
        answer, step = r, self._settle(flow, r, rewind)
        while isinstance(step, Resend):
            answer = self._resend(answer, request, prep, step.token, kwargs)
            if port.noted(answer.status_code, answer.headers, inside):
                step = self._settle(flow, answer, rewind)
            else:
                step = advance(flow, _reply(answer))
        return None if answer is r else answer

    def _settle(self, flow: Flow, r: requests.Response, rewind: Callable[[], bool]) -> Step | None:
        try:
            return self._port.settle(flow, _reply(r), rewind)
        except FalconAuthError:
            r.close()  # the caller gets the error; the answer's connection goes back to the pool
            raise

    @staticmethod
    def _resend(
        r: requests.Response,
        request: requests.PreparedRequest,
        prep: requests.PreparedRequest,
        token: Token,
        kwargs: dict[str, Any],
    ) -> requests.Response:
        """Sends ``prep`` again with ``token`` after ``r``, on ``r``'s adapter."""
        # Consume and release the connection so the re-send can reuse it.
        _ = r.content
        r.close()
        jar = prep._cookies  # as HTTPDigestAuth does: cookies set by the answer go along
        if jar is not None:
            extract_cookies_to_jar(jar, request, r.raw)
            prep.prepare_cookies(jar)
        prep.headers["Authorization"] = token.authorization
        # requests builds the next redirect hop from this request, not from the re-sent copy.
        request.headers["Authorization"] = token.authorization
        retried: requests.Response = r.connection.send(prep, **kwargs)
        retried.history.append(r)
        retried.request = prep
        _guard_next_hop(retried, token, request)
        return retried

    def attach(self, session: requests.Session) -> requests.Session:
        """Sets ``session.auth = self`` and makes ``session.close()`` close this auth too."""
        session.auth = self
        original_close = session.close
        if getattr(original_close, "_falcon_auth", None) is self:
            return session

        def close() -> None:
            try:
                original_close()
            finally:
                self.close()

        close._falcon_auth = self  # type: ignore[attr-defined]
        session.close = close  # type: ignore[method-assign]
        return session

    def revoke(self) -> None:
        """Revokes and evicts the current token and any other live one this object fetched.

        Raises:
            FalconAuthError: a revoke call failed (the token is evicted all the same).
            ConfigurationError: a pre-issued token, which cannot be revoked without the
                client's credentials (nothing is evicted or sent).
        """
        self._tokens.revoke()

    def close(self) -> None:
        """Evicts and revokes the tokens this process fetched; never raises, logs failures.

        Each revoke gets one try and ``CLOSE_REVOKE_BUDGET`` seconds (5) in all, so an
        unreachable endpoint cannot hold up a process's exit. Idempotent. With
        ``revoke_on_close=False`` the token is left cached and live.
        """
        self._tokens.close(revoke=self.revoke_on_close)

    def __enter__(self) -> FalconAuth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reply(r: requests.Response) -> Reply:
    return Reply(r.status_code, r.headers, r.url or "")


def _unpickle(args: dict[str, Any]) -> FalconAuth:
    return FalconAuth(**args)


def _check_token_only(
    client_id: str | None,
    client_secret: str | None,
    member_cid: str | None,
    cache: TokenCache | None,
    revoke_on_close: bool | None,
) -> None:
    """Refuses the arguments that contradict a pre-issued token, each with what to do instead."""
    if client_id is not None or client_secret is not None:
        raise ConfigurationError(
            "Pass either access_token= (a token issued elsewhere, used until it is rejected) "
            "or client_id= and client_secret= (tokens fetched and renewed here), not both."
        )
    if member_cid is not None:
        raise ConfigurationError(
            "member_cid= does not apply to a pre-issued access_token: a token is issued for "
            "one CID, so ask for it with that member_cid where it is issued."
        )
    if cache is not None:
        raise ConfigurationError(
            "cache= does not apply to a pre-issued access_token: nothing is fetched here to "
            "share. Give each process the token (or the credentials, to share fetched tokens)."
        )
    if revoke_on_close:
        raise ConfigurationError(f"revoke_on_close=True cannot be honoured. {CANNOT_REVOKE}")


def _guard_next_hop(
    r: requests.Response, token: Token, source: requests.PreparedRequest | None = None
) -> None:
    """Takes the token off the request requests copies for the next redirect hop, unless that
    hop is inside the token's scope (origin and path prefix).

    requests keeps ``Authorization`` on a hop to the same host, wherever on it, and on an
    http -> https upgrade (``should_strip_auth``); the scope is narrower than either. The
    hop is built from ``source`` (the request ``r`` answered, or for a re-send the caller's
    original, which ``Session.send`` hands to ``resolve_redirects``).
    """
    if not r.is_redirect:
        return
    target = _redirect_target(r)
    if target is None or not carries(token, target):
        (source if source is not None else r.request).headers.pop("Authorization", None)


def _redirect_target(r: requests.Response) -> str | None:
    """The URL requests will send the next hop to: ``SessionRedirectMixin.resolve_redirects``'
    arithmetic (Location decoded as UTF-8, scheme-relative and relative targets resolved,
    re-quoted), so the scope judges the path that goes on the wire. None when requests could
    not read it either."""
    try:
        location = r.headers["Location"].encode("latin1").decode("utf8")
        if location.startswith("//"):
            location = f"{urlparse(r.url).scheme}:{location}"
        parsed = urlparse(location)
        url = parsed.geturl()
        return urljoin(r.url, requote_uri(url)) if not parsed.netloc else requote_uri(url)
    except (ValueError, KeyError):  # UnicodeError and requests' InvalidURL are ValueErrors
        return None


def _rewind(prep: requests.PreparedRequest) -> bool:
    """Readies ``prep``'s body for a re-send; False when it cannot be replayed."""
    body = prep.body
    if body is None or isinstance(body, (bytes, str)):
        return True
    if getattr(body, "seek", None) is None:
        return False
    try:
        rewind_body(prep)
    except UnrewindableBodyError:
        return False
    return True
