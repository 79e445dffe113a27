"""``spiral-eval``: evaluate a trained checkpoint on held-out targets.

Writes into ``--out``: ``metrics.json`` (held-out L2 and PSNR for conditional agents, beside the
blank canvas's L2 to the same targets), ``samples.png`` (targets beside their reconstructions),
``episode.gif``, ``programs.json`` (the env's own programs: strokes or scene objects), plus
``programs/episode_NNN.svg`` for painting envs, and the arrays ``canvases.npy`` (the final
canvases, ``uint8 (episodes, H, W, C)``) and ``targets.npy`` (when there are targets), for
metrics of your own.

The episodes are the benchmark's held-out ones (:mod:`spiral_envs.benchmark`): the ``test``
split, episode ``i`` reset with seed ``--seed + i`` (default ``EVAL_SEED``, 1000000).

Usage::

    spiral-eval runs/mnist/checkpoint.pt --episodes 256 --out runs/mnist/eval
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.actor import Actor, Rollout
from agents.build import constant_image, load_policy, make_envs, resolve_device, split_kwargs
from agents.checkpoint import UnsafeCheckpointError
from agents.config import ProgramConfig
from agents.digits import digit_scores, is_digit_generator
from agents.logs import save_episode_gif, save_grid
from agents.networks import PolicyNet, as_tensor
from agents.programs import SearchActor
from spiral_envs.benchmark import EVAL_SEED, normalised_score
from spiral_envs.rewards import L2Discriminator, l2_distance, psnr_of_l2

__all__ = [
    "EVAL_SEED",
    "AgentPolicy",
    "describe",
    "evaluate_checkpoint",
    "evaluate_policy",
    "image_metrics",
    "main",
    "search_actor",
    "verdict",
]


def image_metrics(
    rollouts: list[Rollout], episodes: int, constant: np.ndarray | None = None
) -> dict[str, float]:
    """Mean L2 and PSNR of the final canvases to their targets, and the blank canvas's L2;
    given the ``constant`` image (:func:`spiral_envs.benchmark.best_constant_image`), its L2 to
    the same targets and the agent's ``normalised`` score (0 for it, 1 for L2 = 0).

    Envs without targets in the observation report the env's own ``info["l2"]`` when they
    give one (scenes), and no blank-canvas L2.
    """
    out: dict[str, float] = {}
    out["episodes"] = float(min(episodes, sum(r.actions.shape[1] for r in rollouts)))
    if rollouts and rollouts[0].targets is not None:
        finals = np.concatenate([r.canvases[-1] for r in rollouts])[:episodes]
        blanks = np.concatenate([r.canvases[0] for r in rollouts])[:episodes]
        targets = np.concatenate([r.targets for r in rollouts])[:episodes]
        l2 = l2_distance(finals, targets)
        out["blank_l2"] = float(l2_distance(blanks, targets).mean())
        if constant is not None:
            out["constant_l2"] = float(l2_distance(constant[None], targets).mean())
            out["normalised"] = normalised_score(float(l2.mean()), out["constant_l2"])
    elif rollouts and rollouts[0].final_l2 is not None:
        l2 = np.concatenate([r.final_l2 for r in rollouts])[:episodes]
    else:
        return out
    out["l2"] = float(l2.mean())
    out["psnr"] = float(np.mean(psnr_of_l2(np.maximum(l2, 1e-10))))
    return out


def verdict(normalised: float) -> str:
    """What a normalised score says, in words."""
    if normalised < 0:
        return "worse than painting the best constant image"
    return f"{normalised:.0%} of the best constant image's error removed"


def evaluate_policy(
    policy: PolicyNet,
    envs: gym.vector.VectorEnv,
    episodes: int,
    seed: int = EVAL_SEED,
    device: torch.device | str = "cpu",
    greedy: bool = False,
    precision: str = "fp32",
    constant: np.ndarray | None = None,
    search: ProgramConfig | None = None,
) -> tuple[dict[str, float], list[Rollout], list]:
    """Runs ``episodes`` episodes (rounded up to whole batches); episode ``i`` is reset with
    seed ``seed + i``. With ``search`` (its ``search_*`` sizes) each step is the best of
    candidates tried on the renderer (:func:`search_actor`), not the policy's own sample.

    Returns:
        The :func:`image_metrics` (beside the ``constant`` image when given), the rollouts, and
        the envs' programs of the episodes (their ``program`` attributes, ``None`` where an env
        has none).
    """
    actor = Actor(envs, policy, device, precision=precision)
    if search is not None:
        actor = search_actor(envs, policy, device, search, seed, precision)
    b = envs.num_envs
    rollouts, programs, targets = [], [], []
    for i in range(int(math.ceil(episodes / b))):
        rollouts.append(actor.collect(seeds=[seed + i * b + j for j in range(b)], greedy=greedy))
        programs.extend(_attr(envs, "program"))
        if "target" in envs.single_observation_space.spaces:  # hidden targets score nothing
            targets.extend(_attr(envs, "target_program"))
    metrics = image_metrics(rollouts, episodes, constant)
    metrics.update(scene_recovery(programs[:episodes], targets[:episodes]))
    return metrics, rollouts, programs[:episodes]


def _attr(envs: gym.vector.VectorEnv, name: str) -> list:
    """Each env's attribute ``name``, or ``None`` each where the envs have none."""
    try:
        return list(envs.get_attr(name))
    except AttributeError:
        return [None] * envs.num_envs


