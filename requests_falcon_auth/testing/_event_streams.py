"""Falcon's Event Streams discovery: the streams a connection may read, and their refresh.

``GET /sensors/entities/datafeed/v2?appId=`` lists one stream (partition 0, as a small tenant
has) with Falcon's fields: ``dataFeedURL``, a ``sessionToken`` (``token``, ``expiration`` 30
minutes on), ``refreshActiveSessionURL`` and ``refreshActiveSessionInterval`` (1800 seconds).
``POST /sensors/entities/datafeed-actions/v1/{partition}`` with
``action_name=refresh_active_stream_session`` answers 200.

The emulator does not serve the event stream itself. ``dataFeedURL`` points at the emulator's
own ``/sensors/entities/datafeed/v1/0`` (on Falcon, a host of its own), which answers 404 in
Falcon's envelope whatever the ``Authorization: Token <session token>`` header holds: a consumer
sees a stream it cannot read rather than a connection to a host that is not there, and the
attempt spends none of the bad-token budget a refused header would. The session token is derived
from the CID and the ``appId``, and grants nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Final
from urllib.parse import urlencode

from ._api_call import ApiAnswer, ApiCall, refuse

__all__ = [
    "POWERED_BY",
    "REFRESH_ACTION",
    "SESSION_LIFETIME",
    "STREAM_NOT_SERVED",
    "STREAM_PATH",
    "list_streams",
    "refresh_stream",
]

POWERED_BY: Final = "event-streams"  # the emulator's name for the service (not recorded)
REFRESH_ACTION: Final = "refresh_active_stream_session"
SESSION_LIFETIME: Final = 1800  # seconds: refreshActiveSessionInterval, and the token's life
STREAM_PATH: Final = "/sensors/entities/datafeed/v1/"  # then the partition: the stream itself
STREAM_NOT_SERVED: Final = "the emulator does not serve event streams"
_FORMATS: Final = ("json", "flatjson")
_PARTITION: Final = 0


def list_streams(call: ApiCall, *, wall_clock: Callable[[], float] = time.time) -> ApiAnswer:
    """``listAvailableStreamsOAuth2``: the stream of partition 0 for ``appId``."""
    app_id = call.param("appId") or ""
    if not app_id:
        return refuse("appId is required")
    feed_format = call.param("format")
    if feed_format and feed_format not in _FORMATS:
        return refuse(f"format must be one of {', '.join(_FORMATS)}, got {feed_format!r}")
    expires = datetime.fromtimestamp(wall_clock() + SESSION_LIFETIME, timezone.utc)
    feed = {"appId": app_id, **({"format": feed_format} if feed_format else {})}
    refresh = {"action_name": REFRESH_ACTION, "appId": app_id}
    token = hashlib.sha256(f"falcon-emulator stream {call.cid} {app_id}".encode()).hexdigest()
    stream = {
        "dataFeedURL": f"{call.base_url}{STREAM_PATH}{_PARTITION}?" + urlencode(feed),
        "sessionToken": {
            "token": token,
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        "refreshActiveSessionURL": f"{call.base_url}/sensors/entities/datafeed-actions/v1/"
        f"{_PARTITION}?" + urlencode(refresh),
        "refreshActiveSessionInterval": SESSION_LIFETIME,
    }
    return ApiAnswer(200, [stream])


def refresh_stream(call: ApiCall) -> ApiAnswer:
    """``refreshActiveStreamSession``: the session of ``{partition}`` lives on (200).

    Any partition is accepted: the emulator keeps no session to refuse.
    """
    action = call.param("action_name") or ""
    if action != REFRESH_ACTION:
        return refuse(f"action_name must be {REFRESH_ACTION}, got {action!r}")
    if not call.param("appId"):
        return refuse("appId is required")
    partition = call.path.rsplit("/", 1)[1]
    if not partition.isdigit():
        return refuse(f"partition must be a whole number, got {partition!r}")
    return ApiAnswer(200, [])
