"""A call's parameters checked against its operation, as Falcon's gateway checks them.

Query and path parameters are checked: a required one missing, an integer that is not one or
lies outside its bounds, a boolean that is not one, a value outside its enum, an array with too
many items, an id that cannot be one (where the catalogue knows the format the operation's ids
take); a required JSON body missing, or a create's or update's body with no fields at all (``{}``,
``[{}]``, only nulls), which Falcon's services refuse before looking at anything else. Each refusal
names the parameter; an empty value is taken as not sent. Sort parameters are left to the answer:
swagger's sort enums list field names, while callers send ``field.asc`` or ``field|desc``.

A create or update that takes a form (``formData``) is refused with 415 unless it is sent as
``multipart/form-data`` (or as the raw bytes of its file, the sample store's other form), and
with 400 naming the part when a required part is missing, as Falcon's gateway does for Real
Time Response's scripts and put-files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Final

from ._api_call import OCTET_STREAM, ApiAnswer, ApiCall, error_entry, refuse
from ._operations import Operation, Param

__all__ = ["check_call", "check_form", "values"]

_FORM: Final = "multipart/form-data"
_URLENCODED: Final = "application/x-www-form-urlencoded"

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
        elif param.where == "body" and param.required:
            problem = _check_body(operation, call)
        else:
            continue
        if problem is not None:
            return problem
    return _check_ids(operation, call)


def check_form(operation: Operation, call: ApiCall) -> ApiAnswer | None:
    """Falcon's refusal of a form-taking create or update sent without its form, or None."""
    form = [p for p in operation.params if p.where == "formData"]
    if not form or operation.kind not in ("create", "update"):
        return None
    media = call.headers.get("Content-Type", "")
    media_type = media.partition(";")[0].strip().lower()
    files = [p for p in form if p.type == "file"]
    if media_type == OCTET_STREAM and files and call.body:
        return None  # the file's raw bytes (falconpy's Uber class uploads samples so)
    if media_type != _FORM:
        message = f"Content-Type must be {_FORM}, got {media_type or 'none'}"
        return ApiAnswer(415, errors=[error_entry(415, message)])
    parts = _parts(media, call.body)
    if parts is None:
        return refuse(f"the {_FORM} body could not be read")
    problem = _missing_part(form, parts, call)
    return refuse(problem) if problem is not None else None


def _missing_part(form: list[Param], parts: list[tuple[str, bool]], call: ApiCall) -> str | None:
    """The first required part of ``form`` that was not sent (a field may come in the query;
    any file part stands for the file, whatever its name)."""
    sent_files = {name for name, is_file in parts if is_file}
    sent_fields = {name for name, is_file in parts if not is_file} | set(call.query)
    for param in form:
        if not param.required:
            continue
        if param.type == "file" and not sent_files:
            return f"{param.name} is required: a file part of the {_FORM} body"
        if param.type != "file" and param.name not in sent_fields:
            return f"{param.name} is required: a part of the {_FORM} body"
    return None


def _parts(content_type: str, body: bytes) -> list[tuple[str, bool]] | None:
    """The (name, is a file) of each part of a multipart body, or None when it is not one."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        return None
    parts: list[tuple[str, bool]] = []
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            return None
        parts.append((name, part.get_param("filename", header="content-disposition") is not None))
    return parts


def _check_body(operation: Operation, call: ApiCall) -> str | None:
    """A required JSON body missing, or a create's or update's body with no fields."""
    if not call.body:
        return "a JSON request body is required"
    writes = operation.kind in ("create", "update")
    if writes and call.json_body is not None and _empty(call.json_body):
        key = f" {operation.body_key!r}" if operation.body_key else ""
        return f"body{key} is required: the JSON body has no fields"
    return None


def _empty(value: object) -> bool:
    """Whether a JSON value holds nothing: null, "", [], {} or containers of only those."""
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return value is None or value == ""


def _check_ids(operation: Operation, call: ApiCall) -> str | None:
    """An id that cannot be one of the ids the operation takes (the catalogue's formats)."""
    for name, pattern in operation.id_formats:
        param = operation.param(name)
        sent = call.query.get(name, ())
        for value in values(param, sent) if param is not None else sent:
            if value and not re.fullmatch(pattern, value):
                return f"{name} {value!r} is not a valid id: it must match {pattern}"
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
