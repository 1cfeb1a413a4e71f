"""falconpy on this engine: ``Hosts(auth_object=FalconPyAuth())``.

falconpy's service classes take another authentication backend through ``auth_object=`` (an
instance of its ``FalconInterface`` family: falconpy checks with ``isinstance``), and since
falconpy 1.6.5 send every call through that object's ``session``. :class:`FalconPyAuth` is
such an object. Its tokens come from a :class:`~requests_falcon_auth.FalconAuth`, and its
session has that FalconAuth as its ``auth``, so falconpy's calls get what a ``requests`` user
gets: one token fetch for any number of threads (and, through a shared cache, processes and
hosts), renewal off the callers' path, one fresh token and one re-send on a 401 or the
bad-token 429, the account's rate budget waited out, and the token sent only to the API.

falconpy puts the token in its own headers (``auth_headers``), for whatever URL it builds; the
session drops that header, so only the FalconAuth decides where a token goes. falconpy's
``X-Cs-Region`` handling never moves the base URL here either: it runs in the ``login()`` this
object replaces, and ``base_url`` is the FalconAuth's unless a caller sets it.

Requires the ``falconpy`` extra (``pip install 'requests-falcon-auth[falconpy]'``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

import requests

try:
    from falconpy import (
        APIHarnessV2,
        BearerToken,
        FalconInterface,
        InterfaceConfiguration,
        LogFacility,
        OAuth2,
    )
    from falconpy._endpoint import api_endpoints
except ImportError as exc:
    raise ImportError(
        "requests_falcon_auth.falconpy needs falconpy (crowdstrike-falconpy >= 1.6.5): "
        "pip install 'requests-falcon-auth[falconpy]'"
    ) from exc

from .auth import FalconAuth
from .errors import ConfigurationError, FalconAuthError
from .token import Token

__all__ = ["FalconPyAuth", "FalconPyHarness"]

# falconpy has no default timeout; calls through a FalconPyAuth get the token calls' default
# (DEFAULT_TIMEOUT: connect, read), which a stalled answer cannot outwait. Set ``timeout``.
_API_TIMEOUT: Final = (10.0, 30.0)

# falconpy's status for a failure that had no HTTP answer (its generate_error_result default).
_NO_ANSWER: Final = 500

Result = dict[str, Any]
_Bridged = TypeVar("_Bridged", bound="_Bridge")


class _FalconPySession(requests.Session):
    """The session falconpy's calls go out on: the FalconAuth alone attaches the token.

    falconpy sends ``auth_headers`` with every call, to whatever URL it built; dropping that
    header leaves the FalconAuth (this session's ``auth``) to attach a token only where the
    token's scope covers the URL, on every redirect hop.
    """

    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        params: Any = None,
        data: Any = None,
        headers: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        if headers:
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return super().request(method, url, params, data, headers, **kwargs)


class _Bridge(FalconInterface):
    """What falconpy reads of an authentication object, answered by a FalconAuth.

    Shared by :class:`FalconPyAuth` (an ``OAuth2``) and :class:`FalconPyHarness` (the Uber
    class): falconpy's own ``login``, ``logout``, ``token`` and ``revoke`` wrap the two handlers
    overridden here, so each class keeps its own result shapes.
    """

    def __init__(self, auth: FalconAuth | None = None) -> None:
        """Builds the bridge on ``auth`` (by default a FalconAuth from the environment); no I/O."""
        # falconpy's constructor is not run: it reads credentials from the environment into
        # the object; everything it would set that falconpy reads is set, or answered, here.
        self.falcon = auth if auth is not None else FalconAuth()
        self._session = _FalconPySession()
        self._session.auth = self.falcon
        self._config = InterfaceConfiguration(timeout=_API_TIMEOUT, session=self._session)
        self._log = LogFacility()
        self._pythonic = False
        self._environment: dict[str, str] = {}
        self._failure: tuple[int, str] | None = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.falcon!r})"

    def _login_handler(self, stateful: bool = True) -> Result:
        """The FalconAuth's token (fetched once for every caller, if none is in hand), as
        falconpy's token call answers; never a new token per call."""
        try:
            token = self.falcon.get_token()
        except FalconAuthError as exc:
            if stateful:
                self._failure = (exc.status_code or _NO_ANSWER, str(exc))
            return _error(exc)
        if stateful:
            self._failure = None
        body = {
            "access_token": token.access_token,
            "token_type": "bearer",
            "expires_in": int(_remaining(token)),
        }
        return {"status_code": 201, "headers": {}, "body": body}

    def _logout_handler(
        self, token_value: str | None = None, stateful: bool = True, client_id: str | None = None
    ) -> Result:
        """This object's token is released as ``FalconAuth.close()`` does (revoked unless the
        cache shares it with other processes); another token is revoked outright."""
        current = self.falcon.port.peek()
        try:
            if token_value is None or (current and token_value == current.access_token):
                self.falcon.close()
            else:
                oauth = self.falcon.oauth2
                if oauth is None:
                    raise ConfigurationError(
                        "This FalconAuth holds a pre-issued token and no client credentials, "
                        "which Falcon's revoke call needs: revoke the token where it was issued."
                    )
                home = self.falcon  # where its tokens live: revoked elsewhere, Falcon says 403
                oauth.revoke(
                    Token(token_value, "bearer", 1, home.region, home.base_url, time.monotonic())
                )
        except FalconAuthError as exc:
            return _error(exc)
        return {
            "status_code": 200,
            "headers": {},
            "body": {"meta": {}, "resources": [], "errors": []},
        }

    def child_login(self, member_cid: str | None = None) -> bool:
        raise ConfigurationError(_ONE_TENANT)

    def child_logout(self, login_as_parent: bool = True) -> bool:
        raise ConfigurationError(_ONE_TENANT)

    @property
    def auth_headers(self) -> dict[str, str]:
        """The header falconpy adds to its calls, with the FalconAuth's token (fetched if none
        is in hand). The session drops it again: the FalconAuth attaches its own, in scope."""
        return {"Authorization": self.falcon.get_token().authorization}

    @property
    def base_url(self) -> str:
        """Where falconpy sends its calls: the FalconAuth's API base URL (its home region's,
        once autodiscovery found it), unless set here. A URL set here outside the
        FalconAuth's scope gets falconpy's calls but never the token."""
        return self._base_url or self.falcon.base_url

    @base_url.setter
    def base_url(self, value: str | None) -> None:
        # As falconpy's own setter, an empty value changes nothing; None follows the FalconAuth.
        if value is None or (value and isinstance(value, str)):
            self._base_url = value

    @property
    def session(self) -> requests.Session:
        """The session falconpy's calls use: its ``auth`` is the FalconAuth. Proxies, client
        certificates and adapters go on it; ``ssl_verify`` is its ``verify``."""
        return self._session

    @session.setter
    def session(self, value: requests.Session | None) -> None:
        raise ConfigurationError(
            "A FalconPyAuth makes falconpy's calls on its own session (its auth is the "
            "FalconAuth): configure FalconPyAuth.session (proxies, verify, cert, mount) instead."
        )

    @property
    def ssl_verify(self) -> Any:
        """The session's ``verify`` (True, False or a CA bundle path): falconpy passes this
        with every call, which would otherwise override the session's own."""
        return self._session.verify

    @ssl_verify.setter
    def ssl_verify(self, value: Any) -> None:
        self._session.verify = value

    @property
    def creds(self) -> dict[str, str]:
        """The client id and member CID; never the secret (the FalconAuth keeps that)."""
        creds = {}
        if self.falcon.client_id is not None:
            creds["client_id"] = self.falcon.client_id
        if self.falcon.member_cid is not None:
            creds["member_cid"] = self.falcon.member_cid
        return creds

    @creds.setter
    def creds(self, value: dict[str, str]) -> None:
        raise ConfigurationError(
            "The credentials of a FalconPyAuth are its FalconAuth's: build another "
            "FalconAuth (and FalconPyAuth) for other credentials."
        )

    @property
    def cred_format_valid(self) -> bool:
        """True when the FalconAuth can fetch tokens (it has client credentials)."""
        return self.falcon.oauth2 is not None

    @property
    def auth_style(self) -> str:
        return "CREDENTIALS" if self.falcon.oauth2 is not None else "TOKEN"

    @property
    def bearer_token(self) -> BearerToken:
        """A snapshot of the token in hand, in falconpy's type."""
        token = self.falcon.port.peek()
        if token is None:
            snapshot = BearerToken(status=self.token_status)
        else:
            snapshot = BearerToken(token.access_token, int(token.expires_in), 201)
            snapshot.token_time = _wall_time(token)
        snapshot.renew_window = self.renew_window
        snapshot.fail_reason = self.token_fail_reason
        return snapshot

    @bearer_token.setter
    def bearer_token(self, value: Any) -> None:
        _refuse("bearer_token")

    @property  # type: ignore[override]  # falconpy says str/int, and holds None too
    def token_value(self) -> str | None:
        """The token in hand, or None (nothing is fetched to answer)."""
        token = self.falcon.port.peek()
        return token.access_token if token is not None else None

    @token_value.setter
    def token_value(self, value: Any) -> None:
        _refuse("token_value")

    @property  # type: ignore[override]  # falconpy says str/int, and holds None too
    def token_status(self) -> int | None:
        """201 while a token is in hand; else the status of the last failed login, or None."""
        if self.falcon.port.peek() is not None:
            return 201
        return self._failure[0] if self._failure is not None else None

    @token_status.setter
    def token_status(self, value: Any) -> None:
        _refuse("token_status")

    @property  # type: ignore[override]  # falconpy says str/int, and holds None too
    def token_fail_reason(self) -> str | None:
        """Why the last login failed (the FalconAuthError's message), or None."""
        return self._failure[1] if self._failure is not None else None

    @token_fail_reason.setter
    def token_fail_reason(self, value: Any) -> None:
        _refuse("token_fail_reason")

    @property
    def token_expiration(self) -> int:
        """The lifetime Falcon gave the token in hand (seconds), 0 without one."""
        token = self.falcon.port.peek()
        return int(token.expires_in) if token is not None else 0

    @token_expiration.setter
    def token_expiration(self, value: Any) -> None:
        _refuse("token_expiration")

    @property
    def token_time(self) -> float:
        """When the token in hand was issued (``time.time()``), 0 without one."""
        token = self.falcon.port.peek()
        return _wall_time(token) if token is not None else 0.0

    @token_time.setter
    def token_time(self, value: Any) -> None:
        _refuse("token_time")

    @property
    def renew_window(self) -> int:
        """Seconds before expiry from which the FalconAuth renews, in the background."""
        return int(self.falcon.renew_window)

    @renew_window.setter
    def renew_window(self, value: int) -> None:
        raise ConfigurationError(
            "The renew window belongs to the FalconAuth: FalconAuth(renew_window=...)."
        )

    @property
    def token_stale(self) -> bool:
        """True when no usable token is in hand (the FalconAuth renews ahead of expiry, off
        the callers' path, so a token in hand is never one to renew now)."""
        return self.falcon.port.peek() is None

    @property
    def token_valid(self) -> bool:
        return not self.token_stale

    def close(self) -> None:
        """Closes the session's connections and the FalconAuth (revoking as its close does)."""
        self._session.close()
        self.falcon.close()

    def __enter__(self: _Bridged) -> _Bridged:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()


class FalconPyAuth(_Bridge, OAuth2):
    """falconpy's ``auth_object`` on a FalconAuth: ``Hosts(auth_object=FalconPyAuth())``.

    An ``OAuth2`` to falconpy (and to tools typed on it, such as caracara's
    ``Client(falconpy_authobject=...)``), whose token is the FalconAuth's: fetched once for
    every thread, renewed in the background, shared through the FalconAuth's cache, healed
    after a 401 with one fresh token and one re-send. ``login()`` and ``token()`` return that
    token (fetching it once if none is in hand), never a new one per call; ``logout()`` and
    ``revoke(token_value)`` release it as ``FalconAuth.close()`` does.

    Args:
        auth: the FalconAuth whose tokens to use; by default one made from the environment
            (``FALCON_CLIENT_ID``, ``FALCON_CLIENT_SECRET``, ...).

    Raises:
        ConfigurationError: no ``auth`` given and the environment lacks credentials.
    """


class FalconPyHarness(_Bridge, APIHarnessV2):
    """falconpy's Uber class (``APIHarnessV2``) on a FalconAuth: ``command()`` calls carry
    the FalconAuth's token, as :class:`FalconPyAuth` gives service classes.

    falconpy's Uber class is its own authentication object (it takes no ``auth_object=``),
    so this is that class with the same bridge.

    Args:
        auth: the FalconAuth whose tokens to use; by default one made from the environment.
    """

    def __init__(self, auth: FalconAuth | None = None) -> None:
        """Builds the bridge on ``auth`` with falconpy's table of Uber commands."""
        super().__init__(auth)
        self.commands = api_endpoints


_ONE_TENANT: Final = (
    "A FalconPyAuth acts for its FalconAuth's member CID only: build "
    "FalconAuth(member_cid=...) and a FalconPyAuth on it for each child tenant."
)


def _refuse(name: str) -> None:
    raise ConfigurationError(
        f"{name} of a FalconPyAuth is read from its FalconAuth's token and cannot be set: "
        "login(), logout() and the FalconAuth change it."
    )


def _wall_time(token: Token) -> float:
    """When ``token`` was issued, on falconpy's clock (``time.time()``)."""
    return time.time() - (time.monotonic() - token.issued_at)


def _remaining(token: Token) -> float:
    return max(0.0, token.expires_at - time.monotonic())


def _error(exc: FalconAuthError) -> Result:
    """A FalconAuthError as falconpy's error result (its message says what to do)."""
    status = exc.status_code or _NO_ANSWER
    return {
        "status_code": status,
        "headers": {},
        "body": {"errors": [{"code": status, "message": str(exc)}], "resources": []},
    }
