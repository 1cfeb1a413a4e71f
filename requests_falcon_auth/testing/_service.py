"""The emulated Falcon services: OAuth2 token and revoke, and the API gateway, for every region.

One :class:`Service` serves all regions (each request names its region), as Falcon's regions
share nothing but the directory that redirects commercial credentials to their home.
Thread-safe: it reads and changes the emulator's state (:mod:`._state`) and its own rate
budgets only under the state's one lock; a token request waits at a gate or a delay before
taking it, and an API call is answered (by a collection snapshot or a user's handler) outside
it, so a handler may call the emulator. A write that changes the API data is applied under it,
and its answer is what it did.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Final, NamedTuple

from ..clouds import AUTODISCOVERABLE
from ._api_call import ApiAnswer, ApiCall, BodyFacts, inspect_body, parse_query
from ._data import EMULATOR, Route
from ._event_streams import STREAM_NOT_SERVED, STREAM_PATH
from ._faults import Faults
from ._limits import Decision, RateLimits, SlidingWindow, epoch_seconds_after
from ._records import RequestLogEntry
from ._state import ApiClient, IssuedToken, SharedState, State
from ._wire import (
    DROP,
    GATEWAY,
    OAUTH2,
    Request,
    Response,
    WireError,
    basic_credentials,
    bearer_token,
    error_response,
    gzipped,
    json_response,
    meta,
    mint_access_token,
    new_trace_id,
    parse_form,
    redact,
)

__all__ = ["TOKEN_PATH", "REVOKE_PATH", "Service"]

TOKEN_PATH: Final = "/oauth2/token"
REVOKE_PATH: Final = "/oauth2/revoke"

# us-3 is too new to tell (falcon-oauth2.md); the emulator treats it like the other commercial
# clouds, whose credentials us-1 redirects home with a 308.
_DISCOVERABLE: Final = AUTODISCOVERABLE | {"us-3"}

_INVALID_TOKEN: Final = "access denied, invalid bearer token"
_RATE_LIMITED: Final = "API rate limit exceeded."
_NOT_AUTHORIZED: Final = "access denied, authorization failed"
_WRONG_SECRET: Final = "Failed to issue access token - Not Authorized"
_INJECTED_MESSAGES: Final = {429: _RATE_LIMITED, 500: "Failed to issue token"}


class _NoToken(NamedTuple):
    """A token request answered without a token: an error, or the 308 to the client's home."""

    outcome: str
    status: int
    message: str | None  # None for the empty-bodied 308
    headers: tuple[tuple[str, str], ...] = ()


class _Grant(NamedTuple):
    client: ApiClient
    member_cid: str | None


class _Budgets(NamedTuple):
    token: SlidingWindow
    api: SlidingWindow
    bad_token: SlidingWindow


def _default_errors(answer: ApiAnswer) -> list[dict[str, object]]:
    """The ``errors`` of an error status a handler answered without any."""
    if answer.status < 400:
        return []
    try:
        phrase = HTTPStatus(answer.status).phrase
    except ValueError:
        phrase = "Error"
    return [{"code": answer.status, "message": phrase}]


def _rate_headers(decision: Decision) -> tuple[tuple[str, str], ...]:
    return (
        ("X-Ratelimit-Limit", str(decision.limit)),
        ("X-Ratelimit-Remaining", str(decision.remaining)),
    )


def _error(
    status: int,
    message: str,
    *extra: tuple[str, str],
    decision: Decision,
    trace_id: str,
    started: float,
    powered_by: str,
) -> Response:
    """An error in Falcon's envelope with the budget's rate-limit headers, then ``extra``."""
    return error_response(
        status,
        message,
        trace_id=trace_id,
        started=started,
        powered_by=powered_by,
        headers=(*_rate_headers(decision), *extra),
    )


