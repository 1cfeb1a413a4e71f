"""A urllib3 ``Retry`` that understands Falcon's rate-limit header and caps the total wait.

Falcon answers 429 with ``X-Ratelimit-Retryafter``: the swagger calls it milliseconds since
the epoch, every SDK that reads it treats it as seconds since the epoch; both occur, so a value
above ~10^11 is taken as milliseconds. Plain ``Retry-After`` (RFC 9110 §10.2.3) is honoured too.

The same class serves the token calls (driven by ``oauth2.py``) and users' own pools::

    session.mount("https://", HTTPAdapter(max_retries=FalconRetry()))
"""

from __future__ import annotations

import logging
import math
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

    from ._exchange import Answer

__all__ = ["DEFAULT_MAX_WAIT", "FalconRetry", "parse_ratelimit_retryafter"]

log = logging.getLogger(__name__)

RATELIMIT_RETRYAFTER: Final = "X-Ratelimit-Retryafter"
DEFAULT_MAX_WAIT: Final = 30.0
# Any wait past a day is as good as "not today": capped there so arithmetic stays finite.
LONGEST_WAIT: Final = 86400.0
DEFAULT_STATUS_FORCELIST: Final = frozenset({429, 500, 502, 503, 504})

# Below this a value cannot be an epoch time (it would predate 2001): it is a delay in seconds.
_EPOCH_FLOOR: Final = 1e9
# Above this an epoch value is in milliseconds (10^11 seconds is the year 5138).
_EPOCH_MS_FLOOR: Final = 1e11


def parse_ratelimit_retryafter(value: str, now: float | None = None) -> float | None:
    """Seconds to wait according to an ``X-Ratelimit-Retryafter`` value, or None for junk.

    Args:
        value: the header as sent: epoch seconds, epoch milliseconds, or a small delay.
        now: the wall-clock time to measure against (``time.time()`` by default).
    """
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    if number < _EPOCH_FLOOR:
        return min(number, LONGEST_WAIT)
    if number > _EPOCH_MS_FLOOR:
        number /= 1000.0
    return min(max(0.0, number - (time.time() if now is None else now)), LONGEST_WAIT)


class FalconRetry(Retry):
    """Bounded exponential backoff that honours Falcon's rate-limit header.

    Everything :class:`urllib3.util.Retry` takes is accepted; the defaults differ: 3 tries,
    backoff factor 0.5, retry on 429 and 5xx, answer with the last response rather than raise
    when retries run out.

    Args:
        max_wait: the most time, in seconds, that all waits of one call may add up to. A
            server that asks for a longer wait ends the retries at once: the caller gets the
            429 and can decide, rather than block silently.
        waited: seconds already planned by earlier retries of this call (carried by ``new``).
    """

    def __init__(
        self,
        total: bool | int | None = 3,
        *,
        backoff_factor: float = 0.5,
        status_forcelist: Any = DEFAULT_STATUS_FORCELIST,
        raise_on_status: bool = False,
        max_wait: float = DEFAULT_MAX_WAIT,
        waited: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            total=total,
            backoff_factor=backoff_factor,
            status_forcelist=status_forcelist,
            raise_on_status=raise_on_status,
            **kwargs,
        )
        self.max_wait = max_wait
        self.waited = waited

    def new(self, **kwargs: Any) -> FalconRetry:
        # urllib3 copies only the fields it knows; without this the cap is lost on first retry.
        kwargs.setdefault("max_wait", self.max_wait)
        kwargs.setdefault("waited", self.waited)
        return super().new(**kwargs)

    def get_retry_after(self, response: Any) -> float | None:
        """Seconds the server asked us to wait, from either header; None when it did not say."""
        falcon_value = response.headers.get(RATELIMIT_RETRYAFTER)
        if falcon_value is not None:
            seconds = parse_ratelimit_retryafter(falcon_value)
            if seconds is not None:
                return seconds
        try:
            seconds = super().get_retry_after(response)
        except (InvalidHeader, ValueError, OverflowError):
            return None  # unreadable (a year 99999, 5000 digits): back off instead
        if seconds is None:
            return None
        try:
            return min(float(seconds), LONGEST_WAIT)
        except OverflowError:
            return LONGEST_WAIT

    def planned_wait(self, response: Any = None) -> float:
        """The wait ``sleep()`` will take before the next try."""
        if self.respect_retry_after_header and response is not None:
            retry_after = self.get_retry_after(response)
            if retry_after:
                return retry_after
        return self.get_backoff_time()

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | Answer | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> FalconRetry:
        """Counts one failed try; raises ``MaxRetryError`` when tries or wait budget run out.

        urllib3's signature (the same in 1.26 and 2.x), widened to the token client's
        :class:`~requests_falcon_auth._exchange.Answer`, which offers what ``Retry`` reads.
        """
        new_retry = super().increment(
            method,
            url,
            response,  # type: ignore[arg-type]  # an Answer quacks like urllib3's response
            error,
            _pool,
            _stacktrace,
        )
        wait = new_retry.planned_wait(response)
        if new_retry.waited + wait > new_retry.max_wait:
            log.debug(
                "Not retrying: a %.1f s wait would exceed max_wait=%.1f s", wait, self.max_wait
            )
            reason = ResponseError(f"the server asked for a {wait:.0f} s wait, over max_wait")
            raise MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        return new_retry.new(waited=new_retry.waited + wait)
