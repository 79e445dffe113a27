"""spiral-gym: Gymnasium environments for SPIRAL agents that paint and build 3D scenes.

Importing the package registers its environment ids with Gymnasium::

    import gymnasium as gym
    import spiral_envs

    env = gym.make("SpiralPaint-MNIST-Cond-v0")

See :data:`spiral_envs.ENV_IDS` for every env, and :data:`spiral_envs.BENCH_IDS` for the
benchmark tasks (an env with its benchmark reward inside, optionally continuous actions)::

    env = gym.make("SpiralBench-MNIST-Cond-Box-v0")
"""

from spiral_envs.actions import ActionComponent, ActionSpec
from spiral_envs.datasets import load_dataset
from spiral_envs.protocols import Discriminator, ImageDataset, Renderer
from spiral_envs.registration import BENCH_IDS, ENV_IDS, PAINT_IDS, SCENE_IDS, register_envs
from spiral_envs.scene.gl import set_default_backend

set_default_backend()  # MUJOCO_GL=egl where that is safe (no display, mujoco not imported yet)
register_envs()

__all__ = [
    "BENCH_IDS",
    "ENV_IDS",
    "PAINT_IDS",
    "SCENE_IDS",
    "ActionComponent",
    "ActionSpec",
    "Discriminator",
    "ImageDataset",
    "Renderer",
    "load_dataset",
]
__version__ = "0.1.0"
