"""The SPIRAL painting environment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spiral_envs._validate import MAX_EPISODE_LENGTH, check_int, reject_unknown_kwargs
from spiral_envs.actions import ActionComponent, ActionSpec, grid_points
from spiral_envs.datasets import load_dataset
from spiral_envs.paint.painter import CairoPainter, render_program
from spiral_envs.paint.strokes import Move, Stroke, StrokeProgram
from spiral_envs.protocols import ImageDataset
from spiral_envs.rewards import l2_distance

__all__ = ["DATASETS", "PaintEnv"]

#: Datasets a paint env accepts, and whether each is in colour.
DATASETS = {"mnist": False, "omniglot": False, "celeba": True, "faces": True}


#: Where the pen rests after reset, ``(x, y)`` in canvas units, by ``pen_start``.
PEN_STARTS = {"corner": (0.0, 0.0), "centre": (0.5, 0.5)}


class PaintEnv(gym.Env):
    """Paint an image with brush strokes, one quadratic Bézier stroke per step.

    ## Description

    The painting environment of SPIRAL (Ganin et al., ICML 2018, "Synthesizing Programs for
    Images using Reinforced Adversarial Learning"), drawn with pycairo. The agent holds a pen that
    starts at the top-left corner of a white canvas (or its centre: ``pen_start``). Each step it
    either paints a quadratic Bézier stroke from the pen's position through a control point to an
    end point, or lifts the pen and moves it to the end point. Both points lie on a
    ``grid x grid`` lattice of cell corners over the canvas. Brush size, pressure (opacity,
    interpolated along the stroke from the previous pressure) and, in colour, the RGB colour are
    discrete levels. A target image is drawn from a dataset at every reset: in the *conditional*
    (reconstruction) variant the agent sees it, in the unconditional (generation) variant it does
    not.

    The episode's stroke program is kept in :attr:`program`: it exports as JSON and SVG and
    re-renders at any resolution.

    The targets come from :attr:`dataset`, an :class:`spiral_envs.ImageDataset` at the env's
    canvas size and channel count (the real images a discriminator of this env needs).

    ## Action Space

    ``MultiDiscrete`` with the components below, in the order an autoregressive agent samples
    them (greyscale datasets have no colour components). :attr:`action_spec` names them and holds
    their value tables; components other than ``flag`` and ``end`` are ignored by a move.

    | component | choices | meaning |
    |-----------|---------|---------|
    | flag      | 2 | 1 = paint a stroke, 0 = move (pen up) |
    | end       | grid² | end point, flat ``row * grid + col``; pixel ``canvas * idx / grid`` |
    | control   | grid² | Bézier control point, same lattice |
    | size      | len(brush_sizes) | brush radius in pixels of the agent's canvas |
    | pressure  | pressure_levels | ``linspace(0.1, 1, pressure_levels)``; opacity ``(0.8+0.2p)p`` |
    | red, green, blue | color_levels each | ``linspace(0, 1, color_levels)`` (colour only) |

    An action outside the space raises ``ValueError``. For continuous actions (SAC, TD3) wrap the
    env in :class:`spiral_envs.wrappers.ContinuousActions`: a ``Box(-1, 1, (7,), float32)`` (10
    in colour), ``(x, y)`` per point.

    ## Observation Space

    ``Dict``:

    * ``canvas``: ``uint8 (canvas_size, canvas_size, C)``, white paper (255) and dark ink, ``C``
      is 1 for greyscale datasets and 3 for colour ones;
    * ``target``: the same shape, the image to reproduce (conditional variant only), in the same
      ink convention;
    * ``step``: ``uint8 (1,)``, the number of steps taken so far. uint8 like the images, so
      ``gymnasium.wrappers.FlattenObservation`` gives a uint8 vector (Gymnasium flattens to the
      widest dtype of the entries).

    Every returned array is fresh: nothing is shared between steps or with the renderer.

    ## Rewards

    Always 0: SPIRAL's reward comes from a discriminator outside the environment. Wrap the env in
    :class:`spiral_envs.wrappers.DiscriminatorReward` or :class:`spiral_envs.wrappers.L2Reward`, or
    compute rewards in batch in a trainer with :mod:`spiral_envs.rewards`. The benchmark ids have
    the reward inside: ``SpiralBench-<Dataset>-Cond-v0`` is the conditional env in
    ``L2Reward(mode="per_step", scale=10)``, and ``SpiralBench-<Dataset>-Cond-Box-v0`` adds
    ``ContinuousActions`` (:data:`spiral_envs.BENCH_IDS`).

    ``info`` holds ``strokes`` (paint steps so far) and ``disjoint_strokes`` (paint steps that
    start a new connected sequence: the first paint, and each paint after a move), and, at the
    last step, ``l2``: the mean over pixels of ``((canvas - target) / 255) ** 2``.

    ## Starting State

    A blank canvas; the pen lifted, pressure 0, at the top-left corner ``(0, 0)`` as in the
    paper, or at the centre with ``pen_start="centre"``. From the corner, an agent whose first
    step paints drags a fading stroke in from the corner; unconditional agents learn to avoid
    that only slowly (``docs/results.md``, unconditional MNIST), hence the centre start.

    ## Episode End

    ``terminated=True`` after ``episode_length`` steps (the paper's 20). There is no truncation.

    ## Arguments

    ```python
    gym.make("SpiralPaint-MNIST-v0", split="test", episode_length=20)
    ```

    * ``dataset``: ``"mnist"``, ``"omniglot"``, ``"celeba"`` or ``"faces"``.
    * ``conditional``: observe the target (reconstruction), default ``False``.
    * ``split``: dataset split, e.g. ``"train"`` / ``"test"``.
    * ``data_dir``: where the dataset files are; default ``$SPIRAL_DATA_DIR``, then the cache
      (``spiral-download`` puts files there), then the small subsets shipped with the package
      (not for CelebA, whose licence forbids it). :attr:`data_source` says which was used.
    * ``canvas_size`` (64), ``grid`` (32), ``episode_length`` (20, at most 255). Grid point ``i``
      (per axis) is at pixel ``canvas_size * i / grid``; when ``canvas_size`` is not a multiple
      of ``grid`` (e.g. 63 with 32) the points fall between pixels: that works, and says so with a
      warning.
    * ``brush_sizes``: radii in pixels, default ``(1, 2, 4, 8, 12, 24)`` as the original.
    * ``pressure_levels`` (10), ``color`` (default: by dataset), ``color_levels`` (20).
    * ``pen_start``: ``"corner"`` (default, the paper's ``(0, 0)``) or ``"centre"``.
    * ``render_mode``: ``None`` (default, as ``gym.make`` passes it) or ``"rgb_array"``, which
      :meth:`render` needs; ``render_size`` (256): :meth:`render`
      re-renders the program at that resolution (target beside it in the conditional variant).

    ## Version History

    * v0: initial version. Differences from the original release: episodes have
      ``episode_length`` actions (the release counted 20 as 19), and a move stores the new pen
      position as (x, y) (the release stored (y, y)). The ``step`` observation is uint8 (it was
      int32 before the benchmark ids), hence ``episode_length`` <= 255. ``pen_start`` added
      later (its default keeps the original behaviour).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        dataset: str = "mnist",
        conditional: bool = False,
        split: str = "train",
        data_dir: str | None = None,
        canvas_size: int = 64,
        grid: int = 32,
        episode_length: int = 20,
        brush_sizes: Sequence[float] = (1, 2, 4, 8, 12, 24),
        pressure_levels: int = 10,
        color: bool | None = None,
        color_levels: int = 20,
        render_mode: str | None = None,
        render_size: int = 256,
        pen_start: str = "corner",
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(type(self), unknown)
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}: accepted {sorted(DATASETS)}")
        self.canvas_size = check_int("canvas_size", canvas_size, 8, 4096)
        self.grid = check_int("grid", grid, 2, self.canvas_size)
        # at most 255: ``step`` is uint8, so a flattened observation stays uint8 as the images
        self.episode_length = check_int("episode_length", episode_length, 1, MAX_EPISODE_LENGTH)
        pressure_levels = check_int("pressure_levels", pressure_levels, 1)
        color_levels = check_int("color_levels", color_levels, 2)
        self.render_size = check_int("render_size", render_size, 8, 4096)
        sizes = tuple(brush_sizes) if isinstance(brush_sizes, (list, tuple)) else None
        if not sizes or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in sizes
        ):
            raise ValueError(
                f"brush_sizes must be a non-empty list of positive radii in pixels, "
                f"got {brush_sizes!r}"
            )
        if not isinstance(pen_start, str) or pen_start not in PEN_STARTS:  # a list is unhashable
            raise ValueError(f"pen_start must be one of {sorted(PEN_STARTS)}, got {pen_start!r}")
        self.pen_start = pen_start
        if color is None:
            color = DATASETS[dataset]
        if not isinstance(color, bool):
            raise ValueError(f"color must be True, False or None, got {color!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode {render_mode!r} is not supported: accepted None, 'rgb_array'"
            )
        if self.canvas_size % self.grid:
            gym.logger.warn(
                f"canvas_size={self.canvas_size} is not a multiple of grid={self.grid}: grid "
                f"point i is at pixel {self.canvas_size} * i / {self.grid}, between pixels, so "
                "strokes start and end off the pixel grid (this works; a multiple of grid keeps "
                "them on pixels)"
            )
        self.dataset_name = dataset
        self.conditional = bool(conditional)
        self.split = split
        self.data_dir = data_dir
        self.color = color
        self.render_mode = render_mode
        self.channels = 3 if color else 1

        data = load_dataset(dataset, split=split, data_dir=data_dir, size=self.canvas_size)
        self.dataset = _with_channels(data, self.channels)
        #: Where the targets come from: a file path, or ``"embedded:..."`` for the small subset
        #: shipped in the package (used when no dataset files are found).
        self.data_source: str = getattr(data, "source", "unknown")

        # Value tables, kept as numpy for users and as Python lists for the hot path.
        points = grid_points(self.grid)
        pressures = np.linspace(0.1, 1.0, pressure_levels) if pressure_levels > 1 else np.ones(1)
        radii = np.asarray(sizes, dtype=np.float64)
        levels = np.linspace(0.0, 1.0, color_levels)
        components = [
            ActionComponent("flag", 2, np.array([0, 1]), gated=False),
            ActionComponent("end", self.grid**2, points, grid=(self.grid, self.grid), gated=False),
            ActionComponent("control", self.grid**2, points, grid=(self.grid, self.grid)),
            ActionComponent("size", len(radii), radii),
            ActionComponent("pressure", len(pressures), pressures),
        ]
        if color:
            components += [
                ActionComponent(c, color_levels, levels) for c in ("red", "green", "blue")
            ]
        self.action_spec = ActionSpec(tuple(components))
        self.action_space = self.action_spec.space()
        self._points = [tuple(p) for p in points.tolist()]
        self._radii = (radii / self.canvas_size).tolist()
        self._pressures = pressures.tolist()
        self._levels = levels.tolist()

        image = spaces.Box(0, 255, (self.canvas_size, self.canvas_size, self.channels), np.uint8)
        obs = {"canvas": image}
        if self.conditional:
            obs["target"] = image
        obs["step"] = spaces.Box(0, self.episode_length, (1,), np.uint8)
        self.observation_space = spaces.Dict(obs)

        self._painter: CairoPainter | None = None
        self.target: np.ndarray | None = None
        self.program = StrokeProgram(self.channels, self.canvas_size)
        self._reset_state()

    # -- state -------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._t = 0
        self._pen = PEN_STARTS[self.pen_start]
        self._pen_down = False
        self._pressure = 0.0
        self._strokes = 0
        self._disjoint = 0
        self.program = StrokeProgram(self.channels, self.canvas_size)

    @property
    def painter(self) -> CairoPainter:
        if self._painter is None:
            self._painter = CairoPainter(self.canvas_size, self.channels)
            for stroke in self.program.strokes:
                self._painter.draw(stroke)
        return self._painter

    @property
    def canvas(self) -> np.ndarray:
        """The current canvas, ``uint8 (canvas_size, canvas_size, channels)`` (a copy)."""
        return self.painter.canvas()

    @property
    def pen(self) -> tuple[float, float]:
        """The pen position ``(x, y)`` in canvas units."""
        return self._pen

    # -- gym API ------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_state()
        self.painter.reset()
        index = int(self.np_random.integers(len(self.dataset)))
        self.target = self.dataset[index]
        return self._obs(self.painter.canvas()), self._info(final=False)

    def step(self, action):
        if self.target is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.episode_length:
            raise RuntimeError("the episode has ended (terminated=True): call reset()")
        item = self._program_step(self.action_spec.check(action))
        self.program.steps.append(item)
        if isinstance(item, Stroke):
            self.painter.draw(item)
            self._strokes += 1
            if not self._pen_down:
                self._disjoint += 1
            self._pen_down = True
            self._pressure = item.pressure[1]
        else:
            self._pen_down = False
            self._pressure = 0.0
        self._pen = item.end
        self._t += 1
        canvas = self.painter.canvas()
        terminated = self._t >= self.episode_length
        info = self._info(final=terminated, canvas=canvas)
        return self._obs(canvas), 0.0, terminated, False, info

    def program_step(self, action, after_move_to: int | None = None) -> Stroke | Move:
        """The stroke (or move) that ``step(action)`` would add to :attr:`program` now, without
        painting it: what a search over actions needs (:class:`spiral_envs.paint.GreedySearch`).

        With ``after_move_to`` (a flat grid cell), the step as it would be after first moving the
        pen there (pen lifted, pressure 0): a search's look-ahead past a move.
        """
        a = self.action_spec.check(action)
        if after_move_to is None:
            return self._program_step(a)
        cell = self.action_spec.check([0, after_move_to] + [0] * (len(a) - 2))[1]
        return self._program_step(a, self._points[cell], 0.0)

    def _program_step(
        self, a: list[int], pen: tuple[float, float] | None = None, pressure: float | None = None
    ) -> Stroke | Move:
        pen = self._pen if pen is None else pen
        pressure = self._pressure if pressure is None else pressure
        end = self._points[a[1]]
        if a[0] == 0:
            return Move(pen, end)
        color = (0.0, 0.0, 0.0)
        if self.color:
            color = (self._levels[a[5]], self._levels[a[6]], self._levels[a[7]])
        pressures = (pressure, self._pressures[a[4]])
        return Stroke(pen, self._points[a[2]], end, pressures, self._radii[a[3]], color)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        image = _to_rgb(render_program(self.program, self.render_size))
        if self.conditional and self.target is not None:
            from PIL import Image

            target = Image.fromarray(_to_rgb(self.target)).resize(
                (self.render_size, self.render_size), Image.Resampling.NEAREST
            )
            image = np.concatenate([np.asarray(target), image], axis=1)
        return image

    def close(self) -> None:
        if self._painter is not None:
            self._painter.close()
            self._painter = None

    # -- helpers ------------------------------------------------------------------------------

    def _obs(self, canvas: np.ndarray) -> dict[str, np.ndarray]:
        obs = {"canvas": canvas}
        if self.conditional:
            obs["target"] = self.target.copy()
        obs["step"] = np.array([self._t], dtype=np.uint8)
        return obs

    def _info(self, final: bool, canvas: np.ndarray | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {"strokes": self._strokes, "disjoint_strokes": self._disjoint}
        if final:
            info["l2"] = float(l2_distance(canvas, self.target))
        return info

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_painter"] = None  # cairo surfaces do not pickle; re-painted from the program
        state["dataset"] = None  # reloaded from the arguments (it may be a large memory map)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        data = load_dataset(
            self.dataset_name, split=self.split, data_dir=self.data_dir, size=self.canvas_size
        )
        self.dataset = _with_channels(data, self.channels)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def _with_channels(data: ImageDataset, channels: int) -> ImageDataset:
    """``data`` itself when its images have ``channels``, else a converting view of it."""
    return data if data.image_shape[2] == channels else _ChannelAdapter(data, channels)


class _ChannelAdapter:
    """An :class:`~spiral_envs.protocols.ImageDataset` view of ``data`` with ``channels``.

    Greyscale images are repeated to RGB; colour ones become luma (ITU-R BT.601 weights).
    """

    def __init__(self, data: ImageDataset, channels: int) -> None:
        self.data = data
        self.channels = channels
        self.name = data.name
        self.image_shape = (*data.image_shape[:2], channels)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> np.ndarray:
        return self._convert(self.data[index])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        batch = self.data.sample(rng, n)
        out = np.empty((len(batch), *self.image_shape), np.uint8)
        for k, image in enumerate(batch):  # as __getitem__ does, so the pixels are the same
            out[k] = self._convert(image)
        return out

    def _convert(self, image: np.ndarray) -> np.ndarray:
        if self.channels == 3:
            return np.repeat(image, 3, axis=2)
        grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None]
