"""Falcon's write semantics for any collection, as pure functions: a call and records in, an
:class:`Outcome` (the answer, and the collections' new records) out.

Create answers 201 with the stored records (the server assigns the id and the timestamps),
update 200 with the records as changed, delete 200 with the ids deleted; an id that is not
there gets a 404 error each, and a call that finds none of its ids is answered 404. Nothing here
holds state: the caller applies the changes under the emulator's lock, so every rule is
testable without HTTP. The host operations built on these pieces live in :mod:`._host_writes`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ._api_call import ApiAnswer, ApiCall, error_entry, refuse

__all__ = [
    "Outcome",
    "Record",
    "Records",
    "Refused",
    "body_ids",
    "body_object",
    "copy_record",
    "create_records",
    "delete_records",
    "guarded",
    "new_id",
    "not_found",
    "query_ids",
    "resources",
    "string_list",
    "update_records",
]

Record = Mapping[str, object]
Records = Sequence[Record]


@dataclass(frozen=True)
class Outcome:
    """A write's answer, and the new records of each collection it changed (by name)."""

    answer: ApiAnswer
    # A record the write left alone is passed on as the same object, so that the collection
    # keeps it without copying it again (:meth:`DataRegistry.replace`).
    changes: Mapping[str, Sequence[Record]] = field(default_factory=dict)


class Refused(Exception):
    """A call Falcon answers with a 400, and what is wrong with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def guarded(write: Callable[[], Outcome]) -> Outcome:
    """The outcome of ``write``, or the 400 it refused the call with (nothing changed)."""
    try:
        return write()
    except Refused as exc:
        return Outcome(refuse(exc.message))


def new_id() -> str:
    """A server-assigned id in Falcon's usual form: 32 hex digits."""
    return uuid.uuid4().hex


def copy_record(record: Record) -> dict[str, object]:
    """A deep copy of a record, safe to change."""
    copy: dict[str, object] = json.loads(json.dumps(dict(record)))
    return copy


def string_list(value: object, what: str) -> list[str]:
    """``value`` as a list of distinct non-empty strings, in order.

    Raises:
        Refused: it is not a non-empty list of non-empty strings.
    """
    if not isinstance(value, list) or not value:
        raise Refused(f"{what} must be a non-empty list of strings")
    if not all(isinstance(v, str) and v for v in value):
        raise Refused(f"{what} must be a non-empty list of strings")
    return list(dict.fromkeys(value))


def body_object(call: ApiCall) -> Mapping[str, object]:
    """The call's JSON body, which must be an object."""
    body = call.json_body
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object")
    return body


def body_ids(call: ApiCall, key: str = "ids") -> list[str]:
    """The ids listed under ``key`` in the call's JSON body."""
    body = body_object(call)
    if key not in body:
        raise Refused(f'{key} is required: send a JSON body {{"{key}": ["...", ...]}}')
    return string_list(body[key], key)


def query_ids(call: ApiCall, name: str) -> list[str]:
    """The ids of query parameter ``name``, repeated (``ids=a&ids=b``) or comma-separated."""
    found = [part for value in call.query.get(name, ()) for part in value.split(",") if part]
    if not found:
        raise Refused(f"{name} is required")
    return list(dict.fromkeys(found))


def resources(call: ApiCall) -> list[Mapping[str, object]]:
    """The objects of a ``{"resources": [...]}`` body (Falcon's create and update bodies)."""
    items = body_object(call).get("resources")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise Refused('resources is required: send a JSON body {"resources": [{...}, ...]}')
    return items


def not_found(ident: str, what: str) -> dict[str, object]:
    """The error entry of an id that is not there."""
    return error_entry(404, f"{what} {ident!r} not found", id=ident)


# -- the generic model -------------------------------------------------------------------------


def _items(call: ApiCall) -> list[Mapping[str, object]]:
    """A create or update body: ``{"resources": [...]}``, or one object on its own."""
    body = body_object(call)
    return resources(call) if "resources" in body else [body]


def create_records(
    call: ApiCall,
    name: str,
    records: Records,
    *,
    id_field: str,
    now: str,
    make_id: Callable[[], str] = new_id,
) -> Outcome:
    """Stores the objects of the body as new records of collection ``name``: 201 with them.

    The server assigns ``id_field`` (an id the caller sent is replaced, as Falcon's create
    operations do) and ``created_timestamp`` and ``modified_timestamp`` (``now``).
    """

    def write() -> Outcome:
        created = [
            {
                **copy_record(item),
                id_field: make_id(),
                "created_timestamp": now,
                "modified_timestamp": now,
            }
            for item in _items(call)
        ]
        changes = {name: [*records, *created]}
        return Outcome(ApiAnswer(201, list(created)), changes)

    return guarded(write)


def update_records(
    call: ApiCall,
    name: str,
    records: Records,
    *,
    id_field: str,
    now: str,
    id_param: str | None = None,
) -> Outcome:
    """Merges the body's fields into records of collection ``name``: 200 with them as changed.

    The records are named by ``id_field`` in each object of the body, or, when the operation
    takes its id in the query (``id_param``, as ``updateUserV1`` takes ``user_uuid``), the
    body's one object applies to the ids there. ``modified_timestamp`` becomes ``now``; the id
    itself cannot change.
    """

    def write() -> Outcome:
        if id_param is not None and call.param(id_param) is not None:
            fields = body_object(call)
            wanted = [(ident, fields) for ident in query_ids(call, id_param)]
        else:
            wanted = []
            for item in _items(call):
                ident = item.get(id_field)
                if not isinstance(ident, str) or not ident:
                    raise Refused(f"each resource needs its {id_field}")
                wanted.append((ident, item))
        index = {str(r.get(id_field)): position for position, r in enumerate(records)}
        changed: dict[int, dict[str, object]] = {}
        errors = []
        for ident, fields in wanted:
            position = index.get(ident)
            if position is None:
                errors.append(not_found(ident, id_field))
                continue
            merged = changed.get(position) or copy_record(records[position])
            merged.update(copy_record(fields))
            merged[id_field] = ident
            merged["modified_timestamp"] = now
            changed[position] = merged
        new = [changed.get(p) or r for p, r in enumerate(records)]
        answer = ApiAnswer(200 if changed else 404, list(changed.values()), errors)
        return Outcome(answer, {name: new} if changed else {})

    return guarded(write)


def delete_records(
    call: ApiCall, name: str, records: Records, *, id_field: str, id_param: str = "ids"
) -> Outcome:
    """Deletes records of collection ``name`` named in the query (``id_param``) or in a body
    ``{"ids": [...]}``: 200 with the ids deleted."""

    def write() -> Outcome:
        if call.param(id_param) is not None or call.json_body is None:
            ids = query_ids(call, id_param)
        else:
            ids = body_ids(call)
        present = {str(r.get(id_field)) for r in records}
        deleted: list[object] = [i for i in ids if i in present]
        errors = [not_found(i, id_field) for i in ids if i not in present]
        gone = set(ids)
        kept = [r for r in records if str(r.get(id_field)) not in gone]
        answer = ApiAnswer(200 if deleted else 404, deleted, errors)
        return Outcome(answer, {name: kept} if deleted else {})

    return guarded(write)
