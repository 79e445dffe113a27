"""Which object types and sizes a scene agent confuses: confusion matrices on held-out scenes.

The agent's objects are matched to the target's (:func:`spiral_envs.scene.scoring.match_objects`,
as the recovery scores match them) and each matched pair counts once, target's type (row) by the
agent's (column); the same for sizes. Episode ``i`` is reset with seed ``EVAL_SEED + i``:

    python benchmarks/scene_confusion.py agents/pretrained/scene_cond.pt --greedy \\
        --out docs/scene_confusion.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.actor import Actor  # noqa: E402
from agents.build import load_policy, make_envs  # noqa: E402
from spiral_envs.benchmark import EVAL_SEED  # noqa: E402
from spiral_envs.scene.program import OBJECT_TYPES, SIZE_LEVELS  # noqa: E402
from spiral_envs.scene.scoring import match_objects  # noqa: E402


def confusion(checkpoint: str, episodes: int, num_envs: int, greedy: bool) -> dict:
    """Type and size confusion matrices (rows: the target's, columns: the agent's)."""
    loaded = load_policy(checkpoint)
    envs = make_envs(loaded.config.env_id, num_envs, loaded.config.env_kwargs)
    actor = Actor(envs, loaded.policy, "cpu")
    types = np.zeros((len(OBJECT_TYPES),) * 2, np.int64)
    sizes = np.zeros((len(SIZE_LEVELS),) * 2, np.int64)
    try:
        for i in range(0, episodes, num_envs):
            actor.collect(seeds=[EVAL_SEED + i + j for j in range(num_envs)], greedy=greedy)
            pairs = zip(envs.get_attr("program"), envs.get_attr("target_program"), strict=True)
            for prog, target in pairs:
                p, t = list(prog), list(target)
                for a, b in match_objects(p, t):
                    types[t[b].type, p[a].type] += 1
                    sizes[t[b].size, p[a].size] += 1
    finally:
        envs.close()
    return {
        "checkpoint": checkpoint,
        "episodes": episodes,
        "greedy": greedy,
        "types": list(OBJECT_TYPES),
        "type_confusion": types.tolist(),
        "sizes": list(SIZE_LEVELS),
        "size_confusion": sizes.tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a scene agent's checkpoint")
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--num_envs", type=int, default=32)
    p.add_argument("--greedy", action="store_true", help="the policy's most likely actions")
    p.add_argument("--out", default=None, help="write the matrices as JSON here")
    a = p.parse_args(argv)
    if a.episodes < 1 or a.num_envs < 1:
        p.error("--episodes and --num_envs must be >= 1")
    try:
        res = confusion(a.checkpoint, a.episodes, a.num_envs, a.greedy)
    except (FileNotFoundError, ValueError) as e:
        print(f"scene_confusion.py: error: {e}", file=sys.stderr)
        return 2
    for name, labels in (("type", res["types"]), ("size", res["sizes"])):
        print(f"{name}: rows the target's, columns the agent's ({', '.join(map(str, labels))})")
        for label, row in zip(labels, res[f"{name}_confusion"], strict=True):
            print(f"  {str(label):>9s} " + " ".join(f"{v:5d}" for v in row))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
