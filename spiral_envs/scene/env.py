"""The SPIRAL 3D scene environment: compose a MuJoCo scene object by object."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from spiral_envs._validate import MAX_EPISODE_LENGTH, check_int, reject_unknown_kwargs
from spiral_envs.actions import ActionSpec
from spiral_envs.scene.generator import SceneDataset, sample_scene
from spiral_envs.scene.gl import select_gl_backend
from spiral_envs.scene.program import SceneObject, SceneProgram, scene_action_spec
from spiral_envs.scene.renderer import SceneRenderer
from spiral_envs.scene.scoring import pixel_l2, score_scene

__all__ = ["SceneEnv"]


class SceneEnv(gym.Env[dict, np.ndarray]):
    """Compose a 3D scene of primitives, one object per step; MuJoCo renders it.

    ## Description

    The fourth domain of SPIRAL (Ganin et al. 2018, "Synthesizing Programs for Images using
    Reinforced Adversarial Learning"): the agent writes a *scene program*, a list of objects
    placed on a floor, and a graphics engine it cannot differentiate (MuJoCo's OpenGL renderer,
    offscreen) turns the program into an image. Each step may place one object: one of four
    MuJoCo primitives (sphere, box, cylinder, capsule) on a 16 x 16 grid of cells over the floor
    square ``[-1, 1]^2`` m, at one of three sizes, in one of 64 colours (4 levels per RGB
    channel). A step may also skip, so scenes of 1 to ``episode_length`` objects fit an episode of
    fixed length. The camera (4.2 m away, 72 degrees above the floor, 32 degree field of view,
    framing the placement square so that image and grid are nearly aligned) and
    the lights (a headlight and a wide spot light) are fixed; the floor is a grey checker of
    0.5 m squares (4 x 4 grid cells each).

    Every episode draws a target scene from the same generator: 1 to 5 objects (``min_objects``
    .. ``max_objects``), each parameter uniform over its levels, objects kept from overlapping.
    Its program is known, so recovering it is scored exactly. In the conditional
    (reconstruction) env, ``SpiralMuJoCo-Scene-Cond-v0``, the observation carries the target
    image; in the generation env, ``SpiralMuJoCo-Scene-v0``, it does not (a discriminator's
    real images come from the same generator: ``env.unwrapped.dataset``, a
    :class:`spiral_envs.scene.SceneDataset` with the env's canvas size and object counts).

    ## Action Space

    ``MultiDiscrete([2, 4, 256, 3, 4, 4, 4])``, described by ``env.unwrapped.action_spec`` (an
    :class:`spiral_envs.ActionSpec`), in the order an autoregressive agent samples it:

    | Index | Name | Values |
    |-------|------|--------|
    | 0 | ``flag`` | 1 = place an object, 0 = skip the step (the rest is then ignored) |
    | 1 | ``type`` | sphere, box, cylinder, capsule |
    | 2 | ``position`` | grid cell ``row * 16 + col`` (spatial, ``grid=(16, 16)``) |
    | 3 | ``size`` | scale ``s`` = 0.12, 0.16, 0.20 m |
    | 4-6 | ``red``, ``green``, ``blue`` | 0, 1/3, 2/3, 1 |

    Grid row 0 is the far edge of the floor (top of the image), column 0 the left. Shapes for a
    scale ``s``: sphere of radius ``s``; cube of half side ``0.8 s``; cylinder of radius ``s``
    and half height ``0.8 s``; upright capsule of radius ``0.6 s`` and half length ``s``.

    Objects rest on the floor at the centre of their cell; they may intersect. An invalid action
    raises ``ValueError`` naming the component and its range. For continuous actions (SAC, TD3)
    wrap the env in :class:`spiral_envs.wrappers.ContinuousActions`: a ``Box(-1, 1, (8,),
    float32)``, the position as ``(x, y)``.

    ## Observation Space

    A ``Dict``:

    * ``canvas``: ``Box(0, 255, (canvas_size, canvas_size, 3), uint8)``, the scene so far as the
      agent's camera sees it (no shadows, no multisampling);
    * ``target``: the same, the target scene (conditional env only);
    * ``step``: ``Box(0, episode_length, (1,), uint8)``, the number of steps taken (uint8 like
      the images, so ``gymnasium.wrappers.FlattenObservation`` gives a uint8 vector).

    Every returned array is fresh (no memory shared between steps or with the renderer).

    ## Rewards

    Always 0: the SPIRAL reward comes from a discriminator, added by a reward wrapper
    (``DiscriminatorReward``, ``L2Reward``, ``SimilarityReward``) or by the trainer. Pixel L2 and
    the critic taught agents to place nothing; the change similarity
    (:class:`spiral_envs.wrappers.SimilarityReward`) learns. The benchmark id
    ``SpiralBench-Scene-Cond-v0`` is the conditional env in ``SimilarityReward(mode="per_step")``,
    and ``SpiralBench-Scene-Cond-Box-v0`` adds ``ContinuousActions``.

    ## Starting State

    An empty floor, and a new target drawn with ``np_random``; or the target given as
    ``reset(options={"target_program": program})`` (a :class:`SceneProgram`, its JSON, or the
    list of object dicts), for evaluating on fixed scenes.

    ## Episode End

    ``terminated`` is ``True`` after ``episode_length`` steps (default 5); there is no truncation.
    The final ``info`` then holds the recovery scores of :func:`spiral_envs.scene.score_scene`
    (the agent's objects matched optimally to the target's: ``object_accuracy``,
    ``type_accuracy``, ``position_accuracy``, ``size_accuracy``, ``color_accuracy``,
    ``position_error``, ``color_error``, ``count_error``, ``num_objects``,
    ``num_target_objects``) and ``l2``, the mean over pixels and channels of
    ``((canvas - target) / 255)^2``. Every step's ``info`` has ``num_objects`` (placed so far) and
    ``placed`` (whether this step placed one).

    ## Programs

    ``env.unwrapped.program`` (the agent's) and ``env.unwrapped.target_program`` are
    :class:`spiral_envs.scene.SceneProgram` copies: ``to_dict()`` / ``to_json()`` and
    ``SceneProgram.from_dict()`` / ``from_json()``, as the paint envs' stroke programs;
    :func:`spiral_envs.scene.render_scene` re-renders one at any size, and at ``canvas_size``
    with ``quality="fast"`` reproduces the observation exactly.

    ## Arguments

    ```python
    import gymnasium as gym
    import spiral_envs
    env = gym.make("SpiralMuJoCo-Scene-Cond-v0", canvas_size=64, render_mode="rgb_array")
    ```

    * ``conditional`` (bool, default ``False``): put the target in the observation.
    * ``canvas_size`` (int, default 64): observation height and width in pixels.
    * ``episode_length`` (int, default 5, at most 255): steps per episode, hence the most objects.
    * ``min_objects``, ``max_objects`` (int, default 1 and 5): object count of the targets,
      ``0 <= min_objects <= max_objects <= episode_length``.
    * ``allow_overlap`` (bool, default ``False``): let target objects overlap.
    * ``render_mode`` (``None`` or ``"rgb_array"``): ``render()`` then returns the current scene at
      ``render_size`` with shadows and multisampling.
    * ``render_size`` (int, default 256): size of ``render()`` images.

    Rendering needs no display: EGL is used, else OSMesa (``MUJOCO_GL`` is respected when set);
    the GL context is made lazily in the process that renders, so subprocess vector envs work
    (use ``context="spawn"`` or ``"forkserver"``).

    ## Version History

    * v0: Initial version. The ``step`` observation is uint8 (it was int32 before the benchmark
      ids), hence ``episode_length`` <= 255.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        conditional: bool = False,
        canvas_size: int = 64,
        episode_length: int = 5,
        min_objects: int = 1,
        max_objects: int = 5,
        allow_overlap: bool = False,
        render_mode: str | None = None,
        render_size: int = 256,
        **unknown: Any,
    ) -> None:
        reject_unknown_kwargs(type(self), unknown)
        for name, value in (("conditional", conditional), ("allow_overlap", allow_overlap)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name}={value!r}: accepted True or False")
        self.conditional = bool(conditional)
        self.allow_overlap = bool(allow_overlap)
        self.canvas_size = check_int("canvas_size", canvas_size, 1)
        # at most 255: ``step`` is uint8, so a flattened observation stays uint8 as the images
        self.episode_length = check_int("episode_length", episode_length, 1, MAX_EPISODE_LENGTH)
        self.render_size = check_int("render_size", render_size, 1)
        min_objects = check_int("min_objects", min_objects, 0)
        max_objects = check_int("max_objects", max_objects, 0)
        # One message for the joint constraint, so it names both counts and the episode length.
        if not min_objects <= max_objects <= self.episode_length:
            raise ValueError(
                f"min_objects={min_objects}, max_objects={max_objects}: accepted "
                f"0 <= min_objects <= max_objects <= episode_length ({self.episode_length})"
            )
        self.min_objects, self.max_objects = min_objects, max_objects
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r}: accepted None or {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        #: Scenes from the same generator settings as the targets (the real images a
        #: discriminator of this env needs). The env draws its own targets with ``np_random``.
        self.dataset = SceneDataset(
            canvas_size=self.canvas_size,
            min_objects=self.min_objects,
            max_objects=self.max_objects,
            allow_overlap=self.allow_overlap,
        )

        self.action_spec: ActionSpec = scene_action_spec()
        self.action_space = self.action_spec.space()
        image = spaces.Box(0, 255, (self.canvas_size, self.canvas_size, 3), np.uint8)
        obs = {"canvas": image}
        if self.conditional:
            obs["target"] = spaces.Box(0, 255, image.shape, np.uint8)
        obs["step"] = spaces.Box(0, self.episode_length, (1,), np.uint8)
        self.observation_space = spaces.Dict(obs)

        # Choose the GL backend now (a subprocess probe, no GL state here) so that it fails early
        # with what to install, and so that worker processes inherit MUJOCO_GL. The renderer
        # makes no GL context until it first renders, in the process that steps.
        select_gl_backend()
        self._renderer = SceneRenderer(self.canvas_size, self.episode_length, "fast")
        self._human: SceneRenderer | None = None
        self._program = SceneProgram()
        self._target_program = SceneProgram()
        self._target = np.zeros(image.shape, np.uint8)
        self._canvas = np.zeros(image.shape, np.uint8)
        self._blank: np.ndarray | None = None
        self._t = 0

    # -- public state --------------------------------------------------------------------------
    @property
    def program(self) -> SceneProgram:
        """The agent's scene program so far (a copy)."""
        return self._program.copy()

    @property
    def target_program(self) -> SceneProgram:
        """The true program of the current target (a copy)."""
        return self._target_program.copy()

    @property
    def target(self) -> np.ndarray:
        """The current target image, ``uint8 (canvas_size, canvas_size, 3)`` (a copy)."""
        return self._target.copy()

    @property
    def canvas(self) -> np.ndarray:
        """The current canvas (a copy)."""
        return self._canvas.copy()

    # -- gym API -------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict, dict]:
        super().reset(seed=seed)
        given = (options or {}).get("target_program")
        if given is not None:
            target = given if isinstance(given, SceneProgram) else SceneProgram.from_json(given)
            if len(target) > self.episode_length:
                raise ValueError(
                    f"options['target_program'] has {len(target)} objects: accepted at most "
                    f"episode_length={self.episode_length}"
                )
            self._target_program = target.copy()
        else:
            self._target_program = sample_scene(
                self.np_random, self.min_objects, self.max_objects, self.allow_overlap
            )
        r = self._renderer
        r.set_objects(self._target_program)
        self._target = r.canvas()
        r.reset()
        if self._blank is None:
            self._blank = r.canvas()
        self._canvas = self._blank.copy()
        self._program = SceneProgram()
        self._t = 0
        return self._obs(), {"num_objects": 0}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        a = self.action_spec.check(action)
        if self._t >= self.episode_length:
            raise RuntimeError("the episode has ended: call reset() before step()")
        placed = a[0] == 1
        if placed:
            obj = SceneObject.from_action(a)
            self._program.append(obj)
            self._renderer.draw(obj)
            self._canvas = self._renderer.canvas()
        self._t += 1
        terminated = self._t >= self.episode_length
        info: dict[str, Any] = {"num_objects": len(self._program), "placed": placed}
        if terminated:
            info.update(score_scene(self._program, self._target_program))
            info["l2"] = pixel_l2(self._canvas, self._target)
        return self._obs(), 0.0, terminated, False, info

    def render(self) -> np.ndarray | None:
        """The current scene at ``render_size``, with shadows and multisampling.

        In the conditional variant the target scene is shown on the left of it, as the paint
        envs do.
        """
        if self.render_mode is None:
            gym.logger.warn(
                'render() called without a render_mode: make the env with render_mode="rgb_array".'
            )
            return None
        if self._human is None:
            self._human = SceneRenderer(self.render_size, self.episode_length, "nice")
        self._human.set_objects(self._program)
        image = self._human.canvas()
        if self.conditional and self._target_program is not None:
            self._human.set_objects(self._target_program)
            image = np.concatenate([self._human.canvas(), image], axis=1)
        return image

    def close(self) -> None:
        self._renderer.close()
        if self._human is not None:
            self._human.close()
            self._human = None

    # -- pickling: no GL state travels; the renderers remake it lazily ---------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_human"] = None  # SceneRenderer drops its own GL context when pickled
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _obs(self) -> dict[str, np.ndarray]:
        obs = {"canvas": self._canvas.copy()}
        if self.conditional:
            obs["target"] = self._target.copy()
        obs["step"] = np.array([self._t], dtype=np.uint8)
        return obs