def scene_recovery(programs: list, targets: list) -> dict[str, float]:
    """Mean scene-recovery scores (:func:`spiral_envs.scene.score_scene`) of the episodes'
    programs against their targets' hidden programs; empty where the envs are not scenes."""
    if not targets or targets[0] is None or not programs or programs[0] is None:
        return {}
    from spiral_envs.scene.scoring import mean_scores, score_scene  # scene envs only

    means = mean_scores(score_scene(p, t) for p, t in zip(programs, targets, strict=True))
    return {k: v for k, v in means.items() if v is not None}


class AgentPolicy:
    """A trained agent as a batch policy for :func:`spiral_envs.benchmark.score`.

    It keeps the recurrent state, the previous action and (unconditional) the noise of each env,
    and starts them over where ``obs["step"] == 0``. Seeded like :func:`evaluate_checkpoint`
    (``torch.manual_seed(seed)``), it samples the same actions on the same episodes::

        agent = AgentPolicy.from_checkpoint("agents/pretrained/mnist_cond_wgan.pt")
        score("SpiralPaint-MNIST-Cond-v0", agent, env_kwargs=agent.env_kwargs)
    """

    def __init__(
        self,
        policy: PolicyNet,
        env_kwargs: dict | None = None,
        device: torch.device | str = "cpu",
        greedy: bool = False,
        seed: int = EVAL_SEED,
    ) -> None:
        self.policy, self.device, self.greedy = policy.eval(), torch.device(device), greedy
        self.env_kwargs = dict(env_kwargs or {})
        self.state = self.prev = self.valid = self.noise = None
        torch.manual_seed(seed)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **kwargs) -> AgentPolicy:
        loaded = load_policy(checkpoint, kwargs.get("device", "cpu"))
        return cls(loaded.policy, loaded.config.env_kwargs, **kwargs)

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pol, dev = self.policy, self.device
        step = np.asarray(obs["step"]).reshape(-1).astype(np.int64)
        if self.state is None or len(step) != self.prev.shape[0] or (step == 0).any():
            self._start(len(step), torch.from_numpy(step == 0).to(dev))
        target = obs.get("target")
        out, self.state = pol.act(
            as_tensor(obs["canvas"], dev),
            None if target is None else as_tensor(target, dev),
            as_tensor(step, dev),
            self.prev,
            self.valid,
            self.noise,
            self.state,
            greedy=self.greedy,
        )
        self.prev, self.valid = out.actions, torch.ones(len(step), device=dev)
        return out.actions.cpu().numpy()

    def _start(self, b: int, new: torch.Tensor) -> None:
        """Fresh state for the envs whose episode starts (all of them on a new batch size)."""
        pol, dev = self.policy, self.device
        if self.state is None or self.prev.shape[0] != b:
            new = torch.ones(b, dtype=torch.bool, device=dev)
            self.state = pol.initial_state(b, dev)
            self.prev = torch.zeros(b, len(pol.spec), dtype=torch.long, device=dev)
            self.valid = torch.zeros(b, device=dev)
            if pol.noise_fc is not None:
                self.noise = torch.randn(b, pol.cfg.noise_dim, device=dev)
            return
        fresh = pol.initial_state(b, dev)
        self.state = tuple(torch.where(new[None, :, None], f, s) for f, s in zip(fresh, self.state))
        self.prev = torch.where(new[:, None], torch.zeros_like(self.prev), self.prev)
        self.valid = torch.where(new, torch.zeros_like(self.valid), self.valid)
        if self.noise is not None:
            drawn = torch.randn(self.noise.shape, device=dev)
            self.noise = torch.where(new[:, None], drawn, self.noise)


