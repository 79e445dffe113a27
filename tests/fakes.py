"""A tiny numpy painting env with the spiral_envs contract, for fast agent tests.

It follows the observation/action conventions of ``SpiralPaint-*`` (``canvas``/``target``/``step``
Dict, ``MultiDiscrete`` from an :class:`~spiral_envs.ActionSpec`, reward 0, fixed-length
episodes, ``info["l2"]`` at the last step) on a small canvas, with straight thick lines instead
of Bézier strokes, so tests of the trainer run in seconds without cairo.
Register it with :func:`register_fake_env`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spiral_envs.actions import ActionComponent, ActionSpec, grid_points

__all__ = [
    "FakeDataset",
    "FakePaintEnv",
    "interrupt",
    "on_nth_reward_call",
    "random_rollout",
    "register_fake_env",
    "small_cfg",
]


class FakeDataset:
    """Random axis-aligned dark rectangles on white paper."""

    def __init__(self, size: int = 16, channels: int = 1, n: int = 64, seed: int = 0) -> None:
        self.name = "fake"
        self.image_shape = (size, size, channels)
        rng = np.random.default_rng(seed)
        imgs = np.full((n, size, size, channels), 255, np.uint8)
        for img in imgs:
            y0, x0 = rng.integers(0, size // 2, 2)
            h, w = rng.integers(2, size // 2, 2)
            img[y0 : y0 + h, x0 : x0 + w] = 0
        self.images = imgs

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.images[i].copy()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.images[rng.integers(0, len(self), n)].copy()


class FakePaintEnv(gym.Env):
    """Straight-line painting on a ``size`` canvas over a ``grid`` of positions."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        size: int = 16,
        grid: int = 8,
        episode_length: int = 4,
        conditional: bool = True,
        color: bool = False,
        split: str = "train",
    ) -> None:
        self.size, self.grid, self.episode_length = size, grid, episode_length
        self.conditional, self.channels = conditional, 3 if color else 1
        pts = grid_points(grid)
        comps = [
            ActionComponent("flag", 2, np.array([0, 1]), gated=False),
            ActionComponent("end", grid * grid, pts, grid=(grid, grid), gated=False),
            ActionComponent("control", grid * grid, pts, grid=(grid, grid)),
            ActionComponent("size", 3, np.array([1.0, 2.0, 3.0])),
            ActionComponent("pressure", 4, np.linspace(0.25, 1.0, 4)),
        ]
        if color:
            comps += [ActionComponent(c, 4, np.linspace(0, 1, 4)) for c in ("red", "green", "blue")]
        self.action_spec = ActionSpec(tuple(comps))
        self.action_space = self.action_spec.space()
        img = spaces.Box(0, 255, (size, size, self.channels), np.uint8)
        obs = {"canvas": img, "step": spaces.Box(0, episode_length, (1,), np.int32)}
        if conditional:
            obs["target"] = img
        self.observation_space = spaces.Dict(obs)
        self.dataset = FakeDataset(size, self.channels, seed=0 if split == "train" else 1)
        self._canvas = np.full((size, size, self.channels), 255, np.uint8)
        self._target = self._canvas.copy()
        self._t, self._pen = 0, np.zeros(2)
        self.program: list[dict] = []

    def _obs(self) -> dict:
        o = {"canvas": self._canvas.copy(), "step": np.array([self._t], np.int32)}
        if self.conditional:
            o["target"] = self._target.copy()
        return o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._canvas[:] = 255
        self._target = self.dataset.sample(self.np_random, 1)[0]
        self._t, self._pen, self.program = 0, np.zeros(2), []
        return self._obs(), {}

    def step(self, action):
        a = self.action_spec.check(action)
        end = self.action_spec["end"].values[a[1]] * self.size
        if a[0] == 1:
            r = self.action_spec["size"].values[a[3]]
            p = self.action_spec["pressure"].values[a[4]]
            yy, xx = np.mgrid[0 : self.size, 0 : self.size] + 0.5
            d = end - self._pen
            L = max(float(d @ d), 1e-9)
            tt = np.clip(((xx - self._pen[0]) * d[0] + (yy - self._pen[1]) * d[1]) / L, 0, 1)
            dist = np.hypot(xx - self._pen[0] - tt * d[0], yy - self._pen[1] - tt * d[1])
            ink = dist <= r
            self._canvas[ink] = (self._canvas[ink] * (1 - p)).astype(np.uint8)
            self.program.append({"flag": 1, "start": self._pen.tolist(), "end": end.tolist()})
        self._pen = end
        self._t += 1
        done = self._t >= self.episode_length
        info = {"strokes": len(self.program)}
        if done:
            d = (self._canvas.astype(np.float32) - self._target) / 255.0
            info["l2"] = float((d * d).mean())
        return self._obs(), 0.0, done, False, info

    def render(self):
        return np.repeat(self._canvas, 3 // self.channels, axis=-1)


def register_fake_env() -> None:
    """Registers ``FakePaint-v0`` (conditional) and ``FakePaint-Uncond-v0`` (idempotent)."""
    for name, cond in (("FakePaint-v0", True), ("FakePaint-Uncond-v0", False)):
        if name not in gym.registry:
            gym.register(name, entry_point="fakes:FakePaintEnv", kwargs={"conditional": cond})


def small_cfg(tmp_path, **kw):
    """A seconds-long training config on the fake env: tiny networks, no pictures or bars."""
    from agents.config import TrainConfig

    base = dict(
        env_id="FakePaint-v0",
        num_envs=4,
        total_steps=48,
        out_dir=str(tmp_path),
        channels=8,
        res_blocks=1,
        hidden=32,
        lstm=32,
        disc_channels=8,
        progress=False,
        tensorboard=False,
        sample_every=0,
        checkpoint_every=1000,
        threads=1,
    )
    return TrainConfig.from_dict({**base, **kw})


def interrupt() -> None:
    """As if the user pressed Ctrl-C (a killed driver)."""
    raise KeyboardInterrupt


def on_nth_reward_call(monkeypatch, n: int, action) -> None:
    """Runs ``action()`` inside the trainer's ``n``-th reward computation (one per iteration)."""
    import agents.train as tr

    real, calls = tr.compute_rewards, [0]

    def hooked(*a, **k):
        calls[0] += 1
        if calls[0] == n:
            action()
        return real(*a, **k)

    monkeypatch.setattr(tr, "compute_rewards", hooked)


def random_rollout(image_shape, batch: int = 4, steps: int = 3, seed: int = 0):
    """A batch of episodes of random canvases and targets (for the discriminator's pieces)."""
    from agents.actor import Rollout

    rng = np.random.default_rng(seed)
    canvases = rng.integers(0, 256, (steps + 1, batch, *image_shape), dtype=np.uint8)
    targets = rng.integers(0, 256, (batch, *image_shape), dtype=np.uint8)
    z = np.zeros((steps, batch), np.float32)
    actions = np.zeros((steps, batch, 1), np.int64)
    return Rollout(canvases, targets, z.astype(np.int64), actions, z, z, None, None, 0)
