"""FalconAuth for bare urllib3 users: a PoolManager wrapper (prior art: google-auth's
``AuthorizedHttp``).

It drives the same authentication flow as every front end (``_flow.py``) with urllib3's objects;
tokens, cache and single flight are shared with any requests session or httpx client using the
same FalconAuth. Works with urllib3 1.26 and 2.x.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NamedTuple, Union
from urllib.parse import urljoin

import urllib3
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from . import _fork
from ._flow import SETTLED, Flow, Reply, Resend, advance, carries
from ._scope import inside as covered
from ._scope import origin_of
from .auth import FalconAuth
from .errors import FalconAuthError
from .token import Token

try:  # urllib3 2.x
    from urllib3._request_methods import RequestMethods
except ImportError:  # pragma: no cover - urllib3 1.26
    from urllib3.request import RequestMethods  # type: ignore[import-not-found,no-redef]

__all__ = ["AuthorizedPoolManager"]

_Body = Union[bytes, str, io.IOBase, Any, None]


class AuthorizedPoolManager(RequestMethods):
    """A urllib3 pool manager that authenticates requests to the Falcon API.

    ``request()``, ``request_encode_url()``, ``request_encode_body()`` and ``urlopen()`` attach
    the token only inside its scope (the API origin and path prefix), on the first request and
    on every redirect hop, and re-send once with a fresh token when the API rejects it (401, or
    429 under the bad-token budget; never a body that cannot be replayed; never for an answer
    from outside the scope).

    Args:
        auth: the FalconAuth whose tokens to use.
        http: the pool manager to send through (``urllib3.PoolManager()`` by default; a
            ``ProxyManager`` works too). Closed by ``clear()``/``with`` only if made here; if
            made here, a forked child starts with empty pools.
    """

    def __init__(self, auth: FalconAuth, http: urllib3.PoolManager | None = None) -> None:
        super().__init__()
        self.auth = auth
        self._owns_http = http is None
        self.http = http if http is not None else urllib3.PoolManager()
        if self._owns_http:
            _fork.register(self)

    @property
    def auth(self) -> FalconAuth:
        """The FalconAuth whose tokens are used."""
        return self._auth

    @auth.setter
    def auth(self, auth: FalconAuth) -> None:
        self._auth = auth
        self._port = auth.port  # read on every request: no property on the way

    def _after_fork_in_child(self) -> None:
        # The parent's pooled sockets are the parent's: a child writing into one interleaves
        # its requests with the parent's. The old pools are dropped, not closed: a parent
        # thread may have held their lock at the fork.
        self.http = urllib3.PoolManager()

    def __repr__(self) -> str:
        return f"AuthorizedPoolManager(auth={self.auth!r})"

    def urlopen(  # type: ignore[override]
        self,
        method: str,
        url: str,
        body: _Body = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """As ``PoolManager.urlopen``, authenticated. Raises FalconAuthError when the request
        needs a token and none can be had (the request is then not sent).

        Redirects are followed here, not by urllib3 (which keeps ``Authorization`` on any hop
        to the same host): each hop carries the token only when it is inside the token's
        scope, origin and path prefix. Otherwise redirects behave as urllib3's: ``redirect``,
        ``retries`` (its redirect count and ``raise_on_redirect``), 303 turning into a GET
        without a body, and the caller's ``remove_headers_on_redirect`` headers dropped on a
        hop to another origin.
        """
        port = self._port
        ready = port.hot()  # Port.ready(url), a frame less: the common case, whose flow is
        flow: Flow | None = None  # built only if an answer asks for it
        if ready is not None and covered(ready.token.base_url, url):
            token, authorization, _ = ready
        else:
            flow, attach = port.begin(method, url)
            if attach is None:
                # The pool's own default headers apply as they would to its urlopen().
                caller_headers = {**self.http.headers, **(headers or {})}
                return self.http.urlopen(method, url, body=body, headers=caller_headers, **kwargs)
            url, token = attach  # the flow chose the URL
            authorization = token.authorization
        redirect = kwargs.pop("redirect", True)
        kwargs["redirect"] = False  # followed here, each hop judged against the token's scope
        start = _body_position(body) if body is not None else None
        sent = {**self.http.headers, **headers} if headers else {**self.http.headers}
        sent["Authorization"] = authorization
        response = self.http.urlopen(method, url, body=body, headers=sent, **kwargs)
        # Port.noted for an answer from inside the scope, without the call.
        port.budget.observe(response.headers)
        settle = response.status in SETTLED
        if not settle and not (redirect and response.status in response.REDIRECT_STATUSES):
            return response  # the warm path: nothing to heal, nowhere to follow
        if flow is None:
            flow = port.flow(method, url, token)
        hop = _Hop(method, url, body, {**self.http.headers, **(headers or {})})
        inside = True
        while True:
            if settle:
                response, fresh = self._heal(
                    flow, hop, sent, start, kwargs, response=response, inside=inside
                )
                token = fresh or token
            location = redirect and response.get_redirect_location()
            if not location:
                return response
            retries = kwargs.get("retries")
            if not isinstance(retries, Retry):
                retries = Retry.from_int(retries, redirect=redirect)
            last, hop = hop, _next_hop(hop, response, location, retries)
            try:
                pool = self.http.connection_from_url(last.url)
                kwargs["retries"] = retries.increment(
                    hop.method, last.url, response=response, _pool=pool
                )
            except MaxRetryError:
                if retries.raise_on_redirect:
                    response.drain_conn()
                    raise
                return response
            response.drain_conn()
            sent, inside = dict(hop.headers), carries(token, hop.url)
            if inside:
                sent["Authorization"] = token.authorization
            response = self.http.urlopen(hop.method, hop.url, body=hop.body, headers=sent, **kwargs)
            settle = port.noted(response.status, response.headers, inside)

    def _heal(
        self,
        flow: Flow,
        hop: _Hop,
        sent: dict[str, str],
        start: int | None,
        kwargs: Mapping[str, Any],
        *,
        response: Any,
        inside: bool,
    ) -> tuple[Any, Token | None]:
        """Settles an answer to ``hop`` that the flow may act on, and re-sends as it says (a
        fresh token after a rejection, the same after a wait for the budget); returns the last
        answer, and the token it went with when that changed. ``inside``: the hop is in the
        token's scope (only then do its answers count)."""
        port = self._port
        rewind = functools.partial(_rewind, hop.body, start)
        token: Token | None = None
        while True:
            try:
                step = port.settle(flow, Reply(response.status, response.headers, hop.url), rewind)
            except FalconAuthError:
                _release(response, kwargs)  # the caller gets the error, the pool its connection
                raise
            if not isinstance(step, Resend):
                return response, token
            _release(response, kwargs)
            token = step.token
            sent["Authorization"] = token.authorization
            response = self.http.urlopen(hop.method, hop.url, body=hop.body, headers=sent, **kwargs)
            if not port.noted(response.status, response.headers, inside):
                advance(flow, Reply(response.status, response.headers, hop.url))
                return response, token

    def clear(self) -> None:
        """Closes the pools if this object made them."""
        if self._owns_http:
            self.http.clear()

    def __enter__(self) -> AuthorizedPoolManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.clear()


