"""Stroke programs: what a painting agent writes, independent of any resolution.

All coordinates and brush radii are in *canvas units*: ``(0, 0)`` is the top-left corner and
``1.0`` the canvas side, so a program re-renders at any size
(:func:`spiral_envs.paint.painter.render_program`) and exports as JSON or SVG. This module is pure
data: it imports no renderer, so the painter can depend on it and never the other way round.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Move", "Stroke", "StrokeProgram", "brush_alpha"]


def brush_alpha(pressure: float) -> float:
    """Opacity of the dry brush at ``pressure`` in ``[0, 1]``: ``(0.8 + 0.2 p) p``.

    It belongs to the brush, not to a renderer: the cairo painter and :meth:`StrokeProgram.to_svg`
    both use it, so a stroke looks the same in either.
    """
    return (0.8 + 0.2 * pressure) * pressure


@dataclass(frozen=True)
class Stroke:
    """One paint step: a quadratic Bézier from ``start`` through ``control`` to ``end``.

    Attributes:
        start: ``(x, y)`` pen position before the stroke, canvas units.
        control: ``(x, y)`` Bézier control point.
        end: ``(x, y)`` pen position after the stroke.
        pressure: ``(start, end)`` pressure in ``[0, 1]``, interpolated along the stroke.
        radius: Brush radius, canvas units.
        color: ``(r, g, b)`` in ``[0, 1]``.
    """

    start: tuple[float, float]
    control: tuple[float, float]
    end: tuple[float, float]
    pressure: tuple[float, float]
    radius: float
    color: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def point(self, t: float | np.ndarray) -> np.ndarray:
        """``B(t) = (1-t)^2 start + 2 (1-t) t control + t^2 end``, shape ``(..., 2)``."""
        t = np.asarray(t, dtype=np.float64)[..., None]
        p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (self.start, self.control, self.end))
        return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


@dataclass(frozen=True)
class Move:
    """A pen-up step: the pen jumps from ``start`` to ``end`` and paints nothing."""

    start: tuple[float, float]
    end: tuple[float, float]


@dataclass
class StrokeProgram:
    """The steps of one episode, in order, with what is needed to render them again.

    Attributes:
        channels: 1 for greyscale (black ink on white), 3 for colour.
        canvas_size: The resolution the agent saw, in pixels (for reference; rendering can use
            any size).
        steps: :class:`Stroke` and :class:`Move` items.
    """

    channels: int
    canvas_size: int
    steps: list[Stroke | Move] = field(default_factory=list)

    @property
    def strokes(self) -> list[Stroke]:
        return [s for s in self.steps if isinstance(s, Stroke)]

    def to_dict(self) -> dict:
        steps = []
        for s in self.steps:
            d = asdict(s)
            d["op"] = "paint" if isinstance(s, Stroke) else "move"
            steps.append(d)
        return {
            "format": "spiral-gym/stroke-program",
            "version": 1,
            "units": "canvas (0..1, origin top-left)",
            "channels": self.channels,
            "canvas_size": self.canvas_size,
            "steps": steps,
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> StrokeProgram:
        if data.get("format") != "spiral-gym/stroke-program":
            raise ValueError("not a spiral-gym stroke program (missing 'format' field)")
        steps: list[Stroke | Move] = []
        for d in data["steps"]:
            d = dict(d)
            op = d.pop("op")
            d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
            if op == "paint":
                steps.append(Stroke(**d))
            elif op == "move":
                steps.append(Move(**d))
            else:
                raise ValueError(f"unknown step op {op!r}: accepted 'paint', 'move'")
        return cls(channels=data["channels"], canvas_size=data["canvas_size"], steps=steps)

    @classmethod
    def from_json(cls, text: str) -> StrokeProgram:
        return cls.from_dict(json.loads(text))

    def to_svg(self, size: int = 256) -> str:
        """An SVG drawing of the program, ``size`` px square, one ``<path>`` per stroke.

        Pressure becomes a linear opacity gradient from start to end, like the painter's.
        """
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'viewBox="0 0 {size} {size}">',
            f'<rect width="{size}" height="{size}" fill="white"/>',
        ]
        defs, paths = [], []
        for i, s in enumerate(self.strokes):
            (x0, y0), (cx, cy), (x1, y1) = (
                (p[0] * size, p[1] * size) for p in (s.start, s.control, s.end)
            )
            rgb = "#" + "".join(f"{round(c * 255):02x}" for c in s.color)
            a0, a1 = brush_alpha(s.pressure[0]), brush_alpha(s.pressure[1])
            am = brush_alpha(0.5 * (s.pressure[0] + s.pressure[1]))
            defs.append(
                f'<linearGradient id="g{i}" gradientUnits="userSpaceOnUse" '
                f'x1="{x0:.3f}" y1="{y0:.3f}" x2="{x1:.3f}" y2="{y1:.3f}">'
                f'<stop offset="0" stop-color="{rgb}" stop-opacity="{a0:.4f}"/>'
                f'<stop offset="0.5" stop-color="{rgb}" stop-opacity="{am:.4f}"/>'
                f'<stop offset="1" stop-color="{rgb}" stop-opacity="{a1:.4f}"/>'
                "</linearGradient>"
            )
            paint = f"url(#g{i})" if (x0, y0) != (x1, y1) and a0 != a1 else rgb
            opacity = "" if paint != rgb else f' stroke-opacity="{a1:.4f}"'
            paths.append(
                f'<path d="M{x0:.3f} {y0:.3f} Q{cx:.3f} {cy:.3f} {x1:.3f} {y1:.3f}" fill="none" '
                f'stroke="{paint}"{opacity} stroke-width="{2 * s.radius * size:.3f}" '
                'stroke-linecap="round" stroke-linejoin="round"/>'
            )
        if defs:
            out.append("<defs>" + "".join(defs) + "</defs>")
        out.extend(paths)
        out.append("</svg>")
        return "\n".join(out)
