"""The two wire operations of Falcon's OAuth2 service: issue a token, revoke a token.

``OAuth2`` knows the credentials, the cloud table and autodiscovery (308 + ``X-Cs-Region``);
it knows nothing of caching or of the requests it authenticates. It decides when a call has
failed; ``_diagnosis`` says what the failure means, and ``token`` what a token answer must hold.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Mapping
from typing import Final, NamedTuple, TypeVar, Union
from urllib.parse import urljoin

import requests
from requests.__version__ import __version__ as _REQUESTS_VERSION
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError

from . import _checks, _fork
from .__version__ import __version__
from ._diagnosis import (
    OVERSIZED_TOKEN_ANSWER,
    REDIRECTED_TWICE,
    REVOCATION,
    TOKEN_REQUEST,
    TryLimits,
    could_not_reach,
    failure,
    foreign_cloud,
    foreign_redirect,
    garbled,
    out_of_time,
    refusal,
    tls_failure,
    trace_id,
    unreachable,
    unusable_token_answer,
)
from ._exchange import Answer, DeadlineExceeded, Request, UnusableAnswer, post_form
from ._home import ApiHome
from ._ratelimit import RateBudget, token_budget
from ._redaction import Redactor
from ._scope import direct_proxies
from .clouds import AUTODISCOVER, normalize
from .errors import ConfigurationError, FalconAuthError, RegionError, TokenEndpointError
from .retry import FalconRetry
from .token import Clock, NotATokenAnswer, Token, token_from_answer

__all__ = ["CLOSE_REVOKE_BUDGET", "DEFAULT_TIMEOUT", "OAuth2", "Timeout"]

log = logging.getLogger(__name__)

Timeout = Union[float, tuple[float, float]]

# (connect, read) seconds. The token endpoint answers in well under a second; a read that
# takes 30 s is a hung connection, and every SDK that sets no timeout has hung in the field.
DEFAULT_TIMEOUT: Final[Timeout] = (10.0, 30.0)

# What revoking at close may take in all: one try, no retries. Teardown must not hang a
# process's exit on an unreachable endpoint; an explicit revoke() gets the full retry policy.
CLOSE_REVOKE_BUDGET: Final = 5.0

_REDIRECTS: Final = frozenset({307, 308})
# Counted when the retry policy does not say how many tries it allows.
_DEFAULT_TRIES: Final = 4

_E = TypeVar("_E", bound=FalconAuthError)


class OAuth2:
    """Falcon's OAuth2 service for one set of API client credentials.

    Every call is bounded: each try ends within ``connect + read`` seconds of starting however
    slowly the server sends, the whole call (retries and their waits included) within
    ``tries * (connect + read) + retry.max_wait`` (190 s with the defaults), and no answer is
    read past 32 KiB. Calls to a loopback base URL never go through a proxy. In a forked child,
    the session (the caller's too, if one was given) gets new, empty connection pools: parent
    and child never share a socket.

    Args:
        client_id: the API client's id.
        client_secret: its secret.
        member_cid: for an MSSP parent, the child CID to act on behalf of.
        cloud: a region name (any common spelling) or ``"auto"`` to start at us-1 and follow
            CrowdStrike's redirect to the credentials' home region.
        base_url: a custom API base URL (a proxy or gateway); never rewritten by autodiscovery.
        clouds: a region table replacing CrowdStrike's (region name -> base URL).
        timeout: seconds, or (connect, read), for each try of every call.
        session: a ``requests.Session`` to send through (proxies, verify, client certificates).
        user_agent: a product token to put before this library's in ``User-Agent``.
        retry: the policy for transient failures (connection errors, 5xx, 429); the calls
            are retried as POSTs whatever its ``allowed_methods``.
        budget: the token endpoint's rate budget to pace token requests against; by default
            the one every OAuth2 of this process shares for that host and a minute's window.
        clock: the monotonic clock that stamps tokens.

    Attributes:
        home: where the API lives (base URL, region, cloud table); autodiscovery moves it, and
            whatever routes requests for these credentials reads the same one.

    Raises:
        ConfigurationError: missing credentials, an unknown cloud, an unusable URL or timeout.
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
        budget: RateBudget | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not client_id or not isinstance(client_id, str):
            raise ConfigurationError("client_id must be a non-empty string.")
        if not client_secret or not isinstance(client_secret, str):
            raise ConfigurationError("client_secret must be a non-empty string.")
        self.client_id = client_id
        self._secret = client_secret
        self._redact = Redactor.for_credentials(client_id, client_secret)
        self.member_cid = member_cid or None
        self.home = ApiHome(cloud=cloud, base_url=base_url, clouds=clouds)
        self.clouds = self.home.clouds
        self.cloud = self.home.cloud
        self.autodiscover = self.home.autodiscover
        self.entry_url = self.home.entry_url
        self.timeout = timeout
        self._timeout = _checks.timeout_pair(timeout)
        # The token and revoke calls are POSTs that are safe to repeat, whatever methods the
        # given policy allows for API calls.
        self._retry = (retry or FalconRetry()).new(allowed_methods=None)
        self.call_budget = sum(self._timeout) * _tries(self._retry) + self._retry.max_wait
        self._token_budget = budget if budget is not None else token_budget(self.entry_url)
        self._clock = clock
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        product = f"requests-falcon-auth/{__version__} python-requests/{_REQUESTS_VERSION}"
        self.user_agent = f"{user_agent} {product}" if user_agent else product
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        # Parent and child would otherwise write into one keep-alive socket to the token
        # endpoint at once: interleaved requests, forms the server never sees whole.
        _fresh_pools(self._session)

    @property
    def base_url(self) -> str:
        """The API base URL (the home region's, once autodiscovery has found it)."""
        return self.home.base_url

    @property
    def region(self) -> str | None:
        """The canonical region name, when known."""
        return self.home.region

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.client_id!r}, base_url={self.home.base_url!r}, "
            f"region={self.home.region!r}, client_secret=<hidden>)"
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
        url = f"{self.home.base_url}/oauth2/token"
        issued_at = self._clock()
        call = _Call(TOKEN_REQUEST, self._retry, self.call_budget, self._redact, self.home)
        answer = self._post(url, form, call)
        if answer.status in _REDIRECTS:
            url = self._follow_region_redirect(url, answer, call)
            answer = self._post(url, form, call)
            if answer.status in _REDIRECTS:
                raise call.fail(RegionError, REDIRECTED_TWICE, answer)
        if not 200 <= answer.status < 300:
            raise call.refusal(answer)
        token = self._token(answer, url, issued_at, call)
        log.info(
            "Fetched a Falcon token: region=%s expires_in=%s trace_id=%s",
            token.region,
            token.expires_in,
            trace_id(answer, call.redact),
        )
        return token

    oauth2AccessToken = token

    def revoke(self, token: Token | str, *, budget: float | None = None) -> None:
        """Revokes a token at its home region (operation ``oauth2RevokeToken``).

        Revoking an unknown or already revoked token succeeds, as on the real service.

        Args:
            token: the token, or its value (then revoked at the current base URL).
            budget: seconds the whole call may take, in one try (teardown uses
                ``CLOSE_REVOKE_BUDGET``); None for the full retry policy.

        Raises:
            CredentialsError: Falcon refused the client credentials.
            TokenEndpointError: 5xx, network failures, or no answer within the budget.
        """
        if isinstance(token, Token):
            value, base_url = token.access_token, token.base_url
        else:
            value, base_url = token, self.home.base_url
        redact = self._redact.also(value)
        if budget is None:
            call = _Call(REVOCATION, self._retry, self.call_budget, redact, self.home)
        else:
            one_try = self._retry.new(total=0, max_wait=0.0)
            seconds = _checks.seconds(budget, "budget")
            call = _Call(REVOCATION, one_try, seconds, redact, self.home)
        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode("ascii")
        answer = self._post(
            f"{base_url}/oauth2/revoke",
            {"token": value, "client_id": self.client_id},
            call,
            authorization=f"basic {basic}",
        )
        if answer.status != 200:
            raise call.refusal(answer)
        log.info(
            "Revoked a Falcon token: region=%s trace_id=%s",
            self.clouds.region_of(base_url) or self.home.region,
            trace_id(answer, call.redact),
        )

    oauth2RevokeToken = revoke

    def _post(
        self,
        url: str,
        form: Mapping[str, str],
        call: _Call,
        *,
        authorization: str | None = None,
    ) -> Answer:
        """POSTs a form, retrying transient failures under the call's policy and deadline."""
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "application/json",
            # The answer is read raw under a cap; ask for it uncompressed.
            "Accept-Encoding": "identity",
        }
        if authorization is not None:
            headers["Authorization"] = authorization
        while True:
            step = call.after(url, self._try(url, form, headers, call))
            if isinstance(step, Answer):
                return step
            # INFO: the caller hears of the outcome; a command line shows one error line,
            # not one warning per try before it.
            log.info("Falcon %s %s; retrying", call.operation, step.reason)
            call.retry.sleep(step.answer)  # type: ignore[arg-type]

    def _try(
        self, url: str, form: Mapping[str, str], headers: Mapping[str, str], call: _Call
    ) -> Answer | _NoAnswer:
        """One POST, within its timeouts and what is left of the call's budget.

        Returns the answer, or the transport failure that left none; what retrying cannot mend
        (no budget left, a certificate that does not verify, an unreadable answer) raises.
        """
        connect, read = self._timeout
        paced = call.operation == TOKEN_REQUEST
        if paced:
            self._pace(call)
        started = time.monotonic()
        left = call.deadline - started
        shown = call.redact(url)  # after a redirect, the server's Location
        if left <= 0:
            raise call.fail(TokenEndpointError, out_of_time(call.operation, shown, call.budget))
        request = Request(
            url,
            form,
            headers,
            (min(connect, left), min(read, left)),
            direct_proxies(url, self._session.proxies),
        )
        try:
            answer = post_form(self._session, request, min(call.deadline, started + connect + read))
        except requests.exceptions.SSLError as exc:  # a ConnectionError, but never retried
            raise call.fail(TokenEndpointError, tls_failure(call.operation, shown)) from exc
        except (requests.ConnectionError, requests.Timeout, DeadlineExceeded) as exc:
            return _NoAnswer(exc, TryLimits(connect, read, left, call.budget))
        except (requests.RequestException, ValueError, UnusableAnswer) as exc:
            # ValueError: requests parses a redirect's Location even when not following it.
            raise call.fail(TokenEndpointError, garbled(call.operation, shown, exc)) from exc
        if paced:
            self._token_budget.observe(answer.headers)
            if answer.status == 429:
                self._token_budget.share(self._token_budget.cooled(answer.headers))
        return answer

    def _pace(self, call: _Call) -> None:
        """Waits, within the call's deadline, for the token endpoint's budget: the cooldown a
        429 to any token request of this process named, or this request's slot when answers
        say the budget is nearly spent (Falcon counts token requests per source IP)."""
        budget = self._token_budget
        wait = budget.pause()
        while (wait := min(wait, call.deadline - time.monotonic())) > 0:
            log.debug("Waiting %.2f s for the token endpoint's rate budget", wait)
            time.sleep(wait)
            budget.waited(wait)
            wait = budget.pause(again=True)  # a cooldown that began meanwhile

    def _follow_region_redirect(self, url: str, answer: Answer, call: _Call) -> str:
        """Checks a 308 from autodiscovery and returns the URL to re-post to."""
        location = answer.headers.get("Location")
        if not self.autodiscover:
            message = foreign_cloud(
                _region_header(answer), location, self.home.base_url, call.redact
            )
            raise call.fail(RegionError, message, answer)
        try:
            target = urljoin(url, location) if location else None
        except ValueError:
            target = None
        region = self.clouds.region_of(target) if target else None
        if target is None or region is None:
            raise call.fail(RegionError, foreign_redirect(target, call.redact), answer)
        self.home.move_to(region)
        log.info("Autodiscovered Falcon cloud %s (%s)", region, self.home.base_url)
        return target

    def _token(self, answer: Answer, url: str, issued_at: float, call: _Call) -> Token:
        """Turns a 2xx answer into a Token, or raises TokenEndpointError."""
        if answer.oversized:
            message = unusable_token_answer(answer.status, OVERSIZED_TOKEN_ANSWER)
            raise call.fail(TokenEndpointError, message, answer)
        region = self.clouds.region_of(url) or _region_header(answer) or self.home.region
        try:
            return token_from_answer(
                _json(answer.body), region=region, base_url=self.home.base_url, issued_at=issued_at
            )
        except NotATokenAnswer as exc:
            message = unusable_token_answer(answer.status, str(exc))
            raise call.fail(TokenEndpointError, message, answer) from exc


