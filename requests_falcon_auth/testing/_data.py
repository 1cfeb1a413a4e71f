"""API data behind the emulated gateway: collections, handlers, an FQL subset, sample hosts.

What the gateway answers once a call is authenticated: a *collection* (records with an id,
served by a query endpoint that returns ids and an entity endpoint that returns records, with
Falcon's pagination styles and a subset of FQL), a user's *handler*, the generic answer to a
write, or an echo of the request for paths with no data. The :class:`DataRegistry` is not
thread-safe: the service uses it under its lock. Answering a call is a pure function of the call
and an immutable :class:`Collection` snapshot (or a user's handler), run outside that lock, so a
handler may call back into the emulator.

Where Falcon's behaviour is uncertain the choice is written beside the code. Anything the FQL
subset does not cover is refused with a 400 rather than answered wrongly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Literal, NamedTuple, Union
from urllib.parse import parse_qsl

from ._fql import FIELD, BadRequest, Fql, matches
from ._wire import GATEWAY, Headers

__all__ = [
    "EMULATOR",
    "HANDLER_METHODS",
    "HOSTS",
    "JSON_LOG_LIMIT",
    "ApiAnswer",
    "ApiCall",
    "BodyFacts",
    "Collection",
    "DataRegistry",
    "Handler",
    "Pagination",
    "Route",
    "inspect_body",
    "make_collection",
    "parse_query",
]

EMULATOR: Final = "falcon-emulator"  # meta.powered_by of answers no Falcon service would give
HOSTS: Final = "hosts"  # the built-in collection of sample hosts
JSON_LOG_LIMIT: Final = 1 << 20  # JSON bodies larger than this are not kept in the request log

WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HANDLER_METHODS: Final = frozenset({"GET", *WRITE_METHODS})
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 5000  # queries/devices/v1 and most offset or after query endpoints
MAX_SCROLL_LIMIT: Final = 10_000  # devices-scroll documents [1-10000]
MAX_IDS: Final = 5000  # ids per entity request (POST /devices/entities/devices/v2's maximum)

Pagination = Literal["offset", "after"]
_Style = Literal["offset", "after", "scroll"]
_MISSING: Final = object()


# -- what a handler sees and returns -----------------------------------------------------------


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

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None when it was not sent."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class ApiAnswer:
    """What a handler answers; the emulator wraps it in Falcon's envelope.

    The answer becomes ``{"meta": {...}, "resources": [...], "errors": [...]}`` with the
    gateway's rate-limit and trace-id headers, so a handler only says what is specific to it.

    Args:
        status: the HTTP status (200-599, not 204 or 304: Falcon's answers all have a body).
        resources: the ``resources`` list.
        errors: the ``errors`` list; an error status with none gets one
            ``{"code": status, "message": <reason phrase>}``.
        meta: keys merged into ``meta`` (``pagination``, ``writes``, or ``powered_by`` to
            replace the emulator's); ``trace_id`` always stays the header's.
        headers: extra response headers.

    Raises:
        ValueError: a status the envelope cannot carry.
    """

    status: int = 200
    resources: Sequence[object] = ()
    errors: Sequence[Mapping[str, object]] = ()
    meta: Mapping[str, object] = field(default_factory=dict)
    headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        status = self.status
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"ApiAnswer.status must be an int from 200 to 599, got {status!r}.")
        if status in (204, 304):
            raise ValueError(f"ApiAnswer.status {status} has no body, and Falcon's answers do.")


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


def _error(status: int, message: str, **extra: str) -> dict[str, object]:
    return {"code": status, "message": message, **extra}


def _refuse(message: str) -> ApiAnswer:
    return ApiAnswer(400, errors=[_error(400, message)])


# -- collections ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """An immutable snapshot of a collection: its endpoints and its records (copies).

    Replacing the records makes a new snapshot, so a call being answered keeps the one it
    started with.
    """

    name: str
    query_path: str | None
    entity_path: str | None
    scroll_path: str | None
    id_field: str
    pagination: Pagination
    cid_field: str | None
    powered_by: str
    records: tuple[Mapping[str, object], ...] = field(repr=False)
    fields: frozenset[str] = field(repr=False)
    index: Mapping[str, int] = field(repr=False)

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths this collection answers."""
        return tuple(p for p in (self.query_path, self.scroll_path, self.entity_path) if p)

    def with_records(self, records: Iterable[Mapping[str, object]]) -> Collection:
        """A snapshot with ``records`` instead (their fields join the ones already known).

        Raises:
            TypeError, ValueError: a record that is not a JSON object with a unique string id.
        """
        copies, index = _copy_records(records, self.id_field, self.name)
        known = set(self.fields)
        for record in copies:
            known.update(record)
        return replace(self, records=copies, fields=frozenset(known), index=index)

    def view(self, record: Mapping[str, object], call: ApiCall) -> dict[str, object]:
        """A record as served to ``call``: a copy, its ``cid_field`` set to the caller's CID."""
        served = dict(record)
        if self.cid_field is not None:
            served[self.cid_field] = call.cid
        return served


def _path(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("/") or "?" in value:
        raise ValueError(f"{what} must be a path starting with '/' (no query), got {value!r}.")
    return value


def _copy_records(
    records: Iterable[Mapping[str, object]], id_field: str, name: str
) -> tuple[tuple[Mapping[str, object], ...], Mapping[str, int]]:
    if isinstance(records, (str, bytes, Mapping)):
        raise TypeError(f"records of {name!r} must be an iterable of dicts, got {records!r}.")
    copies: list[Mapping[str, object]] = []
    index: dict[str, int] = {}
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"Record {position} of {name!r} is not a dict: {record!r}.")
        try:
            copy = json.loads(json.dumps(dict(record), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Record {position} of {name!r} is not JSON: {exc}.") from None
        ident = copy.get(id_field)
        if not isinstance(ident, str) or not ident:
            raise ValueError(
                f"Record {position} of {name!r} needs a non-empty string {id_field!r}, "
                f"got {ident!r}."
            )
        if ident in index:
            raise ValueError(f"Records of {name!r} repeat the {id_field} {ident!r}.")
        index[ident] = position
        copies.append(MappingProxyType(copy))
    return tuple(copies), MappingProxyType(index)


def make_collection(
    name: str,
    *,
    query_path: str | None,
    entity_path: str | None,
    id_field: str,
    records: Iterable[Mapping[str, object]],
    pagination: str,
    scroll_path: str | None,
    cid_field: str | None,
    powered_by: str,
) -> Collection:
    """A validated :class:`Collection` (``FalconEmulator.add_collection`` documents the args).

    Raises:
        TypeError, ValueError: a bad argument or record.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A collection needs a non-empty name, got {name!r}.")
    if not isinstance(id_field, str) or not id_field:
        raise ValueError(f"id_field must be a non-empty string, got {id_field!r}.")
    if pagination not in ("offset", "after"):
        raise ValueError(f"pagination must be 'offset' or 'after', got {pagination!r}.")
    if cid_field is not None and (not isinstance(cid_field, str) or not cid_field):
        raise ValueError(f"cid_field must be None or a non-empty string, got {cid_field!r}.")
    if cid_field == id_field:
        raise ValueError("cid_field and id_field must differ.")
    if not isinstance(powered_by, str) or not powered_by:
        raise ValueError(f"powered_by must be a non-empty string, got {powered_by!r}.")
    paths = [
        _path(query_path, "query_path"),
        _path(scroll_path, "scroll_path"),
        _path(entity_path, "entity_path"),
    ]
    given = [p for p in paths if p is not None]
    if not given:
        raise ValueError(f"Collection {name!r} needs a query_path, scroll_path or entity_path.")
    if len(set(given)) != len(given):
        raise ValueError(f"Collection {name!r} names one path twice: {given!r}.")
    known = {id_field} | ({cid_field} if cid_field else set())
    empty = Collection(
        name=name,
        query_path=paths[0],
        entity_path=paths[2],
        scroll_path=paths[1],
        id_field=id_field,
        pagination="after" if pagination == "after" else "offset",
        cid_field=cid_field,
        powered_by=powered_by,
        records=(),
        fields=frozenset(known),
        index=MappingProxyType({}),
    )
    return empty.with_records(records)


# -- sort and pagination -------------------------------------------------------------------------


def _sort_order(text: str, fields: frozenset[str]) -> tuple[str, bool] | None:
    """(field, descending) from ``field.asc``, ``field.desc``, ``field|asc``, ``field|desc`` or
    ``field`` (ascending); None for no sort."""
    text = text.strip()
    if not text:
        return None
    name, descending = text, False
    lowered = text.lower()
    for separator in ".|":
        for direction in ("asc", "desc"):
            if lowered.endswith(separator + direction):
                name, descending = text[: -len(direction) - 1], direction == "desc"
    if not FIELD.fullmatch(name):
        raise BadRequest(
            f"unsupported sort {text!r}: use field.asc, field.desc, field|asc or field|desc"
        )
    if name not in fields:
        raise BadRequest(f"unsupported sort {text!r}: unknown field {name!r}")
    return name, descending


def _sort_key(value: object) -> tuple[int, float, str]:
    if isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, (int, float)):
        return (0, float(value), "")
    if isinstance(value, str):
        return (1, 0.0, value.casefold())
    return (1, 0.0, json.dumps(value, sort_keys=True))


def _sorted(
    records: list[dict[str, object]], order: tuple[str, bool] | None
) -> list[dict[str, object]]:
    if order is None:
        return records
    name, descending = order
    present = [r for r in records if r.get(name) is not None]
    absent = [r for r in records if r.get(name) is None]  # last, whichever the direction
    present.sort(key=lambda record: _sort_key(record[name]), reverse=descending)
    return present + absent


def _int_param(call: ApiCall, name: str, default: int, low: int, high: int | None) -> int:
    raw = call.param(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise BadRequest(f"{name} must be an integer {bounds}, got {raw!r}")
    return value


def _fingerprint(collection: str, filter_text: str, sort_text: str) -> str:
    """Ties a cursor to its query: reusing it with another filter or sort is refused."""
    material = json.dumps([collection, filter_text.strip(), sort_text.strip()])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _cursor(position: int, fingerprint: str) -> str:
    """An opaque cursor (base64url JSON, as Falcon's look)."""
    raw = json.dumps({"version": "v1", "position": position, "query": fingerprint})
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def _position(token: str | None, fingerprint: str, name: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
        position = decoded["position"]
        query = decoded["query"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise BadRequest(f"invalid {name} token {token!r}") from None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise BadRequest(f"invalid {name} token {token!r}")
    if query != fingerprint:
        raise BadRequest(f"the {name} token belongs to another query (filter or sort changed)")
    return position


def answer_query(collection: Collection, call: ApiCall, style: _Style) -> ApiAnswer:
    """The ids of the records matching ``filter``, sorted and paged in ``style``.

    Offset style: ``offset`` (int) in, ``meta.pagination.offset`` out is where the next page
    starts (as ``/devices/queries/devices/v1`` does; some Falcon endpoints echo the request's
    offset instead). After style: ``after`` in and out, empty on the last page. Scroll style
    (``/devices/queries/devices-scroll/v1``): a string token in ``offset``, in and out, empty
    on the last page.
    """
    filter_text = call.param("filter") or ""
    sort_text = call.param("sort") or ""
    try:
        limit = _int_param(
            call, "limit", DEFAULT_LIMIT, 1, MAX_SCROLL_LIMIT if style == "scroll" else MAX_LIMIT
        )
        terms = Fql(filter_text, collection.fields).parse()
        order = _sort_order(sort_text, collection.fields)
        views = [collection.view(record, call) for record in collection.records]
        matched = _sorted([view for view in views if matches(view, terms)], order)
        fingerprint = _fingerprint(collection.name, filter_text, sort_text)
        if style == "offset":
            start = _int_param(call, "offset", 0, 0, None)
        elif style == "after":
            start = _position(call.param("after"), fingerprint, "after")
        else:
            start = _position(call.param("offset"), fingerprint, "offset")
    except BadRequest as exc:
        return _refuse(exc.message)
    page = matched[start : start + limit]
    end = start + len(page)
    total = len(matched)
    pagination: dict[str, object] = {"limit": limit, "total": total}
    if style == "offset":
        pagination["offset"] = end
    else:
        token = _cursor(end, fingerprint) if end < total else ""
        pagination["after" if style == "after" else "offset"] = token
    ids = [view[collection.id_field] for view in page]
    return ApiAnswer(200, ids, meta={"pagination": pagination})


def answer_entities(collection: Collection, call: ApiCall) -> ApiAnswer:
    """The records of the ids asked (``?ids=`` repeated, or a POST body ``{"ids": [...]}``).

    Unknown ids get an error each (``{"code": 404, "message", "id"}``): 200 when some id was
    found, 404 when none was. Repeated ids are answered once.
    """
    if call.method == "POST":
        body = call.json_body
        raw = body.get("ids") if isinstance(body, dict) else None
        if raw is None:
            return _refuse('ids is required: send a JSON body {"ids": ["...", ...]}')
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            return _refuse("ids must be a list of strings")
        asked: list[str] = raw
    else:
        asked = list(call.query.get("ids", ()))
    ids = list(dict.fromkeys(i for i in asked if i))
    if not ids:
        return _refuse("ids is required")
    if len(ids) > MAX_IDS:
        return _refuse(f"at most {MAX_IDS} ids per request, got {len(ids)}")
    found: list[object] = []
    errors: list[Mapping[str, object]] = []
    for ident in ids:
        position = collection.index.get(ident)
        if position is None:
            message = f"{collection.id_field} {ident!r} not found in {collection.name!r}"
            errors.append(_error(404, message, id=ident))
        else:
            found.append(collection.view(collection.records[position], call))
    return ApiAnswer(200 if found else 404, found, errors)


def accept_write(call: ApiCall) -> ApiAnswer:
    """A write to a path with no data: accepted, ``meta.writes.resources_affected`` = the ids
    named (in the body's ``ids`` or the query's), else 0."""
    body = call.json_body
    named = body.get("ids") if isinstance(body, dict) else None
    affected = len(named) if isinstance(named, list) else len(call.query.get("ids", ()))
    return ApiAnswer(200, [], meta={"writes": {"resources_affected": affected}})


def echo(call: ApiCall) -> ApiAnswer:
    """An echo of the request, for paths with no data."""
    resource = {
        "method": call.method,
        "path": call.path,
        "query": call.query_string,
        "body_length": len(call.body),
        "body_sha256": hashlib.sha256(call.body).hexdigest(),
        "client_id": call.client_id,
        "member_cid": call.member_cid,
        "region": call.region,
    }
    return ApiAnswer(200, [resource])


def _not_allowed(allowed: tuple[str, ...]) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        message = f"Method Not Allowed: {call.path} takes {', '.join(allowed)}"
        return ApiAnswer(
            405, errors=[_error(405, message)], headers=[("Allow", ", ".join(allowed))]
        )

    return answer


# -- routing -------------------------------------------------------------------------------------


class Route(NamedTuple):
    """How to answer one call, and the ``meta.powered_by`` to answer with."""

    answer: Callable[[ApiCall], ApiAnswer]
    powered_by: str


def _handled(handler: Handler) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return as_answer(handler(call))

    return answer


class DataRegistry:
    """Collections and handlers by path. Not thread-safe: the service uses it under its lock."""

    def __init__(self) -> None:
        self._collections: dict[str, Collection] = {}
        self._handlers: dict[tuple[str, str], Handler] = {}

    def add_collection(self, collection: Collection) -> None:
        """Adds a collection, or replaces the one of that name.

        Raises:
            ValueError: one of its paths belongs to another collection.
        """
        for other in self._collections.values():
            shared = set(other.paths) & set(collection.paths)
            if other.name != collection.name and shared:
                raise ValueError(
                    f"Collection {other.name!r} already answers {sorted(shared)[0]!r}."
                )
        self._collections[collection.name] = collection

    def _named(self, name: str) -> Collection:
        try:
            return self._collections[name]
        except KeyError:
            known = ", ".join(repr(n) for n in self._collections) or "none"
            raise KeyError(f"No collection {name!r} (collections: {known}).") from None

    def load(self, name: str, records: Iterable[Mapping[str, object]]) -> None:
        """Replaces the records of collection ``name``."""
        self._collections[name] = self._named(name).with_records(records)

    def remove_collection(self, name: str) -> None:
        """Removes collection ``name``: its paths get the answers of paths with no data."""
        del self._collections[self._named(name).name]

    def records(self, name: str) -> list[dict[str, object]]:
        """Copies of the records of collection ``name``, as loaded."""
        return [json.loads(json.dumps(dict(record))) for record in self._named(name).records]

    def add_handler(self, method: str, path: str, handler: Handler) -> None:
        """Answers ``method`` on ``path`` with ``handler`` (replacing any handler there)."""
        self._handlers[(method, path)] = handler

    def remove_handler(self, method: str, path: str) -> None:
        """Removes the handler of ``method`` on ``path``."""
        try:
            del self._handlers[(method, path)]
        except KeyError:
            raise KeyError(f"No handler for {method} {path}.") from None

    def resolve(self, method: str, path: str) -> Route:
        """How to answer ``method`` on ``path``: a handler first, then a collection, then a
        write's generic answer, then the echo."""
        routed = "GET" if method == "HEAD" else method
        handler = self._handlers.get((routed, path))
        if handler is not None:
            return Route(_handled(handler), EMULATOR)
        for collection in self._collections.values():
            if path in collection.paths:
                return _collection_route(collection, routed, path)
        if routed in WRITE_METHODS:
            return Route(accept_write, EMULATOR)
        return Route(echo, EMULATOR)


def _collection_route(collection: Collection, method: str, path: str) -> Route:
    """A query path answers GET, an entity path GET and POST; other methods get a 405."""
    if path == collection.entity_path:
        if method not in ("GET", "POST"):
            return Route(_not_allowed(("GET", "POST")), GATEWAY)
        return Route(_entities_answer(collection), collection.powered_by)
    if method != "GET":
        return Route(_not_allowed(("GET",)), GATEWAY)
    style: _Style = "scroll" if path == collection.scroll_path else collection.pagination
    return Route(_query_answer(collection, style), collection.powered_by)


def _query_answer(collection: Collection, style: _Style) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return answer_query(collection, call, style)

    return answer


def _entities_answer(collection: Collection) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return answer_entities(collection, call)

    return answer
