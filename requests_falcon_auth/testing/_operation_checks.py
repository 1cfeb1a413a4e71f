"""A call's parameters checked against its operation, as Falcon's gateway checks them.

Query and path parameters are checked: a required one missing, an integer that is not one or
lies outside its bounds, a boolean that is not one, a value outside its enum, an array with too
many items; a required JSON body missing. Each refusal names the parameter; an empty value
is taken as not sent. Sort parameters
are left to the answer: swagger's sort enums list field names, while callers send
``field.asc`` or ``field|desc``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from ._api_call import ApiCall
from ._operations import Operation, Param

__all__ = ["check_call", "values"]

_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
# Go's strconv.ParseBool, which Falcon's services read booleans with.
_BOOLEANS: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"}) | frozenset(
    {"0", "f", "F", "FALSE", "false", "False"}
)


def values(param: Param, sent: Sequence[str]) -> list[str]:
    """The values of a parameter as sent: an array's items split as its format says."""
    if param.type != "array" or param.collection_format == "multi":
        return list(sent)
    separator = {"ssv": " ", "tsv": "\t", "pipes": "|"}.get(param.collection_format or "", ",")
    return [item for value in sent for item in value.split(separator)]


def check_call(operation: Operation, call: ApiCall, segments: Mapping[str, str]) -> str | None:
    """What is wrong with ``call``'s parameters, or None when nothing is."""
    for param in operation.params:
        if param.where == "query":
            sent = call.query.get(param.name)
            if sent is None:
                if param.required:
                    return f"{param.name} is required"
                continue
            problem = _check_values(param, values(param, sent))
        elif param.where == "path" and param.name in segments:
            problem = _check_values(param, [segments[param.name]])
        elif param.where == "body" and param.required and not call.body:
            problem = "a JSON request body is required"
        else:
            continue
        if problem is not None:
            return problem
    return None


def _check_values(param: Param, found: list[str]) -> str | None:
    name = param.name
    if param.max_items is not None and len(found) > param.max_items:
        return f"{name} takes at most {param.max_items} items, got {len(found)}"
    kind = param.items if param.type == "array" else param.type
    for value in found:
        if not value:
            continue  # an empty value is taken as not sent (limit= gives the default)
        if kind == "integer":
            problem = _check_integer(param, value)
            if problem is not None:
                return problem
        elif kind == "boolean" and value not in _BOOLEANS:
            return f"{name} must be a boolean (true or false), got {value!r}"
        if param.enum is not None and name != "sort" and value not in param.enum:
            return f"{name} must be one of {', '.join(param.enum)}, got {value!r}"
    return None


def _check_integer(param: Param, value: str) -> str | None:
    low, high = param.minimum, param.maximum
    bounds = (
        f" from {low} to {high}"
        if low is not None and high is not None
        else f" of at least {low}"
        if low is not None
        else f" of at most {high}"
        if high is not None
        else ""
    )
    wrong = f"{param.name} must be an integer{bounds}, got {value!r}"
    if not _INTEGER.fullmatch(value):
        return wrong
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        return wrong
    return None
