"""FalconAuth for httpx: one ``httpx.Auth`` for ``httpx.Client`` and ``httpx.AsyncClient``.

Both drivers answer the one authentication flow (``flow.py``) with httpx's objects. The sync
one fetches as the requests driver does; the async one never blocks its event loop: a warm
token comes from memory, a cold one from a worker thread that one task per loop waits for
(``async_tokens.py``). Built on a :class:`~requests_falcon_auth.FalconAuth`, it shares that
object's token, cache and single flight with any requests session or urllib3 pool using it.

Requires the ``httpx`` extra (``pip install 'requests-falcon-auth[httpx]'``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from functools import partial
from types import TracebackType

try:
    import anyio  # noqa: F401 -- async_tokens' dependency, checked here for one clear hint
    import httpx
except ImportError as exc:
    raise ImportError(
        "requests_falcon_auth.httpx needs httpx and anyio: "
        "pip install 'requests-falcon-auth[httpx]'"
    ) from exc

from . import async_tokens
from .auth import FalconAuth
from .flow import (
    NEED_TOKEN,
    REWIND,
    Attach,
    NeedFreshToken,
    Reply,
    Resend,
    advance,
    rejects_token,
    settle,
)

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

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        falcon = self.falcon
        url = str(request.url)
        flow = falcon._flow(request.method, url)
        step = advance(flow, None)
        if step is NEED_TOKEN:
            step = advance(flow, falcon._token())
        if not isinstance(step, Attach):
            yield request
            return
        _attach(request, url, step)
        response = yield request
        if not rejects_token(response.status_code, response.headers):
            return  # nothing to heal: the flow would only say KEEP
        step = settle(flow, _reply(response), partial(_replayable, request), falcon._replace)
        if isinstance(step, Resend):
            _ready_to_resend(request, response, step)
            advance(flow, _reply((yield request)))

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        falcon = self.falcon
        url = str(request.url)
        flow = falcon._flow(request.method, url)
        step = advance(flow, None)
        if step is NEED_TOKEN:
            step = advance(flow, await async_tokens.token(falcon))
        if not isinstance(step, Attach):
            yield request
            return
        _attach(request, url, step)
        response = yield request
        if not rejects_token(response.status_code, response.headers):
            return  # nothing to heal: the flow would only say KEEP
        step = advance(flow, _reply(response))
        while step is REWIND or isinstance(step, NeedFreshToken):
            if isinstance(step, NeedFreshToken):
                step = advance(flow, await async_tokens.fresh_token(falcon, step.rejected))
            else:
                step = advance(flow, _replayable(request))
        if isinstance(step, Resend):
            _ready_to_resend(request, response, step)
            advance(flow, _reply((yield request)))

    def close(self) -> None:
        """Closes the FalconAuth: revokes its tokens (bounded, never raises)."""
        self.falcon.close()

    async def aclose(self) -> None:
        """Closes the FalconAuth on a worker thread, so the event loop goes on meanwhile."""
        await async_tokens.close(self.falcon)

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


def _attach(request: httpx.Request, url: str, step: Attach) -> None:
    if step.url != url:  # re-targeted to the home region
        request.url = httpx.URL(step.url)
        request.headers["Host"] = request.url.netloc.decode("ascii")
    request.headers["Authorization"] = step.token.authorization


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
