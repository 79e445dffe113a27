"""Scene programs: the objects an agent places, their value tables, JSON export.

A scene program is a list of :class:`SceneObject`. Every field is a discrete level, exactly the
sub-action that chose it, so a program is recovered or compared exactly. The tables below turn the
levels into geometry; :mod:`spiral_envs.scene.renderer` turns a program into an image.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from spiral_envs._validate import check_int
from spiral_envs.actions import ActionComponent, ActionSpec, grid_points

__all__ = [
    "COLOR_LEVELS",
    "FLOOR_HALF_EXTENT",
    "GRID",
    "OBJECT_TYPES",
    "SIZE_LEVELS",
    "SceneObject",
    "SceneProgram",
    "scene_action_spec",
]

#: The four MuJoCo primitives an object can be, indexed by the ``type`` sub-action.
OBJECT_TYPES: tuple[str, ...] = ("sphere", "box", "cylinder", "capsule")
#: Placement grid: ``GRID x GRID`` cells over the floor square ``[-1, 1]^2`` (metres).
GRID: int = 16
FLOOR_HALF_EXTENT: float = 1.0
_FORMAT = "spiral-scene"  # the "format" field of exported programs
#: Object scale ``s`` (metres) per ``size`` level; see :func:`SceneObject.geom_size`.
SIZE_LEVELS: tuple[float, ...] = (0.12, 0.16, 0.20)
#: Colour value per level of each RGB channel (``red``, ``green``, ``blue`` sub-actions).
COLOR_LEVELS: tuple[float, ...] = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)

# Geometry per type for scale s: MuJoCo ``size`` = factors * s, centre height = height * s.
# sphere: radius s; box: cube of half side 0.8 s; cylinder: radius s, half height 0.8 s (a drum);
# capsule: radius 0.6 s, half length s (an upright pill, 3.2 s tall).
_SIZE_FACTORS = {
    "sphere": (1.0, 0.0, 0.0),
    "box": (0.8, 0.8, 0.8),
    "cylinder": (1.0, 0.8, 0.0),
    "capsule": (0.6, 1.0, 0.0),
}
_HEIGHT_FACTORS = {"sphere": 1.0, "box": 0.8, "cylinder": 0.8, "capsule": 1.6}
# Radius of the footprint on the floor, used by the generator to keep target objects apart.
_FOOTPRINT_FACTORS = {"sphere": 1.0, "box": 0.8 * 2**0.5, "cylinder": 1.0, "capsule": 0.6}


def scene_action_spec() -> ActionSpec:
    """The action components of the scene env, in sampling order.

    ``flag`` (1 = place an object, 0 = skip this step), ``type`` (:data:`OBJECT_TYPES`),
    ``position`` (flat index over the 16 x 16 grid, ``row * 16 + col``, values the cell corner
    ``(x, y)`` in ``[0, 1)`` image units: row 0 is the far edge at the top of the image),
    ``size`` (:data:`SIZE_LEVELS`), ``red``, ``green``, ``blue`` (:data:`COLOR_LEVELS`). All but
    ``flag`` are gated.
    """
    colors = np.asarray(COLOR_LEVELS)
    return ActionSpec(
        (
            ActionComponent("flag", 2, np.array([0, 1]), gated=False),
            ActionComponent("type", len(OBJECT_TYPES), np.arange(len(OBJECT_TYPES))),
            ActionComponent("position", GRID * GRID, grid_points(GRID), grid=(GRID, GRID)),
            ActionComponent("size", len(SIZE_LEVELS), np.asarray(SIZE_LEVELS)),
            ActionComponent("red", len(COLOR_LEVELS), colors),
            ActionComponent("green", len(COLOR_LEVELS), colors),
            ActionComponent("blue", len(COLOR_LEVELS), colors),
        )
    )


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene, as discrete levels.

    Attributes:
        type: Index into :data:`OBJECT_TYPES`.
        position: Flat grid cell ``row * GRID + col`` (row 0 is the far side, y = +1).
        size: Index into :data:`SIZE_LEVELS`.
        color: ``(red, green, blue)`` indices into :data:`COLOR_LEVELS`.
    """

    type: int
    position: int
    size: int
    color: tuple[int, int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "color", tuple(int(c) for c in self.color))
        if len(self.color) != 3:
            raise ValueError(f"color must have 3 levels (red, green, blue), got {self.color}")
        levels = {"type": len(OBJECT_TYPES), "position": GRID * GRID, "size": len(SIZE_LEVELS)}
        for name, n in levels.items():
            value = check_int(f"SceneObject {name}", getattr(self, name), 0, n - 1)
            object.__setattr__(self, name, value)
        for name, c in zip(("red", "green", "blue"), self.color, strict=True):
            check_int(f"SceneObject {name}", c, 0, len(COLOR_LEVELS) - 1)

    # -- derived values ------------------------------------------------------------------------
    @property
    def type_name(self) -> str:
        return OBJECT_TYPES[self.type]

    @property
    def row(self) -> int:
        return self.position // GRID

    @property
    def col(self) -> int:
        return self.position % GRID

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        return (*(COLOR_LEVELS[c] for c in self.color), 1.0)

    @property
    def scale(self) -> float:
        return SIZE_LEVELS[self.size]

    def geom_size(self) -> tuple[float, float, float]:
        """MuJoCo ``geom size`` of the object."""
        return tuple(f * self.scale for f in _SIZE_FACTORS[self.type_name])  # type: ignore[return-value]

    def world_position(self) -> tuple[float, float, float]:
        """Centre of the object in metres: the centre of its cell, resting on the floor."""
        cell = 2.0 * FLOOR_HALF_EXTENT / GRID
        x = -FLOOR_HALF_EXTENT + (self.col + 0.5) * cell
        y = FLOOR_HALF_EXTENT - (self.row + 0.5) * cell
        return (x, y, _HEIGHT_FACTORS[self.type_name] * self.scale)

    def footprint(self) -> float:
        """Radius (metres) of a disc on the floor that covers the object."""
        return _FOOTPRINT_FACTORS[self.type_name] * self.scale

    # -- conversions ---------------------------------------------------------------------------
    @classmethod
    def from_action(cls, action: Sequence[int]) -> SceneObject:
        """The object chosen by a (valid) action ``[flag, type, position, size, r, g, b]``."""
        _, t, p, s, r, g, b = (int(a) for a in action)
        return cls(t, p, s, (r, g, b))

    def to_action(self) -> np.ndarray:
        """The action that places this object (``flag`` = 1)."""
        return np.array([1, self.type, self.position, self.size, *self.color], dtype=np.int64)

    def to_dict(self) -> dict:
        return {
            "type": self.type_name,
            "row": self.row,
            "col": self.col,
            "size": self.size,
            "color": list(self.color),
        }

    @classmethod
    def from_dict(cls, d: dict) -> SceneObject:
        t = d["type"]
        if isinstance(t, str):
            if t not in OBJECT_TYPES:
                raise ValueError(f"unknown object type {t!r}: accepted {list(OBJECT_TYPES)}")
            t = OBJECT_TYPES.index(t)
        if "position" in d:
            position = int(d["position"])
        else:
            row, col = int(d["row"]), int(d["col"])
            if not (0 <= row < GRID and 0 <= col < GRID):
                raise ValueError(f"row, col = {row}, {col}: accepted 0..{GRID - 1}")
            position = row * GRID + col
        return cls(int(t), position, int(d["size"]), tuple(d["color"]))


