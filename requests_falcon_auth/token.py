"""The issued token as a value: what it is, where it belongs and when it goes stale.

Also what a token answer must hold to become one (``token_from_answer``): the checks sit beside
the value they guard, apart from the HTTP call that fetched the answer.
"""

from __future__ import annotations

import math
import re
import time
from typing import Callable, Final, NoReturn

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "MAX_EXPIRES_IN",
    "MAX_TOKEN_LENGTH",
    "UNKNOWN_LIFETIME",
    "Clock",
    "NotATokenAnswer",
    "Token",
    "bearer_token",
    "token_from_answer",
]


Clock = Callable[[], float]

# What Falcon grants (30 minutes less a second); used when an answer omits expires_in.
DEFAULT_EXPIRES_IN: Final = 1799
# Falcon grants 30 minutes; anything past a day is junk, and would overflow clock arithmetic.
MAX_EXPIRES_IN: Final = 86400
# Falcon's tokens are JWTs of about 1.2 KB; a header of this size is not one.
MAX_TOKEN_LENGTH: Final = 16 * 1024
# The lifetime given a pre-issued token whose expiry nobody said (a century): it is used
# until the API rejects it.
UNKNOWN_LIFETIME: Final = 100 * 365 * 86400
# RFC 6750 section 2.1 b64token: what an Authorization header can carry unmangled.
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# expires_in as a string: digits, perhaps a fraction; bounded, so float() sees no exponent.
_NUMBER: Final = re.compile(r"[0-9]{1,10}(?:\.[0-9]{0,9})?")
# token_type as the server said it, bounded: it is shown in repr.
_MAX_TOKEN_TYPE: Final = 20


def bearer_token(value: object) -> str | None:
    """``value`` when it can go in an Authorization header as Falcon issued it, else None: the
    one check of a token, from a token answer or handed over pre-issued."""
    if isinstance(value, str) and len(value) <= MAX_TOKEN_LENGTH and _BEARER_TOKEN.fullmatch(value):
        return value
    return None


class Token:
    """A Falcon access token.

    ``issued_at`` is a reading of a monotonic clock taken *before* the token request was sent,
    so ``expires_at`` errs early by the request's round trip, never late, and wall-clock jumps
    (NTP, suspend) cannot make a dead token look alive.

    The value never shows in ``repr``/``str``, and a Token refuses to be pickled: a token
    written to disk or a queue by accident is a leaked credential.

    Attributes:
        access_token: the bearer value to send.
        token_type: as the server said (``bearer``).
        expires_in: lifetime in seconds, as granted.
        region: canonical name of the cloud that issued it, when known.
        base_url: API base URL of that cloud: requests and revoke for this token go there.
        issued_at: monotonic time just before the token request was sent.
    """

    # Frozen and slotted by hand, not a dataclass: ``falcon-auth token`` serves a cached token
    # from a process of about 100 ms, of which importing ``dataclasses`` (and ``inspect`` with
    # it) took some 15 (benchmarks row 17). Not a NamedTuple either: a tuple would let
    # ``json.dumps`` write the token out, where this object makes it raise.
    __slots__ = ("access_token", "base_url", "expires_in", "issued_at", "region", "token_type")

    access_token: str
    token_type: str
    expires_in: int
    region: str | None
    base_url: str
    issued_at: float

    def __init__(  # noqa: PLR0917 -- positional, as the dataclass it was
        self,
        access_token: str,
        token_type: str,
        expires_in: int,
        region: str | None,
        base_url: str,
        issued_at: float,
    ) -> None:
        values = (access_token, token_type, expires_in, region, base_url, issued_at)
        for name, value in zip(_FIELDS, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"Token is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Token is immutable: cannot delete {name!r}")

    def _values(self) -> tuple[object, ...]:
        return (
            self.access_token,
            self.token_type,
            self.expires_in,
            self.region,
            self.base_url,
            self.issued_at,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    @property
    def expires_at(self) -> float:
        """Monotonic time at which the token stops being accepted."""
        return self.issued_at + self.expires_in

    def expired(self, now: float | None = None) -> bool:
        """True once the token's lifetime is over."""
        return (time.monotonic() if now is None else now) >= self.expires_at

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value that carries this token."""
        return f"Bearer {self.access_token}"

    def __repr__(self) -> str:
        return (
            f"Token(token_type={self.token_type!r}, region={self.region!r}, "
            f"base_url={self.base_url!r}, expires_in={self.expires_in}, access_token=<hidden>)"
        )

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "Token objects hold a live credential and cannot be pickled; share tokens "
            "between processes with a token cache (requests_falcon_auth.redis) instead."
        )


_FIELDS: Final = ("access_token", "token_type", "expires_in", "region", "base_url", "issued_at")


class NotATokenAnswer(ValueError):
    """A token answer that grants no usable token; the message says what it holds instead."""


def token_from_answer(
    document: object, *, region: str | None, base_url: str, issued_at: float
) -> Token:
    """The token a success answer of the token endpoint grants.

    Args:
        document: the answer's JSON value (None when it was not JSON).
        region: the cloud that issued it, when known.
        base_url: the API base URL of that cloud.
        issued_at: monotonic time just before the token request was sent.

    Raises:
        NotATokenAnswer: no JSON object, no usable access_token, or an invalid expires_in.
    """
    if not isinstance(document, dict):
        raise NotATokenAnswer("no JSON object")
    access_token = bearer_token(document.get("access_token"))
    if access_token is None:
        raise NotATokenAnswer(
            "no usable access_token (RFC 6750 token characters, at most "
            f"{MAX_TOKEN_LENGTH // 1024} KiB)"
        )
    expires_in = _seconds(document.get("expires_in", DEFAULT_EXPIRES_IN))
    if expires_in is None:
        raise NotATokenAnswer("an invalid expires_in (expected a positive number of seconds)")
    if expires_in > MAX_EXPIRES_IN:
        import logging  # only here: a process that reads tokens from a store never logs

        logging.getLogger(__name__).warning(
            "Falcon granted a token for %s s; treating it as %s s", expires_in, MAX_EXPIRES_IN
        )
        expires_in = MAX_EXPIRES_IN
    token_type = document.get("token_type")
    return Token(
        access_token=access_token,
        token_type=token_type[:_MAX_TOKEN_TYPE] if isinstance(token_type, str) else "bearer",
        expires_in=expires_in,
        region=region,
        base_url=base_url,
        issued_at=issued_at,
    )


def _seconds(value: object) -> int | None:
    """A token lifetime as whole seconds: an int, an integral-looking float or numeric string."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip(" ")):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(min(value, 10 * MAX_EXPIRES_IN)) if value >= 1 else None
