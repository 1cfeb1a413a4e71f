"""FalconEmulator: a local stand-in for Falcon's OAuth2 service and API gateway, for tests.

It follows the wire behaviour of the real service (``falcon-oauth2.md``): tokens, 308 region
redirects, revocation, the gateway's 401s, rate budgets and their headers; behind the gateway,
API data in Falcon's shapes (collections, handlers, sample hosts). It imports nothing from the
client side but the region names, so it is an independent referee of the client.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Final

from ._admin import AdminServer
from ._api_call import Handler
from ._checks import (
    count,
    credentials,
    distinct_regions,
    duration,
    error_status,
    flag,
    request_path,
    served_region,
    tcp_port,
    whole,
)
from ._collections import Pagination, make_collection
from ._data import EMULATOR, HANDLER_METHODS
from ._faults import Faults, InjectedFailure, TokenGate
from ._limits import RateLimits
from ._records import Counters, RequestLogEntry
from ._sample_hosts import sample_hosts_collection
from ._server import RegionServer
from ._service import Service
from ._state import ApiClient, SharedState
from ._tenant import TENANT, sample_records, tenant_collection
from ._tls import TlsMaterial

__all__ = ["DEFAULT_REGIONS", "FalconEmulator"]

DEFAULT_REGIONS: Final = ("us-1", "us-2", "eu-1", "us-gov-1")

_NEW, _RUNNING, _STOPPED = "new", "running", "stopped"


class FalconEmulator:
    """Falcon's OAuth2 service and API gateway on loopback, one server per region.

    Thread-safe. Use it as a context manager (or :meth:`start` and :meth:`stop`).

    Behind the gateway's checks (no valid token, no data; every call spends the CID's budget)
    an API call is answered, in Falcon's envelope, by the first of:

    1. a handler registered for its method and path (:meth:`add_handler`);
    2. once :meth:`load_samples` has loaded the sample tenant, its operations: reads that
       join its collections (combined operations, group and policy members, user roles)
       and writes that change them (containment, hiding, grouping tags, host
       groups), each write applied under the emulator's lock;
    3. a collection that owns its path (:meth:`add_collection`): ids from a query endpoint,
       records from an entity endpoint, and on the entity path Falcon's writes: POST where
       Falcon's operation creates (201 with the stored record, server-assigned id and
       timestamps), PATCH (200 with the records changed) and DELETE (200 with the ids), where
       the operation exists (on a path Falcon does not know, PATCH and DELETE always); unknown
       ids get a 404 error each; other methods 405;
    4. the catalogue of Falcon's operations: Falcon's empty answer for the operation's kind
       (``resources: []`` and ``meta.pagination`` for queries, per-id 404s for lookups, its
       status for a write) after its parameters are checked (400 naming the parameter); a
       path Falcon knows called with another method is a 405 with ``Allow``, any other path
       a 404. Nothing is echoed.

    Every emulator starts with the collection ``"hosts"``: 37 sample hosts, the same in every
    run, on ``GET /devices/queries/devices/v1`` (offset pagination),
    ``GET /devices/queries/devices-scroll/v1`` (a string token in ``offset``) and
    ``GET|POST /devices/entities/devices/v2``; their ``cid`` is the caller's. Replace them with
    :meth:`load` (``load("hosts", [])`` for none) or :meth:`remove_collection`.

    Args:
        regions: the regions to serve (any spelling ``clouds.normalize`` accepts).
        tls: serve HTTPS with a certificate from a CA made for this run (needs ``trustme``);
            pass :attr:`ca_bundle` to ``requests`` as ``verify=``.
        token_ttl: ``expires_in`` of issued tokens, in seconds.
        rate_limits: True for Falcon's budgets, False for none (the headers are still sent),
            or a :class:`RateLimits` to set them.
        clock: the monotonic clock for rate windows and token expiry; inject a fake one to
            expire tokens without waiting.
        host: the address to listen on.
        port: the port of the first region, the others taking the next ones (for a CLI);
            0 (the default) gives each region an ephemeral port.
        region_header: send ``X-Cs-Region`` with every token answer, as Falcon does (the
            default). False leaves it out there (API answers still carry it), so that SDKs
            that rewrite their base URL to the public cloud the header names (falconpy,
            falconjs) stay on the emulator, unmodified: point them at their client's region,
            ``base_url(region)``.

    Test suites in other languages drive a running emulator over HTTP through its admin
    server (:meth:`start_admin`; the routes are documented in
    ``requests_falcon_auth/testing/_admin.py``).

    Raises:
        ValueError: an unknown or repeated region, or a bad ``token_ttl``.
        TypeError: ``rate_limits`` is neither a bool nor a :class:`RateLimits`, or
            ``region_header`` is no bool.
    """

    def __init__(
        self,
        regions: Iterable[str] = DEFAULT_REGIONS,
        *,
        tls: bool = False,
        token_ttl: int = 1799,
        rate_limits: RateLimits | bool = True,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
        region_header: bool = True,
    ) -> None:
        canonical = distinct_regions(regions)
        whole(token_ttl, "token_ttl", 1, meaning="a positive int of seconds")
        tcp_port(port)
        flag(region_header, "region_header")
        if isinstance(rate_limits, bool):
            limits = RateLimits() if rate_limits else None
        elif isinstance(rate_limits, RateLimits):
            limits = rate_limits
        else:
            raise TypeError(f"rate_limits must be a bool or RateLimits, got {rate_limits!r}.")
        self.regions = canonical
        self.tls = tls
        self.host = host
        self.port = port
        # What the emulator knows, and the faults it injects, shared with the service that
        # answers requests: each method below reads or changes them directly, under their lock.
        self._shared = SharedState()
        self._faults = Faults()
        self._service = Service(
            self._shared,
            self._faults,
            regions=canonical,
            token_ttl=token_ttl,
            rate_limits=limits,
            clock=clock,
            wall_clock=time.time,
            region_header=region_header,
        )
        with self._shared.locked() as state:
            state.data.add_collection(sample_hosts_collection())
        self._lock = threading.Lock()
        self._state = _NEW
        self._stopped = threading.Event()
        self._servers: dict[str, RegionServer] = {}
        self._tls: TlsMaterial | None = None
        self._admin: AdminServer | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(regions={self.regions!r}, tls={self.tls!r}, "
            f"state={self._state!r})"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FalconEmulator:
        """Binds one server per region on an ephemeral port and starts serving.

        Raises:
            RuntimeError: already started (an emulator runs once).
            ImportError: ``tls=True`` without trustme installed.
        """
        with self._lock:
            if self._state != _NEW:
                raise RuntimeError(f"{self!r} was already started; make a new one.")
            self._state = _RUNNING
            try:
                context = None
                if self.tls:
                    self._tls = TlsMaterial(
                        tuple(dict.fromkeys([self.host, "127.0.0.1", "localhost"]))
                    )
                    context = self._tls.server_context
                for offset, region in enumerate(self.regions):
                    port = self.port + offset if self.port else 0
                    server = RegionServer(self.host, port, region, self._service.handle, context)
                    self._servers[region] = server
                with self._shared.locked() as state:
                    state.base_urls = {r: s.url for r, s in self._servers.items()}
                for server in self._servers.values():
                    server.start()
            except BaseException:
                self._teardown()
                raise
        return self

    def stop(self) -> None:
        """Stops every server, closing open connections and releasing held requests.

        Idempotent; an emulator that was never started just becomes unusable.
        """
        with self._lock:
            if self._state == _STOPPED:
                return
            self._teardown()

    def _teardown(self) -> None:
        self._state = _STOPPED
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.stop()
        self._service.shutdown()
        for server in self._servers.values():
            server.stop()
        if self._tls is not None:
            self._tls.close()
        self._stopped.set()

    def start_admin(self, port: int = 0) -> str:
        """Starts the admin server: the emulator's control plane over HTTP, for test suites in
        any language (routes: ``requests_falcon_auth/testing/_admin.py``).

        It listens on 127.0.0.1 only, on its own port, and answers requests whose ``Host`` is
        ``127.0.0.1`` or ``localhost``. It lists every client's secret: it is off unless
        started. :meth:`stop` stops it (releasing any gate it holds).

        Args:
            port: its TCP port; 0 (the default) for an ephemeral one.

        Returns:
            Its base URL, ``http://127.0.0.1:PORT`` (also :attr:`admin_url`).

        Raises:
            RuntimeError: the emulator is not running, or its admin server already is.
            ValueError: ``port`` is neither 0 nor a TCP port.
            OSError: the port cannot be bound (in use, say).
        """
        tcp_port(port)
        with self._lock:
            if self._state != _RUNNING:
                raise RuntimeError(f"{self!r} is not running: start() it first.")
            if self._admin is not None:
                raise RuntimeError(f"{self!r} already serves its admin API at {self._admin.url}.")
            admin = AdminServer(self, port)  # OSError: nothing was bound, nothing to undo
            try:
                admin.start()
            except BaseException:
                admin.stop()
                raise
            self._admin = admin
            return admin.url

    @property
    def admin_url(self) -> str | None:
        """The admin server's base URL while it runs (:meth:`start_admin`), else None."""
        admin = self._admin
        return admin.url if admin is not None else None

    def serve_forever(self) -> None:
        """Starts if needed and blocks until :meth:`stop` (from another thread) or Ctrl-C."""
        if self._state == _NEW:
            self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> FalconEmulator:
        """Starts the emulator unless it is running already; stops it on exit."""
        if self._state != _RUNNING:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it answers ----------------------------------------------------------------------

    @property
    def clouds(self) -> dict[str, str]:
        """Region -> base URL, usable as ``FalconAuth(clouds=...)``.

        Raises:
            RuntimeError: the emulator has not been started (its ports are not known yet).
        """
        if not self._servers:
            raise RuntimeError(f"{self!r} has no servers yet: start() it first.")
        return {region: server.url for region, server in self._servers.items()}

    def base_url(self, region: str) -> str:
        """The base URL of one region (any spelling).

        Raises:
            ValueError: the emulator does not serve that region.
            RuntimeError: the emulator has not been started.
        """
        clouds = self.clouds
        return clouds[served_region(region, self.regions)]

    @property
    def ca_bundle(self) -> str | None:
        """Path of the CA certificate (PEM) when serving TLS, for ``verify=``; else None."""
        return self._tls.ca_bundle if self._tls is not None else None

    # -- clients and tokens ------------------------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        region: str = "us-1",
        member_cids: Iterable[str] = (),
        cid: str | None = None,
    ) -> ApiClient:
        """Registers an API client (registering an id again replaces it: a rotated secret).

        Args:
            client_id: the client's id.
            client_secret: its secret.
            region: its home region, which must be one this emulator serves.
            member_cids: the child CIDs it may request tokens for (``member_cid``).
            cid: its own CID, whose API budget its calls spend (default: derived from the id;
                clients given the same CID share one budget).

        Returns:
            The registered client.

        Raises:
            ValueError: credentials that are not non-empty strings, or a region the emulator
                does not serve.
        """
        credentials(client_id, client_secret)
        home = served_region(region, self.regions)
        own_cid = cid if cid is not None else hashlib.sha256(client_id.encode()).hexdigest()[:32]
        client = ApiClient(
            client_id=client_id,
            client_secret=client_secret,
            region=home,
            member_cids=frozenset(member.lower() for member in member_cids),
            cid=own_cid.lower(),
        )
        with self._shared.locked() as state:
            state.clients[client.client_id] = client
        return client

    @property
    def clients(self) -> list[ApiClient]:
        """The registered API clients, in the order their ids were first registered."""
        with self._shared.locked() as state:
            return list(state.clients.values())

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far, oldest first (for leak scans)."""
        with self._shared.locked() as state:
            return list(state.issued)

    def token_id(self, access_token: str) -> str | None:
        """The short id that keys :attr:`Counters.calls_per_token`, or None if not issued here."""
        with self._shared.locked() as state:
            record = state.tokens.get(access_token)
        return record.token_id if record is not None else None

    # -- what it saw -----------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        """A consistent snapshot of the counters."""
        with self._shared.locked() as state:
            return state.recorder.snapshot()

    def reset_counters(self) -> None:
        """Zeroes every counter (the request log, tokens and rate budgets are kept)."""
        with self._shared.locked() as state:
            state.recorder.reset()

    @property
    def request_log(self) -> list[RequestLogEntry]:
        """A copy of the log of requests received (the last 10,000), oldest first.

        The one record of what reached the emulator, API calls and writes included: for each
        API call the token's client id and member CID, the body's length and SHA-256 and, when
        it is JSON, the body itself (:attr:`RequestLogEntry.json_body`; the newest 64 MiB of
        bodies are kept). Credentials in headers are redacted, and nothing of an OAuth2
        request's body (its form holds the secret) is kept.
        """
        with self._shared.locked() as state:
            return state.recorder.log.snapshot()

    def clear_request_log(self) -> None:
        """Empties the request log."""
        with self._shared.locked() as state:
            state.recorder.log.clear()

    # -- API data --------------------------------------------------------------------------------

    def add_collection(
        self,
        name: str,
        *,
        id_field: str,
        query_path: str | None = None,
        entity_path: str | None = None,
        records: Iterable[Mapping[str, object]] = (),
        pagination: Pagination = "offset",
        scroll_path: str | None = None,
        cid_field: str | None = None,
        powered_by: str = EMULATOR,
    ) -> None:
        """Serves records the way Falcon serves a resource type: ids from a query endpoint,
        records from an entity endpoint (registering a name again replaces it).

        The query endpoints (GET) take ``limit`` (default 100, at most 5000; 10,000 on the
        scroll path), ``sort`` (``field.asc``, ``field.desc``, ``field|asc``, ``field|desc``)
        and ``filter``, an FQL subset: ``field:'value'``, ``field:"value"``,
        ``field:['a','b']`` (any of), terms joined with ``+`` (AND); exact matches,
        case-insensitive for strings, a list field matching when any element does. Anything
        else (ranges, wildcards, ``,`` OR, ``!``, unknown fields) is a 400 naming what is not
        emulated, never a wrong answer. Pages: ``offset`` in, ``meta.pagination.offset`` out
        the start of the next page (as ``/devices/queries/devices/v1``); or, with
        ``pagination="after"``, an opaque ``after`` cursor in and out, empty on the last page.
        ``meta.pagination`` also holds ``limit`` and ``total``.

        The entity endpoint answers ``GET ?ids=a&ids=b`` and ``POST {"ids": [...]}`` with the
        records in ``resources``; each unknown id gets an error ``{"code": 404, "message",
        "id"}``: the status is 200 if any id was found, 404 if none was, 400 without ids.
        Writes to the entity endpoint change the records as Falcon's do (create, update,
        delete: see the class's description).

        Args:
            name: the collection's name, for :meth:`load` and :meth:`records`.
            id_field: the field holding each record's id (a unique non-empty string).
            query_path: the path of its query endpoint.
            entity_path: the path of its entity endpoint.
            records: its records, JSON objects (copied).
            pagination: the query endpoint's style: ``"offset"`` or ``"after"``.
            scroll_path: the path of a scroll endpoint, Falcon's third style (as
                ``/devices/queries/devices-scroll/v1``): a string token in ``offset``, in the
                request and in ``meta.pagination.offset``, empty on the last page.
            cid_field: a field set, in every record served, to the caller's CID (its member
                CID for an MSSP token), as Falcon serves each customer its own data.
            powered_by: the ``meta.powered_by`` of its answers.

        Raises:
            ValueError: a bad argument, a record without a unique string id, a record that is
                not JSON, or a path another collection answers.
            TypeError: records that are not dicts.
        """
        collection = make_collection(
            name,
            query_path=query_path,
            entity_path=entity_path,
            id_field=id_field,
            records=records,
            pagination=pagination,
            scroll_path=scroll_path,
            cid_field=cid_field,
            powered_by=powered_by,
        )
        with self._shared.locked() as state:
            state.data.add_collection(collection)

    def load_samples(self) -> None:
        """Loads the sample tenant: the sample hosts with their host groups, prevention
        policies, users, alerts and incidents, related as in a real tenant, the same in every
        run.

        The collections, on Falcon's paths (queries, entities, combined operations):
        ``hosts`` (each lists its ``groups`` and its ``device_policies.prevention``),
        ``hidden_hosts``, ``host_groups``, ``prevention_policies``, ``users``,
        ``user_roles``, ``alerts`` (on the sample hosts, read by ``composite_ids``),
        ``incidents``, ``login_history`` and ``network_address_history``. Writes change
        them as Falcon's do: containment (pending until the next read), hiding, grouping
        tags, host groups and their members. Loading again restores the samples.

        Raises:
            ValueError: a collection of another name answers one of their paths.
        """
        records = sample_records()
        collections = [tenant_collection(name, records[name]) for name in TENANT]
        with self._shared.locked() as state:
            state.data.load_tenant(collections)

    def load(self, name: str, records: Iterable[Mapping[str, object]]) -> None:
        """Replaces the records of collection ``name`` (``load("hosts", [])`` empties the
        sample hosts). Calls being answered finish with the records they started with.

        Raises:
            KeyError: no such collection.
            ValueError, TypeError: as :meth:`add_collection`, for the records.
        """
        with self._shared.locked() as state:
            state.data.load(name, records)

    def records(self, name: str) -> list[dict[str, object]]:
        """Copies of the records of collection ``name``, as loaded (without the CID that
        ``cid_field`` fills in when serving them).

        Raises:
            KeyError: no such collection.
        """
        with self._shared.locked() as state:
            return state.data.records(name)

    def remove_collection(self, name: str) -> None:
        """Stops serving collection ``name``: its paths answer as paths with no data.

        Raises:
            KeyError: no such collection.
        """
        with self._shared.locked() as state:
            state.data.remove_collection(name)

    def add_handler(self, method: str, path: str, handler: Handler) -> None:
        """Answers ``method`` on ``path`` with ``handler(call)`` (before any collection there).

        The handler gets an :class:`ApiCall` (method, path, query, JSON body, raw body, the
        token's client id, member CID and CID, region) and returns an :class:`ApiAnswer` or
        ``(status, resources)``; the emulator wraps it in Falcon's envelope with the gateway's
        headers. It runs on the server's thread, outside the emulator's lock (it may call the
        emulator); if it raises, the call is answered 500 naming the exception. A ``GET``
        handler also answers ``HEAD``.

        Args:
            method: GET, POST, PUT, PATCH or DELETE (any case).
            path: the exact path (no query).
            handler: the callable.

        Raises:
            ValueError: another method, or a path not starting with ``/``.
            TypeError: ``handler`` is not callable.
        """
        verb = method.upper() if isinstance(method, str) else method
        if verb not in HANDLER_METHODS:
            raise ValueError(f"method must be one of {sorted(HANDLER_METHODS)}, got {method!r}.")
        request_path(path, "path")
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}.")
        with self._shared.locked() as state:
            state.data.add_handler(verb, path, handler)

    def remove_handler(self, method: str, path: str) -> None:
        """Removes the handler of ``method`` on ``path``.

        Raises:
            KeyError: no handler there.
        """
        with self._shared.locked() as state:
            state.data.remove_handler(method.upper(), path)

    # -- fault injection -------------------------------------------------------------------------

    def fail_token_requests(
        self, n: int, status: int = 500, retry_after: float | None = None
    ) -> None:
        """Makes the next ``n`` token requests fail (queued after failures already pending).

        Args:
            n: how many.
            status: the status to answer, 400-599.
            retry_after: if given, seconds from now sent as ``X-Ratelimit-Retryafter``
                (in epoch seconds).

        Raises:
            ValueError: a bad count, status or delay.
        """
        count(n, "n")
        error_status(status)
        delay = None if retry_after is None else duration(retry_after, "retry_after")
        self._faults.fail_tokens(n, InjectedFailure(status, delay))

    def delay_token_requests(self, seconds: float) -> None:
        """Delays every token answer by ``seconds`` (0 to stop)."""
        self._faults.delay_tokens(duration(seconds, "seconds"))

    def hold_token_requests(self) -> TokenGate:
        """Holds every token answer until the returned gate is released.

        A new gate releases the previous one; :meth:`stop` releases any.
        """
        return self._faults.hold_tokens()

    def reject_api_calls(self, n: int) -> None:
        """Answers the next ``n`` API calls 401 "access denied, invalid bearer token"."""
        self._faults.reject_api(count(n, "n"))

    def invalidate_all_tokens(self) -> None:
        """Rejects every token issued so far (401), as after a secret reset."""
        with self._shared.locked() as state:
            for record in state.tokens.values():
                record.revoked = True

    def drop_connections(self, n: int) -> None:
        """Closes the connection of the next ``n`` requests (any path) without answering."""
        self._faults.drop(count(n, "n"))
