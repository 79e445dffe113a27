"""Shared fixtures: where the real data is, and env construction for every registered id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import spiral_envs

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPIRAL_SHARED_DATA", ROOT.parent / "shared" / "data"))
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real data folder {SHARED_DATA} is absent"
)


def make_celeba_dir(root: Path, n: int = 12) -> Path:
    """Writes a tiny CelebA-layout folder (generated JPEGs, 178x218) and returns it."""
    from PIL import Image

    rng = np.random.default_rng(0)
    images = root / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(1, n + 1):
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i:06d}.jpg", quality=90)
        lines.append(f"{i:06d}.jpg {0 if i <= n - 4 else (1 if i <= n - 2 else 2)}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def celeba_dir(tmp_path_factory) -> Path:
    return make_celeba_dir(tmp_path_factory.mktemp("celeba"))


def env_kwargs(env_id: str, celeba_dir: Path) -> dict:
    """Extra kwargs an id needs in tests (CelebA is never bundled: point it at generated files)."""
    return {"data_dir": str(celeba_dir)} if "CelebA" in env_id else {}


@pytest.fixture
def make_env(celeba_dir):
    made = []

    def _make(env_id: str, **kwargs):
        env = gym.make(env_id, **{**env_kwargs(env_id, celeba_dir), **kwargs})
        made.append(env)
        return env

    yield _make
    for env in made:
        env.close()


ALL_IDS = list(spiral_envs.ENV_IDS)
PAINT_IDS = list(spiral_envs.PAINT_IDS)


def run_script(
    path: str, *args: object, timeout: float = 300, returncode: int = 0
) -> subprocess.CompletedProcess:
    """Runs ``python <repo>/<path> args...`` from the repo root; fails with its stderr unless it
    exits with ``returncode``."""
    result = subprocess.run(
        [sys.executable, str(ROOT / path), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert result.returncode == returncode, result.stderr[-2000:]
    return result


def learn_and_act(env, algo: str, total_timesteps: int, **kwargs) -> None:
    """A stable-baselines3 smoke run: ``algo`` learns on ``env`` briefly, then one predicted
    action is valid and steps the env (the env is closed)."""
    import stable_baselines3 as sb3

    model = getattr(sb3, algo)("MultiInputPolicy", env, seed=0, device="cpu", **kwargs)
    model.learn(total_timesteps=total_timesteps)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    env.step(action)
    env.close()
