"""What each way of learning from the renderer adds, at equal wall-clock (all stages counted).

From a shipped recipe (``agents/recipes``), rows that share its env, network and reward and split
the same total budget differently:

* ``a2c``: A2C from scratch on the reward, the whole budget (the trainer before the renderer's
  stages);
* ``sleep+a2c``: maximum likelihood on the stroke prior's programs, then A2C with the KL pull;
* ``sleep+wake+a2c``: the same, with a stage on the policy's own programs for real targets;
* ``search``: the search distilled into the policy, the whole budget (no RL);
* ``search+a2c``: the recipe itself (search distillation, then A2C with the KL pull);
* ``search+a2c-nopointer``: the recipe without the pointer heads (``NetConfig.pointer``).

Each row runs as ``spiral-recipe`` does (one after another, on the whole machine) and is scored
on the same held-out targets; the table goes to stdout and, with ``--out``, a JSON::

    python benchmarks/renderer_ablation.py omniglot --minutes 30 --out docs/renderer_omniglot.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.recipe import load_recipe, run_recipe  # noqa: E402

ROWS = ("a2c", "sleep+a2c", "sleep+wake+a2c", "search", "search+a2c", "search+a2c-nopointer")


def variant(recipe: dict, row: str) -> dict:
    """The recipe's stages for ``row``, over the recipe's total minutes (same shares)."""
    r = copy.deepcopy(recipe)
    search, finetune = r["stages"][0], r["stages"][-1]
    total = sum(s["minutes"] for s in r["stages"])
    pre = search["minutes"]
    imitation = {k: search[k] for k in ("lr", "updates_per_batch") if k in search}
    if row == "a2c":  # the trainer's A2C defaults from scratch; the recipe's env, net, reward
        r["stages"] = [{"name": "a2c", "minutes": total, "num_envs": finetune.get("num_envs", 64)}]
    elif row == "sleep+a2c":
        r["stages"] = [
            {"name": "sleep", "minutes": pre, "stage": "sleep", **imitation},
            {**finetune, "minutes": total - pre},
        ]
    elif row == "sleep+wake+a2c":
        r["stages"] = [
            {"name": "sleep", "minutes": pre / 2, "stage": "sleep", **imitation},
            {"name": "wake", "minutes": pre / 2, "stage": "wake", **imitation},
            {**finetune, "minutes": total - pre},
        ]
    elif row == "search":
        r["stages"] = [{**search, "minutes": total}]
    elif row == "search+a2c-nopointer":
        r["common"] = {**r["common"], "pointer": False}
    elif row != "search+a2c":
        raise ValueError(f"row {row!r}: accepted {ROWS}")
    return r


def held_out_expert_l2(search_dir: Path, episodes: int = 64) -> float:
    """The search stage's expert (its final policy's candidates, the prior's, the moves) on the
    held-out targets: its own L2, at its K."""
    import torch

    from agents.build import build_actor, load_policy, make_envs, split_kwargs
    from agents.checkpoint import load_checkpoint
    from agents.config import TrainConfig
    from spiral_envs.benchmark import EVAL_SEED

    cfg = TrainConfig.from_dict(load_checkpoint(search_dir / "checkpoint.pt")["config"])
    policy = load_policy(search_dir / "checkpoint.pt").policy
    kw = split_kwargs(cfg.env_id, cfg.env_kwargs, "test")
    envs = make_envs(cfg.env_id, min(32, episodes), kw)
    torch.manual_seed(EVAL_SEED)
    actor = build_actor(cfg, envs, policy, torch.device("cpu"))
    l2 = []
    try:
        for start in range(0, episodes, envs.num_envs):
            seeds = [EVAL_SEED + start + j for j in range(envs.num_envs)]
            l2.extend(actor.collect(seeds).final_l2.tolist())
    finally:
        envs.close()
    return float(np.mean(l2[:episodes]))


def plot_curves(reports: dict[str, dict], path: Path, earlier: dict | None = None) -> None:
    """Held-out L2 against wall-clock minutes, one line per run (its stages' evaluations);
    ``earlier``: a ``benchmarks/learning.py`` run's curve, drawn dashed for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, rep in reports.items():
        pts = rep["curve"]
        ax.plot([p["minutes"] for p in pts], [p["l2"] for p in pts], marker=".", label=label)
    if earlier is not None:
        ax.plot(earlier["curve_minutes"], earlier["curve_l2"], ls=":", label=earlier["label"])
    first = next(iter(reports.values()))["eval"]
    ax.axhline(first["constant_l2"], color="grey", ls="--", lw=1, label="best constant image")
    ax.set_xlabel("wall-clock minutes (all stages)")
    ax.set_ylabel("held-out L2 (64 episodes)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rows(rows: dict[str, dict], path: Path, n: int = 8) -> None:
    """The same ``n`` held-out targets, then each row's paintings of them (its run's
    ``eval/canvases.npy``); rows whose run folder is gone are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    have = {
        row: r for row, r in rows.items() if (Path(r.get("run", "")) / "eval/canvases.npy").exists()
    }
    if not have:
        return
    fig, axes = plt.subplots(len(have) + 1, n, figsize=(n * 1.2, (len(have) + 1) * 1.3))
    targets = np.load(Path(next(iter(have.values()))["run"]) / "eval/targets.npy")
    images = [("target", targets)] + [
        (f"{row}\n{r['l2']:.4f}", np.load(Path(r["run"]) / "eval/canvases.npy"))
        for row, r in have.items()
    ]
    for k, (label, imgs) in enumerate(images):
        top = 255 if imgs.dtype == np.uint8 else 1
        for j in range(n):
            img = imgs[j].squeeze()
            axes[k, j].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=top)
            axes[k, j].set_xticks([])
            axes[k, j].set_yticks([])
        axes[k, 0].set_ylabel(label, rotation=0, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def earlier_report(row: dict) -> dict | None:
    """An earlier row's curve for :func:`plot_curves`: its run's ``recipe.json`` if the run is
    still here, else the curve the row's JSON kept, else ``None``."""
    ran = Path(row.get("run", "")) / "recipe.json"
    if row.get("run") and ran.exists():
        return json.loads(ran.read_text())
    if "curve" in row:
        return {"curve": row["curve"], "eval": {"constant_l2": row["constant_l2"]}}
    return None


def earlier_rows(paths: list[str], recipe: str, minutes: float) -> dict[str, dict]:
    """The rows of earlier invocations' ``--out`` files (same recipe and minutes)."""
    rows: dict[str, dict] = {}
    for f in paths:
        try:
            doc = json.loads(Path(f).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--with {f}: not a readable ablation JSON ({e})") from None
        if (doc["recipe"], float(doc["minutes"])) != (recipe, float(minutes)):
            raise SystemExit(
                f"--with {f}: its rows are recipe {doc['recipe']!r} at {doc['minutes']:g} min, "
                f"this ablation is {recipe!r} at {minutes:g} min"
            )
        rows.update(doc["rows"])
    return rows


def write_table(path: Path, recipe: str, seed: int, minutes: float, rows: dict) -> None:
    """The ``--out`` JSON: what ``--with`` reads back."""
    doc = {"recipe": recipe, "seed": seed, "minutes": minutes, "rows": rows}
    path.write_text(json.dumps(doc, indent=2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipe", help="a shipped recipe name or a recipe file")
    p.add_argument("--rows", nargs="*", default=list(ROWS), choices=ROWS, help="none: only --with")
    p.add_argument("--minutes", type=float, default=None, help="total per row (default: recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=256, help="held-out episodes per row")
    p.add_argument("--runs", default="runs/ablation", help="where the rows' runs go")
    p.add_argument("--out", default=None, help="a JSON file for the table (and .png pictures)")
    p.add_argument(
        "--with",
        dest="earlier",
        nargs="+",
        default=[],
        metavar="JSON",
        help="earlier --out files whose rows join this one's table, JSON and pictures",
    )
    a = p.parse_args(argv)
    recipe = load_recipe(a.recipe)
    total = sum(s["minutes"] for s in recipe["stages"])
    scale = (a.minutes or total) / total
    name = Path(a.recipe).stem
    results = earlier_rows(a.earlier, name, a.minutes or total)
    reports = {row: rep for row, r in results.items() if (rep := earlier_report(r)) is not None}
    command = " ".join(["python", "benchmarks/renderer_ablation.py", *(argv or sys.argv[1:])])
    for row in a.rows:
        out = Path(a.runs) / f"{name}_{row}_{a.minutes or total:g}min_seed{a.seed}"
        rep = run_recipe(variant(recipe, row), out, scale, {"seed": a.seed}, a.episodes)
        reports[row] = rep
        ev = rep["eval"]
        results[row] = {
            "l2": ev["l2"],
            "psnr": ev["psnr"],
            "blank_l2": ev["blank_l2"],
            "constant_l2": ev["constant_l2"],
            "minutes": rep["minutes"],
            "stages": [
                (s["name"], s["config"]["stage"], round(s["wall_s"] / 60, 2)) for s in rep["stages"]
            ],
            "frames": sum(s["frames"] for s in rep["stages"]),
            "search_expert_l2_train": next(
                (s.get("charts/l2") for s in rep["stages"] if s["config"]["stage"] == "search"),
                None,
            ),
            "search_expert_l2_held_out": (
                held_out_expert_l2(out / "search") if (out / "search").is_dir() else None
            ),
            "run": str(out),
            "command": command,
        }
        print(f"{row}: held-out L2 {ev['l2']:.4f}")
        if a.out:  # after each row: a stopped ablation keeps the rows it ran
            write_table(Path(a.out), name, a.seed, a.minutes or total, results)
    results = {row: results[row] for row in ROWS if row in results}  # the table's order
    print("| row | held-out L2 | PSNR dB | minutes | frames | the search expert's held-out L2 |")
    print("|---|---:|---:|---:|---:|---:|")
    for row, r in results.items():
        ex, psnr = r.get("search_expert_l2_held_out"), r.get("psnr")
        ex = "" if ex is None else f"{ex:.4f}"
        psnr = "" if psnr is None else f"{psnr:.2f}"
        cells = f"{r['l2']:.4f} | {psnr} | {r['minutes']:.1f} | {r['frames']}"
        print(f"| {row} | {cells} | {ex} |")
    if a.out:
        write_table(Path(a.out), name, a.seed, a.minutes or total, results)
        if reports:
            plot_curves(reports, Path(a.out).with_suffix(".png"))
        plot_rows(results, Path(a.out).with_name(Path(a.out).stem + "_rows.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
