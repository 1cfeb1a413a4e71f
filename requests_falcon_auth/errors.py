"""Every failure the library raises, and the parser of Falcon's error envelope.

::

    FalconAuthError                     base: status_code, trace_id, errors, region
    ├── ConfigurationError (ValueError) bad or missing arguments, environment, region names
    ├── CredentialsError                400/401/403 from the token or revoke endpoint
    ├── RegionError                     the credentials live in another cloud than the one named
    ├── RateLimitError                  429 from the token endpoint; retry_after in seconds
    └── TokenEndpointError              5xx, transport failures, malformed answers

Messages say what to do. They never carry a client secret, a token or an Authorization header:
the server's own messages are included (they name client ids, never secrets), and the caller
that knows the secret redacts it before raising (see ``_diagnosis.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = [
    "ConfigurationError",
    "CredentialsError",
    "ErrorEnvelope",
    "FalconAuthError",
    "RateLimitError",
    "RegionError",
    "TokenEndpointError",
    "parse_envelope",
]


class FalconAuthError(Exception):
    """Base of every exception the library raises.

    Attributes:
        status_code: HTTP status of the answer that caused it, when there was one.
        trace_id: Falcon's ``X-Cs-Traceid`` (quote it to CrowdStrike support).
        errors: the messages from the answer's ``errors`` list.
        region: the Falcon cloud the call went to, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        trace_id: str | None = None,
        errors: Sequence[str] = (),
        region: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.trace_id = trace_id
        self.errors = tuple(errors)
        self.region = region

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only context would be lost by Exception's default pickling (multiprocessing
        # sends exceptions between processes).
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))

    def __str__(self) -> str:
        if self.trace_id:
            return f"{self.message} (trace id {self.trace_id})"
        return self.message


def _rebuild(cls: type[FalconAuthError], message: str, state: dict[str, object]) -> FalconAuthError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(FalconAuthError, ValueError):
    """The arguments or environment do not describe usable credentials or a usable cloud."""


class CredentialsError(FalconAuthError):
    """Falcon refused the credentials (wrong id, secret, member CID, cloud or source IP)."""


class RegionError(FalconAuthError):
    """The credentials belong to another cloud than the one the client was told to use."""


class RateLimitError(FalconAuthError):
    """Falcon rate-limited the token endpoint.

    Attributes:
        retry_after: seconds to wait before asking again, when the server said.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **context: object
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]  # typed in FalconAuthError
        self.retry_after = retry_after


class TokenEndpointError(FalconAuthError):
    """The token endpoint failed in a way that is not about the credentials: 5xx, network, junk."""


class ErrorEnvelope(NamedTuple):
    """What Falcon's JSON envelope says about a failure: its trace id and messages."""

    trace_id: str | None
    messages: tuple[str, ...]
    well_formed: bool


def parse_envelope(body: bytes, headers: Mapping[str, str]) -> ErrorEnvelope:
    """Reads ``meta.trace_id`` and ``errors[].message`` from any answer, tolerating junk.

    The ``X-Cs-Traceid`` header wins over the body's trace id (they are equal on the real
    service; the header survives a body that is not JSON).
    """
    trace_id = headers.get("X-Cs-Traceid") or None
    try:
        document = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: deep nesting
        document = None
    if not isinstance(document, dict):
        return ErrorEnvelope(trace_id, (), False)
    meta = document.get("meta")
    if trace_id is None and isinstance(meta, dict) and isinstance(meta.get("trace_id"), str):
        trace_id = meta["trace_id"]
    messages = []
    errors = document.get("errors")
    if isinstance(errors, list):
        for entry in errors:
            if isinstance(entry, dict) and isinstance(entry.get("message"), str):
                messages.append(entry["message"])
            elif isinstance(entry, str):
                messages.append(entry)
    return ErrorEnvelope(trace_id, tuple(messages), True)
