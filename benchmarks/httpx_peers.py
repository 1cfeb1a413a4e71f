"""Each httpx auth a Falcon user might pick, behind one async interface, pointed at the emulator.

An :class:`HttpxPeer` is one library configured for one API client on one ``httpx.AsyncClient``
that every task of a row shares (an async client is made to be shared by the tasks of its event
loop, and authlib keeps its token on the client). :meth:`HttpxPeer.get` makes the rows' one
authenticated call, ``GET /devices/queries/devices/v1?limit=1``, and returns the HTTP status or
the name of the exception the library raised, as :mod:`benchmarks.peers` does for ``requests``.
Peers are made and closed on the event loop that uses them: ``async with httpx_peer(...)``.

Each adapter configures its library the way its documentation says, with ``timeout=30`` on the
client as every other row's calls have, and changes only what pointing it at a loopback emulator
requires; every such change is commented here and footnoted in the report:

- httpx-auth sends the client credentials only as HTTP Basic (``client.auth = (id, secret)``
  on the ``httpx.Client`` it fetches with); Falcon reads them from the form
  (``client_secret_post``) and answers 400: the adapter adds them to its form fields, as the
  requests-auth adapter does.
- authlib fetches nothing by itself (a request before ``fetch_token()`` raises
  ``MissingTokenError``): the adapter seeds an already-expired placeholder token, so authlib's
  own client-credentials renewal makes the first fetch, lazily, as the others do. Where the
  row's client answers API calls in process (:attr:`HttpxOptions.api_transport`) the same
  client cannot reach the token endpoint, so a second ``AsyncOAuth2Client`` on the network
  fetches the warm token and the row's client is handed it (``token=``).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httpx
from httpx_auth import OAuth2, OAuth2ClientCredentials

from requests_falcon_auth import FalconAuth
from requests_falcon_auth.httpx import FalconHttpxAuth

from .peers import (
    OURS,
    PATH,
    QUERY,
    TIMEOUT,
    Outcome,
    authlib_expired_token,
    authlib_settings,
    installed_version,
)
from .remote import Target

with warnings.catch_warnings():
    # authlib 1.9 warns on import that it would rather drive "httpx2"; it drives httpx 0.28.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client

__all__ = [
    "HTTPX_PEERS",
    "HTTPX_SETUP_NOTES",
    "STATIC",
    "HttpxOptions",
    "HttpxPeer",
    "httpx_label",
    "httpx_peer",
]

STATIC: Final = "static header"


@dataclass(frozen=True)
class HttpxOptions:
    """How a row wants a peer set up.

    Attributes:
        api_transport: answers the client's requests in process instead of the network (the
            warm-cost row); token requests still go to the emulator.
        rate_limit_wait: ours only: FalconAuth's ``rate_limit_wait`` (None: its default).
        rate_limit_window: ours only: FalconAuth's ``rate_limit_window``, for an emulator whose
            rate budgets are scaled down (None: Falcon's minute).
    """

    api_transport: httpx.MockTransport | None = None
    rate_limit_wait: float | None = None
    rate_limit_window: float | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every peer's ``httpx.AsyncClient`` gets: ``timeout=30`` and
        otherwise httpx's defaults (a pool of 100 connections, 20 kept alive)."""
        kwargs: dict[str, Any] = {"timeout": TIMEOUT}
        if self.api_transport is not None:
            kwargs["transport"] = self.api_transport
        return kwargs


class HttpxPeer(ABC):
    """One library set up for one API client on one shared ``httpx.AsyncClient``."""

    name: ClassVar[str]
    distribution: ClassVar[str]

    def __init__(self, target: Target, options: HttpxOptions) -> None:
        self.target = target
        self.options = options
        self._client: httpx.AsyncClient | None = None

    @property
    def api_url(self) -> str:
        """The absolute URL of the benchmark call."""
        return self.target.base_url + PATH

    @property
    def client(self) -> httpx.AsyncClient:
        """The client every task calls through."""
        assert self._client is not None
        return self._client

    @abstractmethod
    async def _start(self) -> None:
        """Builds the client (on the loop that will use it)."""

    @abstractmethod
    def sync_client(self, transport: httpx.MockTransport) -> httpx.Client:
        """An ``httpx.Client`` on ``transport`` with the same library and, already, its token."""

    async def get(self) -> Outcome:
        """One authenticated ``GET /devices/queries/devices/v1?limit=1``."""
        try:
            response = await self.client.get(self.api_url, params=QUERY)
        except Exception as exc:  # noqa: BLE001 -- whatever a library raises is the measurement
            return type(exc).__name__
        return response.status_code

    async def aclose(self) -> None:
        """Closes the client, then what the library holds (revoking where it does)."""
        await self.client.aclose()
        await self._aclose()

    @abstractmethod
    async def _aclose(self) -> None:
        """Releases what the library holds beyond the client."""


class _AuthPeer(HttpxPeer):
    """A library that is an ``httpx.Auth``: set on the shared client, and on sync ones."""

    auth: httpx.Auth

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(auth=self.auth, **self.options.client_kwargs())

    def sync_client(self, transport: httpx.MockTransport) -> httpx.Client:
        return httpx.Client(auth=self.auth, timeout=TIMEOUT, transport=transport)


class FalconHttpxPeer(_AuthPeer):
    """This library: ``FalconHttpxAuth(FalconAuth(...))`` on the shared client."""

    name = OURS
    distribution = "requests-falcon-auth"

    def __init__(self, target: Target, options: HttpxOptions) -> None:
        super().__init__(target, options)
        # As benchmarks.peers builds it: base_url (no region table), default renew window and
        # retry; its token calls go over its own requests session to the emulator.
        extra: dict[str, Any] = {}
        if options.rate_limit_wait is not None:
            extra["rate_limit_wait"] = options.rate_limit_wait
        if options.rate_limit_window is not None:
            extra["rate_limit_window"] = options.rate_limit_window
        self.falcon = FalconHttpxAuth(
            FalconAuth(target.client_id, target.client_secret, base_url=target.base_url, **extra)
        )
        self.auth = self.falcon

    async def _aclose(self) -> None:
        await self.falcon.aclose()  # revokes, on a worker thread


class HttpxAuthPeer(_AuthPeer):
    """httpx-auth's ``OAuth2ClientCredentials`` on the shared client."""

    name = "httpx-auth"
    distribution = "httpx-auth"

    def __init__(self, target: Target, options: HttpxOptions) -> None:
        super().__init__(target, options)
        # Its token cache is process-wide (keyed by token URL, form and credentials): start
        # each peer from an empty one.
        OAuth2.token_cache.clear()
        self.auth = OAuth2ClientCredentials(
            target.token_url,
            client_id=target.client_id,
            client_secret=target.client_secret,
            timeout=int(TIMEOUT),
        )
        # It authenticates with HTTP Basic only; Falcon wants the credentials in the form.
        self.auth.data.update(client_id=target.client_id, client_secret=target.client_secret)

    async def _aclose(self) -> None:
        OAuth2.token_cache.clear()


class AuthlibPeer(HttpxPeer):
    """authlib's ``AsyncOAuth2Client`` (client credentials, ``client_secret_post``), shared.

    The token lives on the client, so sharing the token means sharing the client.
    """

    name = "authlib"
    distribution = "authlib"

    def __init__(self, target: Target, options: HttpxOptions) -> None:
        super().__init__(target, options)
        self._oauth: AsyncOAuth2Client | None = None  # the client, typed for its token

    async def _start(self) -> None:
        settings = authlib_settings(self.target)
        token = authlib_expired_token()
        if self.options.api_transport is not None:
            # The row's client answers in process: fetch its warm token on the network.
            async with AsyncOAuth2Client(timeout=TIMEOUT, **settings) as fetcher:
                token = dict(await fetcher.fetch_token())
        self._oauth = AsyncOAuth2Client(token=token, **settings, **self.options.client_kwargs())
        self._client = self._oauth

    def sync_client(self, transport: httpx.MockTransport) -> httpx.Client:
        assert self._oauth is not None
        client: httpx.Client = OAuth2Client(
            token=dict(self._oauth.token),
            timeout=TIMEOUT,
            transport=transport,
            **authlib_settings(self.target),
        )
        return client

    async def _aclose(self) -> None:
        """The token lives on the client, closed already."""


class StaticHeaderPeer(HttpxPeer):
    """The floor: a token fetched once by hand, sent as a fixed header. Never renewed."""

    name = STATIC
    distribution = "httpx"

    def __init__(self, target: Target, options: HttpxOptions) -> None:
        super().__init__(target, options)
        self._authorization = ""

    async def _start(self) -> None:
        form = {"client_id": self.target.client_id, "client_secret": self.target.client_secret}
        async with httpx.AsyncClient(timeout=TIMEOUT) as fetcher:
            response = await fetcher.post(self.target.token_url, data=form)
            response.raise_for_status()
            self._authorization = f"Bearer {response.json()['access_token']}"
        self._client = httpx.AsyncClient(
            headers={"Authorization": self._authorization}, **self.options.client_kwargs()
        )

    def sync_client(self, transport: httpx.MockTransport) -> httpx.Client:
        return httpx.Client(
            headers={"Authorization": self._authorization}, timeout=TIMEOUT, transport=transport
        )

    async def _aclose(self) -> None:
        """Nothing held but the header."""


HTTPX_PEERS: Final[dict[str, type[HttpxPeer]]] = {
    cls.name: cls for cls in (FalconHttpxPeer, HttpxAuthPeer, AuthlibPeer, StaticHeaderPeer)
}


@asynccontextmanager
async def httpx_peer(
    name: str, target: Target, options: HttpxOptions | None = None
) -> AsyncIterator[HttpxPeer]:
    """The peer called ``name`` (a key of :data:`HTTPX_PEERS`) for ``target``, closed after."""
    peer = HTTPX_PEERS[name](target, options if options is not None else HttpxOptions())
    await peer._start()
    try:
        yield peer
    finally:
        await peer.aclose()


# How each column's library is set up, for the second table's header (keyed by peer name).
HTTPX_SETUP_NOTES: Final[dict[str, str]] = {
    OURS: (
        "`httpx.AsyncClient(auth=FalconHttpxAuth(FalconAuth(client_id, client_secret, "
        "base_url=...)))`, shared by the tasks; `await auth.aclose()` revokes at the end. Its "
        "token calls go over the FalconAuth's own `requests` session, on a worker thread "
        "(`anyio.to_thread`) that one task per loop waits for."
    ),
    "httpx-auth": (
        "`httpx.AsyncClient(auth=OAuth2ClientCredentials(token_url, client_id=, "
        "client_secret=))`, shared by the tasks. It has one flow for sync and async clients: "
        "its `auth_flow` fetches a token with a new blocking `httpx.Client` inside the request, "
        "on the event loop, behind a `threading.Lock`. It sends the credentials only as HTTP "
        'Basic, which Falcon answers 400 ("client_id and client_secret are required"): the '
        "benchmark adds them to its form fields (`auth.data`). Its token cache is "
        "process-wide (cleared between trials)."
    ),
    "authlib": (
        "The async client `AsyncOAuth2Client(client_id, client_secret, token_endpoint_auth_method="
        '"client_secret_post", token_endpoint=, grant_type="client_credentials")`, shared by '
        "the tasks (its token lives on the client; it fetches under an `anyio.Lock`, with "
        "`await`); `OAuth2Client`, its sync twin, in the sync line of row 9. It fetches no "
        "token by itself (a call before `fetch_token()` raises `MissingTokenError`): the "
        "benchmark seeds an expired placeholder token, so its client-credentials renewal makes "
        "the first fetch. authlib 1.9 warns on import that its httpx support is deprecated in "
        'favour of "httpx2"; it drives httpx 0.28.'
    ),
    STATIC: (
        "A token fetched once with a plain POST, set in the `httpx.AsyncClient`'s `headers`; "
        "never renewed."
    ),
}


def httpx_label(name: str) -> str:
    """The column heading: the library and its installed version."""
    cls = HTTPX_PEERS[name]
    version = installed_version(cls.distribution)
    if cls is StaticHeaderPeer:
        return f"static header (httpx {version})"
    if cls is AuthlibPeer:
        return f"authlib {version} AsyncOAuth2Client"
    return f"{name} {version}"
