"""Wire values of the emulator: requests, answers, Falcon's JSON envelope, token minting."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import gzip
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl

__all__ = [
    "DROP",
    "FORM_CONTENT_TYPE",
    "GATEWAY",
    "OAUTH2",
    "Headers",
    "Request",
    "Response",
    "WireError",
    "basic_credentials",
    "bearer_token",
    "accepts_gzip",
    "error_response",
    "gzipped",
    "json_response",
    "meta",
    "mint_access_token",
    "new_trace_id",
    "parse_form",
    "redact",
]

OAUTH2: Final = "csam"  # meta.powered_by of the OAuth2 service
GATEWAY: Final = "crowdstrike-api-gateway"  # meta.powered_by of the API gateway's own answers
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_SECRET_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie"})


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive header map that keeps names as sent.

    A repeated header's values are joined with ``", "`` (RFC 9110 section 5.3).
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        merged: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in merged:
                merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
            else:
                merged[key] = (name, value)
        self._items = merged

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def redact(headers: Headers) -> Headers:
    """A copy without credentials: an Authorization value keeps only its scheme."""
    clean: list[tuple[str, str]] = []
    for name, value in headers.items():
        if name.lower() not in _SECRET_HEADERS:
            clean.append((name, value))
            continue
        scheme, sep, _ = value.partition(" ")
        keep_scheme = sep and name.lower() != "cookie"
        clean.append((name, f"{scheme} <redacted>" if keep_scheme else "<redacted>"))
    return Headers(clean)


@dataclass(frozen=True)
class Request:
    """One request as the service sees it: the body already read whole."""

    region: str
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    client_ip: str


@dataclass(frozen=True)
class Response:
    """One answer; ``drop`` means close the connection without answering."""

    status: int
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)
    body: bytes = b""
    drop: bool = False


DROP: Final = Response(0, drop=True)


class WireError(Exception):
    """A request the service cannot read: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_trace_id() -> str:
    """A fresh trace id, shaped like Falcon's (a UUID)."""
    return str(uuid.uuid4())


def json_response(
    status: int, payload: object, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """A JSON answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, (("Content-Type", "application/json"), *headers), body)


def error_response(
    status: int,
    message: str,
    *,
    trace_id: str,
    started: float,
    powered_by: str,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """An error answer in Falcon's envelope, ``X-Cs-Traceid`` equal to ``meta.trace_id``."""
    payload = {
        "meta": meta(trace_id, started, powered_by),
        "errors": [{"code": status, "message": message}],
        "resources": [],
    }
    return json_response(status, payload, (("X-Cs-Traceid", trace_id), *headers))


def meta(trace_id: str, started: float, powered_by: str) -> dict[str, object]:
    """The envelope's ``meta`` object."""
    elapsed = round(time.perf_counter() - started, 6)
    return {"query_time": elapsed, "trace_id": trace_id, "powered_by": powered_by}


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value names gzip with a weight above 0 (RFC 9110 section
    12.5.3), as nginx, Falcon's front, reads it: ``*`` and ``x-gzip`` are not gzip to it."""
    for coding in accept_encoding.split(","):
        name, *parameters = (part.strip() for part in coding.split(";"))
        if name.lower() != "gzip":
            continue
        weight = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        return weight > 0
    return False


def gzipped(response: Response, accept_encoding: str) -> Response:
    """``response`` in gzip when ``accept_encoding`` accepts it, else as it is; either way with
    ``Vary: Accept-Encoding``, since its body depends on that header (RFC 9110 section 12.5.5).

    Level 1, nginx's default, keeps a 5,000-host answer cheap to code.
    """
    headers = (*response.headers, ("Vary", "Accept-Encoding"))
    coded = any(name.lower() == "content-encoding" for name, _ in response.headers)
    if not response.body or coded or not accepts_gzip(accept_encoding):
        return dataclasses.replace(response, headers=headers)
    body = gzip.compress(response.body, compresslevel=1, mtime=0)
    return dataclasses.replace(
        response, headers=(*headers, ("Content-Encoding", "gzip")), body=body
    )


def parse_form(request: Request) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (the first of a repeat).

    Raises:
        WireError: 415 for another content type, 400 for a body that is not a form.
    """
    if not request.body:
        return {}  # no body, no fields: the missing ones are reported by name
    content_type = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        raise WireError(415, f"Content-Type must be {FORM_CONTENT_TYPE}")
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(400, "Malformed form body") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def bearer_token(headers: Headers) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (any case of the scheme)."""
    scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def basic_credentials(headers: Headers) -> tuple[str, str] | None:
    """The (id, secret) of ``Authorization: basic base64(id:secret)`` (any case of the scheme)."""
    scheme, _, encoded = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


# Scope claims pad the token to the ~1.2 KB of a real Falcon token, so that header and
# cache sizes in tests are realistic.
_SCOPES: Final = (
    "alerts:read",
    "detects:read",
    "devices:read",
    "devices:write",
    "firewall-management:read",
    "hosts:read",
    "hosts:write",
    "incidents:read",
    "iocs:read",
    "prevention-policies:read",
    "quarantine:read",
    "real-time-response:read",
    "sensor-installers:read",
    "spotlight-vulnerabilities:read",
    "user-management:read",
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_access_token(
    *, jti: str, client_id: str, cid: str, member_cid: str | None, region: str, ttl: int
) -> str:
    """A JWT-shaped opaque token (RS256 header, claims, random signature)."""
    issued = int(time.time())
    header = {"alg": "RS256", "kid": secrets.token_hex(16), "typ": "JWT"}
    claims = {
        "aud": "apigateway",
        "client_id": client_id,
        "exp": issued + ttl,
        "ext": {"cid": cid, "member_cid": member_cid or "", "region": region},
        "iat": issued,
        "iss": "https://api.crowdstrike.com/",
        "jti": jti,
        "nbf": issued,
        "region": region,
        "scp": list(_SCOPES),
        "sub": client_id,
    }
    parts = (
        _b64url(json.dumps(header, separators=(",", ":")).encode()),
        _b64url(json.dumps(claims, separators=(",", ":")).encode()),
        _b64url(secrets.token_bytes(256)),
    )
    return ".".join(parts)
