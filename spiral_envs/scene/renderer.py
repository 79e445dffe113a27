"""The MuJoCo scene renderer: a scene program in, an RGB image out.

One ``MjModel`` is compiled per renderer from ``scene.xml`` plus a pool of generic geoms (one per
object slot). Placing an object writes its type, size, colour and position into the pool's
``model.geom_*`` rows and moves the geom into the visible group, so a step never recompiles:
it is ``mj_kinematics`` + ``mj_camlight`` + ``update_scene`` + ``render``, about the cost of a
bare render.

The GL context is created lazily, on the first :meth:`SceneRenderer.canvas`, in the process that
renders, and is dropped on pickling (vector-env workers make their own). A process forked after
its parent made a GL context cannot render (EGL and OSMesa hang or crash there): the renderer
raises a ``RuntimeError`` saying to use ``spawn``/``forkserver`` instead of hanging.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from spiral_envs._validate import check_int
from spiral_envs.scene.gl import GLBackendError, import_mujoco, renderer_error
from spiral_envs.scene.program import OBJECT_TYPES, SceneObject, SceneProgram, as_objects

__all__ = ["QUALITIES", "SceneRenderer", "render_scene"]

SCENE_XML = os.path.join(os.path.dirname(__file__), "scene.xml")
#: ``fast``: the agent's camera (no shadows, reflections or multisampling: cheap on a CPU);
#: ``nice``: for people (shadows and 4x multisampling).
QUALITIES = ("fast", "nice")
_gl_pid: int | None = None  # the process that created this module's GL contexts
_inherited: list[Any] = []  # GL state copied into a forked child, kept alive and never used
_VISIBLE_GROUP = 0
_HIDDEN_GROUP = 5  # MjvOption hides geom groups 3-5 by default
_GEOM_ENUM = {"sphere": "mjGEOM_SPHERE", "box": "mjGEOM_BOX", "cylinder": "mjGEOM_CYLINDER",
              "capsule": "mjGEOM_CAPSULE"}  # fmt: skip


class SceneRenderer:
    """Renders scenes of up to ``max_objects`` objects; fits :class:`spiral_envs.Renderer`.

    Args:
        size: Image height and width in pixels.
        max_objects: Number of object slots in the pool.
        quality: ``"fast"`` (agent camera) or ``"nice"`` (shadows, multisampling).

    Examples:
        >>> r = SceneRenderer(64, max_objects=5)
        >>> r.draw(SceneObject(type=0, position=120, size=1, color=(3, 0, 0)))
        >>> r.canvas().shape
        (64, 64, 3)
    """

    def __init__(self, size: int = 64, max_objects: int = 5, quality: str = "fast") -> None:
        self.size = check_int("size", size, 1)
        self.max_objects = check_int("max_objects", max_objects, 1)
        if quality not in QUALITIES:
            raise ValueError(f"quality={quality!r}: accepted {list(QUALITIES)}")
        self.quality = quality
        self.objects: list[SceneObject] = []
        self._gl: Any = None  # (mujoco, model, data, renderer, camera id), made lazily
        self._image: np.ndarray | None = None  # last rendered image, None when stale

    # -- Renderer protocol ---------------------------------------------------------------------
    def reset(self) -> None:
        """Removes every object."""
        self.objects = []
        self._image = None
        if self._gl is not None:
            self._gl[1].geom_group[self._first :] = _HIDDEN_GROUP

    def draw(self, item: SceneObject) -> None:
        """Places one object (into the next free slot)."""
        if not isinstance(item, SceneObject):
            raise TypeError(f"draw() takes a SceneObject, got {type(item).__name__}")
        if len(self.objects) >= self.max_objects:
            raise ValueError(f"the scene is full: max_objects={self.max_objects}")
        self.objects.append(item)
        self._image = None
        if self._gl is not None:
            self._write_slot(len(self.objects) - 1, item)

    def canvas(self) -> np.ndarray:
        """The current scene as a fresh ``uint8 (size, size, 3)`` array."""
        if self._image is None:
            self._image = self._render()
        return self._image.copy()

    def close(self) -> None:
        if self._gl is not None and self._pid == os.getpid():
            try:
                self._gl[3].close()
            finally:
                self._gl = None
                self._image = None

    # -- helpers -------------------------------------------------------------------------------
    def set_objects(self, objects: Iterable[SceneObject] | SceneProgram) -> None:
        """Replaces the scene by ``objects``."""
        objs = as_objects(objects)
        if len(objs) > self.max_objects:
            raise ValueError(f"{len(objs)} objects > max_objects={self.max_objects}")
        self.reset()
        for o in objs:
            self.draw(o)

    def render_bare(self) -> np.ndarray:
        """``update_scene`` + ``render`` of the current scene, no caching (for benchmarks)."""
        mujoco, model, data, renderer, cam = self._context()
        renderer.update_scene(data, cam)
        return renderer.render()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_gl"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _context(self) -> Any:
        global _gl_pid
        if self._gl is not None and self._pid != os.getpid():
            _inherited.append(self._gl)  # inherited through fork: never touch (or free) it
            self._gl = None
        if self._gl is None:
            if _gl_pid is not None and _gl_pid != os.getpid():
                raise RuntimeError(
                    f"this process ({os.getpid()}) was forked from process {_gl_pid} after that "
                    "process had created an OpenGL context; MuJoCo's EGL/OSMesa rendering hangs "
                    "or crashes in such a child. Start workers with 'spawn' or 'forkserver' "
                    '(gym.make_vec(..., vectorization_mode="async", '
                    'vector_kwargs={"context": "spawn"})), or create the envs before rendering.'
                )
            self._gl = self._build()
            self._pid = _gl_pid = os.getpid()
            for i, o in enumerate(self.objects):
                self._write_slot(i, o)
        return self._gl

    def _build(self) -> Any:
        mujoco = import_mujoco()
        spec = mujoco.MjSpec.from_file(SCENE_XML)
        for i in range(self.max_objects):
            g = spec.worldbody.add_geom()
            g.name = f"object{i}"
            g.type = mujoco.mjtGeom.mjGEOM_SPHERE
            g.size = [0.1, 0.0, 0.0]
            g.pos = [0.0, 0.0, -1.0]
            g.group = _HIDDEN_GROUP
            g.contype = 0
            g.conaffinity = 0
        nice = self.quality == "nice"
        spec.visual.global_.offwidth = self.size
        spec.visual.global_.offheight = self.size
        spec.visual.quality.offsamples = 4 if nice else 0
        model = spec.compile()
        data = mujoco.MjData(model)
        self._first = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "object0")
        self._types = [int(getattr(mujoco.mjtGeom, _GEOM_ENUM[t])) for t in OBJECT_TYPES]
        try:
            renderer = mujoco.Renderer(model, self.size, self.size)
        except GLBackendError:
            raise
        except Exception as e:
            raise renderer_error(e) from e
        flags = renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = nice
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = False
        cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "agent")
        return mujoco, model, data, renderer, cam

    def _write_slot(self, i: int, o: SceneObject) -> None:
        model = self._gl[1]
        g = self._first + i
        model.geom_type[g] = self._types[o.type]
        model.geom_size[g] = o.geom_size()
        model.geom_pos[g] = o.world_position()
        model.geom_rgba[g] = o.rgba
        model.geom_group[g] = _VISIBLE_GROUP

    def _render(self) -> np.ndarray:
        mujoco, model, data, renderer, cam = self._context()
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        renderer.update_scene(data, cam)
        return renderer.render()


_cache: dict[tuple[int, int, str, int], SceneRenderer] = {}


def render_scene(
    objects: Iterable[SceneObject] | SceneProgram, size: int = 64, quality: str = "fast"
) -> np.ndarray:
    """Renders a list of scene objects to a fresh ``uint8 (size, size, 3)`` image.

    Renderers are cached per ``(size, pool, quality)`` and per process. With the env's
    ``canvas_size`` and ``quality="fast"`` the image equals the env's observation pixel for pixel.

    Args:
        objects: The scene (a :class:`SceneProgram` or objects).
        size: Image height and width in pixels, any positive size.
        quality: ``"fast"`` (as the agent sees it) or ``"nice"`` (shadows, multisampling).
    """
    objs = as_objects(objects)
    size = check_int("size", size, 1)
    if quality not in QUALITIES:
        raise ValueError(f"quality={quality!r}: accepted {list(QUALITIES)}")
    pool = max(8, 1 << (len(objs) - 1).bit_length())  # few distinct pools, fewer compiles
    key = (os.getpid(), size, quality, pool)
    r = _cache.get(key)
    if r is None:
        r = _cache[key] = SceneRenderer(size, pool, quality)
    r.set_objects(objs)
    return r.canvas()
