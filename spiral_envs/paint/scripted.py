"""Two reference agents that need no learning: a random painter and a scripted tracer.

They are baselines for a new algorithm (a learned agent should beat both) and they make the
pictures of the demo. Both act on the observation dict of a single paint env plus the target the
env drew (the tracer needs it even in the unconditional variant: it is a cheat, not an agent).
"""

from __future__ import annotations

import numpy as np

from spiral_envs.paint.strokes import Stroke

__all__ = ["RandomPainter", "ScriptedTracer"]


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
