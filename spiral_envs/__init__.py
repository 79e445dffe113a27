"""spiral-gym environments: painting and 3D scene composition for SPIRAL agents."""

from spiral_envs.actions import ActionComponent, ActionSpec
from spiral_envs.protocols import Discriminator, ImageDataset, Renderer

__all__ = ["ActionComponent", "ActionSpec", "Discriminator", "ImageDataset", "Renderer"]
__version__ = "0.1.0"
