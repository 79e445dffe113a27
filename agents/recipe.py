"""``spiral-recipe``: a domain's whole training recipe, its stages run one after another.

A recipe is a JSON file: the config fields every stage shares (``common``), then the ``stages``,
each a name, a wall-clock budget in ``minutes`` and its own fields (``stage``, ``lr``, ...). Each
stage is one :func:`agents.train.train` run in ``<out_dir>/<name>``, starting from the policy of
the stage before it (``init_from``); a stage with ``"kl_coef"`` is pulled towards that policy
(kickstarting). At the end the last stage's policy is evaluated on held-out targets, beside the
blank canvas and the best constant image, and ``<out_dir>/recipe.json`` records every stage.

The shipped recipes are in ``agents/recipes/`` and are named without the folder::

    spiral-recipe omniglot --out_dir runs/omniglot           # the 60-minute Omniglot recipe
    spiral-recipe my_recipe.json --out_dir runs/x --scale 0.1   # every budget x 0.1 (a try)

A stopped recipe continues where it stopped when run again with the same ``--out_dir``: finished
stages are kept, the unfinished one resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

from agents.checkpoint import UnsafeCheckpointError
from agents.config import TrainConfig
from agents.discriminator import NonFiniteLossError
from agents.evaluate import describe, evaluate_checkpoint
from agents.train import CHECKPOINT, train

__all__ = ["load_recipe", "main", "run_recipe", "shipped_recipes", "stage_configs"]


def shipped_recipes() -> list[str]:
    """The names of the recipes in ``agents/recipes``."""
    folder = resources.files("agents") / "recipes"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def load_recipe(name_or_path: str) -> dict:
    """A recipe by file path, or by the name of a shipped one.

    Raises:
        ValueError: no such file or shipped recipe, bad JSON, or a stage without its fields.
    """
    path = Path(name_or_path)
    if not path.is_file():
        shipped = resources.files("agents") / "recipes" / f"{name_or_path}.json"
        if not shipped.is_file():
            raise ValueError(
                f"no recipe file {name_or_path!r} and no shipped recipe of that name: "
                f"accepted a JSON file or one of {shipped_recipes()}"
            )
        path = Path(str(shipped))
    try:
        recipe = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"recipe {path}: not JSON ({e})") from e
    if not isinstance(recipe, dict) or not isinstance(recipe.get("stages"), list):
        raise ValueError(f"recipe {path}: accepted an object with a 'stages' list")
    names = [s.get("name") for s in recipe["stages"] if isinstance(s, dict)]
    if not recipe["stages"] or len(names) != len(recipe["stages"]) or None in names:
        raise ValueError(f"recipe {path}: every stage needs a 'name' (and 'minutes')")
    if len(set(names)) != len(names):
        raise ValueError(f"recipe {path}: stage names repeat: {names}")
    return recipe


def stage_configs(
    recipe: dict, out_dir: str | Path, scale: float = 1.0, overrides: dict | None = None
) -> list[TrainConfig]:
    """One config per stage: ``common``, the stage's fields, ``overrides`` (all stages), its
    budget times ``scale``, its folder, and ``init_from`` the stage before it.

    Raises:
        ValueError: a field or value a config refuses (all stages are checked before any runs).
    """
    out = Path(out_dir)
    configs, previous = [], None
    for stage in recipe["stages"]:
        fields = {k: v for k, v in stage.items() if k not in ("name", "minutes", "note")}
        if "minutes" not in stage:
            raise ValueError(f"stage {stage['name']!r}: no 'minutes' budget")
        d = {**recipe.get("common", {}), **fields, **(overrides or {})}
        d["max_minutes"] = float(stage["minutes"]) * scale
        d["out_dir"] = str(out / stage["name"])
        if previous is not None:
            d["init_from"] = str(Path(previous.out_dir) / CHECKPOINT)
        try:
            cfg = TrainConfig.from_dict(d)
        except ValueError as e:
            raise ValueError(f"stage {stage['name']!r}: {e}") from e
        configs.append(cfg)
        previous = cfg
    return configs


def finished(metrics: Path) -> bool:
    """Whether a stage ran to its budget (a stage stopped by Ctrl-C writes its metrics too)."""
    return metrics.exists() and not json.loads(metrics.read_text()).get("interrupted", False)


def eval_curve(configs: list[TrainConfig]) -> list[dict]:
    """The held-out evaluations the stages logged, on one clock: ``minutes`` (all stages before
    counted), ``frames`` (likewise), ``stage`` and ``l2``."""
    import csv

    points, minutes, frames = [], 0.0, 0
    for cfg in configs:
        log = Path(cfg.out_dir) / "progress.csv"  # absent when a stage ran too short to log
        rows = list(csv.DictReader(log.open())) if log.exists() else []
        for row in rows:
            if row.get("eval/l2"):
                points.append(
                    {
                        "stage": Path(cfg.out_dir).name,
                        "minutes": minutes + float(row["charts/wall_s"]) / 60,
                        "frames": frames + int(float(row["global_step"])),
                        "l2": float(row["eval/l2"]),
                    }
                )
        done = json.loads((Path(cfg.out_dir) / "metrics.json").read_text())
        minutes, frames = minutes + done["wall_s"] / 60, frames + done["frames"]
    return points


def run_recipe(
    recipe: dict,
    out_dir: str | Path,
    scale: float = 1.0,
    overrides: dict | None = None,
    episodes: int = 256,
) -> dict:
    """Runs the stages not yet finished in ``out_dir``, then the held-out evaluation."""
    configs = stage_configs(recipe, out_dir, scale, overrides)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for stage, cfg in zip(recipe["stages"], configs, strict=True):
        done = Path(cfg.out_dir) / "metrics.json"
        print(f"== stage {stage['name']} ({cfg.programs.stage}, {cfg.max_minutes:g} min)")
        if finished(done):
            print(f"   finished earlier: {done}")
        else:
            resume = (Path(cfg.out_dir) / CHECKPOINT).exists()
            t0 = time.perf_counter()
            summary = train(cfg.replace(resume=resume))
            if summary["interrupted"]:
                raise KeyboardInterrupt
            print(f"   {summary['frames']} frames in {(time.perf_counter() - t0) / 60:.1f} min")
        rows.append(
            {"name": stage["name"], "config": cfg.to_dict(), **json.loads(done.read_text())}
        )
    last = Path(configs[-1].out_dir) / CHECKPOINT
    final = evaluate_checkpoint(last, out / "eval", episodes)
    report = {
        "recipe": recipe,
        "curve": eval_curve(configs),
        "scale": scale,
        "stages": rows,
        "minutes": sum(r["wall_s"] for r in rows) / 60,
        "eval": final,
    }
    (out / "recipe.json").write_text(json.dumps(report, indent=2))
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spiral-recipe",
        description=__doc__.split("\n\n")[0],
        epilog=f"Shipped recipes: {', '.join(shipped_recipes())}.",
    )
    p.add_argument("recipe", help="a recipe JSON file, or the name of a shipped recipe")
    p.add_argument("--out_dir", default=None, help="where the stages go (default runs/<recipe>)")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every stage's minutes")
    p.add_argument(
        "--set",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='config fields for every stage, e.g. \'{"seed": 1, "threads": 2}\'',
    )
    p.add_argument("--episodes", type=int, default=256, help="held-out episodes at the end")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    if a.scale <= 0 or a.episodes < 1:
        p.error("--scale must be > 0 and --episodes >= 1")
    try:
        recipe = load_recipe(a.recipe)
        out = a.out_dir or str(Path("runs") / Path(a.recipe).stem)
        report = run_recipe(recipe, out, a.scale, a.set, a.episodes)
    except (ValueError, FileNotFoundError, UnsafeCheckpointError) as e:
        print(f"spiral-recipe: error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"spiral-recipe: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("spiral-recipe: stopped; run the same command again to continue", file=sys.stderr)
        return 130
    ev = report["eval"]
    print(
        f"held-out, {int(ev['episodes'])} episodes after {report['minutes']:.1f} min: "
        f"{describe(ev)}"
    )
    print(f"outputs in {out}: recipe.json, eval/samples.png, one folder per stage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
