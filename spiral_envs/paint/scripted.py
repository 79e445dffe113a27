"""Reference agents that need no learning: a random painter, a scripted tracer, a greedy search.

They are baselines for a new algorithm (a learned agent should beat the first two) and they make
the pictures of the demo. Each acts on the observation dict of a single paint env plus the target
the env drew (the tracer and the search need it even in the unconditional variant: they are
cheats, not agents). The greedy search also paints trial strokes with the env's own renderer: it
measures what the action space allows, as a reference for a target, not a baseline to beat.
"""

from __future__ import annotations

import numpy as np

from spiral_envs.paint.strokes import Stroke
from spiral_envs.rewards import l2_distance

__all__ = ["GreedySearch", "RandomPainter", "ScriptedTracer"]


class RandomPainter:
    """Uniformly random actions from the env's action space."""

    def __init__(self, env, seed: int | None = None) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def reset(self, target: np.ndarray) -> None:
        pass

    def act(self, obs) -> np.ndarray:
        return self.space.sample()


class ScriptedTracer:
    """Traces the target with strokes between points sampled on its ink.

    Greyscale: pick up to ``episode_length`` well-spread grid points on the target's ink (farthest
    point sampling), visit them in nearest-neighbour order, and paint between consecutive points
    when the straight line between them stays on ink, else lift the pen. Colour: chain strokes
    between random points, each coloured like the target along its path, wide to narrow.
    """

    def __init__(self, env, seed: int | None = None) -> None:
        self.env = env.unwrapped
        self.spec = self.env.action_spec
        self.grid = self.env.grid
        self.rng = np.random.default_rng(seed)
        self.plan: list[np.ndarray] = []

    def reset(self, target: np.ndarray) -> None:
        self.plan = (self._colour_plan if target.shape[2] == 3 else self._ink_plan)(target)

    def act(self, obs) -> np.ndarray:
        if self.plan:
            return self.plan.pop(0)
        a = np.zeros(len(self.spec), np.int64)  # nothing left to do: move in place
        a[self.spec.index("end")] = self._cell(*self.env.pen)
        return a

    # -- helpers ------------------------------------------------------------------------------

    def _cell(self, x: float, y: float) -> int:
        g = self.grid
        return int(np.clip(round(y * g), 0, g - 1)) * g + int(np.clip(round(x * g), 0, g - 1))

    def _action(self, flag, end, control=None, size=0, pressure=-1, rgb=None) -> np.ndarray:
        a = np.zeros(len(self.spec), np.int64)
        a[self.spec.index("flag")] = flag
        a[self.spec.index("end")] = self._cell(*end)
        a[self.spec.index("control")] = self._cell(*(end if control is None else control))
        a[self.spec.index("size")] = size
        a[self.spec.index("pressure")] = pressure % self.spec["pressure"].size
        if rgb is not None:
            levels = self.spec["red"].size - 1
            for name, v in zip(("red", "green", "blue"), rgb):
                a[self.spec.index(name)] = int(round(v * levels))
        return a

    def _ink_plan(self, target: np.ndarray) -> list[np.ndarray]:
        n = self.env.episode_length
        h = target.shape[0]
        darkness = 1.0 - target[..., 0].astype(np.float32) / 255.0
        ys, xs = np.nonzero(darkness > 0.5)
        if len(xs) == 0:
            return []
        pts = np.stack([xs, ys], 1).astype(np.float64) / h
        # Farthest point sampling of about half the steps' worth of points.
        k = min(len(pts), max(2, (n + 1) // 2 + 2))
        chosen = [int(self.rng.integers(len(pts)))]
        dist = np.linalg.norm(pts - pts[chosen[0]], axis=1)
        for _ in range(k - 1):
            chosen.append(int(dist.argmax()))
            dist = np.minimum(dist, np.linalg.norm(pts - pts[chosen[-1]], axis=1))
        todo = [pts[i] for i in chosen]
        # Nearest-neighbour tour from the top-most point.
        todo.sort(key=lambda p: p[1])
        tour = [todo.pop(0)]
        while todo:
            d = [np.linalg.norm(p - tour[-1]) for p in todo]
            tour.append(todo.pop(int(np.argmin(d))))
        size = int(np.argmin(np.abs(self.spec["size"].values - 0.04 * h)))
        plan = [self._action(0, tour[0])]
        for a, b in zip(tour, tour[1:]):
            line = a + np.linspace(0, 1, 9)[:, None] * (b - a)
            px = np.clip((line * h).astype(int), 0, h - 1)
            on_ink = darkness[px[:, 1], px[:, 0]].mean() > 0.4
            plan.append(self._action(1, b, (a + b) / 2, size) if on_ink else self._action(0, b))
            if len(plan) >= n:
                break
        return plan[:n]

    def _colour_plan(self, target: np.ndarray) -> list[np.ndarray]:
        n = self.env.episode_length
        h = target.shape[0]
        radii = self.spec["size"].values
        plan = []
        pen = np.zeros(2)
        for i in range(n):
            frac = i / max(1, n - 1)
            radius = 0.3 * h * (1 - frac) + 0.06 * h * frac  # coarse to fine
            size = int(np.argmin(np.abs(radii - radius)))
            end = self.rng.uniform(0.1, 0.9, 2)
            control = np.clip((pen + end) / 2 + self.rng.normal(0, 0.1, 2), 0, 1)
            # Colour of the target along the stroke, where the brush will lay it.
            curve = Stroke(tuple(pen), tuple(control), tuple(end), (1, 1), 0).point(
                np.linspace(0, 1, 7)
            )
            px = np.clip((curve * h).astype(int), 0, h - 1)
            rgb = target[px[:, 1], px[:, 0]].mean(axis=0) / 255.0
            plan.append(self._action(1, end, control, size, -1, rgb))
            pen = end
        return plan


class GreedySearch:
    """Each step, the best of ``candidates`` random strokes by the L2 of the canvas it leaves.

    Every candidate paints from the pen (end, control point, size and pressure uniform over their
    levels); in colour its colour is the target's mean colour under the stroke's footprint, to
    the nearest level. Each is tried on the env's own painter (:meth:`CairoPainter.snapshot`,
    then restored), so the step it returns is scored exactly as the env will paint it. When no
    candidate lowers the L2 it moves the pen in place. The L2 it reaches with a few hundred
    candidates a step is a measured reference for what 20 strokes of the action space can do on a
    dataset (``benchmarks/greedy_search.py``).
    """

    def __init__(self, env, candidates: int = 200, seed: int | None = None) -> None:
        if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1:
            raise ValueError(f"candidates must be a positive int, got {candidates!r}")
        self.env = env.unwrapped
        self.spec = self.env.action_spec
        self.candidates = candidates
        self.rng = np.random.default_rng(seed)
        self.target = np.zeros((0, 0, 0), np.uint8)
        size = self.env.canvas_size
        self._pixel_xy = (np.mgrid[0:size, 0:size][::-1] + 0.5) / size  # (x, y) of each pixel

    def reset(self, target: np.ndarray) -> None:
        self.target = target

    def act(self, obs) -> np.ndarray:
        painter = self.env.painter
        before = painter.snapshot()
        best, best_l2 = None, self._l2(obs["canvas"])
        for _ in range(self.candidates):
            action = self._candidate()
            painter.draw(self.env.program_step(action))
            l2 = self._l2(painter.canvas())
            painter.restore(before)
            if l2 < best_l2:
                best, best_l2 = action, l2
        if best is None:
            best = np.zeros(len(self.spec), np.int64)
            best[self.spec.index("end")] = self._pen_cell()
        return best

    # -- helpers ------------------------------------------------------------------------------

    def _l2(self, canvas: np.ndarray) -> float:
        return float(l2_distance(canvas, self.target))

    def _pen_cell(self) -> int:
        points = self.spec["end"].values
        return int(np.argmin(np.abs(points - np.asarray(self.env.pen)).sum(1)))

    def _candidate(self) -> np.ndarray:
        a = np.array([self.rng.integers(c.size) for c in self.spec.components], np.int64)
        a[self.spec.index("flag")] = 1
        if "red" in self.spec.names:
            stroke = self.env.program_step(a)
            curve = stroke.point(np.linspace(0.0, 1.0, 9))
            d2 = np.square(self._pixel_xy[None] - curve[:, :, None, None]).sum(1).min(0)
            under = d2 <= max(stroke.radius, 0.5 / self.env.canvas_size) ** 2
            rgb = self.target[under].mean(0) / 255.0 if under.any() else self.rng.random(3)
            levels = self.spec["red"].values
            for name, v in zip(("red", "green", "blue"), rgb):
                a[self.spec.index(name)] = int(np.argmin(np.abs(levels - v)))
        return a
