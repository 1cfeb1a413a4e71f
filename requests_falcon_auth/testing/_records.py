"""What the emulator saw: counters and the request log, as immutable snapshots."""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from ._wire import Headers

__all__ = ["TOKEN_OUTCOMES", "Counters", "Recorder", "RequestLog", "RequestLogEntry"]

# How a token request ended (the keys of Counters.token_outcomes).
TOKEN_OUTCOMES: Final = (
    "issued",
    "redirected",
    "unknown_client",
    "wrong_secret",
    "wrong_member_cid",
    "rate_limited",
    "injected",
    "bad_request",
)

_LOG_LIMIT: Final = 10_000
# The JSON bodies the log keeps, newest first: 10,000 bodies of up to 1 MiB each would be 10 GiB.
_LOG_JSON_BUDGET: Final = 64 * 1024 * 1024


@dataclass(frozen=True)
class Counters:
    """A consistent snapshot of the emulator's counters.

    Attributes:
        token_requests: ``/oauth2/token`` requests received (counted on arrival, so a request
            held at a gate is counted before it has an outcome; not those dropped by
            ``drop_connections``, which only ``dropped_connections`` counts).
        token_outcomes: how the answered ones ended, every key of ``TOKEN_OUTCOMES`` present.
        tokens_issued: tokens issued (equals ``token_outcomes["issued"]``).
        revokes: revoke calls answered 200.
        api_calls: calls to the API gateway (any path but the OAuth2 ones), whatever the answer.
        api_ok: gateway calls answered 200.
        api_401: gateway calls answered 401.
        api_429: gateway calls answered 429.
        calls_per_token: gateway calls per token, keyed by token id (``FalconEmulator.token_id``),
            counting every call that presented a token the emulator issued, whatever the answer.
        dropped_connections: requests whose connection was closed unanswered.
    """

    token_requests: int
    token_outcomes: Mapping[str, int]
    tokens_issued: int
    revokes: int
    api_calls: int
    api_ok: int
    api_401: int
    api_429: int
    calls_per_token: Mapping[str, int]
    dropped_connections: int


@dataclass(frozen=True)
class RequestLogEntry:
    """One request the emulator received, credentials redacted.

    Of an API call's body only its length, digest and, when it is JSON, its text are kept;
    of an OAuth2 request's body (a form holding the secret), nothing.

    Attributes:
        region: the region that received it.
        method: its method.
        path: its path.
        query: its query string.
        status: the status answered; None for a connection dropped by fault injection.
        headers: its headers, credentials redacted.
        client_ip: the address it came from.
        client_id: the client the presented bearer token was issued to (live or not); None
            without a token the emulator issued, and for OAuth2 requests.
        member_cid: that token's member CID as requested (MSSP), else None.
        body_length: the length of the body; None for OAuth2 requests (their bodies hold
            credentials and nothing of them is kept).
        body_sha256: the body's SHA-256 (hex), to check an upload arrived intact; None for
            OAuth2 requests.
        json_text: the body as received when it is JSON of at most 1 MiB, else None; read it
            parsed as :attr:`json_body`. Never set for OAuth2 requests. The log keeps the JSON
            bodies of its newest entries up to 64 MiB in all; older entries lose theirs (their
            length and digest stay).
    """

    region: str
    method: str
    path: str
    query: str
    status: int | None
    headers: Headers
    client_ip: str
    client_id: str | None = None
    member_cid: str | None = None
    body_length: int | None = None
    body_sha256: str | None = None
    json_text: str | None = field(default=None, repr=False)

    @property
    def json_body(self) -> object:
        """The JSON body, parsed anew on each read (so the log cannot be changed through it);
        None when the body was empty, not JSON, larger than 1 MiB, an OAuth2 form, or past
        the log's 64 MiB of bodies."""
        return None if self.json_text is None else json.loads(self.json_text)


class RequestLog:
    """The last 10,000 requests, oldest first, holding at most 64 MiB of JSON bodies.

    When a new body takes the log past that budget, the oldest entries that still hold a body
    are replaced by copies without it, so a long soak of large uploads cannot exhaust memory
    and a snapshot already handed out never changes. Not thread-safe: used under one lock.
    """

    def __init__(self, limit: int = _LOG_LIMIT, json_budget: int = _LOG_JSON_BUDGET) -> None:
        self._entries: deque[RequestLogEntry] = deque(maxlen=limit)
        self._json_budget = json_budget
        self._json_bytes = 0
        self._bodiless_prefix = 0  # how many of the oldest entries are known to hold no body

    def append(self, entry: RequestLogEntry) -> None:
        entries = self._entries
        if len(entries) == entries.maxlen:
            self._json_bytes -= _json_size(entries[0])
            self._bodiless_prefix = max(0, self._bodiless_prefix - 1)
        entries.append(entry)
        self._json_bytes += _json_size(entry)
        while self._json_bytes > self._json_budget:
            index = self._bodiless_prefix
            oldest = entries[index]
            if oldest.json_text is not None:
                self._json_bytes -= _json_size(oldest)
                entries[index] = replace(oldest, json_text=None)
            self._bodiless_prefix += 1

    def clear(self) -> None:
        self._entries.clear()
        self._json_bytes = 0
        self._bodiless_prefix = 0

    def snapshot(self) -> list[RequestLogEntry]:
        return list(self._entries)


def _json_size(entry: RequestLogEntry) -> int:
    """The bytes of JSON body the entry holds (its text is the body, so its length counts)."""
    return 0 if entry.json_text is None else entry.body_length or 0


class Recorder:
    """The mutable tallies behind :class:`Counters`. Not thread-safe: used under one lock."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.reset()

    def reset(self) -> None:
        """Zeroes every counter (the log is kept)."""
        self.token_requests = 0
        self.token_outcomes: Counter[str] = Counter()
        self.revokes = 0
        self.api: Counter[int] = Counter()
        self.calls_per_token: Counter[str] = Counter()
        self.dropped_connections = 0

    def snapshot(self) -> Counters:
        """The counters as an immutable value."""
        outcomes = {outcome: self.token_outcomes[outcome] for outcome in TOKEN_OUTCOMES}
        return Counters(
            token_requests=self.token_requests,
            token_outcomes=MappingProxyType(outcomes),
            tokens_issued=outcomes["issued"],
            revokes=self.revokes,
            api_calls=sum(self.api.values()),
            api_ok=self.api[200],
            api_401=self.api[401],
            api_429=self.api[429],
            calls_per_token=MappingProxyType(dict(self.calls_per_token)),
            dropped_connections=self.dropped_connections,
        )
