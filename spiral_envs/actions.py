"""A description of a SPIRAL action space that agents can build their heads from.

Every environment of this package acts through a ``gymnasium.spaces.MultiDiscrete`` whose
components come in the order an autoregressive agent samples them. :class:`ActionSpec` names each
component, gives its value table, says which are spatial (a flat index over a grid, row-major:
``index = row * cols + col``) and which are ignored unless the *gate* component (``flag``) is 1
(paint a stroke, place an object). It is plain data, JSON-describable, and torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from gymnasium import spaces

__all__ = ["ActionComponent", "ActionSpec", "grid_points"]


def grid_points(grid: int) -> np.ndarray:
    """Returns the ``(grid * grid, 2)`` table of ``(x, y)`` cell corners in canvas units ``[0, 1)``.

    Flat index ``i`` is row ``i // grid`` (y) and column ``i % grid`` (x), as in the original:
    ``coord = idx / grid`` (so on a 64 px canvas with a 32 grid, pixels 0, 2, ..., 62).
    """
    idx = np.arange(grid * grid)
    return np.stack([idx % grid, idx // grid], axis=1).astype(np.float64) / grid


@dataclass(frozen=True)
class ActionComponent:
    """One sub-action.

    Attributes:
        name: Component name, for example ``"end"`` or ``"pressure"``.
        size: Number of choices.
        values: Value table, ``values[i]`` is what choice ``i`` means: shape ``(size,)`` for
            scalar components, ``(size, 2)`` of ``(x, y)`` in canvas units for spatial ones.
        grid: ``(rows, cols)`` when the component is a flat index over a grid, else ``None``.
        gated: ``True`` when the component is ignored unless the gate (``flag``) is 1.
    """

    name: str
    size: int
    values: np.ndarray
    grid: tuple[int, int] | None = None
    gated: bool = True

    def __post_init__(self) -> None:
        if len(self.values) != self.size:
            raise ValueError(f"{self.name}: {len(self.values)} values for size {self.size}")
        if self.grid is not None and self.grid[0] * self.grid[1] != self.size:
            raise ValueError(f"{self.name}: grid {self.grid} does not have {self.size} cells")

    @property
    def spatial(self) -> bool:
        return self.grid is not None


@dataclass(frozen=True)
class ActionSpec:
    """The components of a ``MultiDiscrete`` action, in sampling order.

    Attributes:
        components: The sub-actions, in the order of the action vector.
        gate: Name of the component whose value decides whether the ``gated`` components matter
            (value 1) or are ignored (value 0). It must come first.
    """

    components: tuple[ActionComponent, ...]
    gate: str = "flag"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate component names in {names}")
        if not names or names[0] != self.gate:
            raise ValueError(f"the gate {self.gate!r} must be the first component, got {names}")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components)

    @property
    def nvec(self) -> np.ndarray:
        return np.array([c.size for c in self.components], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.components)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> ActionComponent:
        return self.components[self._index[name]]

    def index(self, name: str) -> int:
        """Position of component ``name`` in the action vector."""
        return self._index[name]

    def space(self, seed: int | None = None) -> spaces.MultiDiscrete:
        """The matching ``MultiDiscrete`` space."""
        return spaces.MultiDiscrete(self.nvec, seed=seed)

    def active_mask(self, actions: np.ndarray) -> np.ndarray:
        """Which components matter for each action: ``bool (..., n_components)``.

        Gated components count only where the gate is 1; the others always count. Agents use it
        to leave ignored sub-actions out of log-probabilities and entropies.
        """
        actions = np.asarray(actions)
        gate_on = actions[..., self.index(self.gate)] == 1
        gated = np.array([c.gated for c in self.components])
        return np.where(gated, gate_on[..., None], True)

    def describe(self) -> list[dict]:
        """A JSON-able description: name, size, grid, gated, and scalar value tables."""
        out = []
        for c in self.components:
            d = {"name": c.name, "size": c.size, "grid": c.grid, "gated": c.gated}
            if not c.spatial:
                d["values"] = np.asarray(c.values).tolist()
            out.append(d)
        return out

    def check(self, action: Sequence[int] | np.ndarray) -> list[int]:
        """Validates one action and returns it as a list of Python ints.

        Raises:
            ValueError: naming the offending component and its accepted range.
        """
        try:
            values = np.asarray(action).tolist()
        except Exception as e:  # pragma: no cover - exotic inputs
            raise ValueError(f"action {action!r} is not an array of {len(self)} ints") from e
        if not isinstance(values, list) or len(values) != len(self.components):
            raise ValueError(
                f"action {action!r} must have {len(self.components)} components "
                f"{list(self.names)}, shape ({len(self.components)},)"
            )
        out = []
        for v, c in zip(values, self.components):
            if isinstance(v, float):
                if not v.is_integer():
                    raise ValueError(f"action component {c.name!r} = {v} is not an integer")
                v = int(v)
            if not isinstance(v, int):
                raise ValueError(f"action component {c.name!r} = {v!r} is not an integer")
            if v < 0 or v >= c.size:
                raise ValueError(
                    f"action component {c.name!r} = {v} is outside the action space: "
                    f"accepted 0..{c.size - 1}"
                )
            out.append(v)
        return out