def search_actor(
    envs, policy: PolicyNet, device, sizes: ProgramConfig, seed: int, precision: str = "fp32"
) -> SearchActor:
    """The policy with a search at each step (``spiral-eval --search``): its own samples, the
    stroke prior's strokes and moves are tried on each env's renderer, and the one that brings
    the canvas nearest the target (L2) is played. An agent that uses the renderer at test time,
    so its score is not the policy's alone.

    Raises:
        ValueError: an env without a visible target (the search scores by L2 to it).
    """
    if "target" not in envs.single_observation_space.spaces:
        raise ValueError(
            "--search keeps the candidate nearest the target: it needs a conditional env "
            "(a -Cond- id); an unconditional agent has no target to search towards"
        )
    if sizes.search_policy + sizes.search_prior < 1:
        raise ValueError(
            "--search tries no strokes (search_policy and search_prior are 0): give --search_sizes"
        )
    return SearchActor(
        envs,
        policy,
        L2Discriminator(),
        np.random.default_rng([seed, 28]),
        device,
        policy_candidates=sizes.search_policy,
        prior_candidates=sizes.search_prior,
        move_candidates=sizes.search_moves,
        lookahead=sizes.search_lookahead,
        precision=precision,
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path | None = None,
    episodes: int = 64,
    split: str = "test",
    num_envs: int = 16,
    greedy: bool = False,
    seed: int = EVAL_SEED,
    device: str = "cpu",
    svg_count: int = 16,
    env_kwargs: dict | None = None,
    search: bool | ProgramConfig = False,
    temperature: float = 1.0,
) -> dict:
    """Runs a checkpoint's policy on ``episodes`` episodes of ``split`` and writes its outputs;
    with ``search``, the policy with a search at each step (:func:`search_actor`), of the sizes
    the checkpoint was trained with (``True``) or of these. ``temperature`` divides the policy's
    logits when it samples (below 1: its likelier actions more often).

    Returns:
        The metrics: ``l2``, ``psnr``, ``blank_l2``, ``constant_l2`` and ``normalised`` (when
        targets are known: :func:`image_metrics`), ``episodes``;
        for conditional scene agents the recovery scores (:func:`scene_recovery`) and a
        uniformly random agent's on the same scenes (``random_agent``);
        for unconditional MNIST agents the digit scores of :func:`agents.digits.digit_scores`
        (``sample_fd``, ``class_fractions``, ``min_class_fraction``).
    """
    dev = resolve_device(device)
    if not temperature > 0:
        raise ValueError(f"temperature {temperature}: accepted > 0 (--greedy is the limit at 0)")
    loaded = load_policy(checkpoint, dev, env_kwargs)
    loaded.policy.temperature = float(temperature)
    cfg = loaded.config
    sizes = cfg.programs if search is True else search or None
    kw = split_kwargs(cfg.env_id, {**cfg.env_kwargs, **(env_kwargs or {})}, split)
    constant = constant_image(cfg.env_id, kw)
    envs = make_envs(cfg.env_id, min(num_envs, episodes), kw)
    torch.manual_seed(seed)
    try:
        metrics, rollouts, programs = evaluate_policy(
            loaded.policy, envs, episodes, seed, dev, greedy, constant=constant, search=sizes
        )
        if "type_accuracy" in metrics:  # a scene env: chance's recovery on the same scenes
            metrics["random_agent"] = random_recovery(envs, episodes, seed)
    finally:
        envs.close()
    metrics = {
        "env_id": cfg.env_id,
        "split": kw.get("split"),
        "greedy": greedy and sizes is None,  # the search decides, greedy or not
        "temperature": temperature,
        "search": None if sizes is None else search_sizes(sizes),
        "checkpoint": str(checkpoint),
        "train_frames": loaded.frames,
        **metrics,
    }
    if is_digit_generator(cfg.env_id):
        finals = np.concatenate([r.canvases[-1] for r in rollouts])[:episodes]
        metrics.update(digit_scores(finals, cfg.env_id, kw))
    if out_dir is not None:
        write_outputs(Path(out_dir), rollouts, programs, episodes, cfg.env_id, svg_count)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def random_recovery(envs: gym.vector.VectorEnv, episodes: int, seed: int) -> dict[str, float]:
    """:func:`scene_recovery` of uniformly random actions on episodes ``seed + i``."""
    envs.action_space.seed(seed)
    b, programs, targets = envs.num_envs, [], []
    for i in range(int(math.ceil(episodes / b))):
        envs.reset(seed=[seed + i * b + j for j in range(b)])
        for _ in range(envs.get_attr("episode_length")[0]):
            envs.step(envs.action_space.sample())
        programs.extend(envs.get_attr("program"))
        targets.extend(envs.get_attr("target_program"))
    return scene_recovery(programs[:episodes], targets[:episodes])


