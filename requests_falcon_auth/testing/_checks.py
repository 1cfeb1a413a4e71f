"""The emulator's argument checks: one idiom for numbers, names and paths, one wording each.

The emulator keeps its own, apart from the client's (``requests_falcon_auth._checks``): it is the
client's referee, so it imports nothing of the client but the region names (design.md), and a
fault in one set of checks cannot hide the same fault in the other. A bool is never a number
here, though Python (and so JSON decoded by it) lets ``True`` pass for 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING

from ..clouds import AUTODISCOVER, normalize

if TYPE_CHECKING:
    from typing import TypeGuard  # Python 3.10+; only mypy reads it

__all__ = [
    "count",
    "credentials",
    "distinct_regions",
    "duration",
    "error_status",
    "flag",
    "is_whole",
    "non_empty",
    "request_path",
    "served_region",
    "tcp_port",
    "whole",
]


def is_whole(value: object, low: int, high: int | None = None) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool) from ``low`` to ``high`` (no bound if None)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )


def whole(value: object, what: str, low: int, high: int | None = None, *, meaning: str) -> int:
    """``value`` if :func:`is_whole`; ``meaning`` says the range in the error.

    Raises:
        ValueError: anything else.
    """
    if not is_whole(value, low, high):
        raise ValueError(f"{what} must be {meaning}, got {value!r}.")
    return value


def count(value: object, what: str) -> int:
    """A non-negative int: how many requests or calls a fault applies to."""
    return whole(value, what, 0, meaning="a non-negative int")


def tcp_port(value: object, what: str = "port") -> int:
    """0 (an ephemeral port) or a TCP port."""
    return whole(value, what, 0, 65535, meaning="0 or a TCP port")


def error_status(value: object, what: str = "status") -> int:
    """An HTTP error status (400-599) that has a reason phrase."""
    status = whole(value, what, 400, 599, meaning="an error status (400-599)")
    try:
        HTTPStatus(status)
    except ValueError:
        raise ValueError(f"{what} {status} is no HTTP status.") from None
    return status


def duration(value: object, what: str, *, positive: bool = False) -> float:
    """A number of seconds, at least 0 (more than 0 if ``positive``); NaN and infinity are
    refused (no timer waits forever, and no epoch second is infinitely far).

    Raises:
        ValueError: not an int or a float, or out of range.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 if positive else value >= 0)
        or not math.isfinite(value)
    ):
        bound = "a positive" if positive else "a non-negative"
        raise ValueError(f"{what} must be {bound} number of seconds, got {value!r}.")
    return float(value)


def flag(value: object, what: str) -> bool:
    """A bool (not merely something truthy).

    Raises:
        TypeError: anything else.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, got {value!r}.")
    return value


def non_empty(value: object, what: str) -> str:
    """A non-empty string.

    Raises:
        ValueError: anything else.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}.")
    return value


def credentials(client_id: object, client_secret: object) -> tuple[str, str]:
    """A client's id and secret: non-empty strings. The error quotes neither (one is a secret).

    Raises:
        ValueError: anything else.
    """
    refusal = "client_id and client_secret must be non-empty strings."
    if not isinstance(client_id, str) or not isinstance(client_secret, str):
        raise ValueError(refusal)
    if not client_id or not client_secret:
        raise ValueError(refusal)
    return client_id, client_secret


def request_path(value: object, what: str) -> str:
    """A request path as the emulator matches it: starting with ``/``, no query.

    Raises:
        ValueError: anything else.
    """
    if not isinstance(value, str) or not value.startswith("/") or "?" in value:
        raise ValueError(f"{what} must be a path starting with '/' (no query), got {value!r}.")
    return value


def distinct_regions(values: Iterable[str]) -> tuple[str, ...]:
    """Distinct Falcon regions, canonical, in order (``auto`` names no region to serve).

    Raises:
        ValueError: none, a repeat, ``auto`` or an unknown region.
    """
    canonical = tuple(normalize(region) for region in values)
    if not canonical or AUTODISCOVER in canonical or len(set(canonical)) != len(canonical):
        raise ValueError(f"regions must name distinct Falcon regions, got {canonical!r}.")
    return canonical


def served_region(region: str, served: Sequence[str]) -> str:
    """``region`` canonical, if it is one of ``served``.

    Raises:
        ValueError: an unknown region, or one not served.
    """
    canonical = normalize(region)
    if canonical not in served:
        raise ValueError(f"This emulator serves {', '.join(served)}, not {canonical!r}.")
    return canonical
