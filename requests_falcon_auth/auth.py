"""FalconAuth: the ``requests`` auth that scopes, attaches, retries once on 401 and tears down.

The token logic (cache, single flight, renewal) lives in ``cache.py`` and knows no HTTP library;
this module adapts it to ``requests``' contract: ``__call__`` returns the prepared request, and
a per-request response hook returns a replacement response or None (as ``HTTPDigestAuth``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import UnrewindableBodyError
from requests.utils import rewind_body

from . import _checks, _fork
from .cache import DEFAULT_RENEW_WINDOW, CacheKey, MemoryTokenCache, TokenCache
from .clouds import AUTODISCOVER, CloudTable
from .errors import ConfigurationError, FalconAuthError
from .oauth2 import CLOSE_REVOKE_BUDGET, DEFAULT_TIMEOUT, OAuth2, Timeout
from .provider import TokenProvider
from .retry import FalconRetry
from .scope import Origin, origin_of, scope_of
from .token import Clock, Token

__all__ = [
    "BAD_TOKEN_RATE_LIMIT",
    "DEFAULT_RENEW_WINDOW",
    "ENVIRONMENT",
    "FalconAuth",
    "rejects_token",
    "resolve_credentials",
]

log = logging.getLogger(__name__)

# Falcon's budget of calls with a bad token, per minute and source IP (falcon-oauth2.md).
BAD_TOKEN_RATE_LIMIT: Final = 15
_TRACE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,100}")

# Where unset arguments come from: the convention every Falcon SDK follows.
ENVIRONMENT: Final = {
    "client_id": "FALCON_CLIENT_ID",
    "client_secret": "FALCON_CLIENT_SECRET",
    "member_cid": "FALCON_MEMBER_CID",
    "cloud": "FALCON_CLOUD",
}


def _from_env(value: str | None, name: str) -> str | None:
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
    client_id = _from_env(client_id, "client_id")
    client_secret = _from_env(client_secret, "client_secret")
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


class FalconAuth(AuthBase):
    """Authenticates ``requests`` calls to the CrowdStrike Falcon API.

    ``session.auth = FalconAuth()`` is all it takes: the first request to the API fetches a
    token, later ones reuse it, it is renewed ahead of expiry, a 401 gets one fresh token and one
    transparent re-send, and ``close()`` revokes it. Safe to share between threads.

    Args:
        client_id: API client id; defaults to ``FALCON_CLIENT_ID``.
        client_secret: API client secret; defaults to ``FALCON_CLIENT_SECRET``.
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
        clock: monotonic clock (tests inject a fake one).

    Raises:
        ConfigurationError: missing credentials (naming the environment variables), an unknown
            cloud, or an unusable URL. No network I/O happens here.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
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
        clock: Clock = time.monotonic,
    ) -> None:
        secret_from_env = client_secret is None
        client_id, client_secret = resolve_credentials(client_id, client_secret)
        window = _checks.seconds(renew_window, "renew_window", allow_zero=True)
        if base_url is None:
            cloud = _from_env(cloud, "cloud") or AUTODISCOVER
        elif cloud is not None:
            raise ConfigurationError("Pass cloud= or base_url=, not both.")
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
            clock=clock,
        )
        self.cache: TokenCache = cache if cache is not None else MemoryTokenCache()
        self.revoke_on_close = (
            revoke_on_close if revoke_on_close is not None else not self.cache.shared
        )
        self._provider = TokenProvider(
            self.cache,
            CacheKey.for_credentials(self._oauth.entry_url, client_id, client_secret, member_cid),
            self._fetch,
            renew_window=window,
            clock=clock,
        )
        self._clock = clock
        self._pickle_args = (
            None
            if not secret_from_env
            else {
                "client_id": client_id,
                "member_cid": member_cid,
                "cloud": self._oauth.cloud,
                "base_url": base_url,
                "clouds": dict(self._oauth.clouds),
                "renew_window": renew_window,
                "timeout": timeout,
                "user_agent": user_agent,
                "revoke_on_close": revoke_on_close,
                # A shared store must travel (or refuse to); a private one starts empty.
                "cache": None if isinstance(self.cache, MemoryTokenCache) else self.cache,
            }
        )
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        # A child inherits the parent's token (and may use it) but never revokes it.
        self._lock = threading.Lock()
        self._owned: list[Token] = []
        self._rewrites_logged: set[str] = set()

    @property
    def client_id(self) -> str:
        """The API client id."""
        return self._oauth.client_id

    @property
    def member_cid(self) -> str | None:
        """The child CID acted for, if any."""
        return self._oauth.member_cid

    @property
    def base_url(self) -> str:
        """The API base URL: the home region's once autodiscovery has found it."""
        return self._oauth.base_url

    @property
    def region(self) -> str | None:
        """The canonical region name, when known (after the first token with autodiscovery)."""
        return self._oauth.region

    @property
    def clouds(self) -> CloudTable:
        """The region table in use."""
        return self._oauth.clouds

    @property
    def oauth2(self) -> OAuth2:
        """The raw token/revoke operations for these credentials."""
        return self._oauth

    def __repr__(self) -> str:
        return (
            f"FalconAuth(client_id={self.client_id!r}, base_url={self.base_url!r}, "
            f"region={self.region!r}, client_secret=<hidden>)"
        )

    def __reduce__(self) -> tuple[Any, ...]:
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
        return self._provider.get()

    def invalidate(self, token: Token) -> bool:
        """Drops ``token`` from the cache if it is still the cached one (after a 401)."""
        return self._provider.invalidate(token)

    def _fetch(self) -> Token:
        token = self._oauth.token()
        with self._lock:
            now = self._clock()
            self._owned = [t for t in self._owned if not t.expired(now)]
            self._owned.append(token)
        return token

    def _retarget(self, url: str, origin: Origin, token: Token) -> str | None:
        """Moves a request for another table host to the token's home region."""
        source = self.clouds.region_of(url, origin)
        if source is None:
            return None
        source_scope = scope_of(self.clouds[source])
        if source_scope is None:
            return None
        if source not in self._rewrites_logged:
            self._rewrites_logged.add(source)
            log.info(
                "Sending requests for Falcon cloud %s to the credentials' home region %s",
                source,
                token.region,
            )
        return token.base_url + source_scope.relative(url)

    def authorize(self, url: str) -> tuple[str, Token] | None:
        """Where a request for ``url`` goes and the token it carries; None: it gets no token.

        The first half of the protocol that every front end (requests, urllib3) follows.

        Raises:
            FalconAuthError: the request needs a token and none could be had.
        """
        origin = origin_of(url)
        if origin is None:
            return None
        base_url = self.base_url
        home = scope_of(base_url)
        at_home = home is not None and home.covers(url, origin)
        # With autodiscovery, a URL under another base URL of the table is re-targeted home.
        if not at_home and not (
            self._oauth.autodiscover and self.clouds.region_of(url, origin) is not None
        ):
            return None
        token = self.get_token()
        if at_home and token.base_url == base_url:
            return url, token  # the common case: one scope check per request
        home = scope_of(token.base_url)
        if home is not None and home.covers(url, origin):
            return url, token
        target = self._retarget(url, origin, token)
        return None if target is None else (target, token)

    def renew_after_rejection(
        self,
        method: str,
        url: str,
        token: Token,
        *,
        status: int,
        headers: Mapping[str, str],
        replayable: bool,
    ) -> Token | None:
        """The token to re-send with after the API rejected ``token``; None: keep the answer.

        The second half of the front-end protocol. A rejection is a 401, or a 429 under
        Falcon's bad-token budget (``X-Ratelimit-Limit: 15``: past 15 calls a minute with a
        bad token, Falcon answers 429 instead of 401); any other answer, a 429 under the
        account's budget included, is the caller's. An answer from another origin (a redirect
        hop) is not ours, and a body that cannot be replayed is never re-sent. Otherwise the
        rejected token is dropped (only if still cached: compare-and-swap; and from the tokens
        to revoke at close) and a usable one returned.

        Raises:
            FalconAuthError: no fresh token could be had.
        """
        if not rejects_token(status, headers):
            return None
        home = scope_of(token.base_url)
        if home is None or not home.covers(url):
            return None
        answer = _describe(status)
        if not replayable:
            log.warning(
                "Falcon answered %s to %s %s and the request body cannot be sent again "
                "(a generator or unseekable stream); returning it",
                answer,
                method,
                _path_of(url),
            )
            return None
        log.info(
            "Falcon answered %s to %s %s (trace_id=%s); retrying once with a fresh token",
            answer,
            method,
            _path_of(url),
            _trace_id(headers),
        )
        self.invalidate(token)
        self._disown(token)
        return self.get_token()

    def report_retried(
        self, method: str, url: str, status: int, headers: Mapping[str, str]
    ) -> None:
        """Logs the outcome of a re-send: a fresh token rejected again deserves a warning."""
        if rejects_token(status, headers):
            log.warning(
                "Falcon answered %s again to %s %s with a fresh token (trace_id=%s)",
                _describe(status),
                method,
                _path_of(url),
                _trace_id(headers),
            )

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        authorized = self.authorize(r.url or "")
        if authorized is None:
            return r
        r.url, token = authorized
        r.headers["Authorization"] = token.authorization
        # The attempt's state rides with the hook: requests copies the request at every
        # redirect hop, keeping hooks but not attributes.
        r.register_hook("response", functools.partial(self._handle_401, _Attempt(token)))
        return r

    def _handle_401(
        self, attempt: _Attempt, r: requests.Response, **kwargs: Any
    ) -> requests.Response | None:
        """Renews the token and re-sends once when the API rejects the one we attached."""
        if attempt.retried or not rejects_token(r.status_code, r.headers):
            return None
        request = r.request
        method = request.method or "GET"
        prep = request.copy()
        try:
            fresh = self.renew_after_rejection(
                method,
                r.url or "",
                attempt.token,
                status=r.status_code,
                headers=r.headers,
                replayable=_rewind(prep),
            )
        except FalconAuthError:
            r.close()  # the caller gets the error; the 401's connection goes back to the pool
            raise
        if fresh is None:
            return None
        attempt.token, attempt.retried = fresh, True
        # Consume and release the connection so the re-send can reuse it.
        _ = r.content
        r.close()
        jar = prep._cookies  # as HTTPDigestAuth does: cookies set by the 401 go along
        if jar is not None:
            extract_cookies_to_jar(jar, request, r.raw)
            prep.prepare_cookies(jar)
        prep.headers["Authorization"] = fresh.authorization
        # requests builds the next redirect hop from this request, not from the re-sent copy.
        request.headers["Authorization"] = fresh.authorization
        retried: requests.Response = r.connection.send(prep, **kwargs)
        retried.history.append(r)
        retried.request = prep
        self.report_retried(method, prep.url or "", retried.status_code, retried.headers)
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
        """
        current = self.cache.get(self._provider.key)
        tokens = self._take_owned()
        if current is not None and all(t.access_token != current.access_token for t in tokens):
            tokens.append(current)
        errors = self._revoke_each(tokens)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Evicts and revokes the tokens this process fetched; never raises, logs failures.

        Each revoke gets one try and ``CLOSE_REVOKE_BUDGET`` seconds (5) in all, so an
        unreachable endpoint cannot hold up a process's exit. Idempotent. With
        ``revoke_on_close=False`` the token is left cached and live.
        """
        if not self.revoke_on_close:
            self._oauth.close()
            return
        try:
            # A renewal in flight would fetch a token nobody revokes; it gets the same budget.
            self._provider.wait_for_renewal(CLOSE_REVOKE_BUDGET)
            for error in self._revoke_each(self._take_owned(), budget=CLOSE_REVOKE_BUDGET):
                log.warning("Could not revoke the Falcon token at close: %s", error)
        except Exception as exc:  # noqa: BLE001 -- teardown must never raise
            log.warning("Could not revoke the Falcon token at close: %s", type(exc).__name__)
        self._oauth.close()

    def _revoke_each(
        self, tokens: list[Token], budget: float | None = None
    ) -> list[FalconAuthError]:
        """Evicts and revokes each token; returns the failures instead of stopping at one."""
        errors = []
        for token in tokens:
            self.invalidate(token)
            try:
                self._oauth.revoke(token, budget=budget)
            except FalconAuthError as exc:
                errors.append(exc)
        return errors

    def _disown(self, token: Token) -> None:
        """Forgets a token the server rejected: revoking it at close would be a wasted call."""
        with self._lock:
            self._owned = [t for t in self._owned if t.access_token != token.access_token]

    def _take_owned(self) -> list[Token]:
        """Hands over the live tokens this process fetched (expired ones need no revoke)."""
        with self._lock:
            owned, self._owned = self._owned, []
        now = self._clock()
        return [t for t in owned if not t.expired(now)]

    def __enter__(self) -> FalconAuth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class _Attempt:
    """One request's authentication: the token it carries and whether it was re-sent."""

    token: Token
    retried: bool = False


