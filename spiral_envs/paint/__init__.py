"""Brush-stroke painting: the env, the pycairo painter, stroke programs and scripted baselines."""

from spiral_envs.paint.env import PaintEnv
from spiral_envs.paint.painter import CairoPainter, render_program, render_strokes
from spiral_envs.paint.scripted import GreedySearch, RandomPainter, ScriptedTracer
from spiral_envs.paint.strokes import Move, Stroke, StrokeProgram

__all__ = [
    "CairoPainter",
    "GreedySearch",
    "Move",
    "PaintEnv",
    "RandomPainter",
    "ScriptedTracer",
    "Stroke",
    "StrokeProgram",
    "render_program",
    "render_strokes",
]
