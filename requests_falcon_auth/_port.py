"""The one interface every front end drives: a FalconAuth's tokens and routing, nothing else.

A driver (requests, urllib3, httpx sync and async, falconpy) only translates: it begins a
request's flow here, sends the request as the flow says, settles the answer here, and sends
again if told. Where the token comes from (``_sources.py``), where a request may carry it
(``flow.Routing``) and what a rejection means (``_flow.py``) stay behind this port; the async
twins of :meth:`Port.begin` and :meth:`Port.settle` are in ``_async_tokens.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ._flow import NEED_TOKEN, Attach, Flow, Reply, Routing, Step, advance, request_flow, settle
from ._sources import TokenSource
from .token import Token

__all__ = ["Begun", "Port"]


class Begun(NamedTuple):
    """A request's flow, and what to attach: None sends the request as it is, with no token."""

    flow: Flow
    attach: Attach | None


class Port:
    """What a front end needs of a FalconAuth.

    Args:
        tokens: where the tokens come from.
        routing: where a request's token may go.
    """

    def __init__(self, tokens: TokenSource, routing: Routing) -> None:
        self.tokens = tokens
        self.routing = routing

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

    def begin(self, method: str, url: str) -> Begun:
        """A request's flow, with the token fetched when it needs one (a blocking call)."""
        flow, step = self.start(method, url)
        if step is NEED_TOKEN:
            step = advance(flow, self.token())
        return Begun(flow, step if isinstance(step, Attach) else None)

    def settle(self, flow: Flow, reply: Reply, rewind: Callable[[], bool]) -> Step | None:
        """The flow's verdict on ``reply``: ``Resend`` to send again, else KEEP or None."""
        return settle(flow, reply, rewind, self.replace)
