"""Where a token may go: a URL's origin and path as the parser that routes the request reads them.

requests and urllib3 both route with urllib3's ``parse_url``; ``urllib.parse.urlsplit`` reads
some URLs differently. For ``http://evil:1\\@falcon/`` urlsplit says the host is ``falcon`` (the
text after the last ``@``) while urllib3 connects to ``evil`` (the authority ends at the ``\\``):
a scope decision taken with one parser and a connection made with the other sends the token to
whoever the difference favours. So a URL has an origin here only when both parsers agree on it
and its authority holds none of the characters they treat differently (backslash, whitespace,
control characters); anything else gets no token.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NamedTuple
from urllib.parse import urlsplit

from urllib3.util import parse_url

__all__ = [
    "Origin",
    "Scope",
    "direct_proxies",
    "inside",
    "is_loopback_host",
    "origin_of",
    "routed_path",
    "scope_of",
]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# The common case, unambiguous to every parser: scheme, a plain host name or IPv4 address, an
# optional port, then the end of the authority. Everything else takes the careful path.
_PLAIN: Final = re.compile(r"(https?)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(?=[/?#]|\Z)", re.I)
_AUTHORITY: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)")
# Characters that end the authority for one parser and not the other, or that urlsplit
# silently deletes (tab, CR, LF) while urllib3 keeps them.
_AMBIGUOUS: Final = re.compile(r"[\\\s\x00-\x1f\x7f]")
# A server may decode these before it resolves dot segments, or read a backslash as a slash,
# walking out of a path prefix: a path holding one anywhere is never judged inside a prefix.
_UNSAFE_IN_PATH: Final = re.compile(r"%(2e|2f|5c)|\\", re.I)
_DOT_SEGMENTS: Final = frozenset({".", ".."})
# Longer URLs (a long query string) are parsed every time rather than kept.
_MEMO_URL_LENGTH: Final = 2048


class Origin(NamedTuple):
    """The (scheme, host, port) triple that decides where a token may be sent (RFC 6454)."""

    scheme: str
    host: str
    port: int


def origin_of(url: str) -> Origin | None:
    """The origin of an absolute http(s) URL; None for anything else or anything ambiguous."""
    if len(url) <= _MEMO_URL_LENGTH:
        return _memo_origin(url)  # every request asks; most ask about a URL seen before
    return _origin(url)


def _origin(url: str) -> Origin | None:
    plain = _PLAIN.match(url)
    if plain is not None:
        scheme, host, port = plain.groups()
        scheme = scheme.lower()
        number = int(port) if port else _DEFAULT_PORTS[scheme]
        return Origin(scheme, host.lower(), number) if 0 < number < 65536 else None
    return _careful_origin(url)


_memo_origin = functools.lru_cache(maxsize=512)(_origin)


def _careful_origin(url: str) -> Origin | None:
    authority = _AUTHORITY.match(url)
    if authority is None or _AMBIGUOUS.search(authority.group(2)):
        return None
    try:
        split = urlsplit(url)
        split_port = split.port
        routed = parse_url(url)
    except ValueError:  # urllib3's LocationParseError is a ValueError too
        return None
    scheme = split.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not split.hostname or not routed.host:
        return None
    origin = Origin(scheme, split.hostname.lower(), split_port or _DEFAULT_PORTS[scheme])
    routed_origin = Origin(
        (routed.scheme or "").lower(),
        routed.host.strip("[]").lower(),
        routed.port or _DEFAULT_PORTS[scheme],
    )
    return origin if origin == routed_origin else None


def routed_path(url: str) -> str | None:
    """The path the request will carry (dot segments resolved, as urllib3 sends it)."""
    try:
        return parse_url(url).path or "/"
    except ValueError:
        return None


@dataclass(frozen=True)
class Scope:
    """The URLs an API base URL covers: its origin and, for a gateway, its path prefix.

    Attributes:
        origin: the base URL's origin.
        prefix: the base URL's path without a trailing slash; empty for a bare origin.
    """

    origin: Origin
    prefix: str

    def covers(self, url: str, origin: Origin | None = None) -> bool:
        """True when ``url`` is at this origin and inside the path prefix.

        Args:
            url: the URL a request goes to, as its HTTP library will send it (requests: the
                prepared URL, after its re-quoting).
            origin: ``origin_of(url)``, when the caller has it already.
        """
        if (origin if origin is not None else origin_of(url)) != self.origin:
            return False
        if not self.prefix:
            return True
        try:
            path = urlsplit(url).path or "/"
        except ValueError:
            return False
        return self.covers_path(path)

    def holds(self, scheme: str, host: str, port: int | None) -> bool:
        """True for this origin, as the HTTP library that routes a request parsed its URL
        (``port`` None for the scheme's default); the path, under a prefix, is asked of
        :meth:`covers_path`. A host spelled other than as :func:`origin_of` spells it (upper
        case, IDNA) is not held: the caller asks :meth:`covers` of the whole URL then."""
        origin = self.origin
        return (
            scheme == origin.scheme
            and host == origin.host
            and (port if port is not None else _DEFAULT_PORTS.get(scheme)) == origin.port
        )

    def covers_path(self, path: str) -> bool:
        """True when ``path``, exactly as it goes on the wire, is inside the path prefix.

        The path is judged as sent, not as one parser would resolve it: a path that dot-segment
        removal would change, or that holds an encoded ``/``, ``\\`` or ``.`` (or a raw
        backslash) anywhere, is outside, since the server behind the prefix may decode and
        resolve it differently from any client-side parser.
        """
        if _UNSAFE_IN_PATH.search(path) or not _DOT_SEGMENTS.isdisjoint(path.split("/")):
            return False
        return path == self.prefix or path.startswith(self.prefix + "/")

    def relative(self, url: str) -> str:
        """The part of a covered ``url`` after the base URL: path below the prefix and query."""
        parts = parse_url(url)
        path = (parts.path or "/")[len(self.prefix) :] or "/"
        return f"{path}?{parts.query}" if parts.query is not None else path


def inside(base_url: str, url: str) -> bool:
    """True when ``url`` is inside the scope of the API base URL ``base_url``: its origin and
    path prefix (:meth:`Scope.covers`)."""
    if len(url) <= _MEMO_URL_LENGTH:
        return _memo_inside(base_url, url)  # the warm path asks it of every request
    return _inside(base_url, url)


def _inside(base_url: str, url: str) -> bool:
    scope = scope_of(base_url)
    return scope is not None and scope.covers(url)


_memo_inside = functools.lru_cache(maxsize=512)(_inside)


@functools.lru_cache(maxsize=128)
def scope_of(base_url: str) -> Scope | None:
    """The scope of an API base URL (cached: scope is checked on every request)."""
    origin = origin_of(base_url)
    path = routed_path(base_url)
    if origin is None or path is None:
        return None
    return Scope(origin, path.rstrip("/"))


def is_loopback_host(host: str) -> bool:
    """True for localhost and the loopback ranges 127.0.0.0/8 and ::1."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def direct_proxies(url: str, configured: Iterable[str] = ()) -> dict[str, None] | None:
    """``proxies=`` that keep a call to a loopback URL off every proxy; None for other URLs.

    Plain http is allowed only for loopback, and an ``HTTP_PROXY`` from the environment would
    carry the token (or the client secret) in clear to the proxy. requests drops the keys set to
    None when it merges the call's, the environment's and the session's proxy settings, so
    every key that could apply is set: the schemes, ``all``, and the session's own
    (``configured``).
    """
    origin = origin_of(url)
    if origin is None or not is_loopback_host(origin.host):
        return None
    return dict.fromkeys({"http", "https", "all", *configured})