def _release(response: Any, kwargs: Mapping[str, Any]) -> None:
    if kwargs.get("preload_content", True) is False:
        response.drain_conn()
    response.release_conn()


_NOT_SEEKABLE = -1


def _body_position(body: _Body) -> int | None:
    """Where a file body starts (to rewind to), _NOT_SEEKABLE, or None for other bodies."""
    tell = getattr(body, "tell", None)
    if tell is None:
        return None
    try:
        position: int = tell()
    except OSError:
        return _NOT_SEEKABLE
    return position


def _rewind(body: _Body, start: int | None) -> bool:
    """Readies a body for a re-send; False when it cannot be replayed."""
    if body is None or isinstance(body, (bytes, str)):
        return True
    if start is None or start == _NOT_SEEKABLE:
        return False
    try:
        body.seek(start)
    except (OSError, AttributeError):
        return False
    return True


class _Hop(NamedTuple):
    """One request of a redirect chain, with the caller's headers (never the token)."""

    method: str
    url: str
    body: _Body
    headers: Mapping[str, str]


def _next_hop(hop: _Hop, response: Any, location: str, retries: Retry) -> _Hop:
    """The hop urllib3's ``PoolManager.urlopen`` would send next: the target resolved against
    this hop's URL, a 303 as a GET without body, and on another origin without the caller's
    ``remove_headers_on_redirect`` headers."""
    url = urljoin(hop.url, location)
    method, body, headers = hop.method, hop.body, hop.headers
    if response.status == 303:  # RFC 9110 15.4.4: a GET, and the body stays behind
        method, body, headers = "GET", None, _without_body_headers(headers)
    if origin_of(url) is None or origin_of(url) != origin_of(hop.url):
        dropped = retries.remove_headers_on_redirect
        headers = {name: value for name, value in headers.items() if name.lower() not in dropped}
    return _Hop(method, url, body, headers)


# What urllib3 drops when a 303 turns a request into a GET (HTTPHeaderDict's
# _prepare_for_method_change, private to it).
_BODY_HEADERS = frozenset(
    {
        "content-encoding",
        "content-language",
        "content-location",
        "content-type",
        "content-length",
        "digest",
        "last-modified",
    }
)


def _without_body_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in _BODY_HEADERS}
