"""The hand-written stand-ins for Falcon, in one place, and why each is not the emulator.

The emulator (:mod:`requests_falcon_auth.testing`) is the test bed wherever it can serve. These
fakes remain for what it cannot be:

- ``TokenIssuer`` and ``ScriptedFalcon`` answer through ``responses`` at Falcon's own host names
  (``api.crowdstrike.com``, ``api.us-2.crowdstrike.com``...): region, autodiscovery and redirect
  tests need those names, which a loopback server cannot have, and the Hypothesis fuzzers run
  thousands of examples where a socket per call would cost minutes.
- ``ScriptedFalcon`` also serves answers no Falcon would give (the fuzzers' point), and
  ``ScriptedApi`` answers each API call from a script, so a model can predict every step.
- ``MiniFalcon`` runs on a real socket (with :class:`loopback.LoopbackServer`) with knobs the
  emulator does not offer: the API under a path prefix, a cookie set on a 401, the request body's
  digest echoed back, a bad-token answer of 429 on demand.

Every fake issues its tokens through ``TokenIssuer``: ``tok-1``, ``tok-2``... for 1799 s.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import requests
import responses
from loopback import Answer, Received

CallbackResult = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Reply:
    """One answer of a mocked endpoint: status, headers (latin-1 text, as on the wire), body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def document(self) -> object:
        """The body as JSON, as the library reads it (UTF-8), or None."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def as_callback_result(self) -> CallbackResult:
        return self.status, dict(self.headers), self.body


class TokenIssuer:
    """A token endpoint issuing ``tok-1``, ``tok-2``... as Falcon answers (thread-safe).

    Called with a request it is a ``responses`` callback; ``issue`` serves the other fakes.
    """

    def __init__(self) -> None:
        self.issued: list[str] = []
        self._lock = threading.Lock()

    def issue(self) -> tuple[str, bytes]:
        """The next token and the JSON body of Falcon's 201 answer carrying it."""
        with self._lock:
            value = f"tok-{len(self.issued) + 1}"
            self.issued.append(value)
        body = {"access_token": value, "token_type": "bearer", "expires_in": 1799}
        return value, json.dumps(body).encode()

    def __call__(self, request: requests.PreparedRequest) -> CallbackResult:
        value, body = self.issue()
        return 201, {"X-Cs-Traceid": f"trace-{value}"}, body


class ScriptedFalcon:
    """Every POST is a token request, answered from the queue (the last answer repeats once it
    runs out); every GET is an API call, recorded and answered 200."""

    def __init__(self, token_replies: Sequence[Reply]) -> None:
        self.token_replies = list(token_replies)
        self.served: list[tuple[str, Reply]] = []
        self.api_calls: list[tuple[str, str | bytes | None]] = []

    def token(self, request: requests.PreparedRequest) -> CallbackResult:
        reply = self.token_replies[min(len(self.served), len(self.token_replies) - 1)]
        self.served.append((request.url or "", reply))
        return reply.as_callback_result()

    def api(self, request: requests.PreparedRequest) -> CallbackResult:
        self.api_calls.append((request.url or "", request.headers.get("Authorization")))
        return 200, {}, b'{"resources": []}'

    @contextmanager
    def installed(self) -> Iterator[None]:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            anything = re.compile(r".*")
            mock.add_callback(responses.POST, anything, callback=self.token, content_type=None)
            mock.add_callback(responses.GET, anything, callback=self.api, content_type=None)
            yield


ISSUE = Reply(201)
"""In ``ScriptedApi``'s renewals: issue the next ``tok-<n>``."""

ApiAnswer = tuple[int, bytes]


