"""The admin API's JSON: what a call brings (checked strictly) and the documents it answers.

Strict on input, so that a misspelt field (``retryAfter``) is a 400 naming what the route takes,
never silently ignored; type errors never echo the value, which could be a secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    import re
    from collections.abc import Callable

    from ._records import Counters, RequestLogEntry
    from ._state import ApiClient

__all__ = [
    "OK",
    "AdminError",
    "Answer",
    "Call",
    "Document",
    "Route",
    "array_field",
    "client_document",
    "counters_document",
    "encode",
    "entry_document",
    "fields_of",
    "parse_json",
    "query_number",
    "string_field",
]

Document = dict[str, object]
Answer = tuple[int, Document]


class AdminError(Exception):
    """An admin request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.splitlines())  # one line, whatever it quotes
        self.headers = headers


@dataclass(frozen=True)
class Call:
    """One admin request, routed: ``name`` is the path's ``{name}``, decoded ("" if none)."""

    method: str
    path: str
    name: str
    query: Mapping[str, list[str]]
    body: bytes


class Route(NamedTuple):
    pattern: re.Pattern[str]
    actions: Mapping[str, Callable[[Call], Answer]]
    get_query: frozenset[str] = frozenset()  # query parameters its GET takes


# -- JSON in ---------------------------------------------------------------------------------


def _kind(value: object) -> str:
    """The JSON type of a value, for messages (never the value: it may be a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _refuse_constant(name: str) -> object:
    raise ValueError(f"The body is not valid JSON: {name} is no JSON number.")


def parse_json(body: bytes) -> object:
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise AdminError(400, "The body is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        message = f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        raise AdminError(400, message) from None
    except ValueError as exc:
        raise AdminError(400, str(exc)) from None
    except RecursionError:
        raise AdminError(400, "The body nests arrays or objects too deeply.") from None


def fields_of(call: Call, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> Any:
    """The body's JSON object, checked against the fields the route takes (a dict)."""
    document = parse_json(call.body) if call.body.strip() else {}
    if not isinstance(document, dict):
        raise AdminError(400, f"The body must be a JSON object, got {_kind(document)}.")
    known = (*required, *optional)
    takes = ", ".join(repr(name) for name in known) or "no fields"
    for key in document:
        if key not in known:
            raise AdminError(
                400, f"Unknown field {key!r}: {call.method} {call.path} takes {takes}."
            )
    for key in required:
        if key not in document:
            raise AdminError(
                400, f"Missing field {key!r}: {call.method} {call.path} takes {takes}."
            )
    return document


def string_field(document: Mapping[str, object], key: str, default: str | None = None) -> str:
    value = document.get(key, default)
    if not isinstance(value, str):
        raise AdminError(400, f"Field {key!r} must be a string, got {_kind(value)}.")
    return value


def array_field(document: Mapping[str, object], key: str) -> list[object]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise AdminError(400, f"Field {key!r} must be an array, got {_kind(value)}.")
    return value


def query_number(call: Call, name: str) -> float | None:
    values = call.query.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise AdminError(400, f"Query parameter {name!r} is given {len(values)} times.")
    try:
        number = float(values[0])
    except ValueError:
        raise AdminError(400, f"Query parameter {name!r} must be a number.") from None
    if not 0 <= number < float("inf"):
        raise AdminError(400, f"Query parameter {name!r} must be a non-negative number.")
    return number


# -- JSON out --------------------------------------------------------------------------------


def _fields_document(value: Any, *, leave_out: str = "") -> Document:
    """A dataclass value's fields as JSON, in order: mappings as objects, sets sorted."""
    document: Document = {}
    for item in fields(value):
        if item.name == leave_out:
            continue
        found = getattr(value, item.name)
        if isinstance(found, Mapping):
            found = dict(found)
        elif isinstance(found, frozenset):
            found = sorted(found)
        document[item.name] = found
    return document


def client_document(client: ApiClient) -> Document:
    return _fields_document(client)


def counters_document(counters: Counters) -> Document:
    return _fields_document(counters)


def entry_document(entry: RequestLogEntry) -> Document:
    # The JSON parsed, not the text it was kept as.
    return {**_fields_document(entry, leave_out="json_text"), "json_body": entry.json_body}


def encode(document: Document) -> bytes:
    return (json.dumps(document, separators=(",", ":")) + "\n").encode()


OK: Final[Answer] = (200, {"ok": True})
