"""From a failed token or revoke call to the message and advice a user reads.

Pure functions and values: each takes what went wrong (an answer, an exception, what bounded a
try) and returns the sentence or the ``FalconAuthError`` for it, sending nothing and waiting for
nothing, so every message can be tested without a server or a retry loop. ``oauth2.py`` decides
when a call has failed; this module says what the failure means and what to check.

The server's text (its messages, trace id, hosts it names) passes through the call's
``Redactor``; the library's own words never do (issue 18: a placeholder secret such as ``e``
garbled every sentence it touched).
"""

from __future__ import annotations

import math
import socket
from typing import Any, Final, NamedTuple, TypeVar

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from ._exchange import MAX_ANSWER_BYTES, Answer, DeadlineExceeded
from ._redaction import Redactor
from .clouds import origin_of
from .errors import (
    CredentialsError,
    FalconAuthError,
    RateLimitError,
    TokenEndpointError,
    parse_envelope,
)

__all__ = [
    "OVERSIZED_TOKEN_ANSWER",
    "REDIRECTED_TWICE",
    "REVOCATION",
    "TOKEN_REQUEST",
    "TryLimits",
    "Unreachable",
    "causes",
    "could_not_reach",
    "credentials_advice",
    "failure",
    "foreign_cloud",
    "foreign_redirect",
    "garbled",
    "messages",
    "out_of_time",
    "refusal",
    "tls_failure",
    "trace_id",
    "unreachable",
    "unusable_token_answer",
]

# The two operations, as error messages and logs name them.
TOKEN_REQUEST: Final = "token request"
REVOCATION: Final = "token revocation"

OVERSIZED_TOKEN_ANSWER: Final = (
    f"more than {MAX_ANSWER_BYTES // 1024} KiB, which no token answer is"
)
REDIRECTED_TWICE: Final = (
    "Falcon redirected the token request twice; not following. Name the cloud explicitly "
    "(cloud= or FALCON_CLOUD)."
)

_CREDENTIAL_STATUSES: Final = frozenset({400, 401, 403})
# How much of the server's text an error keeps: Falcon sends one message and a UUID.
_MAX_MESSAGES: Final = 5
_MAX_TRACE_ID: Final = 100
# How deep an exception chain is searched for its cause (a cycle or a hostile chain ends here).
_MAX_CAUSES: Final = 20
# Connected, then no (complete) answer in time: the per-read timeout, or the whole try's.
_ANSWER_TIMEOUTS: Final = (DeadlineExceeded, ReadTimeoutError, requests.ReadTimeout)
_CONNECT_TIMEOUTS: Final = (ConnectTimeoutError, requests.ConnectTimeout, socket.timeout)

_E = TypeVar("_E", bound=FalconAuthError)


def trace_id(answer: Answer, redact: Redactor) -> str | None:
    """The answer's ``X-Cs-Traceid``, as a log line may quote it."""
    value = answer.headers.get("X-Cs-Traceid")
    return redact(value, limit=_MAX_TRACE_ID) if value else None


def messages(answer: Answer, redact: Redactor) -> tuple[str, ...]:
    """The first of the answer's error messages, as an exception may quote them."""
    envelope = parse_envelope(answer.body, answer.headers)
    return tuple(redact(m) for m in envelope.messages[:_MAX_MESSAGES])


def failure(
    kind: type[_E],
    message: str,
    answer: Answer | None,
    redact: Redactor,
    **context: Any,
) -> _E:
    """A ``kind`` error with the answer's status, trace id and messages, redacted (``message``
    quotes only redacted text: the library's own words are never rewritten)."""
    if answer is not None:
        trace = parse_envelope(answer.body, answer.headers).trace_id
        context.update(
            status_code=answer.status,
            trace_id=redact(trace, limit=_MAX_TRACE_ID) if trace else None,
            errors=messages(answer, redact),
        )
    return kind(message, **context)


