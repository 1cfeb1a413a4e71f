"""Which answer an authenticated gateway call gets: a handler, a collection, or Falcon's.

The :class:`DataRegistry` holds the user's handlers and the collections (:mod:`._collections`)
by path and resolves each call to a :class:`Route`: a handler first, then the sample tenant's
operations once it is loaded (:mod:`._tenant_routes`), then a collection (its entity path
takes Falcon's writes, :mod:`._writes`), then the operation of the catalogue
(:mod:`._operations`) with its answer of its own (:mod:`._builtin_operations`) or its empty
answer (:mod:`._operation_answers`); a path Falcon knows called with another method gets a 405,
any other path a 404. Collections and the catalogue's answers check the call's parameters as
Falcon does (:mod:`._operation_checks`) first. Nothing is echoed. The registry is not
thread-safe: it is part of the emulator's state (:mod:`._state`), used under its lock.
Answering a call is a pure function of the call and an immutable collection snapshot (or a
user's handler), run outside that lock, so a handler may call back into the emulator; a write's
route is applied under it (:meth:`DataRegistry.apply`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

from ._api_call import ApiAnswer, ApiCall, Handler, as_answer, error_entry, refuse
from ._builtin_operations import Builtin, BuiltinContext, builtin_operation
from ._collections import HOSTS, Collection, QueryStyle, answer_entities, answer_query
from ._operation_answers import default_answer
from ._operation_checks import check_call
from ._operations import Operation, PathMatch, catalogue
from ._sample_store import SampleStore
from ._tenant import tenant_collection, tenant_powered_by
from ._tenant_routes import ROUTES, Store, TenantRoute
from ._wire import GATEWAY
from ._writes import Outcome, create_records, delete_records, update_records

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


Write = Callable[[ApiCall, Store, str], ApiAnswer]


class Route(NamedTuple):
    """How to answer one call, and the ``meta.powered_by`` to answer with.

    A read's ``answer`` runs outside the state's lock, on the snapshots it was resolved with.
    A write (``write`` set) changes the state: :meth:`DataRegistry.apply` runs it under the
    lock, with the time it happens, and gives the route that answers what it did.
    """

    answer: Callable[[ApiCall], ApiAnswer]
    powered_by: str
    write: Write | None = None


def _handled(handler: Handler) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        return as_answer(handler(call))

    return answer


class DataRegistry:
    """Collections and handlers by path. Not thread-safe: used under the state's lock."""

    def __init__(self) -> None:
        self._collections: dict[str, Collection] = {}
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._tenant = False  # whether the sample tenant's operations are served
        self.samples = SampleStore()  # uploaded samples (thread-safe: a lock of its own)

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

    # -- the collections as a Store (the sample tenant's routes read and write through it) -----

    def snapshot(self, name: str) -> Collection | None:
        """Collection ``name`` as it is now, or None."""
        return self._collections.get(name)

    def replace(self, name: str, records: Iterable[Mapping[str, object]]) -> None:
        """Makes ``records`` collection ``name``'s, adding the sample tenant's collection of
        that name when there is none. Records that are the collection's own (a write passes
        on those it left alone) are kept as they are; only the others are copied.

        Raises:
            ValueError, TypeError: as :meth:`load`, for the records copied or a repeated id.
        """
        current = self._collections.get(name)
        if current is None:
            self.add_collection(tenant_collection(name, records))
        else:
            self._collections[name] = _reusing(current, list(records))

    def load_tenant(self, collections: Iterable[Collection]) -> None:
        """Adds (or replaces) the sample tenant's collections, all or none, and serves its
        operations from now on (:mod:`._tenant_routes`).

        Raises:
            ValueError: one of their paths belongs to a collection of another name.
        """
        added = list(collections)
        names = {c.name for c in added}
        staying = [c for c in self._collections.values() if c.name not in names]
        for collection in added:
            for other in staying:
                shared = set(other.paths) & set(collection.paths)
                if shared:
                    raise ValueError(
                        f"Collection {other.name!r} already answers {sorted(shared)[0]!r}."
                    )
        for collection in added:
            self._collections[collection.name] = collection
        self._tenant = True

    def apply(self, route: Route, call: ApiCall, now: str) -> Route:
        """Runs a write route (under the state's lock) and gives the route answering what it
        did; a write that fails is answered 500, as a failing handler is."""
        if route.write is None:
            return route
        try:
            answer = route.write(call, self, now)
        except Exception as exc:  # noqa: BLE001 - an answer, as for a user's handler
            return Route(_raising(exc), route.powered_by)
        return Route(lambda _call: answer, route.powered_by)

    # -- routing -------------------------------------------------------------------------------

    def resolve(self, method: str, path: str) -> Route:
        """How to answer ``method`` on ``path``: a handler first, then the sample tenant's
        operations (once loaded), then a collection, then the catalogue's operation; 405 for a
        known path called with another method, else 404."""
        known = catalogue().match(path)
        routed = method
        if method == "HEAD" and (known is None or "HEAD" not in known.operations):
            routed = "GET"
        handler = self._handlers.get((routed, path))
        if handler is not None:
            return Route(_handled(handler), EMULATOR)
        operation = known.operations.get(routed) if known is not None else None
        tenant = ROUTES.get((routed, path)) if self._tenant else None
        if tenant is not None and tenant.serves(self):
            return self._tenant_route(tenant, operation)
        for collection in self._collections.values():
            if path in collection.paths:
                return _collection_route(collection, routed, path, operation, known)
        if known is None:
            return Route(_not_found, GATEWAY)
        if operation is None:
            return Route(_not_allowed(known.allowed), GATEWAY)
        return self._operation_route(operation, known)

    def _operation_route(self, operation: Operation, known: PathMatch) -> Route:
        """A catalogued operation: its answer of its own if it has one, else its empty one."""
        builtin = builtin_operation(operation.method, known.template)
        if builtin is None:
            return Route(_catalogued(operation, known), EMULATOR)
        context = BuiltinContext(self._collections.get(HOSTS), self.samples)
        return Route(_built_in(builtin, context, operation, known), builtin.powered_by)

    def _tenant_route(self, route: TenantRoute, operation: Operation | None) -> Route:
        """A sample tenant's operation: a read built now (under the lock), or a write."""
        found = self._collections.get(route.needs[0])
        powered_by = found.powered_by if found is not None else tenant_powered_by(route.needs[0])
        if route.read is not None:
            return Route(_checked(operation, route.read(self)), powered_by)
        if route.write is None:
            raise ValueError(f"{route!r} neither reads nor writes")
        return Route(_unapplied, powered_by, _checked_write(operation, route.write))


