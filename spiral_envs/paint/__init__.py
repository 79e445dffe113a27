"""Brush-stroke painting: the env, the pycairo painter and stroke programs."""

from spiral_envs.paint.env import PaintEnv
from spiral_envs.paint.painter import CairoPainter, render_program, render_strokes
from spiral_envs.paint.strokes import Move, Stroke, StrokeProgram

__all__ = [
    "CairoPainter",
    "Move",
    "PaintEnv",
    "Stroke",
    "StrokeProgram",
    "render_program",
    "render_strokes",
]
