"""NGSIEM's LogScale search (``/humio/api/v1/repositories/{repository}/queryjobs``).

Falcon passes these calls through to LogScale, which answers in its own JSON, not Falcon's
envelope (LogScale API, "Creating a Query Job" and "Polling a Query Job"): creating a job
answers its ``id``; polling a job answers ``done``, ``cancelled``, the ``events`` found so far
and the query's ``metaData``. The emulator holds no events, so every job is done at once and
finds nothing. A body without a ``queryString`` is refused with 400, as LogScale refuses it.
"""

from __future__ import annotations

import json
import secrets
from typing import Final

from ._api_call import ApiAnswer, ApiCall, refuse

__all__ = ["POWERED_BY", "QUERY_JOBS", "search_status", "start_search"]

QUERY_JOBS: Final = "/humio/api/v1/repositories/{repository}/queryjobs"
POWERED_BY: Final = "ngsiem"  # the emulator's name for the service (not recorded)


def start_search(call: ApiCall) -> ApiAnswer:
    """``StartSearchV1``: a new query job's id."""
    body = call.json_body
    query = body.get("queryString") if isinstance(body, dict) else None
    if not isinstance(query, str):
        return refuse("queryString is required: the LogScale query to run")
    return _json({"id": f"P{secrets.randbelow(10)}-{secrets.token_urlsafe(24)}"})


def search_status(call: ApiCall) -> ApiAnswer:
    """``GetSearchStatusV1``: the job is done and found no events."""
    metadata = {"eventCount": 0}
    return _json({"done": True, "cancelled": False, "events": [], "metaData": metadata})


def _json(value: dict[str, object]) -> ApiAnswer:
    return ApiAnswer(200, body=json.dumps(value).encode(), content_type="application/json")