def refusal(
    answer: Answer,
    operation: str,
    redact: Redactor,
    *,
    region: str | None,
    autodiscover: bool,
    retry_after: float | None,
) -> FalconAuthError:
    """The FalconAuthError that a non-success answer stands for, with advice.

    Args:
        answer: the last answer of the call.
        operation: ``TOKEN_REQUEST`` or ``REVOCATION``.
        redact: what to keep out of the server's text.
        region: the cloud the call went to, when known.
        autodiscover: whether the cloud was left to autodiscovery (GovCloud never is).
        retry_after: the wait the answer asked for, when it said (read for a 429 only).
    """
    status = answer.status
    said = "; ".join(messages(answer, redact)) or f"HTTP {status}"
    prefix = f"Falcon refused the {operation} ({status}: {said})."
    if status == 429:
        wait = (
            f"wait {_whole_seconds(retry_after)} s" if retry_after is not None else "wait a minute"
        )
        return failure(
            RateLimitError,
            f"{prefix} Too many calls from this address: {wait} before asking again, and "
            "reuse tokens (one FalconAuth per process, or a shared token cache).",
            answer,
            redact,
            region=region,
            retry_after=retry_after,
        )
    if status == 400 and "required" in said.lower():
        # We always send the whole form: a server that did not get it saw a mangled
        # request (a shared or intercepted connection), not bad credentials.
        advice = (
            "The request did not arrive whole (a connection shared across a fork, or a proxy "
            "that rewrites bodies); asking again may succeed."
        )
        return failure(TokenEndpointError, f"{prefix} {advice}", answer, redact, region=region)
    if status in _CREDENTIAL_STATUSES:
        advice = credentials_advice(said, operation, autodiscover=autodiscover)
        return failure(CredentialsError, f"{prefix} {advice}", answer, redact, region=region)
    if status >= 500:
        advice = (
            "This is a failure on CrowdStrike's side and it persisted through retries; try "
            "again later and quote the trace id if you contact support."
        )
        return failure(TokenEndpointError, f"{prefix} {advice}", answer, redact, region=region)
    advice = "Unexpected answer from the token endpoint."
    return failure(TokenEndpointError, f"{prefix} {advice}", answer, redact, region=region)


def _whole_seconds(wait: float) -> int:
    """The wait a 429 asked for, in the whole seconds it was sent in (at least 1).

    ``X-Ratelimit-Retryafter`` names an epoch second: the gateway rounds its wait up to one
    (the emulator's ``math.ceil``), so the time left until it is the wait sent plus a fraction
    of a second. Rounding that fraction to the nearest second said "wait 121 s" for a wait of
    120; it is the header's rounding, not the server's ask, so it is dropped.
    """
    return max(1, math.floor(wait))


def credentials_advice(said: str, operation: str, *, autodiscover: bool) -> str:
    """What to check when Falcon refused the credentials and said ``said`` (400/401/403)."""
    lowered = said.lower()
    if operation == REVOCATION:
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
    if "clientid" in lowered and autodiscover:
        return (
            "Check the client id (FALCON_CLIENT_ID). GovCloud credentials are never "
            "autodiscovered: name the cloud (cloud='us-gov-1' or FALCON_CLOUD=us-gov-1)."
        )
    if "clientid" in lowered:
        return "Check the client id (FALCON_CLIENT_ID) and that it belongs to this cloud."
    return "Check the client id and secret (FALCON_CLIENT_ID, FALCON_CLIENT_SECRET)."


def unusable_token_answer(status: int, what: str) -> str:
    """A success answer that carries no token: ``what`` says what it holds instead."""
    return (
        f"Falcon answered the token request with {status} but {what}; a proxy may be "
        "intercepting the call (check base_url and proxies)."
    )


def foreign_cloud(named: str | None, location: str | None, base_url: str, redact: Redactor) -> str:
    """A 308 to the credentials' home cloud, when the cloud was named rather than discovered.

    Args:
        named: the region ``X-Cs-Region`` names, when it names one.
        location: the redirect's ``Location``.
        base_url: where the call went.
        redact: what to keep out of the server's text.
    """
    home = named or redact(_host_of(location))
    if named:
        advice = f"Set cloud={named!r} (or FALCON_CLOUD={named})."
    else:
        advice = "Name it with cloud= (or FALCON_CLOUD), or use cloud='auto'."
    return f"These credentials belong to Falcon cloud {home}, not {redact(base_url)}. {advice}"


def foreign_redirect(target: str | None, redact: Redactor) -> str:
    """A redirect of autodiscovery to a host outside the cloud table (or to nowhere)."""
    return (
        f"Falcon's token endpoint redirected to {redact(_host_of(target))}, which is not a "
        "Falcon host in the cloud table; not sending credentials there. Name the cloud, or add "
        "the host to clouds= if it is your gateway."
    )