def _reusing(current: Collection, records: list[Mapping[str, object]]) -> Collection:
    """``current`` with ``records``, copying only those that are not already its own.

    A write on 100,000 hosts changes a few: copying them all again (as ``with_records`` does)
    took seconds, keeping the untouched ones takes milliseconds.
    """
    own = {id(record) for record in current.records}
    fresh = [record for record in records if id(record) not in own]
    if len(fresh) == len(records):
        return current.with_records(records)
    copied = current.with_records(fresh) if fresh else None
    copies = iter(copied.records if copied is not None else ())
    merged = tuple(record if id(record) in own else next(copies) for record in records)
    index: dict[str, int] = {}
    for position, record in enumerate(merged):
        ident = str(record[current.id_field])
        if ident in index:
            raise ValueError(
                f"Records of {current.name!r} repeat the {current.id_field} {ident!r}."
            )
        index[ident] = position
    fields = current.fields | copied.fields if copied is not None else current.fields
    return dataclasses.replace(
        current, records=merged, index=MappingProxyType(index), fields=fields
    )


def _raising(exc: Exception) -> Callable[[ApiCall], ApiAnswer]:
    def answer(call: ApiCall) -> ApiAnswer:
        raise exc

    return answer


def _unapplied(call: ApiCall) -> ApiAnswer:
    raise RuntimeError("a write is answered by DataRegistry.apply, under the state's lock")


def _checked_write(operation: Operation | None, write: Write) -> Write:
    """``write``, after the call's parameters pass the checks of its catalogued operation."""
    if operation is None:
        return write

    def checked(call: ApiCall, store: Store, now: str) -> ApiAnswer:
        problem = check_call(operation, call, {})
        return refuse(problem) if problem is not None else write(call, store, now)

    return checked


def _generic_write(name: str, method: str, operation: Operation | None) -> Write:
    """Falcon's write semantics for collection ``name`` (:mod:`._writes`): POST creates,
    PATCH updates, DELETE deletes; the records are read when the write runs."""
    key = operation.id_key if operation is not None else None
    id_param = key.name if key is not None and key.where == "query" else None

    def write(call: ApiCall, store: Store, now: str) -> ApiAnswer:
        found = store.snapshot(name)
        if found is None:  # removed since the call was routed
            return _not_found(call)
        records, id_field = found.records, found.id_field
        outcome: Outcome
        if method == "POST":
            outcome = create_records(call, name, records, id_field=id_field, now=now)
        elif method == "PATCH":
            outcome = update_records(
                call, name, records, id_field=id_field, now=now, id_param=id_param
            )
        else:
            outcome = delete_records(
                call, name, records, id_field=id_field, id_param=id_param or "ids"
            )
        for changed, new in outcome.changes.items():
            store.replace(changed, new)
        if method == "DELETE":
            return outcome.answer
        # Records are answered as served: with the caller's CID in the collection's cid_field.
        served = [
            found.view(r, call) if isinstance(r, Mapping) else r for r in outcome.answer.resources
        ]
        return dataclasses.replace(outcome.answer, resources=served)

    return _checked_write(operation, write)


def _built_in(
    builtin: Builtin, context: BuiltinContext, operation: Operation, known: PathMatch
) -> Callable[[ApiCall], ApiAnswer]:
    """An operation with an answer of its own (:mod:`._builtin_operations`), checked first."""

    def answer(call: ApiCall) -> ApiAnswer:
        problem = check_call(operation, call, known.segments)
        return refuse(problem) if problem is not None else builtin.answer(call, context)

    return answer


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
    collection: Collection,
    method: str,
    path: str,
    operation: Operation | None,
    known: PathMatch | None,
) -> Route:
    """A query path answers GET. An entity path answers GET and POST with the records asked
    and writes with Falcon's write semantics: POST where the catalogue's operation creates,
    PATCH and DELETE where the catalogue has them there (or, on a path it does not know,
    always). Other methods get a 405."""
    if path == collection.entity_path:
        kind = operation.kind if operation is not None else None
        if method == "GET" or (method == "POST" and kind != "create"):
            key = operation.id_key if operation is not None else None
            answer = _entities_answer(collection, key.name if key is not None else "ids")
            return Route(_checked(operation, answer), collection.powered_by)
        writes = ("PATCH", "DELETE") if known is None else tuple(known.operations)
        if method in ("POST", "PATCH", "DELETE") and method in writes:
            write = _generic_write(collection.name, method, operation)
            return Route(_unapplied, collection.powered_by, write)
        allowed = {"GET", "POST", *(m for m in writes if m in ("PATCH", "DELETE"))}
        return Route(_not_allowed(tuple(sorted(allowed))), GATEWAY)
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
