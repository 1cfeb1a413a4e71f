"""Identity Protection's GraphQL endpoint (``POST /identity-protection/combined/graphql/v1``).

Falcon answers it as a GraphQL server does, not in its envelope: ``{"data": {...}}`` with an
``extensions`` object that carries the caller's query budget (``remainingPoints``, which
falconpy's own test reads). The emulator holds no identity data, so a query finds nothing: its
``data`` is an empty object. A mutation changes nothing and says so in GraphQL's ``errors``
with ``data: null``. A body without a query string is refused with 400.
"""

from __future__ import annotations

import json
import re
from typing import Final

from ._api_call import ApiAnswer, ApiCall, refuse

__all__ = ["GRAPHQL_PATH", "POWERED_BY", "REMAINING_POINTS", "graphql"]

GRAPHQL_PATH: Final = "/identity-protection/combined/graphql/v1"
POWERED_BY: Final = "identity-protection"
REMAINING_POINTS: Final = 500_000  # the query budget each answer reports as left
_MUTATION: Final = re.compile(r"^\s*mutation\b")


def graphql(call: ApiCall) -> ApiAnswer:
    """The answer to a GraphQL request: nothing found for a query, nothing done for a mutation."""
    body = call.json_body
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, str) or not query.strip():
        return refuse('query is required: a JSON body {"query": "..."}')
    answer: dict[str, object]
    if _MUTATION.match(query):
        message = "the emulator holds no identity data: mutations are not applied"
        answer = {"data": None, "errors": [{"message": message}]}
    else:
        answer = {"data": {}}
    answer["extensions"] = {"remainingPoints": REMAINING_POINTS}
    return ApiAnswer(200, body=json.dumps(answer).encode(), content_type="application/json")
