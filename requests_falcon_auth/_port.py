"""The one interface every front end drives: a FalconAuth's tokens and routing, nothing else.

A driver (requests, urllib3, httpx sync and async, falconpy) only translates: it begins a
request's flow here, sends the request as the flow says, settles the answer here, and sends
again if told. Where the token comes from (``_sources.py``), where a request may carry it
(``flow.Routing``) and what a rejection means (``_flow.py``) stay behind this port; the async
twins of :meth:`Port.begin` and :meth:`Port.settle` are in ``_async_tokens.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import NamedTuple

from ._flow import (
    NEED_TOKEN,
    Answer,
    Attach,
    Flow,
    Pause,
    Reply,
    Routing,
    Step,
    advance,
    needs_settling,
    request_flow,
    settle,
)
from ._ratelimit import RateBudget
from ._scope import Scope, inside, scope_of
from ._sources import TokenSource
from .token import Token

__all__ = ["Begun", "Port", "Ready", "WarmFlow"]


class Begun(NamedTuple):
    """A request's flow, and what to attach: None sends the request as it is, with no token."""

    flow: Flow
    attach: Attach | None


class Ready(NamedTuple):
    """A token to send a request with, as it is: its ``Authorization`` header value, and the
    scope it may go to (a driver that has the URL parsed judges it there: ``Scope.holds``)."""

    token: Token
    authorization: str
    scope: Scope


class WarmFlow:
    """The flow of a request sent on the warm path, built only when an answer needs it.

    Nearly every answer is one the flow would only KEEP, and drivers settle only the ones that
    reject the token; so the generator, and the steps that brought it to ``Attach``, are
    replayed on the first ``send``, where a cold start would have been: same routing, same
    token, same ``Attach``.
    """

    __slots__ = ("_flow", "_method", "_routing", "_token", "_url")

    def __init__(self, routing: Routing, method: str, url: str, token: Token) -> None:
        self._routing = routing
        self._method = method
        self._url = url
        self._token = token
        self._flow: Generator[Step, Answer, None] | None = None

    def send(self, answer: Answer, /) -> Step:
        flow = self._flow
        if flow is None:
            flow = self._flow = request_flow(self._routing, self._method, self._url)
            next(flow)  # NEED_TOKEN
            flow.send(self._token)  # Attach(url, token), as Port.ready said
        return flow.send(answer)


class Port:
    """What a front end needs of a FalconAuth.

    Args:
        tokens: where the tokens come from.
        routing: where a request's token may go.
    """

    def __init__(self, tokens: TokenSource, routing: Routing) -> None:
        self.tokens = tokens
        self.routing = routing
        self.budget: RateBudget = routing.budget
        self._home = routing.home
        self._ready: Ready | None = None  # the last token made ready, with its header

    def token(self) -> Token:
        """The token to attach (the answer to ``NEED_TOKEN``); raises FalconAuthError."""
        return self.tokens.token()

    def peek(self) -> Token | None:
        """A usable token without I/O, or None: an async driver's warm path."""
        return self.tokens.peek()

    def drop(self, rejected: Token) -> None:
        """Forgets a token the API rejected (compare-and-swap in the store)."""
        self.tokens.drop(rejected)

    def replace(self, rejected: Token) -> Token:
        """A usable token instead of ``rejected`` (the answer to ``NeedFreshToken``)."""
        self.tokens.drop(rejected)
        return self.tokens.token()

    def start(self, method: str, url: str) -> tuple[Flow, Step | None]:
        """A request's flow and its first step: ``NEED_TOKEN``, or None (no token to attach)."""
        flow = request_flow(self.routing, method, url)
        return flow, advance(flow, None)

    def ready(self, url: str) -> Ready | None:
        """The common case, a memory read: a fresh token for the API's home whose scope covers
        ``url``, the account's budget clear. A driver sends the request to ``url`` with it,
        and builds its flow (:meth:`flow`) only for an answer that needs one. None: ask
        :meth:`begin` (or its async twin), which decide everything else (a token to fetch,
        renew or look up in a shared store, a URL to re-target or leave alone).
        """
        ready = self.hot()
        return ready if ready is not None and inside(ready.token.base_url, url) else None

    def hot(self) -> Ready | None:
        """:meth:`ready` before the URL is judged: the caller judges it against ``scope``."""
        token = self.tokens.hot()
        if token is None or not self.budget.clear:
            return None
        ready = self._ready
        if ready is None or ready.token is not token:
            # A token for another home than the API's is not the flow's common case: it may
            # re-target the request, or send it without a token. Asked once a token: the home
            # moves only as autodiscovery fetches the token it names, and the flow sends a
            # token to any URL inside its own scope once it is fetched.
            scope = scope_of(token.base_url)
            if scope is None or token.base_url != self._home.base_url:
                return None
            ready = self._ready = Ready(token, token.authorization, scope)
        return ready

    def flow(self, method: str, url: str, token: Token) -> Flow:
        """The flow of a request that :meth:`ready` sent to ``url`` with ``token``."""
        return WarmFlow(self.routing, method, url, token)

    def warm(self, method: str, url: str) -> Begun | None:
        """:meth:`ready` as a :class:`Begun`; None: ask :meth:`begin` or its async twin."""
        ready = self.ready(url)
        if ready is None:
            return None
        return Begun(WarmFlow(self.routing, method, url, ready.token), Attach(url, ready.token))

    def begin(self, method: str, url: str) -> Begun:
        """A request's flow, with the token fetched when it needs one (a blocking call)."""
        begun = self.warm(method, url)
        if begun is not None:
            return begun
        flow, step = self.start(method, url)
        if step is NEED_TOKEN:
            step = advance(flow, self.token())
        if isinstance(step, Attach):
            self.pause(self.budget.pause())
            return Begun(flow, step)
        return Begun(flow, None)

    def pause(self, seconds: float) -> None:
        """Waits for the account's budget (blocking), counted in its stats: ``seconds``, then
        for any cooldown that began meanwhile."""
        while seconds > 0:
            time.sleep(seconds)
            self.budget.waited(seconds)
            seconds = self.budget.pause(again=True)

    def spent(self, step: Pause) -> None:
        """Answers a :class:`Pause`: the cooldown shared, then waited out (blocking)."""
        self.budget.share(step.until)
        self.pause(step.seconds)

    def noted(self, status: int, headers: Mapping[str, str], inside: bool) -> bool:
        """Shows an answer's budget headers to the budget; True when the flow must settle it
        (the warm path's one look at an answer).

        An answer from ``inside`` the token's scope only: one from elsewhere (a redirect hop
        to another host) speaks for no budget of the account's, so it neither paces the
        account's calls nor asks the flow for anything (the flow would keep it as it is).
        """
        if not inside:
            return False
        self.budget.observe(headers)
        return needs_settling(status)

    def settle(self, flow: Flow, reply: Reply, rewind: Callable[[], bool]) -> Step | None:
        """The flow's verdict on ``reply``: ``Resend`` to send again, else KEEP or None."""
        return settle(flow, reply, rewind, self.replace, self.spent)