class ScriptedApi:
    """A Falcon at ``base_url`` whose every answer is scripted, recording every call.

    The token endpoint issues ``tok-1``, then answers the ``renewals`` in turn (``ISSUE`` among
    them issues the next token), then issues again. The API answers each user request with the
    two answers given to ``next_request``: the first to the request, the second to its re-send.
    """

    def __init__(self, base_url: str, renewals: Sequence[Reply]) -> None:
        self.base_url = base_url
        self.renewals = list(renewals)
        self.tokens = TokenIssuer()
        self.token_calls = 0
        self.api_calls: list[tuple[str | bytes | None, bytes | None]] = []
        self._answers: tuple[ApiAnswer, ApiAnswer] | None = None
        self._attempt = 0

    def next_request(self, first: ApiAnswer, second: ApiAnswer) -> None:
        self._answers, self._attempt = (first, second), 0

    def token(self, request: requests.PreparedRequest) -> CallbackResult:
        self.token_calls += 1
        index = self.token_calls - 2
        reply = self.renewals[index] if 0 <= index < len(self.renewals) else ISSUE
        if reply is not ISSUE:
            return reply.as_callback_result()
        return self.tokens(request)

    def api(self, request: requests.PreparedRequest) -> CallbackResult:
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            body = b"".join(body)  # type: ignore[arg-type]
        if isinstance(body, str):
            body = body.encode()
        self.api_calls.append((request.headers.get("Authorization"), body))
        assert self._answers is not None, "next_request was not called"
        status, payload = self._answers[min(self._attempt, 1)]
        self._attempt += 1
        return status, {"X-Cs-Traceid": f"api-{len(self.api_calls)}"}, payload

    @contextmanager
    def installed(self) -> Iterator[None]:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            base = self.base_url
            token, revoke = f"{base}/oauth2/token", f"{base}/oauth2/revoke"
            mock.add_callback(responses.POST, token, callback=self.token, content_type=None)
            mock.add_callback(responses.POST, revoke, callback=lambda r: (200, {}, b"{}"))
            anything_else = re.compile(re.escape(base) + r"/(?!oauth2/).*")
            for method in (responses.GET, responses.POST):
                mock.add_callback(method, anything_else, callback=self.api, content_type=None)
            yield


class MiniFalcon:
    """A ``LoopbackServer`` handler: a token endpoint, and an API that refuses tokens it did not
    issue or that are listed in ``reject``, and otherwise echoes the body's length and SHA-256.

    The knobs: ``prefix`` (everything lives under it), ``redirect_to`` (``/redirect...`` answers
    302 there), ``bad_token_status`` (429: the bad-token budget is spent), ``account_limited``
    (paths under it answer the account's 429 as a gateway does: the budget is spent for
    ``account_wait`` seconds, every call until then gets a 429 naming that epoch time; at most
    ``account_429s`` such cooldowns if set), ``set_cookie_on_401`` and ``forbidden`` (403).
    """

    def __init__(self) -> None:
        self.tokens = TokenIssuer()
        self.reject: set[str] = set()
        self.redirect_to: str | None = None
        self.prefix = ""
        self.bad_token_status = 401
        self.account_limited: str | None = None
        self.account_429s: int | None = None
        self.account_wait = 0.0
        self.account_busy_until = 0.0
        self.account_429_answers = 0
        self.account_429_sent = threading.Event()
        self.set_cookie_on_401 = False
        self.forbidden: str | None = None

    @property
    def issued(self) -> list[str]:
        return self.tokens.issued

    def __call__(self, request: Received) -> Answer:
        if not request.path.startswith(self.prefix):
            return Answer(404, b'{"errors": [{"code": 404}]}')
        path = request.path[len(self.prefix) :]
        if path == "/oauth2/token":
            return Answer(201, self.tokens.issue()[1])
        if path == "/oauth2/revoke":
            return Answer(200, b'{"errors": []}')
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.reject:
            headers = (
                {"Set-Cookie": "falcon-affinity=node-7; Path=/"} if self.set_cookie_on_401 else {}
            )
            if self.bad_token_status == 429:
                headers.update({"X-Ratelimit-Limit": "15", "X-Ratelimit-Remaining": "0"})
            return Answer(self.bad_token_status, b'{"errors": [{"code": 401}]}', headers)
        if self.account_limited and path.startswith(self.account_limited):
            now = time.time()
            if now < self.account_busy_until or self.account_429s != 0:
                if now >= self.account_busy_until:  # a new cooldown
                    self.account_busy_until = now + self.account_wait
                    if self.account_429s is not None:
                        self.account_429s -= 1
                self.account_429_answers += 1
                self.account_429_sent.set()
                limits = {
                    "X-Ratelimit-Limit": "6000",
                    "X-Ratelimit-Remaining": "0",
                    "X-Ratelimit-Retryafter": f"{self.account_busy_until:.3f}",
                }
                return Answer(429, b'{"errors": [{"code": 429}]}', limits)
        if self.redirect_to and path.startswith("/redirect"):
            return Answer(302, b"", {"Location": self.redirect_to})
        if self.forbidden and path.startswith(self.forbidden):
            return Answer(403, b'{"errors": [{"code": 403}]}')
        digest = hashlib.sha256(request.body).hexdigest()
        return Answer(200, json.dumps({"length": len(request.body), "sha256": digest}).encode())
