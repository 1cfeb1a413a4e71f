"""Where a FalconAuth's tokens come from: fetched with the API client's credentials, or issued
elsewhere and handed over.

Both answer the same questions (the token to attach, the one in hand without I/O, drop a
rejected one, revoke, close) over the token engine (``_provider.py``), so FalconAuth and every
front end have one code path whichever it is. They differ in what a missing token costs: a
fetched source asks the token endpoint (once, however many callers), an issued one can only say
why it has none left.
"""

from __future__ import annotations

import logging
import threading
from typing import Final, NamedTuple, Protocol

from . import _checks, _fork
from ._home import ApiHome
from ._provider import TokenProvider
from .cache import CacheKey, MemoryTokenCache, TokenCache
from .errors import ConfigurationError, CredentialsError, FalconAuthError
from .oauth2 import CLOSE_REVOKE_BUDGET, OAuth2
from .token import (
    MAX_TOKEN_LENGTH,
    UNKNOWN_LIFETIME,
    Clock,
    Token,
    bearer_token,
)

__all__ = ["CANNOT_REVOKE", "FetchedTokens", "Fresh", "IssuedToken", "TokenSource", "fetched"]

log = logging.getLogger("requests_falcon_auth.auth")

# Why a pre-issued token is never revoked here: Falcon's revoke authenticates the API client.
CANNOT_REVOKE: Final = (
    "A pre-issued access_token cannot be revoked here: Falcon's revoke call authenticates with "
    "the API client's id and secret (Basic credentials), which this FalconAuth does not have. "
    "Revoke it where it was issued, or with those credentials: "
    "OAuth2(client_id, client_secret).revoke(token), or falcon-auth revoke."
)


class TokenSource(Protocol):
    """What FalconAuth and the front ends need of a source of tokens."""

    home: ApiHome
    cache: TokenCache

    def token(self) -> Token:
        """A usable token, fetching or renewing as needed (raises FalconAuthError)."""

    def hot(self) -> Token | None:
        """The token in memory while it is fresh and the store unchanged, or None."""

    def peek(self) -> Token | None:
        """A usable token the store hands over without I/O, or None."""

    def drop(self, rejected: Token) -> None:
        """Forgets a token the API rejected (evicted only if still cached: compare-and-swap)."""

    def revoke(self) -> None:
        """Revokes and evicts what can be revoked (raises FalconAuthError)."""

    def close(self, *, revoke: bool) -> None:
        """Releases what the source holds, revoking first if asked; never raises."""


class Fresh(NamedTuple):
    """A token outside its renew window, whether it came from the store, and its seconds left."""

    token: Token
    cached: bool
    remaining: float


class FetchedTokens:
    """Tokens fetched with the API client's credentials: cached, one fetch per need, renewed
    ahead of expiry; the ones this process fetched are revoked at close.

    Args:
        oauth: the credentials' token and revoke calls.
        cache: the store (shared with other FalconAuth objects, processes or hosts, or not).
        key: these credentials' key in it.
        renew_window: seconds before expiry from which a token is renewed in the background.
        clock: the monotonic clock tokens are stamped with.
    """

    def __init__(
        self,
        oauth: OAuth2,
        cache: TokenCache,
        key: CacheKey,
        *,
        renew_window: float,
        clock: Clock,
    ) -> None:
        self.oauth = oauth
        self.home = oauth.home
        self.cache = cache
        self._clock = clock
        self._provider = TokenProvider(
            cache, key, self._fetch, renew_window=renew_window, clock=clock
        )
        self._after_fork_in_child()
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        # A child inherits the parent's token (and may use it) but never revokes it.
        self._lock = threading.Lock()
        self._owned: list[Token] = []

    def token(self) -> Token:
        return self._provider.get()

    def hot(self) -> Token | None:
        return self._provider.hot()

    def peek(self) -> Token | None:
        return self._provider.peek()

    def drop(self, rejected: Token) -> None:
        # Revoking a token the server rejected at close would be a wasted call.
        self._provider.invalidate(rejected)
        with self._lock:
            self._owned = [t for t in self._owned if t.access_token != rejected.access_token]

    def fresh(self) -> Fresh:
        """A token with its whole usable life ahead (renewed first if in its renew window)."""
        token = self._provider.get_fresh()
        with self._lock:
            fetched = any(t.access_token == token.access_token for t in self._owned)
        return Fresh(token, not fetched, max(0.0, token.expires_at - self._clock()))

    def evict(self, access_token: str) -> None:
        """Drops ``access_token`` from the store if it holds that very token."""
        now = self._clock()
        self.cache.compare_and_delete(
            self._provider.key,
            Token(access_token, "bearer", 1, self.home.region, self.home.base_url, now),
        )

    @property
    def key(self) -> CacheKey:
        """These credentials' key in the store."""
        return self._provider.key

    @property
    def renewing(self) -> bool:
        """True while a background renewal of this process is in flight."""
        return self._provider.renewing

    def wait_for_renewal(self, timeout: float | None = None) -> bool:
        """Waits for a background renewal in flight; False if it was still running."""
        return self._provider.wait_for_renewal(timeout)

    def revoke(self) -> None:
        current = self.cache.get(self._provider.key)
        tokens = self._take_owned()
        if current is not None and all(t.access_token != current.access_token for t in tokens):
            tokens.append(current)
        errors = self._revoke_each(tokens)
        if errors:
            raise errors[0]

    def close(self, *, revoke: bool) -> None:
        if revoke:
            try:
                # A renewal in flight would fetch a token nobody revokes; it gets the same budget.
                self._provider.wait_for_renewal(CLOSE_REVOKE_BUDGET)
                for error in self._revoke_each(self._take_owned(), budget=CLOSE_REVOKE_BUDGET):
                    log.warning("Could not revoke the Falcon token at close: %s", error)
            except Exception as exc:  # noqa: BLE001 -- teardown must never raise
                log.warning("Could not revoke the Falcon token at close: %s", type(exc).__name__)
        self.oauth.close()

    def _fetch(self) -> Token:
        token = self.oauth.token()
        with self._lock:
            now = self._clock()
            self._owned = [t for t in self._owned if not t.expired(now)]
            self._owned.append(token)
        return token

    def _revoke_each(
        self, tokens: list[Token], budget: float | None = None
    ) -> list[FalconAuthError]:
        """Evicts and revokes each token; returns the failures instead of stopping at one."""
        errors = []
        for token in tokens:
            self._provider.invalidate(token)
            try:
                self.oauth.revoke(token, budget=budget)
            except FalconAuthError as exc:
                errors.append(exc)
        return errors

    def _take_owned(self) -> list[Token]:
        """Hands over the live tokens this process fetched (expired ones need no revoke)."""
        with self._lock:
            owned, self._owned = self._owned, []
        now = self._clock()
        return [t for t in owned if not t.expired(now)]