def _unpickle(args: dict[str, Any]) -> FalconAuth:
    return FalconAuth(**args)


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


def rejects_token(status: int, headers: Mapping[str, str]) -> bool:
    """True for an API answer that rejects the bearer token: 401, or the bad-token 429.

    Falcon counts calls with a missing, malformed, expired or revoked token against a budget of
    ``BAD_TOKEN_RATE_LIMIT`` a minute per source IP and answers 429 past it, saying so in
    ``X-Ratelimit-Limit``; a 429 under any other limit (the account's 6,000) is a real one.
    """
    if status == 401:
        return True
    if status != 429:
        return False
    limit = (headers.get("X-Ratelimit-Limit") or "").strip()
    return limit.isdigit() and int(limit) == BAD_TOKEN_RATE_LIMIT


def _describe(status: int) -> str:
    return "401" if status == 401 else "429 under the bad-token budget"


def _trace_id(headers: Mapping[str, str]) -> str | None:
    """Falcon's trace id, if it looks like one (logs quote nothing else from the server)."""
    value = headers.get("X-Cs-Traceid")
    return value if value is not None and _TRACE_ID.fullmatch(value) else None


def _path_of(url: str | None) -> str:
    """The path of a URL for logs: no query string (it may carry ids users consider private)."""
    return (url or "").split("?", 1)[0]