def out_of_time(operation: str, shown: str, budget: float) -> str:
    """The call's budget ran out before another try could start."""
    return (
        f"The Falcon {operation} to {shown} did not finish within {budget:g} s (timeouts and "
        "retries included). Check the network and proxy, or raise timeout=."
    )


def tls_failure(operation: str, shown: str) -> str:
    """The server's certificate did not verify (never retried: it will not verify next time)."""
    return (
        f"TLS verification failed for the Falcon {operation} to {shown}: check the CA bundle "
        "(session.verify, REQUESTS_CA_BUNDLE) and any intercepting proxy."
    )


def garbled(operation: str, shown: str, error: BaseException) -> str:
    """An answer that arrived but cannot be read; only the exception's type is quoted."""
    return (
        f"The Falcon {operation} to {shown} failed: {type(error).__name__} (an unusable answer, "
        "such as a malformed redirect or encoding); a proxy may be intercepting the call."
    )


def could_not_reach(
    operation: str, shown: str, cause: Unreachable, budget: float | None = None
) -> str:
    """No answer, and no try left (or, with ``budget``, no time left for one)."""
    within = f" within {budget:g} s" if budget is not None else ""
    return (
        f"Could not reach the Falcon {operation} endpoint at {shown}{within}: {cause.what}. "
        f"{cause.advice}"
    )


class Unreachable(NamedTuple):
    """Why a call never got an answer, and what to check: the two halves of its message."""

    what: str
    advice: str


class TryLimits(NamedTuple):
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


def unreachable(error: BaseException, url: str, limits: TryLimits, redact: Redactor) -> Unreachable:
    """Names the cause of a transport failure: DNS, a refused connection, a proxy, or a timeout.

    "ConnectionError" alone sends a new user down every path at once; the cause is in the
    exception chain (requests wraps urllib3's ``MaxRetryError``, whose ``reason`` wraps the
    socket's error). Quoted: the URL's host and port, exception types, the OS's error text;
    never an exception's message, which may carry a proxy URL with its password.
    """
    origin = origin_of(url)
    where = redact(f"{origin.host}:{origin.port}") if origin is not None else "the endpoint"
    host = redact(origin.host) if origin is not None else "the endpoint's host"
    chain = causes(error)
    if any(isinstance(e, requests.exceptions.ProxyError) for e in chain):
        return Unreachable(
            "the proxy refused or dropped the connection",
            "Check the proxy settings (HTTPS_PROXY, NO_PROXY, session.proxies).",
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return Unreachable(
            f"the host name {host} does not resolve (DNS)",
            "Check the cloud or base_url for a typo, and this machine's DNS and proxy settings.",
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return Unreachable(
            f"{where} refused the connection",
            "Nothing listens there: check base_url (host and port) and the proxy settings.",
        )
    if any(isinstance(e, _ANSWER_TIMEOUTS) for e in chain):
        # The per-read timeout, unless the try's own deadline (connect + read) ran out first.
        whole_try = any(isinstance(e, DeadlineExceeded) for e in chain)
        waited = limits.connect + limits.read if whole_try else limits.read
        return Unreachable(
            f"{where} accepted the connection but sent no complete answer within "
            f"{limits.within(waited)}",
            limits.advice(waited, "The service or a proxy in between is stalling; try again"),
        )
    if any(
        isinstance(e, _CONNECT_TIMEOUTS)
        and not isinstance(e, NewConnectionError)  # a subclass in urllib3 2, though no timeout
        for e in chain
    ):
        return Unreachable(
            f"no connection to {where} within {limits.within(limits.connect)}",
            limits.advice(
                limits.connect,
                "A firewall may be dropping the traffic: check the network and proxy settings",
            ),
        )
    deepest = chain[-1]
    detail = deepest.strerror if isinstance(deepest, OSError) and deepest.strerror else None
    name = type(deepest).__name__
    return Unreachable(
        f"the connection failed ({f'{detail}, {name}' if detail else name})",
        "Check the network, proxy settings and cloud.",
    )


def causes(error: BaseException) -> list[BaseException]:
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


def _host_of(url: str | None) -> str:
    origin = origin_of(url) if url else None
    return origin.host if origin is not None else "an unknown host"