class _NoAnswer(NamedTuple):
    """A try that ended without an answer: the transport failure, and what bounded the try."""

    error: Exception
    limits: TryLimits


class _Again(NamedTuple):
    """Another try after a wait: the answer whose Retry-After the wait honours (None when there
    was none), and what went wrong, for the log."""

    answer: Answer | None
    reason: str


class _Call:
    """One token or revoke call: its retry state, its deadline, what to keep out of text, and
    the decision after each try."""

    def __init__(
        self, operation: str, retry: FalconRetry, budget: float, redact: Redactor, home: ApiHome
    ) -> None:
        self.operation = operation
        self.retry = retry
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.redact = redact
        self.home = home

    def fail(self, kind: type[_E], message: str, answer: Answer | None = None) -> _E:
        """A ``kind`` error with the answer's context, redacted, in the cloud the call went to."""
        return failure(kind, message, answer, self.redact, region=self.home.region)

    def refusal(self, answer: Answer) -> FalconAuthError:
        """The error a final non-success answer stands for."""
        retry_after = self.retry.get_retry_after(answer) if answer.status == 429 else None
        return refusal(
            answer,
            self.operation,
            self.redact,
            region=self.home.region,
            autodiscover=self.home.autodiscover,
            retry_after=retry_after,
        )

    def after(self, url: str, outcome: Answer | _NoAnswer) -> Answer | _Again:
        """What one try leaves to do: return its answer, or try again (counted by the policy).

        Raises:
            TokenEndpointError: no answer, and no try or no time left for another.
        """
        if isinstance(outcome, Answer):
            return self._after_answer(url, outcome)
        return self._after_no_answer(url, outcome)

    def _after_answer(self, url: str, answer: Answer) -> Answer | _Again:
        """A retryable status is tried again while the policy and the deadline allow."""
        if not self.retry.is_retry("POST", answer.status, _has_retry_after(answer)):
            return answer
        try:
            self.retry = self.retry.increment(method="POST", url=url, response=answer)
        except MaxRetryError:
            return answer
        if not self._can_wait(self.retry.planned_wait(answer)):
            return answer
        trace = trace_id(answer, self.redact)
        return _Again(answer, f"answered {answer.status} (trace_id={trace})")

    def _after_no_answer(self, url: str, failed: _NoAnswer) -> _Again:
        """Tried again while the policy and the deadline allow, else the error to give up with."""
        cause = unreachable(failed.error, url, failed.limits, self.redact)
        shown = self.redact(url)
        error = failed.error
        if isinstance(error, DeadlineExceeded):
            waited = failed.limits.connect + failed.limits.read
            error = requests.Timeout(f"no complete answer within {waited:.0f} s")
        try:
            self.retry = self.retry.increment(method="POST", url=url, error=error)
        except MaxRetryError:
            message = could_not_reach(self.operation, shown, cause)
            raise self.fail(TokenEndpointError, message) from error
        if not self._can_wait(self.retry.planned_wait()):
            message = could_not_reach(self.operation, shown, cause, self.budget)
            raise self.fail(TokenEndpointError, message) from error
        return _Again(None, f"failed ({cause.what})")

    def _can_wait(self, seconds: float) -> bool:
        """True when a wait of ``seconds`` still leaves time before the deadline."""
        return time.monotonic() + seconds < self.deadline


