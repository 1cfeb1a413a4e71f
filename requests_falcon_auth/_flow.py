"""One request's authentication, written once for every HTTP library.

A flow is a generator, the shape of httpx's ``auth_flow``: it yields what it needs next and
is sent the answer. A front end (requests, urllib3, httpx sync and async) is a driver that only
answers those steps with its own library's objects:

- :data:`NEED_TOKEN` -> a :class:`~requests_falcon_auth.token.Token`: the token to attach;
- :class:`Attach` -> a :class:`Reply`: the request, re-targeted and carrying the token, went out;
- :class:`NeedFreshToken` -> a Token: the API rejected ``rejected``; drop it, get another;
- :data:`REWIND` -> bool: whether the body is ready to be sent again (False: it cannot be);
- :class:`Pause` -> None: the account's API budget is spent (an account 429); wait this long;
- :class:`Resend` -> a Reply: the request went out again, with a fresh token after a rejection,
  or with the same one after a pause; its answer may need settling again (one re-send per
  rejection, as many after 429s as the call's wait budget allows);
- :data:`KEEP` -> another Reply or nothing: the last answer is the caller's. A driver whose
  library shows it every redirect hop (requests' response hook) sends the next hop's answer in;
  the others stop here.

An answer for which :func:`needs_settling` is False always gets :data:`KEEP` and changes
nothing, so a driver may keep it without building a Reply: the warm path's shortcut (it still
shows the answer's headers to the rate budget, :meth:`RateBudget.observe`).

A flow that returns without yielding :class:`Attach` leaves the request as it was: no token.
Fetching and waiting are the driver's, so an async driver can await them; everything else
(scope, the bad-token rule, the account's budget, the re-sends, replay, logging) is decided
here and nowhere else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, TypeVar, Union

from ._scope import Origin, inside, origin_of, scope_of
from .token import Token

if TYPE_CHECKING:
    from ._home import ApiHome
    from ._ratelimit import RateBudget

__all__ = [
    "BAD_TOKEN_RATE_LIMIT",
    "Answer",
    "KEEP",
    "NEED_TOKEN",
    "REWIND",
    "SETTLED",
    "Attach",
    "Flow",
    "NeedFreshToken",
    "Pause",
    "Reply",
    "Resend",
    "Routing",
    "Step",
    "advance",
    "carries",
    "header_count",
    "needs_settling",
    "rejects_token",
    "request_flow",
    "settle",
]

log = logging.getLogger("requests_falcon_auth.auth")

# Falcon's budget of calls with a bad token, per minute and source IP (falcon-oauth2.md).
BAD_TOKEN_RATE_LIMIT: Final = 15
# The statuses a flow may act on: a rejected token (401, the bad-token 429), a spent budget.
SETTLED: Final = frozenset({401, 429})
_TRACE_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_TOKEN: Final = _Marker("NEED_TOKEN")
REWIND: Final = _Marker("REWIND")
KEEP: Final = _Marker("KEEP")


class Attach(NamedTuple):
    """Send the request to ``url`` (the caller's, or re-targeted home) with ``token``."""

    url: str
    token: Token


class NeedFreshToken(NamedTuple):
    """The API rejected ``rejected``: drop it (if still cached) and get a usable one."""

    rejected: Token


class Pause(NamedTuple):
    """The account's budget is spent until ``until`` (epoch seconds): share that with every
    caller of the account (the store: I/O), wait ``seconds`` (0: do not), answer None."""

    seconds: float
    until: float


class Resend(NamedTuple):
    """Send the request again, its body rewound, with ``token``."""

    token: Token


class Reply(NamedTuple):
    """What the flow needs of an answer.

    Attributes:
        status: the HTTP status.
        headers: the answer's headers (case-insensitive mapping).
        url: the URL that produced it: the last redirect hop's, when redirects were followed.
    """

    status: int
    headers: Mapping[str, str]
    url: str


Step = Union[_Marker, Attach, NeedFreshToken, Pause, Resend]
# What a driver sends in: a Token (to NEED_TOKEN and NeedFreshToken), a Reply (to Attach, Resend
# and KEEP), a bool (to REWIND), or None (to start the flow, and after a Pause).
Answer = Union[Token, Reply, bool, None]
_A = TypeVar("_A", Token, Reply, bool)


class Flow(Protocol):
    """A request's flow as a driver holds it: what :func:`request_flow` returns, or a stand-in
    that builds it only if an answer needs it (``_port.WarmFlow``)."""

    def send(self, answer: Answer, /) -> Step:
        """Sends ``answer`` in; the next step (StopIteration when the flow has ended)."""


class Routing:
    """Where a request's token may go: the API origin, and the table hosts re-targeted home.

    Args:
        home: where the API lives, which autodiscovery moves when it finds the home region.
        budget: the account's API budget, which the tokens' calls spend.
    """

    def __init__(self, home: ApiHome, budget: RateBudget) -> None:
        self.home = home
        self.budget = budget
        self._logged: set[str] = set()

    def home_covering(self, url: str, origin: Origin) -> str | None:
        """The API base URL now, if it covers ``url``; None otherwise."""
        base_url = self.home.base_url
        home = scope_of(base_url)
        return base_url if home is not None and home.covers(url, origin) else None

    def retargets(self, url: str, origin: Origin) -> bool:
        """True when ``url`` is another table host's, to be moved to the token's home region."""
        return self.home.autodiscover and self.home.clouds.region_of(url, origin) is not None

    def target(self, url: str, origin: Origin, token: Token) -> str | None:
        """Where the request goes with ``token``: ``url``, or its path under the token's home."""
        home = scope_of(token.base_url)
        if home is not None and home.covers(url, origin):
            return url
        clouds = self.home.clouds
        source = clouds.region_of(url, origin)
        source_scope = scope_of(clouds[source]) if source is not None else None
        if source is None or source_scope is None:
            return None
        if source not in self._logged:
            self._logged.add(source)
            log.info(
                "Sending requests for Falcon cloud %s to the credentials' home region %s",
                source,
                token.region,
            )
        return token.base_url + source_scope.relative(url)


def request_flow(routing: Routing, method: str, url: str) -> Generator[Step, Answer, None]:
    """The protocol for one request to ``url``; see the module docstring for the steps."""
    origin = origin_of(url)
    if origin is None:
        return
    covering = routing.home_covering(url, origin)
    if covering is None and not routing.retargets(url, origin):
        return
    token = _sent(Token, (yield NEED_TOKEN))
    # The common case costs one scope check: the URL is under the base URL the token is for.
    target = url if covering == token.base_url else routing.target(url, origin, token)
    if target is None:
        return
    reply = _sent(Reply, (yield Attach(target, token)))
    healed, waited = False, 0.0
    while True:
        if not healed and _rejected_here(reply, token):
            if not _sent(bool, (yield REWIND)):
                _unreplayable(reply, method)
            else:
                healed = True
                log.info(
                    "Falcon answered %s to %s %s (trace_id=%s); retrying once with a fresh token",
                    _describe(reply),
                    method,
                    _path_of(reply.url),
                    _trace_id(reply.headers),
                )
                token = _sent(Token, (yield NeedFreshToken(token)))
                reply = _sent(Reply, (yield Resend(token)))
                if rejects_token(reply.status, reply.headers):
                    log.warning(
                        "Falcon answered %s again to %s %s with a fresh token (trace_id=%s)",
                        _describe(reply),
                        method,
                        _path_of(reply.url),
                        _trace_id(reply.headers),
                    )
                continue
        elif _spent_here(reply, token):
            until, wait = routing.budget.spent(reply.headers, waited)
            replay = wait is not None and _sent(bool, (yield REWIND))
            yield Pause(wait if replay and wait is not None else 0.0, until)
            if replay and wait is not None:
                waited += wait
                reply = _sent(Reply, (yield Resend(token)))
                continue
            if wait is not None:
                _unreplayable(reply, method)
        reply = _sent(Reply, (yield KEEP))


def _unreplayable(reply: Reply, method: str) -> None:
    log.warning(
        "Falcon answered %s to %s %s and the request body cannot be sent again "
        "(a generator or unseekable stream); returning it",
        _describe(reply),
        method,
        _path_of(reply.url),
    )


def _sent(kind: type[_A], answer: Answer) -> _A:
    """What a driver sent in, as the step asked for (a driver that answers wrong is a bug)."""
    if not isinstance(answer, kind):
        raise TypeError(f"the flow expected a {kind.__name__}, got {type(answer).__name__}")
    return answer


def advance(flow: Flow, answer: Answer) -> Step | None:
    """Sends ``answer`` into ``flow`` (None to start it); its next step, or None when it ended."""
    try:
        return flow.send(answer)
    except StopIteration:
        return None


def settle(
    flow: Flow,
    reply: Reply,
    rewind: Callable[[], bool],
    fresh: Callable[[Token], Token],
    pause: Callable[[Pause], None],
) -> Step | None:
    """Sends ``reply`` in and answers the steps up to the flow's verdict, for a sync driver.

    Args:
        flow: the request's flow, at its :class:`Attach` (or :data:`KEEP`) step.
        reply: the answer to the request.
        rewind: readies the body for a re-send; False when it cannot be replayed.
        fresh: the token to re-send with, given the rejected one.
        pause: shares a spent budget's cooldown and waits as the step says.

    Returns:
        :class:`Resend` when the request is to go again, else :data:`KEEP` or None.
    """
    step = advance(flow, reply)
    while step is REWIND or isinstance(step, (NeedFreshToken, Pause)):
        if isinstance(step, NeedFreshToken):
            step = advance(flow, fresh(step.rejected))
        elif isinstance(step, Pause):
            pause(step)
            step = advance(flow, None)
        else:
            step = advance(flow, rewind())
    return step


def carries(token: Token, url: str) -> bool:
    """True when a request to ``url`` may carry ``token``: inside its scope (origin and path
    prefix). Drivers ask it of every redirect hop, with the URL as their library sends it."""
    return inside(token.base_url, url)


def needs_settling(status: int) -> bool:
    """True for an answer the flow may act on (a rejection, a spent budget): every other
    answer it only keeps, so a driver may skip sending it in."""
    return status in SETTLED


def _spent_here(reply: Reply, token: Token) -> bool:
    """The API at the token's home says the account's budget is spent (a 429 that is not the
    bad-token budget's)."""
    return (
        reply.status == 429 and not rejects_token(429, reply.headers) and carries(token, reply.url)
    )


def _rejected_here(reply: Reply, token: Token) -> bool:
    """The API at the token's home rejected it (an answer from another origin is not ours)."""
    return rejects_token(reply.status, reply.headers) and carries(token, reply.url)


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
    return header_count(headers.get("X-Ratelimit-Limit")) == BAD_TOKEN_RATE_LIMIT


def header_count(value: str | None) -> int | None:
    """A count a server put in a header (``X-Ratelimit-Limit``), or None for anything but
    plain ASCII digits: ``str.isdigit`` also takes ``²``, which ``int`` refuses."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


def _describe(reply: Reply) -> str:
    if reply.status == 401:
        return "401"
    if rejects_token(reply.status, reply.headers):
        return "429 under the bad-token budget"
    return "429 (the account's API budget is spent)"


def _trace_id(headers: Mapping[str, str]) -> str | None:
    """Falcon's trace id, if it looks like one (logs quote nothing else from the server)."""
    value = headers.get("X-Cs-Traceid")
    return value if value is not None and _TRACE_ID.fullmatch(value) else None


def _path_of(url: str | None) -> str:
    """The path of a URL for logs: no query string (it may carry ids users consider private)."""
    return (url or "").split("?", 1)[0]
