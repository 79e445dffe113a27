"""Argument checks shared by the envs, renderers and datasets, so bad input reads the same."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["MAX_EPISODE_LENGTH", "IntegerTypeError", "check_int"]

#: The longest episode an env accepts: the ``step`` observation is uint8. (An int32 ``step`` made
#: ``gymnasium.wrappers.FlattenObservation`` turn the uint8 images into int32.)
MAX_EPISODE_LENGTH = 255


class IntegerTypeError(TypeError, ValueError):
    """An argument that must be an integer is not one.

    Both a ``TypeError`` and a ``ValueError``: the envs reported it as the latter and the dataset
    loader as the former, and callers catching either keep working.
    """


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """Returns ``value`` as an ``int`` if it is an integer in ``low..high`` (inclusive).

    ``high=None`` means no upper bound. ``bool`` is rejected although Python counts it as an
    integer: ``canvas_size=True`` is a mistake, not 1.

    Raises:
        IntegerTypeError: ``value`` is not an integer (or is a bool).
        ValueError: ``value`` is out of range. Both messages name the argument, the value and
            the accepted range.
    """
    accepted = f">= {low}" if high is None else f"in {low}..{high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise IntegerTypeError(f"{name} must be an integer {accepted}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return int(value)
