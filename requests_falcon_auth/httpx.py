"""FalconAuth for httpx: one ``httpx.Auth`` for ``httpx.Client`` and ``httpx.AsyncClient``.

Both drivers answer the one authentication flow (``_flow.py``) with httpx's objects. The sync
one fetches as the requests driver does; the async one never blocks its event loop: a warm
token comes from memory, a cold one from a worker thread that one task per loop waits for
(``_async_tokens.py``). Built on a :class:`~requests_falcon_auth.FalconAuth`, it shares that
object's token, cache and single flight with any requests session or urllib3 pool using it.

Requires the ``httpx`` extra (``pip install 'requests-falcon-auth[httpx]'``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Generator
from functools import partial
from types import TracebackType
from typing import Any

try:
    import anyio  # noqa: F401 -- _async_tokens' dependency, checked here for one clear hint
    import httpx
except ImportError as exc:
    raise ImportError(
        "requests_falcon_auth.httpx needs httpx and anyio: "
        "pip install 'requests-falcon-auth[httpx]'"
    ) from exc

from . import _async_tokens
from ._flow import SETTLED, Attach, Flow, Reply, Resend, advance, carries
from ._port import Port, Ready
from ._scope import Origin, Scope, scope_of
from .auth import FalconAuth
from .token import Token

__all__ = ["FalconHttpxAuth"]


class FalconHttpxAuth(httpx.Auth):
    """Authenticates httpx calls to the CrowdStrike Falcon API, sync and async.

    ``httpx.Client(auth=FalconHttpxAuth())`` or ``httpx.AsyncClient(auth=...)``: the token goes
    only to the API origin (never across a redirect to another origin), is fetched once for any
    number of concurrent tasks and threads, renewed before it expires off every caller's path,
    and a 401 (or the bad-token 429) gets one fresh token and one re-send of a body httpx holds
    in memory. A streaming body is not re-sent: the 401 comes back, with a warning.

    Closing it (``close()``, ``await aclose()``, ``with``, ``async with``) closes the
    FalconAuth: the tokens this process fetched are revoked, within seconds, never raising.

    Args:
        auth: the FalconAuth whose tokens to use; by default one made from the environment
            (``FALCON_CLIENT_ID``, ``FALCON_CLIENT_SECRET``, ...).

    Raises:
        ConfigurationError: no ``auth`` given and the environment lacks credentials.
    """

    def __init__(self, auth: FalconAuth | None = None) -> None:
        self.falcon = auth if auth is not None else FalconAuth()

    def __repr__(self) -> str:
        return f"FalconHttpxAuth({self.falcon!r})"

    @property
    def falcon(self) -> FalconAuth:
        """The FalconAuth whose tokens are used."""
        return self._falcon

    @falcon.setter
    def falcon(self, auth: FalconAuth) -> None:
        self._falcon = auth
        self._port = auth.port  # read on every request: no property on the way

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        port = self._port
        ready = _ready(port, request)  # the common case; its flow is built only if asked
        flow: Flow | None = None
        if ready is not None:
            token, authorization, _ = ready
        else:
            flow, attach = port.begin(request.method, str(request.url))
            if attach is None:
                yield _without_authorization(request)
                return
            token, authorization = _retarget(request, attach)
        _authorize(request, authorization, token.base_url, _HopGuard)
        response = yield request
        if not _noted(port, response, token):
            return  # nothing to heal: the flow would only say KEEP
        if flow is None:
            flow = port.flow(request.method, str(request.url), token)
        rewind = partial(_replayable, request)
        while True:
            step = port.settle(flow, _reply(response), rewind)
            if not isinstance(step, Resend):
                return
            _ready_to_resend(request, response, step)
            response = yield request
            if not _noted(port, response, token):
                advance(flow, _reply(response))
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        port = self._port
        ready = _ready(port, request)  # the common case; its flow is built only if asked
        flow: Flow | None = None
        if ready is not None:
            token, authorization, _ = ready
        else:
            flow, attach = await _async_tokens.begin(port, request.method, str(request.url))
            if attach is None:
                yield _without_authorization(request)
                return
            token, authorization = _retarget(request, attach)
        _authorize(request, authorization, token.base_url, _AsyncHopGuard)
        response = yield request
        if not _noted(port, response, token):
            return  # nothing to heal: the flow would only say KEEP
        if flow is None:
            flow = port.flow(request.method, str(request.url), token)
        rewind = partial(_replayable, request)
        while True:
            step = await _async_tokens.settle(port, flow, _reply(response), rewind)
            if not isinstance(step, Resend):
                return
            _ready_to_resend(request, response, step)
            response = yield request
            if not _noted(port, response, token):
                advance(flow, _reply(response))
                return

    def close(self) -> None:
        """Closes the FalconAuth: revokes its tokens (bounded, never raises)."""
        self.falcon.close()

    async def aclose(self) -> None:
        """Closes the FalconAuth on a worker thread, so the event loop goes on meanwhile."""
        await _async_tokens.close(self.falcon.close)

    def __enter__(self) -> FalconHttpxAuth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> FalconHttpxAuth:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _ready(port: Port, request: httpx.Request) -> Ready | None:
    """``Port.ready`` for a URL httpx has parsed, judged as httpx will route it: no string
    made of it, and not parsed again."""
    ready = port.hot()
    if ready is None:
        return None
    url, scope = request.url, ready.scope
    if not scope.holds(url.scheme, url.host, url.port):
        return None
    return ready if not scope.prefix or scope.covers_path(_path(url.raw_path)) else None


def _path(target: bytes) -> str:
    """The path of a request target (path and query) as it goes on the wire."""
    return target.split(b"?", 1)[0].decode("ascii", "replace")


def _retarget(request: httpx.Request, attach: Attach) -> tuple[Token, str]:
    """Sends the request where the flow says (its URL, or re-targeted to the home region);
    the token, and its header value."""
    if attach.url != str(request.url):  # re-targeted to the home region
        request.url = httpx.URL(attach.url)
        request.headers["Host"] = request.url.netloc.decode("ascii")
    return attach.token, attach.token.authorization


def _authorize(
    request: httpx.Request, authorization: str, base_url: str, guard: type[_HopGuard]
) -> None:
    request.headers["Authorization"] = authorization
    inner = request.extensions.get("trace")
    inner = getattr(inner, "inner", inner)  # a request sent again: one guard, not two
    # Without a caller's callback, one guard per scope serves every request (the warm path).
    hop_guard = _plain_guard(guard is _AsyncHopGuard, base_url) if inner is None else None
    if hop_guard is None:
        scope = scope_of(base_url)
        hop_guard = guard(scope, inner) if scope is not None else None
    if hop_guard is not None:
        request.extensions = {**request.extensions, "trace": hop_guard}


@functools.lru_cache(maxsize=32)
def _plain_guard(asynchronous: bool, base_url: str) -> _HopGuard | None:
    scope = scope_of(base_url)
    if scope is None:
        return None
    return _AsyncHopGuard(scope, None) if asynchronous else _HopGuard(scope, None)


def _without_authorization(request: httpx.Request) -> httpx.Request:
    """The request as it goes when the flow attaches nothing: without any ``Authorization``
    header, so none that httpx copied from an earlier hop (``response.next_request``) leaves.
    On a client whose ``auth`` is this, the header is this auth's: a request that needs its own
    goes with ``auth=None``."""
    request.headers.pop("Authorization", None)
    return request


class _HopGuard:
    """httpcore's ``trace`` extension, set on every request the token goes with: takes the
    ``Authorization`` header off any request about to go on the wire outside the token's scope.

    An ``httpx.Auth`` sees the first request and the last answer, never the redirect hops in
    between (httpx keeps the header on a hop to the same origin, whatever its path, and on an
    http -> https upgrade). httpx hands a request's extensions to each hop it builds, and
    httpcore calls ``trace`` with the request it is about to write, headers still mutable, so
    the hop is judged by where it really goes: the connection's scheme, host and port, and the
    request target as sent. A request through a forward proxy (plain http) goes to the proxy,
    which is outside the scope: no token, as everywhere. ``inner`` is the caller's own trace
    callback, called after.
    """

    def __init__(self, scope: Scope, inner: Callable[..., Any] | None) -> None:
        self.scope = scope
        self.inner = inner

    def __call__(self, event: str, info: dict[str, Any]) -> Any:
        if event.endswith(_SENDING):
            _strip_outside(self.scope, info.get("request"))
        return None if self.inner is None else self.inner(event, info)


class _AsyncHopGuard(_HopGuard):
    """The guard for ``httpx.AsyncClient``, whose httpcore awaits its trace callback."""

    async def __call__(self, event: str, info: dict[str, Any]) -> Any:
        if event.endswith(_SENDING):
            _strip_outside(self.scope, info.get("request"))
        return None if self.inner is None else await self.inner(event, info)


# httpcore's event for a request about to be written (".started" of "send_request_headers",
# prefixed "http11." or "http2.").
_SENDING = ".send_request_headers.started"


def _strip_outside(scope: Scope, request: Any) -> None:
    url = getattr(request, "url", None)
    if url is None:
        return
    scheme = url.scheme.decode("ascii").lower()
    origin = Origin(scheme, url.host.decode("ascii").lower(), url.port or _PORTS.get(scheme, 0))
    path = _path(url.target)
    if origin != scope.origin or not scope.covers_path(path):
        request.headers[:] = [(k, v) for k, v in request.headers if k.lower() != b"authorization"]


_PORTS = {"http": 80, "https": 443}


def _noted(port: Port, response: httpx.Response, token: Token) -> bool:
    """``Port.noted``, with the answer's place judged only when httpx followed redirects:
    the request the flow attached is inside the token's scope, the last hop may not be."""
    if response.history and not carries(token, str(response.url)):
        return False
    port.budget.observe(response.headers)
    return response.status_code in SETTLED


def _reply(response: httpx.Response) -> Reply:
    """The flow's view of an answer; its URL is the last redirect hop's."""
    return Reply(response.status_code, response.headers, str(response.url))


def _replayable(request: httpx.Request) -> bool:
    """True when httpx holds the body in memory (bytes, text, JSON, form), so it can go again."""
    try:
        _ = request.content
    except httpx.RequestNotRead:
        return False
    return True


def _ready_to_resend(request: httpx.Request, response: httpx.Response, step: Resend) -> None:
    """The fresh token, and the cookies the rejection set (as httpx's DigestAuth does)."""
    request.headers["Authorization"] = step.token.authorization
    if response.cookies:
        httpx.Cookies(response.cookies).set_cookie_header(request=request)
