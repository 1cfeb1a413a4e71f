"""The two wire operations of Falcon's OAuth2 service: issue a token, revoke a token.

``OAuth2`` knows the credentials, the cloud table and autodiscovery (308 + ``X-Cs-Region``);
it knows nothing of caching or of the requests it authenticates.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, TypeVar, Union
from urllib.parse import urljoin

import requests
from requests.__version__ import __version__ as _REQUESTS_VERSION
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from . import _checks, _fork
from .__version__ import __version__
from ._home import ApiHome
from .clouds import AUTODISCOVER, normalize, origin_of
from .errors import (
    ConfigurationError,
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    RegionError,
    TokenEndpointError,
    parse_envelope,
)
from .exchange import MAX_ANSWER_BYTES, Answer, DeadlineExceeded, Request, UnusableAnswer, post_form
from .redaction import Redactor
from .retry import FalconRetry
from .scope import direct_proxies
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
_CREDENTIAL_STATUSES: Final = frozenset({400, 401, 403})
# Sent when the retry policy does not say how many tries it allows.
_DEFAULT_TRIES: Final = 4
# The two operations, as error messages and logs name them.
_TOKEN_REQUEST: Final = "token request"
_REVOCATION: Final = "token revocation"

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
        call = _Call(_TOKEN_REQUEST, self._retry, self.call_budget, self._redact)
        answer = self._post(url, form, call)
        if answer.status in _REDIRECTS:
            url = self._follow_region_redirect(url, answer, call)
            answer = self._post(url, form, call)
            if answer.status in _REDIRECTS:
                raise call.fail(
                    RegionError,
                    "Falcon redirected the token request twice; not following. Name the "
                    "cloud explicitly (cloud= or FALCON_CLOUD).",
                    answer,
                    region=self.home.region,
                )
        if not 200 <= answer.status < 300:
            raise self._error(answer, call)
        token = self._parse_token(answer, url, issued_at, call)
        log.info(
            "Fetched a Falcon token: region=%s expires_in=%s trace_id=%s",
            token.region,
            token.expires_in,
            call.trace_id(answer),
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
        if budget is None:
            call = _Call(_REVOCATION, self._retry, self.call_budget, self._redact)
        else:
            one_try = self._retry.new(total=0, max_wait=0.0)
            call = _Call(_REVOCATION, one_try, _checks.seconds(budget, "budget"), self._redact)
        call.redact = call.redact.also(value)
        basic = base64.b64encode(f"{self.client_id}:{self._secret}".encode()).decode("ascii")
        answer = self._post(
            f"{base_url}/oauth2/revoke",
            {"token": value, "client_id": self.client_id},
            call,
            authorization=f"basic {basic}",
        )
        if answer.status != 200:
            raise self._error(answer, call)
        log.info(
            "Revoked a Falcon token: region=%s trace_id=%s",
            self.clouds.region_of(base_url) or self.home.region,
            call.trace_id(answer),
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
        connect, read = self._timeout
        operation = call.operation
        shown = call.redact(url)  # after a redirect, the server's Location
        while True:
            started = time.monotonic()
            remaining = call.deadline - started
            if remaining <= 0:
                raise call.fail(
                    TokenEndpointError,
                    f"The Falcon {operation} to {shown} did not finish within "
                    f"{call.budget:g} s (timeouts and retries included). Check the network "
                    "and proxy, or raise timeout=.",
                    region=self.home.region,
                )
            limits = _TryLimits(connect, read, remaining, call.budget)
            request = Request(
                url,
                form,
                headers,
                (min(connect, remaining), min(read, remaining)),
                direct_proxies(url, self._session.proxies),
            )
            try_deadline = min(call.deadline, started + connect + read)
            try:
                answer = post_form(self._session, request, try_deadline)
            except requests.exceptions.SSLError as exc:
                raise call.fail(
                    TokenEndpointError,
                    f"TLS verification failed for the Falcon {operation} to {shown}: check the "
                    "CA bundle (session.verify, REQUESTS_CA_BUNDLE) and any intercepting proxy.",
                    region=self.home.region,
                ) from exc
            except (requests.ConnectionError, requests.Timeout, DeadlineExceeded) as exc:
                cause = _unreachable(exc, url, limits, call.redact)
                if isinstance(exc, DeadlineExceeded):
                    exc = requests.Timeout(f"no complete answer within {connect + read:.0f} s")
                try:
                    call.retry = call.retry.increment(method="POST", url=url, error=exc)
                except MaxRetryError:
                    raise call.fail(
                        TokenEndpointError,
                        f"Could not reach the Falcon {operation} endpoint at {shown}: "
                        f"{cause.what}. {cause.advice}",
                        region=self.home.region,
                    ) from exc
                if not call.can_wait(call.retry.planned_wait()):
                    raise call.fail(
                        TokenEndpointError,
                        f"Could not reach the Falcon {operation} endpoint at {shown} within "
                        f"{call.budget:g} s: {cause.what}. {cause.advice}",
                        region=self.home.region,
                    ) from exc
                # INFO: the caller hears of the outcome; a command line shows one error line,
                # not one warning per try before it.
                log.info("Falcon %s failed (%s); retrying", operation, cause.what)
                call.retry.sleep()
                continue
            except (requests.RequestException, ValueError, UnusableAnswer) as exc:
                # ValueError: requests parses a redirect's Location even when not following it.
                raise call.fail(
                    TokenEndpointError,
                    f"The Falcon {operation} to {shown} failed: {type(exc).__name__} (an "
                    "unusable answer, such as a malformed redirect or encoding); a proxy may "
                    "be intercepting the call.",
                    region=self.home.region,
                ) from exc
            if not call.retry.is_retry("POST", answer.status, _has_retry_after(answer)):
                return answer
            try:
                call.retry = call.retry.increment(method="POST", url=url, response=answer)
            except MaxRetryError:
                return answer
            if not call.can_wait(call.retry.planned_wait(answer)):
                return answer
            log.info(
                "Falcon %s answered %s (trace_id=%s); retrying",
                operation,
                answer.status,
                call.trace_id(answer),
            )
            call.retry.sleep(answer)  # type: ignore[arg-type]

    def _follow_region_redirect(self, url: str, answer: Answer, call: _Call) -> str:
        """Checks a 308 from autodiscovery and returns the URL to re-post to."""
        named = _region_header(answer)
        location = answer.headers.get("Location")
        if not self.autodiscover:
            home = named or call.redact(_host_of(location))
            if named:
                advice = f"Set cloud={named!r} (or FALCON_CLOUD={named})."
            else:
                advice = "Name it with cloud= (or FALCON_CLOUD), or use cloud='auto'."
            raise call.fail(
                RegionError,
                f"These credentials belong to Falcon cloud {home}, not "
                f"{call.redact(self.home.base_url)}. {advice}",
                answer,
                region=self.home.region,
            )
        try:
            target = urljoin(url, location) if location else None
        except ValueError:
            target = None
        region = self.clouds.region_of(target) if target else None
        if target is None or region is None:
            raise call.fail(
                RegionError,
                f"Falcon's token endpoint redirected to {call.redact(_host_of(target))}, which "
                "is not a Falcon host in the cloud table; not sending credentials there. Name "
                "the cloud, or add the host to clouds= if it is your gateway.",
                answer,
                region=self.home.region,
            )
        self.home.move_to(region)
        log.info("Autodiscovered Falcon cloud %s (%s)", region, self.home.base_url)
        return target

    def _parse_token(self, answer: Answer, url: str, issued_at: float, call: _Call) -> Token:
        """Turns a 2xx answer into a Token, or raises TokenEndpointError."""

        def unusable(what: str) -> TokenEndpointError:
            return call.fail(
                TokenEndpointError,
                f"Falcon answered the token request with {answer.status} but {what}; a proxy "
                "may be intercepting the call (check base_url and proxies).",
                answer,
                region=self.home.region,
            )

        if answer.oversized:
            raise unusable(f"more than {MAX_ANSWER_BYTES // 1024} KiB, which no token answer is")
        region = self.clouds.region_of(url) or _region_header(answer) or self.home.region
        try:
            return token_from_answer(
                _json(answer.body), region=region, base_url=self.home.base_url, issued_at=issued_at
            )
        except NotATokenAnswer as exc:
            raise unusable(str(exc)) from exc

    def _error(self, answer: Answer, call: _Call) -> FalconAuthError:
        """The FalconAuthError that a non-success answer stands for, with advice."""
        operation = call.operation
        status = answer.status
        said = "; ".join(call.messages(answer)) or f"HTTP {status}"
        prefix = f"Falcon refused the {operation} ({status}: {said})."
        if status == 429:
            retry_after = self._retry.get_retry_after(answer)
            wait = f"wait {retry_after:.0f} s" if retry_after is not None else "wait a minute"
            return call.fail(
                RateLimitError,
                f"{prefix} Too many calls from this address: {wait} before asking again, and "
                "reuse tokens (one FalconAuth per process, or a shared token cache).",
                answer,
                region=self.home.region,
                retry_after=retry_after,
            )
        if status == 400 and "required" in said.lower():
            # We always send the whole form: a server that did not get it saw a mangled
            # request (a shared or intercepted connection), not bad credentials.
            return call.fail(
                TokenEndpointError,
                f"{prefix} The request did not arrive whole (a connection shared across a "
                "fork, or a proxy that rewrites bodies); asking again may succeed.",
                answer,
                region=self.home.region,
            )
        if status in _CREDENTIAL_STATUSES:
            return call.fail(
                CredentialsError,
                f"{prefix} {self._credentials_advice(said, operation)}",
                answer,
                region=self.home.region,
            )
        if status >= 500:
            return call.fail(
                TokenEndpointError,
                f"{prefix} This is a failure on CrowdStrike's side and it persisted through "
                "retries; try again later and quote the trace id if you contact support.",
                answer,
                region=self.home.region,
            )
        return call.fail(
            TokenEndpointError,
            f"{prefix} Unexpected answer from the token endpoint.",
            answer,
            region=self.home.region,
        )

    def _credentials_advice(self, said: str, operation: str) -> str:
        lowered = said.lower()
        if operation == _REVOCATION:
            # Falcon answers 403 "authorization failed" to a revoke whose Basic credentials are
            # wrong: the id and secret are the likeliest cause, not the allow-list.
            return (
                "Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET): "
                "Falcon refuses a revoke whose client credentials are wrong. Otherwise the API "
                "client may not be used from this source IP (its IP allow-list)."
            )
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


class _Call:
    """One token or revoke call: its retry state, its deadline, and what to keep out of text."""

    def __init__(self, operation: str, retry: FalconRetry, budget: float, redact: Redactor) -> None:
        self.operation = operation
        self.retry = retry
        self.budget = budget
        self.deadline = time.monotonic() + budget
        self.redact = redact

    def can_wait(self, seconds: float) -> bool:
        """True when a wait of ``seconds`` still leaves time before the deadline."""
        return time.monotonic() + seconds < self.deadline

    def trace_id(self, answer: Answer) -> str | None:
        value = answer.headers.get("X-Cs-Traceid")
        return self.redact(value, limit=_MAX_TRACE_ID) if value else None

    def messages(self, answer: Answer) -> tuple[str, ...]:
        envelope = parse_envelope(answer.body, answer.headers)
        return tuple(self.redact(m) for m in envelope.messages[:_MAX_MESSAGES])

    def fail(
        self,
        kind: type[_E],
        message: str,
        answer: Answer | None = None,
        **context: Any,
    ) -> _E:
        """A ``kind`` error with the answer's context, redacted (``message`` quotes only
        redacted text: the library's own words are never rewritten)."""
        if answer is not None:
            envelope = parse_envelope(answer.body, answer.headers)
            trace = envelope.trace_id
            context.update(
                status_code=answer.status,
                trace_id=self.redact(trace, limit=_MAX_TRACE_ID) if trace else None,
                errors=self.messages(answer),
            )
        return kind(message, **context)


