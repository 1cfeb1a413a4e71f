"""Which answer an authenticated gateway call gets: a handler, a collection, or a default.

The :class:`DataRegistry` holds the user's handlers and the collections (:mod:`._collections`)
by path and resolves each call to a :class:`Route`: a handler first, then a collection, then
the generic answer to a write, then an echo of the request. It is not thread-safe: it is part
of the emulator's state (:mod:`._state`), used under its lock. Answering a call is a pure
function of the call and an immutable collection snapshot (or a user's handler), run outside
that lock, so a handler may call back into the emulator.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Final, NamedTuple

from ._api_call import ApiAnswer, ApiCall, Handler, as_answer, error_entry
from ._collections import Collection, QueryStyle, answer_entities, answer_query
from ._wire import GATEWAY

__all__ = ["EMULATOR", "HANDLER_METHODS", "DataRegistry", "Route", "accept_write", "echo"]

EMULATOR: Final = "falcon-emulator"  # meta.powered_by of answers no Falcon service would give
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HANDLER_METHODS: Final = frozenset({"GET", *WRITE_METHODS})


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
            405, errors=[error_entry(405, message)], headers=[("Allow", ", ".join(allowed))]
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
    """Collections and handlers by path. Not thread-safe: used under the state's lock."""

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
    style: QueryStyle = "scroll" if path == collection.scroll_path else collection.pagination
    return Route(_query_answer(collection, style), collection.powered_by)


def _query_answer(collection: Collection, style: QueryStyle) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return answer_query(collection, call, style)

    return answer


def _entities_answer(collection: Collection) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return answer_entities(collection, call)

    return answer
