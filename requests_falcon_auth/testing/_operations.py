"""The catalogue of Falcon operations: every method and path the API gateway knows.

``_operations.json`` is generated from CrowdStrike's own operation table, falconpy's
``falconpy/_endpoint`` modules, by ``scripts/make_operations.py`` (it names the falconpy version
it came from in its ``source``): per operation its ids, method, path template and the parameters
Falcon checks, and, where public sources give them, its success status and the format of the
ids it takes. The emulator reads the file, never falconpy, which is no dependency of the
package. The catalogue is read on first use (it is half a megabyte), then shared, read-only.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Final, Literal

__all__ = ["Catalogue", "IdKey", "Kind", "Operation", "Param", "PathMatch", "catalogue", "kind"]

Kind = Literal[
    "query", "combined", "entity", "read", "create", "update", "delete", "action", "other"
]
_WRITE_KINDS: Final[Mapping[str, Kind]] = {"PATCH": "update", "PUT": "update", "DELETE": "delete"}
_PACKAGE: Final = "requests_falcon_auth.testing"
_TEMPLATE: Final = re.compile(r"\{[^/{}]+\}")
_QUERY_PATH: Final = re.compile(r"/query(/|$)")  # /exclusions/sdmf/query/v1
# POSTs to an entity path that read records by the ids in their body rather than create one:
# falconpy's GetDeviceDetails, PostEntitiesAlertsV2, retrieveUsersGETV1, getChildrenV2 ...
_READ_BY_POST: Final = re.compile(r"^(get|retrieve|postentities)", re.IGNORECASE)
# POSTs elsewhere that search rather than create: ``exclusions_sdmf_query_v1``, ``SearchObjects``.
_QUERY_BY_POST: Final = re.compile(r"^(query|search)", re.IGNORECASE)
# POSTs that read, check or export without creating a record: reports
# (``exclusions_get_reports_v2``, ``scans-report``), downloads
# (``PostMalQueryEntitiesSamplesMultidownloadV1``), validations.
_READ_BY_ID: Final = re.compile(r"^get|_get_|reports?(_v\d+)?$|download|validate", re.IGNORECASE)


@dataclass(frozen=True)
class Param:
    """One parameter of an operation, as swagger describes it (only what Falcon checks)."""

    name: str
    where: str  # query, path, body, formData or header
    type: str | None = None
    required: bool = False
    enum: tuple[str, ...] | None = None
    default: object = None
    minimum: int | None = None
    maximum: int | None = None
    max_items: int | None = None
    collection_format: str | None = None
    items: str | None = None  # an array's item type


@dataclass(frozen=True)
class IdKey:
    """Where an entity lookup reads the ids it is asked for: a query parameter or a body key."""

    name: str
    where: Literal["query", "body"]
    required: bool


@dataclass(frozen=True)
class Operation:
    """One Falcon operation: its ids (falconpy's names for it), method, path and parameters."""

    ids: tuple[str, ...]
    method: str
    path: str
    params: tuple[Param, ...]
    body_key: str | None = None  # the JSON key a lookup by POST reads its ids from
    expires: bool = False  # a cursor that documents meta.pagination.expires_at
    status: int | None = None  # Falcon's success status where it is not its kind's
    id_formats: tuple[tuple[str, str], ...] = ()  # (parameter, pattern) of the ids it takes

    @property
    def kind(self) -> Kind:
        """What kind of operation this is (decides its answer when no data is loaded)."""
        return kind(self.method, self.path, self.ids[0])

    def param(self, name: str, where: str = "query") -> Param | None:
        """The parameter ``name`` in ``where``, or None."""
        return next((p for p in self.params if p.name == name and p.where == where), None)

    @property
    def id_key(self) -> IdKey | None:
        """Where an entity lookup reads its ids, or None for an operation that takes none."""
        if self.method == "POST":
            body = next((p for p in self.params if p.where == "body"), None)
            if body is None:
                return None
            return IdKey(self.body_key or "ids", "body", body.required)
        ranked = sorted(
            (p for p in self.params if p.where == "query" and p.name.endswith(("ids", "id"))),
            key=lambda p: (not p.required, p.name != "ids", not p.name.endswith("ids")),
        )
        if not ranked:
            return None
        return IdKey(ranked[0].name, "query", ranked[0].required)


def kind(method: str, path: str, operation_id: str) -> Kind:
    """The kind of the operation ``operation_id`` (``method`` on ``path``): a POST is a create
    only when neither its path nor its id says that it reads."""
    if "/queries/" in path or _QUERY_PATH.search(path):
        return "query"
    if "/combined/" in path:
        return "combined"
    if method in ("GET", "HEAD"):
        return "entity" if "/entities/" in path else "other"
    if method == "POST":
        return _post_kind(path, operation_id)
    return _WRITE_KINDS.get(method, "other")


def _post_kind(path: str, operation_id: str) -> Kind:
    if "-actions/" in path or path.endswith("-actions"):
        return "action"
    if "/entities/" in path and ("/GET/" in path or _READ_BY_POST.match(operation_id)):
        return "entity"
    if _QUERY_BY_POST.match(operation_id):
        return "query"
    if "/aggregates/" in path or "/GET/" in path or _READ_BY_ID.search(operation_id):
        return "read"
    return "create"


@dataclass(frozen=True)
class PathMatch:
    """The operations of one path, by method, and the values of its template's segments."""

    template: str
    operations: Mapping[str, Operation]
    segments: Mapping[str, str]

    @property
    def allowed(self) -> tuple[str, ...]:
        """The methods the path takes, sorted (an ``Allow`` header's value)."""
        return tuple(sorted(self.operations))


class Catalogue:
    """Every operation by path: literal paths by lookup, templates (``{id}``) by pattern."""

    def __init__(self, source: str, operations: tuple[Operation, ...]) -> None:
        self.source = source
        self.operations = operations
        by_path: dict[str, dict[str, Operation]] = {}
        for operation in operations:
            by_path.setdefault(operation.path, {})[operation.method] = operation
        self._literal = {p: MappingProxyType(m) for p, m in by_path.items() if "{" not in p}
        # Fewer placeholders first: /a/{x}/objects is tried before /a/{x}/{y}.
        templated = sorted((p for p in by_path if "{" in p), key=lambda p: p.count("{"))
        self._templates = [
            (_pattern(p), tuple(_TEMPLATE.findall(p)), p, MappingProxyType(by_path[p]))
            for p in templated
        ]

    def match(self, path: str) -> PathMatch | None:
        """The operations of ``path``: a literal path first, then the first template."""
        found = self._literal.get(path)
        if found is not None:
            return PathMatch(path, found, MappingProxyType({}))
        for pattern, names, template, methods in self._templates:
            matched = pattern.fullmatch(path)
            if matched is not None:
                segments = {name[1:-1]: value for name, value in zip(names, matched.groups())}
                return PathMatch(template, methods, MappingProxyType(segments))
        return None


def _pattern(template: str) -> re.Pattern[str]:
    """A template's pattern: each ``{name}`` matches one non-empty segment."""
    literal, *rest = _TEMPLATE.split(template)
    return re.compile(re.escape(literal) + "".join("([^/]+)" + re.escape(p) for p in rest))


def _param(raw: Mapping[str, object]) -> Param:
    enum = raw.get("enum")
    return Param(
        name=str(raw["name"]),
        where=str(raw["in"]),
        type=_text(raw.get("type")),
        required=raw.get("required") is True,
        enum=tuple(str(v) for v in enum) if isinstance(enum, list) else None,
        default=raw.get("default"),
        minimum=_number(raw.get("minimum")),
        maximum=_number(raw.get("maximum")),
        max_items=_number(raw.get("maxItems")),
        collection_format=_text(raw.get("collectionFormat")),
        items=_text(raw.get("items")),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _number(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@functools.cache
def catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once)."""
    text = resources.files(_PACKAGE).joinpath("_operations.json").read_text("utf-8")
    raw = json.loads(text)
    operations = tuple(
        Operation(
            ids=tuple(entry["ids"]),
            method=entry["method"],
            path=entry["path"],
            params=tuple(_param(p) for p in entry["params"]),
            body_key=entry.get("body_key"),
            expires=entry.get("expires", False),
            status=entry.get("status"),
            id_formats=tuple(entry.get("id_formats", {}).items()),
        )
        for entry in raw["operations"]
    )
    return Catalogue(raw["source"], operations)