def _fresh_pools(session: requests.Session) -> None:
    """Gives each of the session's HTTP adapters a new, empty pool manager.

    The old pools are left untouched rather than closed: another thread of the parent may have
    held one of their locks at the fork, and the child would wait for it forever. This is what
    ``HTTPAdapter.__setstate__`` does after unpickling.
    """
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            adapter.proxy_manager = {}
            adapter.init_poolmanager(
                adapter._pool_connections, adapter._pool_maxsize, block=adapter._pool_block
            )


def _tries(retry: FalconRetry) -> int:
    """How many tries the policy allows in all (its ``total`` plus the first)."""
    total = retry.total
    if isinstance(total, bool):
        return 1 if total is False else _DEFAULT_TRIES
    return total + 1 if isinstance(total, int) and total >= 0 else _DEFAULT_TRIES


def _json(body: bytes) -> object:
    """The body's JSON value, or None for a body that is not JSON (deep nesting included)."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _has_retry_after(answer: Answer) -> bool:
    return bool(answer.headers.get("Retry-After") or answer.headers.get("X-Ratelimit-Retryafter"))


def _region_header(answer: Answer) -> str | None:
    """The canonical region named by ``X-Cs-Region``, ignoring junk."""
    value = answer.headers.get("X-Cs-Region")
    if not value:
        return None
    try:
        region = normalize(value)
    except ConfigurationError:
        # Not quoted: a server that echoes requests may put anything there.
        log.debug("Ignoring an X-Cs-Region that names no Falcon cloud (%d characters)", len(value))
        return None
    return None if region == AUTODISCOVER else region
