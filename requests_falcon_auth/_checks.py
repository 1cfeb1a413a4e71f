"""Argument checks shared by the constructors: one idiom, one wording of the error."""

from __future__ import annotations

import math

from .errors import ConfigurationError

__all__ = ["seconds", "timeout_pair"]


def seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite number of seconds (``bool`` is no number here).

    Raises:
        ConfigurationError: not a number, not finite, negative, or zero when that is refused.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number of seconds, got {value!r}.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ConfigurationError(f"{name} must be {bound} seconds, got {value!r}.")
    return float(value)


def timeout_pair(value: object, name: str = "timeout") -> tuple[float, float]:
    """A ``timeout=`` as requests takes it (seconds, or (connect, read)) as (connect, read).

    ``None`` (wait forever) is refused: every call to the token service must end.

    Raises:
        ConfigurationError: anything but a positive number or a pair of them.
    """
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ConfigurationError(
                f"{name} must be seconds or a (connect, read) pair, got {len(value)} values."
            )
        return seconds(value[0], f"{name}[0]"), seconds(value[1], f"{name}[1]")
    if value is None:
        raise ConfigurationError(
            f"{name}=None would let a call hang forever; give seconds or (connect, read)."
        )
    single = seconds(value, name)
    return single, single
