"""The pycairo painter: a :class:`~spiral_envs.protocols.Renderer` that paints brush strokes.

The brush approximates the original SPIRAL environment's libmypaint ``classic/dry_brush``:

* opacity follows pressure as the dry brush does, ``alpha(p) = (0.8 + 0.2 p) p`` (nothing is
  painted at ``p = 0``), and is interpolated linearly from the stroke's start pressure to its end
  pressure along the stroke (a linear gradient from start to end point);
* the stroke is a quadratic Bézier curve, anti-aliased, with round (soft) ends; its width is the
  brush diameter;
* on a single stroke the paint does not pile up where the curve crosses itself, as one pass of a
  real brush.

One cairo stroke call per step keeps a step within about twice the cost of the bare stroke (see
``benchmarks/bench_paint.py``). libmypaint's jittered, cloud-like dabs are not reproduced: pixel
equality with the original was never a goal.
"""

from __future__ import annotations

import cairo
import numpy as np

from spiral_envs.paint.strokes import Stroke

__all__ = ["CairoPainter", "brush_alpha", "render_strokes"]


def brush_alpha(pressure: float) -> float:
    """Opacity of the dry brush at ``pressure`` in ``[0, 1]``."""
    return (0.8 + 0.2 * pressure) * pressure


class CairoPainter:
    """Paints :class:`Stroke` items on a square canvas with pycairo.

    Greyscale canvases use an 8-bit alpha surface (the ink) and are returned as ``255 - ink``;
    colour canvases use an opaque ARGB32 surface with a white background.

    Args:
        size: Canvas side in pixels.
        channels: 1 (greyscale, black ink) or 3 (colour).
    """

    def __init__(self, size: int, channels: int = 1) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.size = int(size)
        self.channels = channels
        fmt = cairo.FORMAT_A8 if channels == 1 else cairo.FORMAT_RGB24
        self._surface = cairo.ImageSurface(fmt, self.size, self.size)
        self._ctx = cairo.Context(self._surface)
        self._ctx.set_line_cap(cairo.LINE_CAP_ROUND)
        self._ctx.set_line_join(cairo.LINE_JOIN_ROUND)
        stride = self._surface.get_stride()
        buf = self._surface.get_data()
        if channels == 1:
            self._pixels = np.ndarray((self.size, stride), np.uint8, buf)[:, : self.size]
        else:
            # Little-endian RGB24 is stored as B, G, R, X bytes.
            words = np.ndarray((self.size, stride // 4, 4), np.uint8, buf)
            self._pixels = words[:, : self.size, 2::-1]
        self.reset()

    def reset(self) -> None:
        ctx = self._ctx
        if self.channels == 1:
            ctx.set_operator(cairo.OPERATOR_CLEAR)
            ctx.paint()
            ctx.set_operator(cairo.OPERATOR_OVER)
        else:
            ctx.set_source_rgb(1.0, 1.0, 1.0)
            ctx.paint()

    def draw(self, item: Stroke) -> None:
        s = self.size
        x0, y0 = item.start
        cx, cy = item.control
        x1, y1 = item.end
        x0, y0, cx, cy, x1, y1 = x0 * s, y0 * s, cx * s, cy * s, x1 * s, y1 * s
        r, g, b = item.color
        a0 = brush_alpha(item.pressure[0])
        a1 = brush_alpha(item.pressure[1])
        ctx = self._ctx
        if a0 == a1 or (x0 == x1 and y0 == y1):
            ctx.set_source_rgba(r, g, b, a1)
        else:
            grad = cairo.LinearGradient(x0, y0, x1, y1)
            grad.add_color_stop_rgba(0.0, r, g, b, a0)
            # Opacity is quadratic in pressure: a middle stop keeps the ramp close to it.
            grad.add_color_stop_rgba(0.5, r, g, b, brush_alpha(0.5 * sum(item.pressure)))
            grad.add_color_stop_rgba(1.0, r, g, b, a1)
            ctx.set_source(grad)
        # A quadratic Bezier as the equivalent cubic.
        ctx.move_to(x0, y0)
        ctx.curve_to(
            x0 + 2.0 / 3.0 * (cx - x0),
            y0 + 2.0 / 3.0 * (cy - y0),
            x1 + 2.0 / 3.0 * (cx - x1),
            y1 + 2.0 / 3.0 * (cy - y1),
            x1,
            y1,
        )
        ctx.set_line_width(2.0 * item.radius * s)
        ctx.stroke()

    def canvas(self) -> np.ndarray:
        self._surface.flush()
        if self.channels == 1:
            out = np.subtract(255, self._pixels, dtype=np.uint8)
            return out.reshape(self.size, self.size, 1)
        return self._pixels.copy()

    def close(self) -> None:
        self._surface.finish()


def render_strokes(strokes, size: int, channels: int) -> np.ndarray:
    """Paints ``strokes`` on a fresh ``size`` px canvas and returns it (uint8, H x W x C)."""
    painter = CairoPainter(size, channels)
    for stroke in strokes:
        painter.draw(stroke)
    image = painter.canvas()
    painter.close()
    return image
