"""Each library a Falcon user might pick, behind one interface, pointed at the emulator.

A :class:`Peer` is one library configured for one API client: the object that holds the token
and that threads share. :meth:`Peer.caller` gives a thread its handle (its own
``requests.Session`` where the library allows one); :meth:`Caller.get` makes the row's one
authenticated call, ``GET /devices/queries/devices/v1?limit=1``, and returns the HTTP status,
or the name of the exception the library raised (a failure is a data point, not a crash).

Each adapter configures its library the way its documentation says, and changes only what
pointing it at a loopback emulator requires; every such change is commented here and
footnoted in the report:

- falconpy rewrites a custom ``base_url`` to ``https://api.crowdstrike.com`` after every token
  (``autodiscover_region`` compares ``"us1"`` with ``"US1"``, case-sensitively): the adapter
  pins the URL it was given and counts the rewrites it swallowed.
- requests-auth sends the client credentials only as HTTP Basic; Falcon reads them from the
  form (``client_secret_post``) and answers 400: the adapter adds them to its form fields.
- authlib fetches nothing by itself (a request before ``fetch_token()`` raises
  ``MissingTokenError``): the adapter seeds an already-expired placeholder token, so authlib's
  own client-credentials renewal makes the first fetch, lazily, as the others do.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType
from typing import Any, ClassVar, Final, Protocol, Union

import requests
from authlib.integrations.requests_client import OAuth2Session
from falconpy import APIHarnessV2
from requests.adapters import BaseAdapter
from requests_auth import OAuth2, OAuth2ClientCredentials

from requests_falcon_auth import FalconAuth, FalconSession
from requests_falcon_auth.cache import TokenCache

from .remote import Target
from .transports import TokenCallLog, pooled

__all__ = [
    "OPERATION",
    "OURS",
    "PATH",
    "PEERS",
    "Caller",
    "Outcome",
    "FalconPyPeer",
    "Peer",
    "PeerOptions",
    "SETUP_NOTES",
    "authlib_expired_token",
    "authlib_settings",
    "installed_version",
    "label",
    "make_peer",
    "succeeded",
]

PATH: Final = "/devices/queries/devices/v1"
QUERY: Final = {"limit": "1"}
OPERATION: Final = "QueryDevicesByFilter"  # falconpy's name for the same call
TIMEOUT: Final = 30.0

# An HTTP status, or the name of the exception a library raised instead of answering.
Outcome = Union[int, str]


def succeeded(outcome: Outcome) -> bool:
    """True for a 200."""
    return outcome == 200


def _attempt(call: Callable[[], int]) -> Outcome:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 -- whatever a library raises is the measurement
        return type(exc).__name__


@dataclass(frozen=True)
class PeerOptions:
    """How a row wants a peer set up.

    Attributes:
        renew_lead: seconds before expiry at which the library should renew (each library's
            own knob; falconpy clamps it to at least 120).
        threads: how many threads will share the peer (sizes shared connection pools).
        token_log: mounted at the token URL of the session the library fetches tokens with.
        api_adapter: mounted at the API path of every session that makes the user's calls.
        keep_alive: falconpy only: pass it a ``requests.Session`` (its 1.6 ``session=``
            option) instead of its default of a new connection for every call.
        falcon_session: ours only: callers are ``FalconSession`` objects using API paths
            (each closes, and revokes, on close: use with one caller).
        clock: ours only: FalconAuth's monotonic clock (the fleet row steps a shared one).
        cache: ours only: FalconAuth's token store (default: its in-memory cache).
        rate_limit_wait: ours only: FalconAuth's ``rate_limit_wait`` (None: its default).
        rate_limit_window: ours only: FalconAuth's ``rate_limit_window``, for an emulator whose
            budgets are scaled down (None: Falcon's minute).
        trust_env: ``requests.Session.trust_env`` of the sessions that make user calls (False
            spares each call requests' scan of the environment for proxies and netrc).
    """

    renew_lead: float = 120.0
    threads: int = 1
    token_log: TokenCallLog | None = None
    api_adapter: BaseAdapter | None = None
    keep_alive: bool = True
    falcon_session: bool = False
    clock: Callable[[], float] | None = None
    cache: TokenCache | None = None
    rate_limit_wait: float | None = None
    rate_limit_window: float | None = None
    trust_env: bool = True


class Caller(Protocol):
    """One thread's handle on a peer."""

    def get(self) -> Outcome:
        """One authenticated ``GET /devices/queries/devices/v1?limit=1``."""

    def close(self) -> None:
        """Releases what the handle owns."""


class _SessionCaller:
    """Calls through a ``requests.Session``; closes it if it owns it."""

    def __init__(self, session: requests.Session, url: str, *, owns: bool = True) -> None:
        self._session = session
        self._url = url
        self._owns = owns

    def get(self) -> Outcome:
        return _attempt(
            lambda: self._session.get(self._url, params=QUERY, timeout=TIMEOUT).status_code
        )

    def close(self) -> None:
        if self._owns:
            self._session.close()


class Peer(ABC):
    """One library set up for one API client: the shared token holder. A context manager."""

    name: ClassVar[str]
    distribution: ClassVar[str]
    # The smallest renew lead the library accepts (falconpy clamps to 120-1200 s).
    min_renew_lead: ClassVar[float] = 0.0

    def __init__(self, target: Target, options: PeerOptions) -> None:
        self.target = target
        self.options = options
        self._callers: list[Caller] = []
        self._lock = threading.Lock()

    @property
    def api_url(self) -> str:
        """The absolute URL of the benchmark call."""
        return self.target.base_url + PATH

    def caller(self) -> Caller:
        """A handle for one thread (closed with the peer, if not before)."""
        made = self._make_caller()
        with self._lock:
            self._callers.append(made)
        return made

    @abstractmethod
    def _make_caller(self) -> Caller: ...

    def _user_session(self, session: requests.Session) -> requests.Session:
        """Mounts the row's API adapter, if any, on a session that makes user calls."""
        session.trust_env = self.options.trust_env
        if self.options.api_adapter is not None:
            session.mount(self.api_url, self.options.api_adapter)
        return session

    def _token_session(self, session: requests.Session) -> requests.Session:
        """Mounts the row's token-call log, if any, on a session that fetches tokens."""
        if self.options.token_log is not None:
            session.mount(self.target.token_url, self.options.token_log)
        return session

    def close(self) -> None:
        """Closes every caller, then what the library holds (revoking where it does)."""
        with self._lock:
            callers, self._callers = self._callers, []
        for made in callers:
            made.close()
        self._close()

    @abstractmethod
    def _close(self) -> None: ...

    def __enter__(self) -> Peer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FalconAuthPeer(Peer):
    """This library: one FalconAuth shared by threads, each with its own session."""

    name = "requests-falcon-auth"
    distribution = "requests-falcon-auth"

    def __init__(self, target: Target, options: PeerOptions) -> None:
        super().__init__(target, options)
        self._tokens = self._token_session(requests.Session())
        extra: dict[str, Any] = {}
        if options.rate_limit_wait is not None:
            extra["rate_limit_wait"] = options.rate_limit_wait
        if options.rate_limit_window is not None:
            extra["rate_limit_window"] = options.rate_limit_window
        self.auth = FalconAuth(
            target.client_id,
            target.client_secret,
            base_url=target.base_url,
            renew_window=options.renew_lead,
            session=self._tokens,
            cache=options.cache,
            clock=options.clock if options.clock is not None else time.monotonic,
            **extra,
        )

    def _make_caller(self) -> Caller:
        if self.options.falcon_session:
            return _SessionCaller(self._user_session(FalconSession(auth=self.auth)), PATH)
        session = requests.Session()
        session.auth = self.auth
        return _SessionCaller(self._user_session(session), self.api_url)

    def _close(self) -> None:
        self.auth.close()
        self._tokens.close()


class PinnedBaseUrl:
    """A falconpy auth object (mixed in before it) keeping the base URL it was given.

    falconpy 1.6.6 sets ``base_url`` from ``X-Cs-Region`` after each token and, comparing
    ``"us1"`` with ``"US1"``, always lands on ``https://api.crowdstrike.com``: a custom URL
    (a proxy, a gateway, this emulator) is lost after the first token. Its token logic is
    untouched; ``base_url_rewrites`` counts the moves refused.
    """

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        self._pinned_base_url = base_url
        self.base_url_rewrites = 0
        super().__init__(base_url=base_url, **kwargs)

    @property
    def base_url(self) -> str:
        return self._pinned_base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        if value != self._pinned_base_url:
            self.base_url_rewrites += 1


class _PinnedHarness(PinnedBaseUrl, APIHarnessV2):
    """falconpy's Uber class, keeping the base URL it was given."""


class _FalconPyCaller:
    """Calls ``command("QueryDevicesByFilter", limit=1)`` on the shared harness."""

    def __init__(self, harness: _PinnedHarness) -> None:
        self._harness = harness

    def get(self) -> Outcome:
        def call() -> int:
            result = self._harness.command(OPERATION, limit=1)
            return int(result["status_code"])

        return _attempt(call)

    def close(self) -> None:
        """The harness is the peer's."""


class FalconPyPeer(Peer):
    """CrowdStrike's SDK: one ``APIHarnessV2`` shared by threads (it has no per-thread part)."""

    name = "falconpy"
    distribution = "crowdstrike-falconpy"
    min_renew_lead = 120.0

    def __init__(self, target: Target, options: PeerOptions) -> None:
        super().__init__(target, options)
        self._session: requests.Session | None = None
        if options.keep_alive:
            session = pooled(requests.Session(), options.threads)
            self._session = self._user_session(self._token_session(session))
        elif options.token_log is not None or options.api_adapter is not None:
            raise ValueError("falconpy without keep_alive makes its own sessions: no adapters")
        self.harness = _PinnedHarness(
            client_id=target.client_id,
            client_secret=target.client_secret,
            base_url=target.base_url,
            renew_window=int(options.renew_lead),
            timeout=TIMEOUT,  # falconpy has no default timeout
            session=self._session,
        )

    def _make_caller(self) -> Caller:
        return _FalconPyCaller(self.harness)

    def _close(self) -> None:
        self.harness.logout()  # what leaving its ``with`` block does: revoke
        if self._session is not None:
            self._session.close()


class RequestsAuthPeer(Peer):
    """requests-auth's ``OAuth2ClientCredentials``, shared by threads, a session each."""

    name = "requests-auth"
    distribution = "requests-auth"

    def __init__(self, target: Target, options: PeerOptions) -> None:
        super().__init__(target, options)
        # Its token cache is process-wide and keyed by token URL and form, not client id:
        # start each peer from an empty cache so no trial inherits another client's token.
        OAuth2.token_cache.clear()  # type: ignore[no-untyped-call]
        self._tokens = self._token_session(requests.Session())
        self.auth = OAuth2ClientCredentials(
            target.token_url,
            target.client_id,
            target.client_secret,
            early_expiry=max(options.renew_lead, 0.001),  # 0 would mean its default, 30
            timeout=int(TIMEOUT),
            session=self._tokens,
        )
        # It authenticates with HTTP Basic only; Falcon wants the credentials in the form.
        self.auth.data.update(client_id=target.client_id, client_secret=target.client_secret)

    def _make_caller(self) -> Caller:
        session = requests.Session()
        session.auth = self.auth
        return _SessionCaller(self._user_session(session), self.api_url)

    def _close(self) -> None:
        self._tokens.close()
        OAuth2.token_cache.clear()  # type: ignore[no-untyped-call]


class AuthlibPeer(Peer):
    """authlib's ``OAuth2Session`` (client credentials, ``client_secret_post``), shared.

    The token lives on the session, so sharing the token means sharing the session.
    """

    name = "authlib"
    distribution = "authlib"

    def __init__(self, target: Target, options: PeerOptions) -> None:
        super().__init__(target, options)
        session = OAuth2Session(
            **authlib_settings(target),
            leeway=options.renew_lead,
            token=authlib_expired_token(),
            default_timeout=TIMEOUT,
        )
        pooled(session, options.threads)
        self.session = self._user_session(self._token_session(session))

    def _make_caller(self) -> Caller:
        return _SessionCaller(self.session, self.api_url, owns=False)

    def _close(self) -> None:
        self.session.close()


class StaticHeaderPeer(Peer):
    """The floor: a token fetched once by hand, sent as a fixed header. Never renewed."""

    name = "static header"
    distribution = "requests"

    def __init__(self, target: Target, options: PeerOptions) -> None:
        super().__init__(target, options)
        form = {"client_id": target.client_id, "client_secret": target.client_secret}
        with requests.Session() as session:
            response = session.post(target.token_url, data=form, timeout=TIMEOUT)
            response.raise_for_status()
            self._authorization = f"Bearer {response.json()['access_token']}"

    def _make_caller(self) -> Caller:
        session = requests.Session()
        session.headers["Authorization"] = self._authorization
        return _SessionCaller(self._user_session(session), self.api_url)

    def _close(self) -> None:
        """Nothing held but the header."""


OURS: Final = FalconAuthPeer.name
PEERS: Final[dict[str, type[Peer]]] = {
    cls.name: cls
    for cls in (FalconAuthPeer, FalconPyPeer, RequestsAuthPeer, AuthlibPeer, StaticHeaderPeer)
}


# How each column's library is set up, for the table's header (keyed by peer name).
SETUP_NOTES: Final[dict[str, str]] = {
    OURS: (
        "`session.auth = FalconAuth(client_id, client_secret, base_url=...)` on a "
        "`requests.Session` per thread; `FalconSession` in row 6."
    ),
    "falconpy": (
        "`APIHarnessV2(client_id=, client_secret=, base_url=, timeout=30)` (it has no default "
        "timeout), shared by the threads, with a pooled `requests.Session` (`session=`, new "
        'in 1.6) except where row 6 says "by default". It replaces a custom `base_url` with '
        "`https://api.crowdstrike.com` after every token (`autodiscover_region` compares "
        '"us1" with "US1"): the benchmark pins the URL it was given (a property '
        "override; its token logic is untouched) and a guard refuses any connection that is "
        "not loopback. Left alone, its calls after the first token leave for the internet."
    ),
    "requests-auth": (
        "`OAuth2ClientCredentials(token_url, client_id, client_secret, early_expiry=)` on a "
        "`requests.Session` per thread. It sends the credentials only as HTTP Basic, which "
        'Falcon answers 400 ("client_id and client_secret are required"): the benchmark '
        "adds them to its form fields (`auth.data`). Its token cache is process-wide and keyed "
        "by token URL and form, not by client id: in one process, a second API client of the "
        "same Falcon cloud is sent the first one's token (the benchmark clears the cache "
        "between trials)."
    ),
    "authlib": (
        "`OAuth2Session(client_id, client_secret, token_endpoint_auth_method="
        '"client_secret_post", token_endpoint=, grant_type="client_credentials", '
        "leeway=)`, shared by the threads (its token lives on the session). With its default "
        "`client_secret_basic`, Falcon answers 400 and authlib keeps the error body as its "
        "token (the next call raises `UnsupportedTokenTypeError`). It fetches no token by "
        "itself (a call before `fetch_token()` raises `MissingTokenError`): the benchmark "
        "seeds an expired placeholder token, so its client-credentials renewal makes the "
        "first fetch."
    ),
    "static header": (
        "A token fetched once with a plain POST, set in `session.headers`; never renewed."
    ),
}


def authlib_settings(target: Target) -> dict[str, Any]:
    """authlib's client-credentials settings for ``target``, for its requests and httpx clients.

    ``client_secret_post``: with authlib's default, ``client_secret_basic``, Falcon answers 400.
    """
    return {
        "client_id": target.client_id,
        "client_secret": target.client_secret,
        "token_endpoint_auth_method": "client_secret_post",
        "token_endpoint": target.token_url,
        "grant_type": "client_credentials",
    }


def authlib_expired_token() -> dict[str, Any]:
    """A new placeholder token, already expired, for an authlib client to start from.

    authlib fetches nothing by itself; its first request renews this one through its own
    client-credentials path, lazily, as the other libraries fetch their first token.
    """
    return {"access_token": "", "token_type": "bearer", "expires_at": 0}


def make_peer(name: str, target: Target, options: PeerOptions | None = None) -> Peer:
    """The peer called ``name`` (a key of :data:`PEERS`) for ``target``."""
    return PEERS[name](target, options if options is not None else PeerOptions())


def label(name: str) -> str:
    """The column heading: the library and its installed version."""
    cls = PEERS[name]
    version = installed_version(cls.distribution)
    if cls is StaticHeaderPeer:
        return f"static header (requests {version})"
    return f"{name} {version}"


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution``, or ``?``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"
