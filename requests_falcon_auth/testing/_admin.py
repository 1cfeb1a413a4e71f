"""The emulator's admin server: its control plane over HTTP, for test suites in any language.

A JavaScript, Go, PowerShell or shell test suite drives a running emulator through it as a
Python test drives :class:`~requests_falcon_auth.testing.FalconEmulator`: register clients,
load data, inject faults, read the counters and the request log. Python starts it with
``url = emulator.start_admin(port=0)`` (also ``emulator.admin_url``); ``emulator.stop()``
stops it. It is off unless started.

It listens on 127.0.0.1 only, on its own port (never one of the API ports), and answers only
requests whose ``Host`` is ``127.0.0.1`` or ``localhost`` (403 otherwise: a web page cannot
reach it through DNS rebinding; 400 for a request that names no single plain host: no ``Host``
on HTTP/1.1, two of them, a port that is not digits, or an absolute-form target naming a host
other than its ``Host``). ``GET /`` lists every client's secret: that is its purpose,
for a test script that needs credentials. Nothing it receives is logged.

Conventions
-----------
- Request bodies are JSON (the ``Content-Type`` is not checked, so ``curl -d`` works); a
  route that takes no fields accepts an empty body or ``{}``. Unknown fields are refused, so
  that a misspelt one cannot be ignored silently. Bodies above 16 MiB are refused (413).
- Every answer is one line of JSON, an object, with ``Content-Type: application/json`` and a
  ``Content-Length`` (connections are kept alive).
- Errors are ``{"error": "one sentence"}``: 400 for a body that is not JSON, a missing,
  unknown or mistyped field or query parameter, or a value the emulator refuses; 404 for an
  unknown path or collection; 405 for a method the path does not take (with ``Allow``); 403
  for a foreign ``Host``, 400 for an ambiguous one; 413 for a body too large.
- A route takes no query parameters unless it says so. A trailing ``/`` is ignored.
- Collection names in paths are percent-decoded (``a%2Fb`` is ``a/b``).

Routes
------
``GET /``
    ``{"regions": {region: base_url}, "ca_bundle": path or null, "admin": admin_url,
    "clients": [client, ...]}``, where a client is ``{"client_id", "client_secret", "region",
    "member_cids": [...], "cid"}`` (member CIDs and CID lowercased, as the emulator keeps
    them). ``ca_bundle`` is the CA certificate (PEM) to trust when the emulator serves TLS.
``GET /clients``
    ``{"clients": [client, ...]}``, in the order the ids were first registered.
``POST /clients``
    ``{"client_id", "client_secret", "region"?, "member_cids"?, "cid"?}``: registers an API
    client (region ``us-1`` by default; registering an id again replaces it, as a rotated
    secret). 201 with the client, secret included (the same shape as ``GET /``).
``POST /collections``
    ``{"name", "id_field", "query_path"?, "entity_path"?, "scroll_path"?, "records"?,
    "pagination"? ("offset" or "after"), "cid_field"?, "powered_by"?}``: serves records as a
    Falcon resource type (``FalconEmulator.add_collection`` documents the fields; a name
    registered again is replaced). 201 ``{"name", "loaded": count}``.
``GET /collections/{name}/records``
    ``{"name", "records": [...]}``, as loaded.
``PUT /collections/{name}/records``
    A JSON array of records, or ``{"records": [...]}``: replaces the collection's records
    (the collection ``hosts``, 37 sample hosts, exists from the start). 200 ``{"name",
    "loaded": count}``.
``DELETE /collections/{name}``
    Stops serving the collection (its paths answer as paths with no data). 200
    ``{"ok": true}``.
``POST /faults/token-failures``
    ``{"n", "status"? (400-599, default 500), "retry_after"? (seconds)}``: the next ``n``
    token requests fail with ``status``; with ``retry_after``, their answer carries
    ``X-Ratelimit-Retryafter`` (epoch seconds). 200 with the fault as applied:
    ``{"n", "status", "retry_after"}``.
``POST /faults/token-delay``
    ``{"seconds"}``: delays every token answer (0 stops). 200 ``{"seconds"}``.
``POST /faults/token-hold``
    Holds every token answer at a gate until ``POST /faults/token-release`` (a new hold
    releases the previous gate). 200 ``{"holding": true, "held": 0}``.
``GET /faults/token-hold``
    ``{"holding": bool, "held": n}``: whether a gate holds token answers and how many
    requests wait at it now. With ``?wait_for_held=N`` it first waits until ``N`` requests are
    held, the gate is released, or ``timeout`` seconds pass (``&timeout=S``, default 10, at
    most 60): compare ``held`` with ``N`` to tell which. Use it instead of sleeping.
``POST /faults/token-release``
    Releases the gate: held requests, and later ones, get their answers. 200
    ``{"released": n}``, the requests that were waiting (0 without a gate).
``POST /faults/api-rejections``
    ``{"n"}``: the next ``n`` API calls are answered 401 "access denied, invalid bearer
    token". 200 ``{"n"}``.
``POST /faults/dropped-connections``
    ``{"n"}``: the next ``n`` requests to any region (token or API) have their connection
    closed unanswered. 200 ``{"n"}``.
``POST /tokens/invalidate``
    Every token issued so far is rejected from now on (401), as after a secret reset. 200
    ``{"ok": true}``.
``GET /counters``
    ``{"token_requests", "token_outcomes": {outcome: n}, "tokens_issued", "revokes",
    "api_calls", "api_ok", "api_401", "api_429", "calls_per_token": {token_id: n},
    "dropped_connections"}`` (``Counters`` documents each).
``POST /counters/reset``
    Zeroes the counters (the request log, tokens and rate budgets are kept). 200
    ``{"ok": true}``.
``GET /requests``
    ``{"requests": [entry, ...]}``, the requests the regions received (the last 10,000),
    oldest first, each ``{"region", "method", "path", "query", "status" (null for a dropped
    connection), "headers": {name: value} (credentials redacted), "client_ip", "client_id",
    "member_cid", "body_length", "body_sha256", "json_body"}``. ``client_id`` and
    ``member_cid`` are those of the bearer token presented (null without one); nothing of an
    OAuth2 request's body is kept (``body_length`` and the rest are null).
``DELETE /requests``
    Empties the request log. 200 ``{"ok": true}``.

Example, with curl::

    curl -s -d '{"client_id": "js-suite", "client_secret": "s3cret", "member_cids": ["c1"]}' \\
        http://127.0.0.1:PORT/clients
    curl -s -d '{"n": 2, "status": 503, "retry_after": 5}' \\
        http://127.0.0.1:PORT/faults/token-failures
    curl -s http://127.0.0.1:PORT/counters
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, unquote, urlsplit

from ._admin_http import HOST, AdminHttpServer
from ._admin_json import (
    OK,
    AdminError,
    Answer,
    Call,
    Route,
    array_field,
    client_document,
    counters_document,
    encode,
    entry_document,
    fields_of,
    parse_json,
    query_number,
    string_field,
)
from ._faults import TokenGate

if TYPE_CHECKING:
    from .emulator import FalconEmulator

__all__ = ["AdminServer"]


log = logging.getLogger(__name__)

_LOCAL_NAMES: Final = frozenset({"127.0.0.1", "localhost"})
_DEFAULT_WAIT: Final = 10.0
_MAX_WAIT: Final = 60.0
_POLL: Final = 0.05  # how long stop() may wait for the accept loop and for a waiting call

# -- the server ------------------------------------------------------------------------------


class AdminServer:
    """The admin API of one running emulator, on ``127.0.0.1:port`` (0: an ephemeral port).

    Made and stopped by ``FalconEmulator.start_admin`` and ``FalconEmulator.stop``.

    Raises:
        OSError: the port cannot be bound.
    """

    def __init__(self, emulator: FalconEmulator, port: int = 0) -> None:
        self._emulator = emulator
        self._gate_lock = threading.Lock()
        self._gate: TokenGate | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = AdminHttpServer(port, self)
        self.port = self._http.server_port
        self.url = f"http://{HOST}:{self.port}"

        def route(
            pattern: str,
            get_query: frozenset[str] = frozenset(),
            **actions: Callable[[Call], Answer],
        ) -> Route:
            return Route(re.compile(pattern), actions, get_query)

        self._routes = (
            route("/", GET=self._overview),
            route("/clients", GET=self._list_clients, POST=self._add_client),
            route("/collections", POST=self._add_collection),
            route("/collections/([^/]+)", DELETE=self._remove_collection),
            route("/collections/([^/]+)/records", GET=self._records, PUT=self._load),
            route("/faults/token-failures", POST=self._fail_tokens),
            route("/faults/token-delay", POST=self._delay_tokens),
            route(
                "/faults/token-hold",
                frozenset({"wait_for_held", "timeout"}),
                GET=self._hold_state,
                POST=self._hold,
            ),
            route("/faults/token-release", POST=self._release),
            route("/faults/api-rejections", POST=self._reject_api),
            route("/faults/dropped-connections", POST=self._drop),
            route("/tokens/invalidate", POST=self._invalidate),
            route("/counters", GET=self._counters),
            route("/counters/reset", POST=self._reset_counters),
            route("/requests", GET=self._requests, DELETE=self._clear_requests),
        )

    def __repr__(self) -> str:
        return f"AdminServer({self.url!r})"

    def start(self) -> None:
        """Starts serving in a daemon thread."""
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": _POLL},
            name="falcon-emulator-admin",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops accepting, closes open connections, joins its threads, releases its gate."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._http.shutdown()
            self._thread.join()
        self._http.close_connections()
        self._http.server_close()
        with self._gate_lock:
            gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()

    # -- one request -------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, host: str | None, body: bytes
    ) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
        """Answers one request: its status, extra headers and JSON body."""
        try:
            self._check_host(host)
            status, document = self._route(method, target, body)
        except AdminError as exc:
            return exc.status, exc.headers, encode({"error": exc.message})
        return status, (), encode(document)

    @staticmethod
    def _check_host(host: str | None) -> None:
        if host is None:  # HTTP/1.0; browsers always send one
            return
        name = host.strip().lower()
        if not name.startswith("["):
            name = name.rpartition(":")[0] if ":" in name else name
        if name not in _LOCAL_NAMES:
            raise AdminError(
                403, f"The admin API answers requests to 127.0.0.1 or localhost, not {host!r}."
            )

    def _route(self, method: str, target: str, body: bytes) -> Answer:
        if "://" in target:  # absolute-form request target
            try:
                parts = urlsplit(target)
            except ValueError:
                raise AdminError(400, "Malformed request target.") from None
            path, query = parts.path, parts.query
        else:
            path, _, query = target.partition("#")[0].partition("?")
        path = path.rstrip("/") or "/"
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            action = route.actions.get(method)
            if action is None:
                allow = ", ".join(route.actions)
                message = f"{path} takes {allow}, not {method}."
                raise AdminError(405, message, (("Allow", allow),))
            params = parse_qs(query, keep_blank_values=True)
            accepted = route.get_query if method == "GET" else frozenset()
            for param in params:
                if param not in accepted:
                    raise AdminError(400, f"Unknown query parameter {param!r} for {method} {path}.")
            name = unquote(match.group(1)) if match.groups() else ""
            return self._act(action, Call(method, path, name, params, body))
        raise AdminError(404, f"Unknown admin path {path!r}; GET / describes the emulator.")

    def _act(self, action: Callable[[Call], Answer], call: Call) -> Answer:
        try:
            return action(call)
        except AdminError:
            raise
        except KeyError as exc:  # the emulator's "no such collection"
            message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            raise AdminError(404, message) from None
        except (ValueError, TypeError) as exc:  # a value the emulator refuses
            raise AdminError(400, str(exc)) from None
        except Exception as exc:
            log.exception("The admin server failed on %s %s", call.method, call.path)
            message = f"The admin server failed: {type(exc).__name__}: {exc}"
            raise AdminError(500, message) from None

    # -- routes: the emulator and its clients ------------------------------------------------

    def _overview(self, call: Call) -> Answer:
        fields_of(call)
        emulator = self._emulator
        return 200, {
            "regions": emulator.clouds,
            "ca_bundle": emulator.ca_bundle,
            "admin": self.url,
            "clients": [client_document(client) for client in emulator.clients],
        }

    def _list_clients(self, call: Call) -> Answer:
        fields_of(call)
        return 200, {"clients": [client_document(client) for client in self._emulator.clients]}

    def _add_client(self, call: Call) -> Answer:
        document = fields_of(call, ("client_id", "client_secret"), ("region", "member_cids", "cid"))
        member_cids = array_field(document, "member_cids")
        if not all(isinstance(member, str) for member in member_cids):
            raise AdminError(400, "Field 'member_cids' must be an array of strings.")
        cid = document.get("cid")
        client = self._emulator.add_client(
            string_field(document, "client_id"),
            string_field(document, "client_secret"),
            region=string_field(document, "region", "us-1"),
            member_cids=[str(member) for member in member_cids],
            cid=None if cid is None else string_field(document, "cid"),
        )
        return 201, client_document(client)

    # -- routes: API data --------------------------------------------------------------------

    def _add_collection(self, call: Call) -> Answer:
        optional = (
            "query_path",
            "entity_path",
            "scroll_path",
            "records",
            "pagination",
            "cid_field",
            "powered_by",
        )
        document = fields_of(call, ("name", "id_field"), optional)
        records = array_field(document, "records")
        self._emulator.add_collection(**document)
        return 201, {"name": document["name"], "loaded": len(records)}

    def _records(self, call: Call) -> Answer:
        fields_of(call)
        return 200, {"name": call.name, "records": self._emulator.records(call.name)}

    def _load(self, call: Call) -> Answer:
        document = parse_json(call.body) if call.body.strip() else None
        if isinstance(document, dict):
            document = array_field(fields_of(call, ("records",)), "records")
        if not isinstance(document, list):
            raise AdminError(
                400, "The body must be a JSON array of records, or an object with 'records'."
            )
        self._emulator.load(call.name, document)
        return 200, {"name": call.name, "loaded": len(document)}

    def _remove_collection(self, call: Call) -> Answer:
        fields_of(call)
        self._emulator.remove_collection(call.name)
        return OK

    # -- routes: faults ----------------------------------------------------------------------

    def _fail_tokens(self, call: Call) -> Answer:
        document = fields_of(call, ("n",), ("status", "retry_after"))
        n, status, retry_after = (
            document["n"],
            document.get("status", 500),
            document.get("retry_after"),
        )
        self._emulator.fail_token_requests(n, status, retry_after)
        return 200, {"n": n, "status": status, "retry_after": retry_after}

    def _delay_tokens(self, call: Call) -> Answer:
        seconds = fields_of(call, ("seconds",))["seconds"]
        self._emulator.delay_token_requests(seconds)
        return 200, {"seconds": seconds}

    def _current_gate(self) -> TokenGate | None:
        with self._gate_lock:
            gate = self._gate
        return gate if gate is not None and not gate.released else None

    def _hold(self, call: Call) -> Answer:
        fields_of(call)
        gate = self._emulator.hold_token_requests()  # releases any previous gate
        with self._gate_lock:
            self._gate = gate
        return 200, {"holding": True, "held": gate.held}

    def _hold_state(self, call: Call) -> Answer:
        fields_of(call)
        wait_for = query_number(call, "wait_for_held")
        timeout = query_number(call, "timeout")
        if wait_for is None and timeout is not None:
            raise AdminError(400, "Query parameter 'timeout' goes with 'wait_for_held'.")
        if wait_for is not None:
            if wait_for != int(wait_for):
                raise AdminError(400, "Query parameter 'wait_for_held' must be a whole number.")
            limit = _DEFAULT_WAIT if timeout is None else timeout
            if limit > _MAX_WAIT:
                raise AdminError(400, f"Query parameter 'timeout' must be at most {_MAX_WAIT:g}.")
            deadline = time.monotonic() + limit
            while not self._stopping.is_set():
                gate = self._current_gate()
                remaining = deadline - time.monotonic()
                if gate is None or remaining <= 0:
                    break
                if gate.wait_for_held(int(wait_for), min(remaining, _POLL)):
                    break
        gate = self._current_gate()
        return 200, {"holding": gate is not None, "held": gate.held if gate is not None else 0}

    def _release(self, call: Call) -> Answer:
        fields_of(call)
        with self._gate_lock:
            gate, self._gate = self._gate, None
        released = 0
        if gate is not None and not gate.released:
            released = gate.held
            gate.release()
        return 200, {"released": released}

    def _reject_api(self, call: Call) -> Answer:
        n = fields_of(call, ("n",))["n"]
        self._emulator.reject_api_calls(n)
        return 200, {"n": n}

    def _drop(self, call: Call) -> Answer:
        n = fields_of(call, ("n",))["n"]
        self._emulator.drop_connections(n)
        return 200, {"n": n}

    def _invalidate(self, call: Call) -> Answer:
        fields_of(call)
        self._emulator.invalidate_all_tokens()
        return OK

    # -- routes: what the emulator saw -------------------------------------------------------

    def _counters(self, call: Call) -> Answer:
        fields_of(call)
        return 200, counters_document(self._emulator.counters)

    def _reset_counters(self, call: Call) -> Answer:
        fields_of(call)
        self._emulator.reset_counters()
        return OK

    def _requests(self, call: Call) -> Answer:
        fields_of(call)
        return 200, {"requests": [entry_document(entry) for entry in self._emulator.request_log]}

    def _clear_requests(self, call: Call) -> Answer:
        fields_of(call)
        self._emulator.clear_request_log()
        return OK