@dataclass
class SceneProgram:
    """The objects of one scene, in placement order, with JSON export.

    Pure data, like :class:`spiral_envs.paint.StrokeProgram`: rendering it is
    :func:`spiral_envs.scene.render_scene`.

    Attributes:
        objects: The placed objects.
    """

    objects: list[SceneObject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self) -> Iterator[SceneObject]:
        return iter(self.objects)

    def __getitem__(self, i: int) -> SceneObject:
        return self.objects[i]

    def append(self, obj: SceneObject) -> None:
        self.objects.append(obj)

    def copy(self) -> SceneProgram:
        return SceneProgram(list(self.objects))

    def to_dict(self) -> dict:
        """A JSON-able dict: the value tables and the objects (type name, row, col, levels)."""
        return {
            "format": _FORMAT,
            "version": 1,
            "grid": GRID,
            "types": list(OBJECT_TYPES),
            "size_levels": list(SIZE_LEVELS),
            "color_levels": list(COLOR_LEVELS),
            "objects": [o.to_dict() for o in self.objects],
        }

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict | list) -> SceneProgram:
        """Reads :meth:`to_dict` output, or a bare list of object dicts."""
        if isinstance(data, dict):
            if data.get("format", _FORMAT) != _FORMAT:
                raise ValueError(f"format {data['format']!r}: accepted {_FORMAT!r}")
            data = data["objects"]
        return cls([SceneObject.from_dict(o) for o in data])

    @classmethod
    def from_json(cls, text: str | dict | list) -> SceneProgram:
        """Reads :meth:`to_json` output (or, as :meth:`from_dict`, the dict or list it encodes)."""
        return cls.from_dict(json.loads(text) if isinstance(text, str) else text)


def as_objects(objects: Iterable[SceneObject] | SceneProgram) -> list[SceneObject]:
    """A plain list of objects from a program or any iterable of objects."""
    return list(objects.objects if isinstance(objects, SceneProgram) else objects)
