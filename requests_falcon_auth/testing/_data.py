"""Which answer an authenticated gateway call gets: a handler, a collection, or Falcon's.

The :class:`DataRegistry` holds the user's handlers and the collections (:mod:`._collections`)
by path and resolves each call to a :class:`Route`: a handler first, then a collection, then
the operation of the catalogue (:mod:`._operations`) with its empty answer
(:mod:`._operation_answers`); a path Falcon knows called with another method gets a 405, any
other path a 404. Collections and the catalogue's answers check the call's parameters as
Falcon does (:mod:`._operation_checks`) first. Nothing is echoed. The registry is not
thread-safe: it is part of the emulator's state (:mod:`._state`), used under its lock.
Answering a call is a pure function of the call and an immutable collection snapshot (or a
user's handler), run outside that lock, so a handler may call back into the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Final, NamedTuple

from ._api_call import ApiAnswer, ApiCall, Handler, as_answer, error_entry, refuse
from ._collections import Collection, QueryStyle, answer_entities, answer_query
from ._operation_answers import default_answer
from ._operation_checks import check_call
from ._operations import Operation, PathMatch, catalogue
from ._wire import GATEWAY

__all__ = ["EMULATOR", "HANDLER_METHODS", "DataRegistry", "Route"]

EMULATOR: Final = "falcon-emulator"  # meta.powered_by of answers no Falcon service would give
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HANDLER_METHODS: Final = frozenset({"GET", *WRITE_METHODS})


def _not_found(call: ApiCall) -> ApiAnswer:
    """Falcon's answer to a path it does not know."""
    return ApiAnswer(404, errors=[error_entry(404, "Not Found")])


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
        """How to answer ``method`` on ``path``: a handler first, then a collection, then the
        catalogue's operation; 405 for a known path called with another method, else 404."""
        known = catalogue().match(path)
        routed = method
        if method == "HEAD" and (known is None or "HEAD" not in known.operations):
            routed = "GET"
        handler = self._handlers.get((routed, path))
        if handler is not None:
            return Route(_handled(handler), EMULATOR)
        operation = known.operations.get(routed) if known is not None else None
        for collection in self._collections.values():
            if path in collection.paths:
                return _collection_route(collection, routed, path, operation)
        if known is None:
            return Route(_not_found, GATEWAY)
        if operation is None:
            return Route(_not_allowed(known.allowed), GATEWAY)
        return Route(_catalogued(operation, known), EMULATOR)


def _catalogued(operation: Operation, known: PathMatch) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        problem = check_call(operation, call, known.segments)
        return refuse(problem) if problem is not None else default_answer(operation, call)

    return answer


def _checked(
    operation: Operation | None, answer: Callable[[ApiCall], ApiAnswer]
) -> Callable[[ApiCall], ApiAnswer]:
    """``answer``, after the call's parameters pass the checks of its catalogued operation."""
    if operation is None:
        return answer

    def checked(call: ApiCall) -> ApiAnswer:
        problem = check_call(operation, call, {})
        return refuse(problem) if problem is not None else answer(call)

    return checked


def _collection_route(
    collection: Collection, method: str, path: str, operation: Operation | None
) -> Route:
    """A query path answers GET, an entity path GET and POST; other methods get a 405."""
    if path == collection.entity_path:
        if method not in ("GET", "POST"):
            return Route(_not_allowed(("GET", "POST")), GATEWAY)
        key = operation.id_key if operation is not None else None
        answer = _entities_answer(collection, key.name if key is not None else "ids")
        return Route(_checked(operation, answer), collection.powered_by)
    if method != "GET":
        return Route(_not_allowed(("GET",)), GATEWAY)
    style: QueryStyle = "scroll" if path == collection.scroll_path else collection.pagination
    return Route(_checked(operation, _query_answer(collection, style)), collection.powered_by)


def _query_answer(collection: Collection, style: QueryStyle) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return answer_query(collection, call, style)

    return answer


def _entities_answer(collection: Collection, key: str) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return answer_entities(collection, call, key)

    return answer
