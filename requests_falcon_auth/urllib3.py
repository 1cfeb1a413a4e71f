"""FalconAuth for bare urllib3 users: a PoolManager wrapper (prior art: google-auth's
``AuthorizedHttp``).

It drives the same authentication flow as every front end (``flow.py``) with urllib3's objects;
tokens, cache and single flight are shared with any requests session or httpx client using the
same FalconAuth. Works with urllib3 1.26 and 2.x.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Union
from urllib.parse import urljoin

import urllib3

from . import _fork
from .auth import FalconAuth
from .errors import FalconAuthError
from .flow import NEED_TOKEN, Attach, Reply, Resend, advance, rejects_token, settle

try:  # urllib3 2.x
    from urllib3._request_methods import RequestMethods
except ImportError:  # pragma: no cover - urllib3 1.26
    from urllib3.request import RequestMethods  # type: ignore[import-not-found,no-redef]

__all__ = ["AuthorizedPoolManager"]

_Body = Union[bytes, str, io.IOBase, Any, None]


class AuthorizedPoolManager(RequestMethods):
    """A urllib3 pool manager that authenticates requests to the Falcon API.

    ``request()``, ``request_encode_url()``, ``request_encode_body()`` and ``urlopen()`` attach
    the token only to the API origin, and re-send once with a fresh token when the API rejects
    it (401, or 429 under the bad-token budget; never a body that cannot be replayed; never for
    an answer from another host after a redirect, which urllib3 sends without the
    ``Authorization`` header).

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
        needs a token and none can be had (the request is then not sent)."""
        # The pool's own default headers apply as they would to its urlopen().
        sent_headers = {**self.http.headers, **(headers or {})}
        flow = self.auth._flow(method, url)
        step = advance(flow, None)
        if step is NEED_TOKEN:
            step = advance(flow, self.auth._token())
        if not isinstance(step, Attach):
            return self.http.urlopen(method, url, body=body, headers=sent_headers, **kwargs)
        url = step.url
        sent_headers["Authorization"] = step.token.authorization
        start = _body_position(body)
        response = self.http.urlopen(method, url, body=body, headers=sent_headers, **kwargs)
        if not rejects_token(response.status, response.headers):
            return response  # nothing to heal: the flow would only say KEEP
        try:
            step = settle(
                flow,
                _reply(url, response),
                functools.partial(_rewind, body, start),
                self.auth._replace,
            )
        except FalconAuthError:
            _release(response, kwargs)  # the caller gets the error, the pool its connection
            raise
        if not isinstance(step, Resend):
            return response
        _release(response, kwargs)
        sent_headers["Authorization"] = step.token.authorization
        retried = self.http.urlopen(method, url, body=body, headers=sent_headers, **kwargs)
        advance(flow, _reply(url, retried))
        return retried

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


def _reply(url: str, response: Any) -> Reply:
    return Reply(response.status, response.headers, _final_url(url, response))


def _final_url(url: str, response: Any) -> str:
    """The URL that produced ``response``: the last redirect target, resolved as urllib3
    resolves it (``urljoin``), or ``url`` when there was no redirect."""
    retries = getattr(response, "retries", None)
    for entry in reversed(getattr(retries, "history", ()) or ()):
        if entry.redirect_location:
            try:
                return urljoin(url, str(entry.redirect_location))
            except ValueError:
                return ""  # no origin: a 401 from there is not ours to heal
    return url
