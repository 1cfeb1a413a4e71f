"""The issued token as a value: what it is, where it belongs and when it goes stale."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Final, NoReturn

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "MAX_TOKEN_LENGTH",
    "UNKNOWN_LIFETIME",
    "Clock",
    "Token",
    "bearer_token",
]

Clock = Callable[[], float]

# What Falcon grants (30 minutes less a second); used when an answer omits expires_in.
DEFAULT_EXPIRES_IN: Final = 1799
# Falcon's tokens are JWTs of about 1.2 KB; a header of this size is not one.
MAX_TOKEN_LENGTH: Final = 16 * 1024
# The lifetime given a pre-issued token whose expiry nobody said (a century): it is used
# until the API rejects it.
UNKNOWN_LIFETIME: Final = 100 * 365 * 86400
# RFC 6750 section 2.1 b64token: what an Authorization header can carry unmangled.
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def bearer_token(value: object) -> str | None:
    """``value`` when it can go in an Authorization header as Falcon issued it, else None: the
    one check of a token, from a token answer or handed over pre-issued."""
    if isinstance(value, str) and len(value) <= MAX_TOKEN_LENGTH and _BEARER_TOKEN.fullmatch(value):
        return value
    return None


@dataclass(frozen=True, repr=False)
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

    access_token: str
    token_type: str
    expires_in: int
    region: str | None
    base_url: str
    issued_at: float

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
