"""``GET /detects/entities/iom/v1`` (``GetConfigurationDetections``): no misconfigurations.

One of the few Falcon operations whose ``resources`` is an object rather than a list
(gofalcon's ``registration.ExternalIOMEventResponse``: ``{"events": [...]}``), paged by
``next_token``. CrowdStrike has decommissioned it in favour of
``GetConfigurationDetectionIDsV2``; the emulator answers it with that shape and no events.
"""

from __future__ import annotations

from typing import Final

from ._api_call import ApiAnswer, ApiCall, refuse

__all__ = ["configuration_detections"]

DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 500  # "The maximum records to return. [1-500]"


def configuration_detections(call: ApiCall) -> ApiAnswer:
    """No events, in Falcon's shape: ``resources: {"events": []}`` and ``meta.pagination``."""
    raw = call.param("limit") or ""
    limit = int(raw) if raw.isdigit() else DEFAULT_LIMIT if not raw else 0
    if not 1 <= limit <= MAX_LIMIT:
        return refuse(f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    pagination = {"limit": limit, "total": 0}
    return ApiAnswer(200, resource_object={"events": []}, meta={"pagination": pagination})
