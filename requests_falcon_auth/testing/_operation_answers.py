"""Falcon's answer to an operation that has no data loaded: the empty shape of its kind.

A query or combined search finds nothing: 200, no resources, and ``meta.pagination`` in the
operation's style (``offset``, ``limit`` and ``total``; ``after`` for cursor operations;
``expires_at`` where Falcon documents it). An entity lookup knows none of the ids it is asked
(each gets a 404 error, as a collection answers unknown ids), and one asked for no ids finds
nothing. A read sent as a POST (an aggregate, a report, a download request) finds nothing: 200
and no resources. A write succeeds with Falcon's status for its kind (201 for a create, 200 for
an upload, 202 for the writes Falcon carries out later, else 200, or the operation's own where
the catalogue records one: many creates answer 200) and no resources, once its form passes
(:func:`._operation_checks.check_form`). Every shape is a pure function of the operation and the
call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from ._api_call import ApiAnswer, ApiCall, error_entry, refuse
from ._operation_checks import check_form, values
from ._operations import Kind, Operation

__all__ = ["DEFAULT_LIMIT", "SCROLL_LIFETIME", "default_answer"]

DEFAULT_LIMIT: Final = 100  # a page's size when neither the call nor the table gives one
SCROLL_LIFETIME: Final = 120.0  # seconds a scroll's expires_at lies ahead (Falcon's "2m")
_STATUS: Final[Mapping[Kind, int]] = {"create": 201}
# Writes that Falcon's swagger answers 202 Accepted (msa.ReplyAffectedEntities): containment,
# hiding hosts, and tags are carried out after the answer.
_ACCEPTED: Final = frozenset(
    {"/devices/entities/devices-actions/v2", "/devices/entities/devices/tags/v1"}
)


def default_answer(
    operation: Operation, call: ApiCall, *, wall_clock: Callable[[], float] = time.time
) -> ApiAnswer:
    """The answer of ``operation`` to ``call`` with no data loaded."""
    kind = operation.kind
    if kind in ("query", "combined"):
        return ApiAnswer(200, [], meta={"pagination": _pagination(operation, call, wall_clock)})
    if kind == "entity":
        return _unknown_entities(operation, call)
    refused = check_form(operation, call)
    return refused if refused is not None else ApiAnswer(_write_status(operation), [])


def _write_status(operation: Operation) -> int:
    """The success status of a write, or of a read sent as a POST (200)."""
    if operation.path in _ACCEPTED:
        return 202
    if operation.status is not None:
        return operation.status
    if operation.kind == "create" and _uploads(operation):
        return 200  # an upload answers 200 (samplestore's UploadSampleV2)
    return _STATUS.get(operation.kind, 200)


def _uploads(operation: Operation) -> bool:
    return any(p.where == "formData" and p.type == "file" for p in operation.params)


def _number(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _pagination(
    operation: Operation, call: ApiCall, wall_clock: Callable[[], float]
) -> dict[str, object]:
    """An empty result's ``meta.pagination`` in the operation's style."""
    pagination: dict[str, object] = {}
    limit = operation.param("limit")
    if limit is not None:
        default = limit.default if isinstance(limit.default, int) else DEFAULT_LIMIT
        pagination["limit"] = _number(call.param("limit"), default)
    pagination["total"] = 0
    offset = operation.param("offset")
    if operation.param("after") is not None:
        pagination["after"] = ""
    elif offset is not None and offset.type == "string":
        pagination["offset"] = ""  # a scroll: an empty token says there is no next page
    elif offset is not None:
        pagination["offset"] = _number(call.param("offset"), 0)
    if operation.expires:
        pagination["expires_at"] = round((wall_clock() + SCROLL_LIFETIME) * 1e9)
    return pagination


def _unknown_entities(operation: Operation, call: ApiCall) -> ApiAnswer:
    """Each id asked gets a 404 error; no id asked finds nothing."""
    key = operation.id_key
    if key is None:
        return ApiAnswer(200, [])
    if key.where == "query":
        param = operation.param(key.name)
        asked = values(param, call.query.get(key.name, ())) if param is not None else []
    else:
        body = call.json_body
        raw = body.get(key.name) if isinstance(body, dict) else None
        if isinstance(raw, str):
            raw = [raw]
        if raw is not None and (
            not isinstance(raw, list) or not all(isinstance(i, str) for i in raw)
        ):
            return refuse(f"{key.name} must be a list of strings")
        asked = raw or []
    ids = list(dict.fromkeys(i for i in asked if i))
    if not ids:
        return refuse(f"{key.name} is required") if key.required else ApiAnswer(200, [])
    errors = [error_entry(404, f"{key.name} {i!r} not found", id=i) for i in ids]
    return ApiAnswer(404, [], errors)