def search_sizes(sizes: ProgramConfig) -> dict[str, int]:
    """The search's candidates a step, as the metrics record them."""
    return {
        "policy": sizes.search_policy,
        "prior": sizes.search_prior,
        "moves": sizes.search_moves,
        "lookahead": sizes.search_lookahead,
    }


def write_outputs(
    out: Path, rollouts: list[Rollout], programs: list, episodes: int, env_id: str, svgs: int
) -> None:
    """Sample grid, episode GIF, the programs as JSON and (painting) SVG files."""
    out.mkdir(parents=True, exist_ok=True)
    finals = np.concatenate([r.canvases[-1] for r in rollouts])[:episodes]
    targets = None
    if rollouts[0].targets is not None:
        targets = np.concatenate([r.targets for r in rollouts])[:episodes]
    np.save(out / "canvases.npy", finals)
    if targets is not None:
        np.save(out / "targets.npy", targets)
    save_grid(out / "samples.png", finals, targets, n=min(24, len(finals)), per_row=6)
    r0 = rollouts[0]
    save_episode_gif(
        out / "episode.gif", r0.canvases[:, 0], None if r0.targets is None else r0.targets[0]
    )
    acts = np.concatenate([r.actions.transpose(1, 0, 2) for r in rollouts])[:episodes]
    rows = [
        {"actions": a.tolist(), **(p.to_dict() if hasattr(p, "to_dict") else {})}
        for a, p in zip(acts, programs, strict=True)
    ]
    (out / "programs.json").write_text(json.dumps({"env_id": env_id, "programs": rows}))
    with_svg = [p for p in programs if hasattr(p, "to_svg")][:svgs]
    if with_svg:
        (out / "programs").mkdir(exist_ok=True)
    for i, p in enumerate(with_svg):
        (out / "programs" / f"episode_{i:03d}.svg").write_text(p.to_svg(256))


def _recovery(m: dict) -> str:
    return (
        f"type {m['type_accuracy']:.3f}, size {m['size_accuracy']:.3f}, exact colour "
        f"{m['color_accuracy']:.3f}, exact cell {m['position_accuracy']:.3f}, count error "
        f"{m['count_error']:.2f}"
    )


