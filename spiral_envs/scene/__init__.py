"""The 3D scene domain of SPIRAL: compose MuJoCo scenes object by object.

Importing this package does not import ``mujoco``: the OpenGL backend is chosen first, on the
first render (see :mod:`spiral_envs.scene.gl`).
"""

from spiral_envs.scene.env import SceneEnv
from spiral_envs.scene.generator import SceneDataset, sample_scene
from spiral_envs.scene.gl import GLBackendError, select_gl_backend
from spiral_envs.scene.program import (
    COLOR_LEVELS,
    GRID,
    OBJECT_TYPES,
    SIZE_LEVELS,
    SceneObject,
    SceneProgram,
    scene_action_spec,
)
from spiral_envs.scene.renderer import SceneRenderer, render_scene
from spiral_envs.scene.scoring import match_objects, pixel_l2, score_scene

__all__ = [
    "COLOR_LEVELS",
    "GLBackendError",
    "GRID",
    "OBJECT_TYPES",
    "SIZE_LEVELS",
    "SceneDataset",
    "SceneEnv",
    "SceneObject",
    "SceneProgram",
    "SceneRenderer",
    "match_objects",
    "pixel_l2",
    "render_scene",
    "sample_scene",
    "scene_action_spec",
    "score_scene",
    "select_gl_backend",
]
