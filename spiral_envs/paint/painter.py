"""The pycairo painter: a :class:`~spiral_envs.protocols.Renderer` that paints brush strokes.

The brush approximates the original SPIRAL environment's libmypaint ``classic/dry_brush``:

* opacity follows pressure as the dry brush does, ``alpha(p) = (0.8 + 0.2 p) p``
  (:func:`spiral_envs.paint.strokes.brush_alpha`; nothing is painted at ``p = 0``), and is
  interpolated linearly from the stroke's start pressure to its end pressure along the stroke (a
  linear gradient from start to end point);
* the stroke is a quadratic Bézier curve, anti-aliased, with round (soft) ends; its width is the
  brush diameter;
* the paint is laid through a fixed "paper grain" texture (smooth multi-scale noise, opacity
  factor 0.45..1), offset per stroke by a hash of its geometry, which gives the dry brush's
  uneven, cloud-like deposit instead of a flat tube; the texture is defined in canvas units, so a
  program re-rendered at a higher resolution shows the same grain, smoother;
* on a single stroke the paint does not pile up where the curve crosses itself, as one pass of a
  real brush.

A paint step is one cairo stroke into a group masked by the texture, about twice the cost of a
bare stroke; with random actions (half of them moves) an env step stays near the cost of one bare
stroke (see ``benchmarks/bench_paint.py``). Pixel equality with libmypaint is not a goal.
"""

from __future__ import annotations

import cairo
import numpy as np

from spiral_envs.paint.strokes import Stroke, StrokeProgram, brush_alpha

__all__ = ["CairoPainter", "render_program", "render_strokes"]

_TEXTURE_SIZE = 128  # texture pixels per canvas side
_texture_surface: cairo.ImageSurface | None = None


def grain_texture(size: int = _TEXTURE_SIZE, seed: int = 1234) -> np.ndarray:
    """The brush's paper-grain opacity factors, ``float (size, size)`` in ``[0.45, 1]``.

    Smooth noise from three octaves (8, 16 and 32 cells per side), fixed by ``seed`` so every
    process paints the same pixels.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    acc = np.zeros((size, size))
    for cells, weight in ((8, 0.5), (16, 0.3), (32, 0.2)):
        small = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
        acc += weight * np.asarray(small.resize((size, size), Image.Resampling.BICUBIC)) / 255.0
    acc = (acc - acc.min()) / (acc.max() - acc.min())
    return np.clip(0.45 + 0.6 * acc, 0.0, 1.0)


def _texture() -> cairo.ImageSurface:
    global _texture_surface
    if _texture_surface is None:
        surface = cairo.ImageSurface(cairo.FORMAT_A8, _TEXTURE_SIZE, _TEXTURE_SIZE)
        pixels = np.ndarray((_TEXTURE_SIZE, surface.get_stride()), np.uint8, surface.get_data())
        pixels[:, :_TEXTURE_SIZE] = np.rint(grain_texture() * 255).astype(np.uint8)
        surface.mark_dirty()
        _texture_surface = surface
    return _texture_surface


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
        self._grain = cairo.SurfacePattern(_texture())
        self._grain.set_extend(cairo.EXTEND_REFLECT)
        self._grain.set_filter(
            cairo.FILTER_GOOD if self.size > _TEXTURE_SIZE else cairo.FILTER_FAST
        )
        self._grain_scale = _TEXTURE_SIZE / self.size
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
        ctx.push_group()
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
        ctx.pop_group_to_source()
        # Texture offset from the stroke's geometry (canvas units): deterministic, varied.
        ex, ey = item.end
        sx, sy = item.start
        m = cairo.Matrix(self._grain_scale, 0.0, 0.0, self._grain_scale)
        offset = cairo.Matrix(x0=float(int(97 * ex + 31 * sy)), y0=float(int(89 * ey + 43 * sx)))
        self._grain.set_matrix(m.multiply(offset))
        ctx.mask(self._grain)

    def snapshot(self) -> np.ndarray:
        """A copy of the surface's pixels, for :meth:`restore` (trying strokes without keeping
        them, as :class:`spiral_envs.paint.GreedySearch` does)."""
        self._surface.flush()
        return self._buffer().copy()

    def restore(self, snapshot: np.ndarray) -> None:
        """Puts back the pixels of a :meth:`snapshot` of this painter."""
        self._buffer()[:] = snapshot
        self._surface.mark_dirty()

    def _buffer(self) -> np.ndarray:
        return np.ndarray(
            (self.size, self._surface.get_stride()), np.uint8, self._surface.get_data()
        )

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


def render_program(program: StrokeProgram, size: int | None = None) -> np.ndarray:
    """Paints a stroke program on a blank canvas of ``size`` px (default: the agent's size).

    At the agent's size the image equals the env's final observation pixel for pixel; larger
    sizes re-render the same strokes sharper (coordinates are in canvas units).
    """
    return render_strokes(program.strokes, size or program.canvas_size, program.channels)
