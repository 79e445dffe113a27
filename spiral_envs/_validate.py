"""Argument checks shared by the envs, renderers and datasets, so bad input reads the same."""

from __future__ import annotations

import difflib
import inspect
import numbers
from typing import Any

__all__ = ["MAX_EPISODE_LENGTH", "IntegerTypeError", "check_int", "reject_unknown_kwargs"]

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


def reject_unknown_kwargs(cls: type, unknown: dict[str, Any]) -> None:
    """Raises one ``TypeError`` naming the unknown keywords, the nearest accepted name of each,
    and every accepted name of ``cls.__init__`` (Python's own error lists none of them).

    Raises:
        TypeError: ``unknown`` is not empty.
    """
    if not unknown:
        return
    params = inspect.signature(cls.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = [p.name for p in params if p.name != "self" and p.kind in named]
    hints = []
    for name in unknown:
        near = difflib.get_close_matches(name, accepted, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise TypeError(
        f"{cls.__name__}: unknown keyword argument {', '.join(hints)}; accepted: "
        f"{', '.join(accepted)}"
    )