_MAX_CAUSES: Final = 20
# Connected, then no (complete) answer in time: the per-read timeout, or the whole try's.
_ANSWER_TIMEOUTS: Final = (DeadlineExceeded, ReadTimeoutError, requests.ReadTimeout)
_MAX_MESSAGES: Final = 5
_MAX_TRACE_ID: Final = 100


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


class _Unreachable(NamedTuple):
    """Why a call never got an answer, and what to check: the two halves of its message."""

    what: str
    advice: str


class _TryLimits(NamedTuple):
    """What bounded one try: its timeouts, or what was left of the call's budget when less.

    A revoke at close runs one try under a 5 s budget: a message naming the 30 s read timeout
    would send its reader after the wrong setting.
    """

    connect: float
    read: float
    left: float
    budget: float

    def within(self, timeout: float) -> str:
        """How long a wait that ``timeout`` bounds could last, naming the budget if it cut it."""
        if self.left < timeout:
            return f"the call's budget of {self.budget:g} s"
        return f"{timeout:g} s"

    def advice(self, timeout: float, advice: str) -> str:
        """``advice`` and, when the timeout (not the budget) ran out, the setting to raise."""
        return f"{advice}." if self.left < timeout else f"{advice}, or raise timeout=."


def _unreachable(
    error: BaseException, url: str, limits: _TryLimits, redact: Callable[[str], str]
) -> _Unreachable:
    """Names the cause of a transport failure: DNS, a refused connection, a proxy, or a timeout.

    "ConnectionError" alone sends a new user down every path at once; the cause is in the
    exception chain (requests wraps urllib3's ``MaxRetryError``, whose ``reason`` wraps the
    socket's error). Quoted: the URL's host and port, exception types, the OS's error text;
    never an exception's message, which may carry a proxy URL with its password.
    """
    origin = origin_of(url)
    where = redact(f"{origin.host}:{origin.port}") if origin is not None else "the endpoint"
    host = redact(origin.host) if origin is not None else "the endpoint's host"
    chain = _causes(error)
    if any(isinstance(e, requests.exceptions.ProxyError) for e in chain):
        return _Unreachable(
            "the proxy refused or dropped the connection",
            "Check the proxy settings (HTTPS_PROXY, NO_PROXY, session.proxies).",
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return _Unreachable(
            f"the host name {host} does not resolve (DNS)",
            "Check the cloud or base_url for a typo, and this machine's DNS and proxy settings.",
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return _Unreachable(
            f"{where} refused the connection",
            "Nothing listens there: check base_url (host and port) and the proxy settings.",
        )
    if any(isinstance(e, _ANSWER_TIMEOUTS) for e in chain):
        # The per-read timeout, unless the try's own deadline (connect + read) ran out first.
        whole_try = any(isinstance(e, DeadlineExceeded) for e in chain)
        waited = limits.connect + limits.read if whole_try else limits.read
        return _Unreachable(
            f"{where} accepted the connection but sent no complete answer within "
            f"{limits.within(waited)}",
            limits.advice(waited, "The service or a proxy in between is stalling; try again"),
        )
    if any(
        isinstance(e, (ConnectTimeoutError, requests.ConnectTimeout, socket.timeout))
        and not isinstance(e, NewConnectionError)  # a subclass in urllib3 2, though no timeout
        for e in chain
    ):
        return _Unreachable(
            f"no connection to {where} within {limits.within(limits.connect)}",
            limits.advice(
                limits.connect,
                "A firewall may be dropping the traffic: check the network and proxy settings",
            ),
        )
    deepest = chain[-1]
    detail = deepest.strerror if isinstance(deepest, OSError) and deepest.strerror else None
    name = type(deepest).__name__
    return _Unreachable(
        f"the connection failed ({f'{detail}, {name}' if detail else name})",
        "Check the network, proxy settings and cloud.",
    )


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and everything it wraps: causes, contexts, urllib3 reasons, wrapped args."""
    found: list[BaseException] = []
    pending = [error]
    while pending and len(found) < _MAX_CAUSES:
        current = pending.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        reason = getattr(current, "reason", None)
        wrapped = [a for a in current.args if isinstance(a, BaseException)]
        for inner in (reason, *wrapped, current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                pending.append(inner)
    return found


def _has_retry_after(answer: Answer) -> bool:
    return bool(answer.headers.get("Retry-After") or answer.headers.get("X-Ratelimit-Retryafter"))


def _host_of(url: str | None) -> str:
    origin = origin_of(url) if url else None
    return origin.host if origin is not None else "an unknown host"


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
