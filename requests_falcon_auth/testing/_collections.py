"""Collections: records with an id, served by query and entity endpoints as Falcon serves them.

A :class:`Collection` is an immutable snapshot, so a call being answered keeps the records it
started with. Its query endpoint returns ids (filtered with FQL, :mod:`._fql`, sorted, and
paged in Falcon's offset, after or scroll style); its entity endpoint returns the records of the
ids asked. Where Falcon's behaviour is uncertain the choice is written beside the code; a filter
that is not FQL is refused with a 400 naming where, rather than answered wrongly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Literal

from ._api_call import ApiAnswer, ApiCall, error_entry, refuse
from ._checks import is_whole, non_empty, request_path
from ._fql import FIELD, BadRequest, Fql

__all__ = [
    "HOSTS",
    "Collection",
    "Pagination",
    "QueryStyle",
    "answer_entities",
    "answer_query",
    "make_collection",
]

HOSTS: Final = "hosts"  # the built-in collection of sample hosts
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 5000  # queries/devices/v1 and most offset or after query endpoints
MAX_SCROLL_LIMIT: Final = 10_000  # devices-scroll documents [1-10000]
MAX_IDS: Final = 5000  # ids per entity request (POST /devices/entities/devices/v2's maximum)
# From a scroll answer to its expires_at, in nanoseconds: two minutes in recorded Falcon
# answers (2019 and 2023, JupiterOne/graph-crowdstrike's recordings).
SCROLL_LIFETIME_NS: Final = 120 * 10**9

Pagination = Literal["offset", "after"]
QueryStyle = Literal["offset", "after", "scroll"]
_MISSING: Final = object()


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

    def views(self, call: ApiCall, *texts: str) -> Sequence[Mapping[str, object]]:
        """The records as ``call`` sees them, to filter and sort without copying any.

        The stored records themselves, unless one of ``texts`` (the filter, the sort) names
        the ``cid_field``: then each is seen through a :class:`_CallerView` that shows the
        caller's CID. A query over 100,000 hosts then costs no copy but the page it serves.
        """
        cid_field = self.cid_field
        if cid_field is None or not any(cid_field.lower() in text.lower() for text in texts):
            return self.records
        return [_CallerView(record, cid_field, call.cid) for record in self.records]


class _CallerView(Mapping[str, object]):
    """A stored record with its CID field showing the caller's CID (a view, not a copy)."""

    __slots__ = ("_cid", "_cid_field", "_record")

    def __init__(self, record: Mapping[str, object], cid_field: str, cid: str) -> None:
        self._record = record
        self._cid_field = cid_field
        self._cid = cid

    def __getitem__(self, key: str) -> object:
        return self._cid if key == self._cid_field else self._record[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._record
        if self._cid_field not in self._record:
            yield self._cid_field

    def __len__(self) -> int:
        return len(self._record) + (self._cid_field not in self._record)


def _copy_records(
    records: Iterable[Mapping[str, object]], id_field: str, name: str
) -> tuple[tuple[Mapping[str, object], ...], Mapping[str, int]]:
    if isinstance(records, (str, bytes, Mapping)):
        raise TypeError(f"records of {name!r} must be an iterable of dicts, got {records!r}.")
    copies: list[Mapping[str, object]] = []
    index: dict[str, int] = {}
    # One object for each distinct string (keys, and values such as a platform or a tag):
    # 100,000 hosts repeat a few hundred of them, and sharing them keeps memory bounded.
    strings: dict[str, str] = {}
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise TypeError(f"Record {position} of {name!r} is not a dict: {record!r}.")
        try:
            copy = _json_object(record, strings)
        except ValueError as exc:
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


def _json_copy(value: object, strings: dict[str, str]) -> object:
    """A deep copy of a JSON value (dicts and lists new, equal strings shared).

    Raises:
        ValueError: anything JSON cannot carry (a set, NaN, a key that is not a string).
    """
    if isinstance(value, str):
        return strings.setdefault(value, value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return value
    if isinstance(value, Mapping):
        return _json_object(value, strings)
    if isinstance(value, (list, tuple)):
        return [_json_copy(item, strings) for item in value]
    raise ValueError(f"{value!r} is not a JSON value")


def _json_object(value: Mapping[str, object], strings: dict[str, str]) -> dict[str, object]:
    copy: dict[str, object] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"the key {key!r} is not a string")
        copy[strings.setdefault(key, key)] = _json_copy(item, strings)
    return copy


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
    non_empty(name, "A collection's name")
    non_empty(id_field, "id_field")
    if pagination not in ("offset", "after"):
        raise ValueError(f"pagination must be 'offset' or 'after', got {pagination!r}.")
    if cid_field is not None:
        non_empty(cid_field, "cid_field")
    if cid_field == id_field:
        raise ValueError("cid_field and id_field must differ.")
    non_empty(powered_by, "powered_by")
    paths = [
        None if found is None else request_path(found, what)
        for found, what in (
            (query_path, "query_path"),
            (scroll_path, "scroll_path"),
            (entity_path, "entity_path"),
        )
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
    records: list[Mapping[str, object]], order: tuple[str, bool] | None
) -> list[Mapping[str, object]]:
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
    if not is_whole(position, 0):
        raise BadRequest(f"invalid {name} token {token!r}")
    if query != fingerprint:
        raise BadRequest(f"the {name} token belongs to another query (filter or sort changed)")
    return position


def answer_query(collection: Collection, call: ApiCall, style: QueryStyle) -> ApiAnswer:
    """The ids of the records matching ``filter``, sorted and paged in ``style``.

    Offset style: ``offset`` (int) in, ``meta.pagination.offset`` out is where the next page
    starts (as ``/devices/queries/devices/v1`` does; some Falcon endpoints echo the request's
    offset instead). After style: ``after`` in and out, empty on the last page. Scroll style
    (``/devices/queries/devices-scroll/v1``): a string token in ``offset``, in and out, empty
    on the last page, and ``expires_at`` (epoch nanoseconds) when the scroll lapses on Falcon;
    the emulator does not expire it. Only the page served is copied (see
    :meth:`Collection.views`).
    """
    filter_text = call.param("filter") or ""
    sort_text = call.param("sort") or ""
    try:
        limit = _int_param(
            call, "limit", DEFAULT_LIMIT, 1, MAX_SCROLL_LIMIT if style == "scroll" else MAX_LIMIT
        )
        expression = Fql(filter_text, collection.fields).parse()
        order = _sort_order(sort_text, collection.fields)
        views = collection.views(call, filter_text, sort_text)
        matched = _sorted([view for view in views if expression.evaluate(view)], order)
        fingerprint = _fingerprint(collection.name, filter_text, sort_text)
        if style == "offset":
            start = _int_param(call, "offset", 0, 0, None)
        elif style == "after":
            start = _position(call.param("after"), fingerprint, "after")
        else:
            start = _position(call.param("offset"), fingerprint, "offset")
    except BadRequest as exc:
        return refuse(exc.message)
    page = matched[start : start + limit]
    end = start + len(page)
    total = len(matched)
    pagination: dict[str, object] = {"limit": limit, "total": total}
    if style == "offset":
        pagination["offset"] = end
    else:
        token = _cursor(end, fingerprint) if end < total else ""
        pagination["after" if style == "after" else "offset"] = token
    if style == "scroll":
        pagination["expires_at"] = time.time_ns() + SCROLL_LIFETIME_NS
    ids = [view[collection.id_field] for view in page]
    return ApiAnswer(200, ids, meta={"pagination": pagination})


def answer_entities(collection: Collection, call: ApiCall, key: str = "ids") -> ApiAnswer:
    """The records of the ids asked (``?ids=`` repeated, or a POST body ``{"ids": [...]}``).

    ``key`` is the parameter (or body key) the operation reads its ids from, as the catalogue
    of operations says (alerts take ``composite_ids``). Unknown ids get an error each
    (``{"code": 404, "message", "id"}``): 200 when some id was found, 404 when none was.
    Repeated ids are answered once.
    """
    if call.method == "POST":
        body = call.json_body
        raw = body.get(key) if isinstance(body, dict) else None
        if raw is None:
            return refuse(f'{key} is required: send a JSON body {{"{key}": ["...", ...]}}')
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            return refuse(f"{key} must be a list of strings")
        asked: list[str] = raw
    else:
        asked = list(call.query.get(key, ()))
    ids = list(dict.fromkeys(i for i in asked if i))
    if not ids:
        return refuse(f"{key} is required")
    if len(ids) > MAX_IDS:
        return refuse(f"at most {MAX_IDS} ids per request, got {len(ids)}")
    found: list[object] = []
    errors: list[Mapping[str, object]] = []
    for ident in ids:
        position = collection.index.get(ident)
        if position is None:
            message = f"{collection.id_field} {ident!r} not found in {collection.name!r}"
            errors.append(error_entry(404, message, id=ident))
        else:
            found.append(collection.view(collection.records[position], call))
    return ApiAnswer(200 if found else 404, found, errors)