def describe(m: dict) -> str:
    """One line of an evaluation's scores beside its baselines (what ``spiral-eval`` and
    ``spiral-recipe`` print)."""
    shown = ", ".join(f"{k}={m[k]:.4g}" for k in ("l2", "psnr") if k in m) or "no targets"
    if "normalised" in m:
        shown += (
            f" (blank canvas: l2={m['blank_l2']:.4g}, best constant image: "
            f"l2={m['constant_l2']:.4g}); normalised score {m['normalised']:.3f} "
            f"({verdict(m['normalised'])})"
        )
    elif "blank_l2" in m:
        shown += f" (blank canvas: l2={m['blank_l2']:.4g})"
    if "sample_fd" in m:
        shown = (
            f"digit Frechet distance {m['sample_fd']:.4g} to the test digits, predicted classes "
            f"{' '.join(f'{f:.0%}' for f in m['class_fractions'])} (0-9)"
        )
    if "type_accuracy" in m:
        shown += f"; scene recovery: {_recovery(m)}"
        if "random_agent" in m:
            shown += f" (random agent: {_recovery(m['random_agent'])})"
    if m.get("search"):
        shown += f"; the policy with a search a step: {m['search']} candidates"
    return shown


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spiral-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint.pt of spiral-train, or a shipped agent")
    p.add_argument(
        "--out",
        default=None,
        help="output directory (default: <run>/eval for a run's checkpoint.pt, else "
        "runs/eval_<file name>)",
    )
    p.add_argument("--episodes", type=int, default=64, help="episodes to run (default 64)")
    p.add_argument("--split", default="test", help="dataset split of the targets (default test)")
    p.add_argument("--num_envs", type=int, default=16, help="envs acted in one batch")
    p.add_argument("--greedy", action="store_true", help="argmax sub-actions instead of sampling")
    p.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divides the policy's logits when it samples (default 1; below 1 its likelier "
        "actions more often, as sketch models sample)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=EVAL_SEED,
        help=f"episode i is reset with seed + i (default {EVAL_SEED}, the benchmark's)",
    )
    p.add_argument(
        "--search",
        action="store_true",
        help="at each step, try the policy's samples and the stroke prior's strokes and moves on "
        "the renderer and play the one nearest the target: the policy with a search at test "
        "time (sizes: --search_sizes, else the checkpoint's search_* settings)",
    )
    p.add_argument(
        "--search_sizes",
        type=int,
        nargs=4,
        metavar=("POLICY", "PRIOR", "MOVES", "LOOKAHEAD"),
        help="with --search: candidates a step from the policy, the prior's strokes and moves, "
        "and strokes tried after each move",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--env_kwargs",
        type=json.loads,
        default=None,
        help="JSON overrides of the env kwargs saved in the checkpoint",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    a = p.parse_args(argv)
    for name in ("episodes", "num_envs"):
        if getattr(a, name) < 1:
            p.error(f"--{name} {getattr(a, name)}: accepted >= 1")
    ck = Path(a.checkpoint)
    # a run's checkpoint.pt: <run>/eval; any other file (a shipped one): runs/eval_<name>
    out = a.out or str(
        ck.parent / "eval" if ck.name == "checkpoint.pt" else Path("runs") / f"eval_{ck.stem}"
    )
    if a.greedy and a.temperature != 1.0:
        given = f"{a.temperature:g}"
        p.error(f"--greedy with --temperature {given}: give one (greedy is the limit at 0)")
    if a.search_sizes and not a.search:
        p.error("--search_sizes: add --search")
    if a.search_sizes and (min(a.search_sizes) < 0 or not sum(a.search_sizes[:2])):
        given = " ".join(map(str, a.search_sizes))
        p.error(f"--search_sizes {given}: accepted counts >= 0, POLICY + PRIOR >= 1")
    try:
        m = evaluate_checkpoint(
            a.checkpoint,
            out,
            a.episodes,
            a.split,
            a.num_envs,
            a.greedy,
            a.seed,
            a.device,
            env_kwargs=a.env_kwargs,
            search=_search_config(a),
            temperature=a.temperature,
        )
    except (FileNotFoundError, UnsafeCheckpointError, ValueError) as e:
        print(f"spiral-eval: error: {e}", file=sys.stderr)
        return 2
    print(
        f"{m['env_id']} ({m['split'] or 'no dataset split: held-out seeds'}, "
        f"{int(m['episodes'])} episodes): {describe(m)}"
    )
    print(f"outputs in {out}: metrics.json, samples.png, episode.gif, programs.json, *.npy")
    return 0


def _search_config(a: argparse.Namespace) -> bool | ProgramConfig:
    """``--search``'s sizes: ``--search_sizes``, else ``True`` (the checkpoint's)."""
    if not a.search or not a.search_sizes:
        return a.search
    pol, prior, moves, look = a.search_sizes
    return ProgramConfig(
        search_policy=pol, search_prior=prior, search_moves=moves, search_lookahead=look
    )


if __name__ == "__main__":
    sys.exit(main())