class Service:
    """Falcon's OAuth2 service and API gateway, as one object answering :class:`Request`.

    Args:
        shared: the emulator's state, which the emulator administers.
        faults: the faults the emulator injects.
    """

    def __init__(
        self,
        shared: SharedState,
        faults: Faults,
        *,
        regions: Iterable[str],
        token_ttl: int,
        rate_limits: RateLimits | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        region_header: bool = True,
    ) -> None:
        self.region_header = region_header
        self._shared = shared
        self._faults = faults
        self._token_ttl = token_ttl
        self._clock = clock
        self._wall_clock = wall_clock
        self._stopping = threading.Event()
        limits = rate_limits if rate_limits is not None else RateLimits()
        enforce = rate_limits is not None
        self._budgets = {
            region: _Budgets(
                SlidingWindow(limits.token_per_ip, limits.window, clock, enforce=enforce),
                SlidingWindow(limits.api_per_cid, limits.window, clock, enforce=enforce),
                SlidingWindow(limits.bad_token_per_ip, limits.window, clock, enforce=enforce),
            )
            for region in regions
        }

    def shutdown(self) -> None:
        """Lets held and delayed token requests finish (the servers are stopping)."""
        self._stopping.set()
        self._faults.release_all()

    # -- requests ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answers one request (a token request may block at a gate or a delay first)."""
        # OAuth2 bodies hold credentials: nothing of them is read here, nor kept.
        oauth2 = request.path in (TOKEN_PATH, REVOKE_PATH)
        body = None if oauth2 else inspect_body(request.body)
        if self._faults.take_drop():
            with self._shared.locked() as state:
                state.recorder.dropped_connections += 1
                self._log(state, request, None, body)
            return DROP
        if body is not None:
            response = self._as_sent(request, self._gateway(request, body))
        elif request.path == TOKEN_PATH:
            response = self._token(request)
        else:
            response = self._revoke(request)
        with self._shared.locked() as state:
            self._log(state, request, response.status, body)
        return response

    def _as_sent(self, request: Request, response: Response) -> Response:
        """A gateway answer as Falcon's front sends it: with ``X-Cs-Region`` and in gzip when
        the client accepts it. The region goes out even when ``region_header`` is off: SDKs
        move their base URL by the token answer's header alone, and read this one as a fact
        of the answer (falconpy's ``Result.region``)."""
        response = replace(response, headers=(*response.headers, ("X-Cs-Region", request.region)))
        return gzipped(response, request.headers.get("Accept-Encoding", ""))

    @staticmethod
    def _log(state: State, request: Request, status: int | None, body: BodyFacts | None) -> None:
        record = None
        if body is not None:
            token = bearer_token(request.headers)
            record = state.tokens.get(token) if token is not None else None
        state.recorder.log.append(
            RequestLogEntry(
                region=request.region,
                method=request.method,
                path=request.path,
                query=request.query,
                status=status,
                headers=redact(request.headers),
                client_ip=request.client_ip,
                client_id=record.client_id if record is not None else None,
                member_cid=record.member_cid if record is not None else None,
                body_length=body.length if body is not None else None,
                body_sha256=body.sha256 if body is not None else None,
                json_text=body.json_text if body is not None else None,
            )
        )

    def _token(self, request: Request) -> Response:
        started = time.perf_counter()
        with self._shared.locked() as state:
            state.recorder.token_requests += 1
        gate, delay = self._faults.token_hold()
        if gate is not None:
            gate.pass_through()
        if delay > 0:
            self._stopping.wait(delay)
        trace_id = new_trace_id()
        with self._shared.locked() as state:
            outcome, response = self._answer_token(state, request, started, trace_id)
            state.recorder.token_outcomes[outcome] += 1
        return response

    def _answer_token(
        self, state: State, request: Request, started: float, trace_id: str
    ) -> tuple[str, Response]:
        # Every request spends the per-IP budget, failed ones too (falcon-oauth2.md).
        decision = self._budgets[request.region].token.acquire(request.client_ip)
        result: _Grant | _NoToken | None = self._screen(request, decision)
        if result is None:
            try:
                result = self._authenticate(state, request.region, parse_form(request))
            except WireError as exc:
                result = _NoToken("bad_request", exc.status, exc.message)
        elif isinstance(result, _NoToken) and result.outcome == "injected" and result.status == 429:
            decision = decision._replace(remaining=0)  # a 429 says the budget is spent
        headers = (("X-Cs-Traceid", trace_id), *_rate_headers(decision))
        if isinstance(result, _Grant):
            token = self._issue(state, result.client, result.member_cid)
            body = {"access_token": token, "token_type": "bearer", "expires_in": self._token_ttl}
            region = (("X-Cs-Region", result.client.region),) if self.region_header else ()
            return "issued", json_response(201, body, (*region, *headers))
        if result.message is None:
            return result.outcome, Response(result.status, (*result.headers, *headers))
        response = _error(
            result.status,
            result.message,
            *result.headers,
            decision=decision,
            trace_id=trace_id,
            started=started,
            powered_by=OAUTH2,
        )
        return result.outcome, response

    def _screen(self, request: Request, decision: Decision) -> _NoToken | None:
        """What stops a token request before its form is read: a fault, the budget, a GET."""
        failure = self._faults.take_token_failure()
        if failure is not None:
            extra: tuple[tuple[str, str], ...] = ()
            if failure.retry_after is not None:
                extra = (self._retry_after(failure.retry_after),)
            message = _INJECTED_MESSAGES.get(failure.status, HTTPStatus(failure.status).phrase)
            return _NoToken("injected", failure.status, message, extra)
        if not decision.allowed:
            extra = (self._retry_after(decision.retry_after),)
            return _NoToken("rate_limited", 429, _RATE_LIMITED, extra)
        if request.method != "POST":
            return _NoToken("bad_request", 405, "Method Not Allowed", (("Allow", "POST"),))
        return None

    def _authenticate(
        self, state: State, region: str, form: Mapping[str, str]
    ) -> _Grant | _NoToken:
        """Checks a token request's credentials against the clients registered in ``region``."""
        client_id = form.get("client_id", "")
        secret = form.get("client_secret", "")
        member_cid = form.get("member_cid") or None
        if not client_id or not secret:
            return _NoToken("bad_request", 400, "client_id and client_secret are required")
        client = state.clients.get(client_id)
        if client is None or client.region != region:
            return self._misdirected(state, client, client_id, region)
        if not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
            return _NoToken("wrong_secret", 403, _WRONG_SECRET)
        if member_cid is not None and member_cid.lower() not in client.member_cids:
            message = f"Failed to generate access token for customer ID={member_cid}"
            return _NoToken("wrong_member_cid", 403, message)
        return _Grant(client, member_cid)

    @staticmethod
    def _misdirected(
        state: State, client: ApiClient | None, client_id: str, region: str
    ) -> _NoToken:
        """Credentials unknown in ``region``: a 308 to their home region, or a 400."""
        if client is not None and client.region in _DISCOVERABLE and region in _DISCOVERABLE:
            home = state.base_urls[client.region]
            redirect = (("Location", f"{home}{TOKEN_PATH}"), ("X-Cs-Region", client.region))
            return _NoToken("redirected", 308, None, redirect)
        # GovCloud credentials are never discoverable: the cloud must be named.
        message = f"Failed to generate access token for clientID={client_id}"
        return _NoToken("unknown_client", 400, message)

    def _issue(self, state: State, client: ApiClient, member_cid: str | None) -> str:
        token_id = secrets.token_hex(8)
        token = mint_access_token(
            jti=token_id,
            client_id=client.client_id,
            cid=client.cid,
            member_cid=member_cid,
            region=client.region,
            ttl=self._token_ttl,
        )
        state.tokens[token] = IssuedToken(
            token_id=token_id,
            client_id=client.client_id,
            cid=member_cid.lower() if member_cid else client.cid,
            member_cid=member_cid,
            region=client.region,
            expires_at=self._clock() + self._token_ttl,
        )
        state.issued.append(token)
        return token

    def _revoke(self, request: Request) -> Response:
        started = time.perf_counter()
        trace_id = new_trace_id()
        with self._shared.locked() as state:
            decision = self._budgets[request.region].token.peek(request.client_ip)
            fail = functools.partial(
                _error, decision=decision, trace_id=trace_id, started=started, powered_by=OAUTH2
            )
            if request.method != "POST":
                return fail(405, "Method Not Allowed", ("Allow", "POST"))
            credentials = basic_credentials(request.headers)
            client = state.clients.get(credentials[0]) if credentials is not None else None
            if (
                credentials is None
                or client is None
                or client.region != request.region
                or not hmac.compare_digest(credentials[1].encode(), client.client_secret.encode())
            ):
                return fail(403, _NOT_AUTHORIZED)
            try:
                token = parse_form(request).get("token", "")
            except WireError as exc:
                return fail(exc.status, exc.message)
            if not token:
                return fail(400, "token is required")
            record = state.tokens.get(token)
            # Only the owner's own token is revoked; anything else is a no-op 200, as revoking
            # an unknown token is on the real service.
            if (
                record is not None
                and record.client_id == client.client_id
                and record.region == request.region
            ):
                record.revoked = True
            state.recorder.revokes += 1
            payload = {"meta": meta(trace_id, started, OAUTH2), "errors": [], "resources": []}
            return json_response(
                200, payload, (("X-Cs-Traceid", trace_id), *_rate_headers(decision))
            )

    def _gateway(self, request: Request, body: BodyFacts) -> Response:
        started = time.perf_counter()
        trace_id = new_trace_id()
        if request.path.startswith(STREAM_PATH):
            # An event stream, opened with its session token (not a bearer token): the
            # emulator serves none, and says so before the token check would refuse the header.
            with self._shared.locked() as state:
                state.recorder.api[404] += 1
            return error_response(
                404, STREAM_NOT_SERVED, trace_id=trace_id, started=started, powered_by=GATEWAY
            )
        token = bearer_token(request.headers)
        with self._shared.locked() as state:
            admitted = self._admit(state, request, token, started, trace_id)
            if isinstance(admitted, Response):
                state.recorder.api[admitted.status] += 1
                return admitted
            record, decision = admitted
            route = state.data.resolve(request.method, request.path)
            base_url = state.base_urls.get(request.region, "")
        call = ApiCall(
            method=request.method,
            path=request.path,
            query=parse_query(request.query),
            query_string=request.query,
            json_body=body.json_value,
            body=request.body,
            client_id=record.client_id,
            member_cid=record.member_cid,
            cid=record.cid,
            region=request.region,
            headers=redact(request.headers),
            base_url=base_url,
        )
        if route.write is not None:  # a write changes the data: all of it under the lock
            with self._shared.locked() as state:
                route = state.data.apply(route, call, self._now())
        response = self._answer_data(route, call, decision, started, trace_id)
        with self._shared.locked() as state:
            state.recorder.api[response.status] += 1
        return response

    def _now(self) -> str:
        """The wall-clock time as Falcon stamps records (UTC, microseconds, ``Z``)."""
        moment = datetime.fromtimestamp(self._wall_clock(), timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _admit(
        self, state: State, request: Request, token: str | None, started: float, trace_id: str
    ) -> Response | tuple[IssuedToken, Decision]:
        """The gateway's checks: a refusal (401, 429), or the live token and its budget's say."""
        budgets = self._budgets[request.region]
        record = state.tokens.get(token) if token is not None else None
        if record is not None:
            state.recorder.calls_per_token[record.token_id] += 1
        fail = functools.partial(_error, trace_id=trace_id, started=started, powered_by=GATEWAY)
        if self._faults.take_api_rejection():
            return fail(401, _INVALID_TOKEN, decision=budgets.bad_token.peek(request.client_ip))
        if record is None or not self._is_live(record, request.region):
            decision = budgets.bad_token.acquire(request.client_ip)
            if decision.allowed:
                return fail(401, _INVALID_TOKEN, decision=decision)
            retry = self._retry_after(decision.retry_after)
            return fail(429, _RATE_LIMITED, retry, decision=decision)
        decision = budgets.api.acquire(record.cid)
        if not decision.allowed:
            retry = self._retry_after(decision.retry_after)
            return fail(429, _RATE_LIMITED, retry, decision=decision)
        return record, decision

    def _answer_data(
        self, route: Route, call: ApiCall, decision: Decision, started: float, trace_id: str
    ) -> Response:
        """The route's answer in Falcon's envelope (or a file's bytes, with the same headers);
        a handler that fails is answered 500."""
        headers = (("X-Cs-Traceid", trace_id), *_rate_headers(decision))
        try:
            answer = route.answer(call)
            if answer.body is not None:
                content = (("Content-Type", answer.content_type),)
                return Response(answer.status, (*content, *headers, *answer.headers), answer.body)
            envelope = meta(trace_id, started, route.powered_by)
            envelope.update(answer.meta)
            envelope["trace_id"] = trace_id
            resources = answer.resource_object
            payload = {
                "meta": envelope,
                "resources": dict(resources) if resources is not None else list(answer.resources),
                "errors": [dict(error) for error in answer.errors] or _default_errors(answer),
            }
            return json_response(answer.status, payload, (*headers, *answer.headers))
        except Exception as exc:  # noqa: BLE001 - a user's handler failing is an answer, not a crash
            message = f"The handler of {call.method} {call.path} failed: {exc!r}"
            return _error(
                500,
                message,
                decision=decision,
                trace_id=trace_id,
                started=started,
                powered_by=EMULATOR,
            )

    def _retry_after(self, delay: float) -> tuple[str, str]:
        """The ``X-Ratelimit-Retryafter`` header of a retry ``delay`` seconds from now."""
        return ("X-Ratelimit-Retryafter", str(epoch_seconds_after(delay, self._wall_clock)))

    def _is_live(self, record: IssuedToken, region: str) -> bool:
        return record.region == region and not record.revoked and self._clock() < record.expires_at