class IssuedToken:
    """A token issued elsewhere (a vault, another service, ``falcon-auth token``): used until it
    expires or the API rejects it, then refused with a CredentialsError saying why; never
    renewed (no secret to ask with) and never revoked (Falcon's revoke takes the client's
    credentials).

    Args:
        home: where the token is valid: a cloud or a base URL, never autodiscovery (which
            finds the home region by requesting a token).
        access_token: the bare token (no ``Bearer`` prefix).
        expires_in: seconds from now until it expires; None when unknown, and then it is used
            until the API rejects it.
        clock: the monotonic clock tokens are stamped with.

    Raises:
        ConfigurationError: autodiscovery, not a token (the message never quotes it), or a bad
            lifetime.
    """

    def __init__(
        self, home: ApiHome, access_token: object, expires_in: object, clock: Clock
    ) -> None:
        if home.autodiscover:
            raise ConfigurationError(
                "A pre-issued access_token needs the cloud that issued it: pass cloud= (e.g. "
                "cloud='us-2', or set FALCON_CLOUD) or base_url=. cloud='auto' finds the "
                "home region by requesting a token, which takes client_id and client_secret."
            )
        value = bearer_token(access_token)
        if value is None:
            raise ConfigurationError(
                "access_token must be the bare token as Falcon issued it: RFC 6750 token "
                f"characters, no 'Bearer ' prefix or whitespace, at most "
                f"{MAX_TOKEN_LENGTH // 1024} KiB."
            )
        token = Token(
            access_token=value,
            token_type="bearer",
            expires_in=_lifetime(expires_in),
            region=home.region,
            base_url=home.base_url,
            issued_at=clock(),
        )
        self.home = home
        self.cache: TokenCache = MemoryTokenCache()
        # Keyed by the token itself, so key material derives from a secret as for credentials.
        key = self.key = CacheKey.for_credentials(home.entry_url, "", value, None)
        self._token = token
        self._clock = clock
        # No renew window: a renewal could only fail, and would warn each time it did.
        self._provider = TokenProvider(self.cache, key, self._refuse, renew_window=0.0, clock=clock)
        self.cache.set(key, token)

    def token(self) -> Token:
        return self._provider.get()

    def hot(self) -> Token | None:
        return self._provider.hot()

    def peek(self) -> Token | None:
        return self._provider.peek()

    def drop(self, rejected: Token) -> None:
        self._provider.invalidate(rejected)

    def revoke(self) -> None:
        raise ConfigurationError(CANNOT_REVOKE)

    def close(self, *, revoke: bool) -> None:
        """Nothing to release: no connection was ever made."""

    def _refuse(self) -> Token:
        """The engine's fetch: there is no other token, so it says why the one it had is gone.
        Runs on whatever thread asks (a fresh-token step, an async front end's worker)."""
        if self._clock() >= self._token.expires_at:
            why = f"expired (expires_in={self._token.expires_in} s ran out)"
        else:
            why = "was refused by the API (401, or 429 under Falcon's bad-token budget)"
        raise CredentialsError(
            f"The pre-issued Falcon access token {why}, and without a client secret it cannot "
            "be renewed. Get a new token where it was issued and build "
            "FalconAuth(access_token=...) again, or pass client_id and client_secret so tokens "
            "are fetched and renewed."
        )


def fetched(tokens: TokenSource) -> FetchedTokens:
    """``tokens`` as the source of a FalconAuth built from credentials, for what only such a
    source does (a fresh token for the CLI, waiting for a renewal in the demo).

    Raises:
        ConfigurationError: a pre-issued token.
    """
    if not isinstance(tokens, FetchedTokens):
        raise ConfigurationError(
            "This needs a FalconAuth built with client_id and client_secret, not access_token=."
        )
    return tokens


def _lifetime(expires_in: object) -> int:
    if expires_in is None:
        return UNKNOWN_LIFETIME
    seconds = _checks.seconds(expires_in, "expires_in")
    if seconds < 1:
        raise ConfigurationError(f"expires_in must be 1 second or more, got {seconds!r}.")
    return int(min(seconds, UNKNOWN_LIFETIME))
