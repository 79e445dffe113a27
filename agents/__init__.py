"""Reference agents for spiral_envs: SPIRAL's adversarial advantage actor-critic.

``spiral-train`` (:mod:`agents.train`) trains, ``spiral-eval`` (:mod:`agents.evaluate`)
evaluates; ``agents/pretrained/`` holds small trained MNIST agents. torch is imported by the
submodules only (``pip install "spiral-gym[torch]"``).
"""

from pathlib import Path

PRETRAINED = Path(__file__).resolve().parent / "pretrained"

__all__ = ["PRETRAINED"]
