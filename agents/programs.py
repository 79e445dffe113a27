"""Stroke programs from action sequences: JSON-able dicts and SVG pictures.

Decodes a painting episode's ``MultiDiscrete`` actions with the env's
:class:`~spiral_envs.ActionSpec` value tables, following the painting semantics of
``reference/spiral-notes.md`` section 1: the pen starts at (0, 0); a paint step (flag 1) draws a
quadratic Bézier from the pen through ``control`` to ``end``; a move (flag 0) lifts the pen to
``end``. The SVG is resolution-free (a picture for people, not the agent's pixels).
"""

from __future__ import annotations

import numpy as np

from spiral_envs.actions import ActionSpec

__all__ = ["decode_program", "program_to_svg"]


def decode_program(spec: ActionSpec, actions: np.ndarray, canvas_size: int = 64) -> list[dict]:
    """One episode's actions ``(T, K)`` -> a list of steps with named, decoded values.

    Each item has ``"action"`` (the raw ints by component name) and, for paint steps, the stroke
    in canvas pixels: ``start``, ``control``, ``end`` ``[x, y]``, plus ``size``, ``pressure``
    and ``color`` where the env has them. Moves have ``"type": "move"`` and ``end``.
    """
    pen = [0.0, 0.0]
    out = []
    for a in np.asarray(actions).tolist():
        raw = dict(zip(spec.names, (int(v) for v in a), strict=True))
        item: dict = {"action": raw}

        def val(name: str, raw: dict = raw):
            return np.asarray(spec[name].values[raw[name]]).tolist()

        end = [float(v) * canvas_size for v in val("end")] if "end" in spec else pen
        if raw[spec.gate] == 1:
            item["type"] = "stroke"
            item["start"] = list(pen)
            if "control" in spec:
                item["control"] = [float(v) * canvas_size for v in val("control")]
            item["end"] = end
            for name in ("size", "pressure"):
                if name in spec:
                    item[name] = float(val(name))
            if all(c in spec for c in ("red", "green", "blue")):
                item["color"] = [float(val(c)) for c in ("red", "green", "blue")]
        else:
            item["type"] = "move"
            item["end"] = end
        pen = end
        out.append(item)
    return out


def program_to_svg(program: list[dict], canvas_size: int = 64, scale: int = 4) -> str:
    """An SVG picture of a decoded program (white paper, strokes as round-capped Bézier paths).

    Width is the brush diameter ``2 * size`` (px at the canvas size), opacity the dab opacity of
    the original brush ``(0.8 + 0.2 p) p`` for pressure ``p``.
    """
    w = canvas_size * scale
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{w}" '
        f'viewBox="0 0 {canvas_size} {canvas_size}">',
        f'<rect width="{canvas_size}" height="{canvas_size}" fill="white"/>',
    ]
    for it in program:
        if it["type"] != "stroke":
            continue
        (x0, y0), (x2, y2) = it["start"], it["end"]
        x1, y1 = it.get("control", [(x0 + x2) / 2, (y0 + y2) / 2])
        p = it.get("pressure", 1.0)
        r, g, b = (int(round(255 * c)) for c in it.get("color", [0.0, 0.0, 0.0]))
        lines.append(
            f'<path d="M {x0:.2f} {y0:.2f} Q {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f}" fill="none" '
            f'stroke="rgb({r},{g},{b})" stroke-opacity="{(0.8 + 0.2 * p) * p:.3f}" '
            f'stroke-width="{2 * it.get("size", 1.0):.2f}" stroke-linecap="round"/>'
        )
    lines.append("</svg>")
    return "\n".join(lines)
