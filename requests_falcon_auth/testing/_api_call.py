"""What a handler of the emulated gateway sees and returns, and what is kept of a body.

An authenticated call reaches collections and user handlers as an :class:`ApiCall`; they answer
with an :class:`ApiAnswer` (or ``(status, resources)``), which the service wraps in Falcon's
envelope, or sends as raw bytes when the answer is a file (a sensor installer, a sample).
Nothing here knows where an answer comes from: that is :mod:`._data`'s routing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, NamedTuple, Union
from urllib.parse import parse_qsl

from ._checks import non_empty, whole
from ._wire import Headers

__all__ = [
    "JSON_LOG_LIMIT",
    "OCTET_STREAM",
    "ApiAnswer",
    "ApiCall",
    "BodyFacts",
    "Handler",
    "HandlerResult",
    "as_answer",
    "error_entry",
    "inspect_body",
    "parse_query",
    "refuse",
]

JSON_LOG_LIMIT: Final = 1 << 20  # JSON bodies larger than this are not kept in the request log
OCTET_STREAM: Final = "application/octet-stream"  # the Content-Type of Falcon's downloads


@dataclass(frozen=True)
class ApiCall:
    """One authenticated API call, as a handler sees it (the gateway has checked the token).

    Attributes:
        method: the HTTP method (``HEAD`` reaches a ``GET`` handler as ``HEAD``).
        path: the path, without the query.
        query: every query parameter and all of its values, in order (``ids=a&ids=b`` gives
            ``{"ids": ("a", "b")}``); :meth:`param` reads the first.
        query_string: the query as sent.
        json_body: the body parsed as JSON, None when it is empty or not JSON.
        body: the raw body, for uploads.
        client_id: the id of the API client the token was issued to.
        member_cid: the child CID the token acts for (MSSP), as requested; None for a client's
            own token.
        cid: the CID the token acts for: the member CID (lower case) or the client's own.
        region: the region that received the call.
        headers: the request headers, credentials redacted.
        base_url: the emulator's base URL for ``region``, for answers that hold URLs back to
            it (an event stream's refresh URL); empty when the call was built without one.
    """

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    query_string: str
    json_body: object
    body: bytes = field(repr=False)
    client_id: str
    member_cid: str | None
    cid: str
    region: str
    headers: Headers = field(repr=False)
    base_url: str = ""

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None when it was not sent."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class ApiAnswer:
    """What a handler answers; the emulator wraps it in Falcon's envelope, or sends a file.

    The answer becomes ``{"meta": {...}, "resources": [...], "errors": [...]}`` with the
    gateway's rate-limit and trace-id headers, so a handler only says what is specific to it.
    An answer with a ``body`` is a file instead (Falcon's downloads): those bytes, with
    ``content_type`` and the same gateway headers, and no envelope.

    Args:
        status: the HTTP status (200-599, not 204 or 304: Falcon's answers all have a body).
        resources: the ``resources`` list.
        errors: the ``errors`` list; an error status with none gets one
            ``{"code": status, "message": <reason phrase>}``.
        meta: keys merged into ``meta`` (``pagination``, ``writes``, or ``powered_by`` to
            replace the emulator's); ``trace_id`` always stays the header's.
        headers: extra response headers.
        resource_object: ``resources`` as an object instead of a list, for the few Falcon
            operations that answer one (``GetConfigurationDetections``: ``{"events": [...]}``).
        body: the bytes of a file answer (a success: Falcon's errors are JSON envelopes).
        content_type: the file's ``Content-Type``.

    Raises:
        TypeError: a body that is not bytes.
        ValueError: a status the envelope cannot carry, a body beside an envelope's parts or
            with an error status, or resources given both as a list and as an object.
    """

    status: int = 200
    resources: Sequence[object] = ()
    errors: Sequence[Mapping[str, object]] = ()
    meta: Mapping[str, object] = field(default_factory=dict)
    headers: Sequence[tuple[str, str]] = ()
    resource_object: Mapping[str, object] | None = None
    body: bytes | None = field(default=None, repr=False)
    content_type: str = OCTET_STREAM

    def __post_init__(self) -> None:
        status = whole(self.status, "ApiAnswer.status", 200, 599, meaning="an int from 200 to 599")
        if status in (204, 304):
            raise ValueError(f"ApiAnswer.status {status} has no body, and Falcon's answers do.")
        if self.resource_object is not None and self.resources:
            raise ValueError("ApiAnswer takes resources as a list or as an object, not both.")
        if self.body is None:
            return
        if not isinstance(self.body, bytes):
            raise TypeError(f"ApiAnswer.body must be bytes, got {type(self.body).__name__}.")
        if status >= 400:
            raise ValueError(f"ApiAnswer.status {status} with a body: Falcon's errors are JSON.")
        if self.resources or self.errors or self.meta or self.resource_object is not None:
            raise ValueError("ApiAnswer.body is a file: it takes no resources, errors or meta.")
        non_empty(self.content_type, "ApiAnswer.content_type")


HandlerResult = Union[ApiAnswer, tuple[int, Sequence[object]]]
Handler = Callable[[ApiCall], HandlerResult]


def as_answer(result: object) -> ApiAnswer:
    """A handler's return value as an :class:`ApiAnswer` (it may return ``(status, resources)``).

    Raises:
        TypeError: neither.
    """
    if isinstance(result, ApiAnswer):
        return result
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[1], (list, tuple))
        and isinstance(result[0], int)
    ):
        return ApiAnswer(result[0], list(result[1]))
    raise TypeError(f"A handler must return an ApiAnswer or (status, resources), got {result!r}.")


class BodyFacts(NamedTuple):
    """What the service keeps of a gateway request's body (never the body itself)."""

    length: int
    sha256: str
    json_text: str | None  # the body as text when it is JSON and at most JSON_LOG_LIMIT bytes
    json_value: object  # the body parsed, None when it is not JSON


def inspect_body(body: bytes) -> BodyFacts:
    """Length, digest and JSON reading of a body (a body that is not UTF-8 JSON gives None)."""
    digest = hashlib.sha256(body).hexdigest()
    if not body:
        return BodyFacts(0, digest, None, None)
    try:
        text = body.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return BodyFacts(len(body), digest, None, None)
    return BodyFacts(len(body), digest, text if len(body) <= JSON_LOG_LIMIT else None, value)


def parse_query(query: str) -> Mapping[str, tuple[str, ...]]:
    """Every parameter of a query string and all its values, in order, read-only."""
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return MappingProxyType({name: tuple(found) for name, found in values.items()})


def error_entry(status: int, message: str, **extra: str) -> dict[str, object]:
    """One entry of an answer's ``errors`` list, as Falcon writes them."""
    return {"code": status, "message": message, **extra}


def refuse(message: str) -> ApiAnswer:
    """A 400 for a call the emulator does not understand, saying what it did not."""
    return ApiAnswer(400, errors=[error_entry(400, message)])
