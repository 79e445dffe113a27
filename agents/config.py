"""The training configuration: small dataclasses, each field declared once with its help.

Each piece is built from its own part: :class:`RewardConfig` for the reward computation,
:class:`LearnerConfig` for the policy learner, :class:`NetConfig` for the policy network and
:class:`CriticConfig` for the discriminator learner. :class:`TrainConfig` holds the run's own
fields and one of each part. The command line (``spiral-train --help``) and the saved JSON are
flat (``--lr``, ``--disc_lr``, ...): every field name is unique across the parts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CriticConfig",
    "ProgramConfig",
    "LearnerConfig",
    "NetConfig",
    "RayConfig",
    "RewardConfig",
    "TrainConfig",
    "add_config_arguments",
    "config_from_args",
]

#: Reward-mode aliases: the env wrappers of spiral_envs say ``"per_step"``; older runs ``"delta"``.
REWARD_MODE_ALIASES = {"delta": "per_step"}


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors argparse
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


def _check_field(name: str, v: Any, t: Any, md: typing.Mapping) -> None:
    """Raises ``ValueError`` naming the field, its value and what is accepted."""
    if t is bool and not isinstance(v, bool):
        raise ValueError(f"{name} = {v!r}: accepted true or false")
    if t is int and (isinstance(v, bool) or not isinstance(v, int)):
        raise ValueError(f"{name} = {v!r}: accepted an integer")
    if t is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name} = {v!r}: accepted a number")
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError(f"{name} = {v!r}: accepted a finite number")
    if t is dict and not isinstance(v, dict):
        raise ValueError(f"{name} = {v!r}: accepted a JSON object")
    if "choices" in md and v not in md["choices"]:
        raise ValueError(f"{name} = {v!r}: accepted one of {list(md['choices'])}")
    lo, hi = md.get("low"), md.get("high")
    if lo is not None and v < lo:
        accepted = f">= {lo}" if hi is None else f"{lo}..{hi}"
        raise ValueError(f"{name} = {v!r}: accepted {accepted}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} = {v!r}: accepted {lo}..{hi}")


def _leaf_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """The non-section fields of a config class, with their resolved types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if f.name not in _SECTIONS]


class _Validated:
    """Checks every field against its type and ``low``/``high``/``choices`` metadata."""

    def __post_init__(self) -> None:
        for f, t in _leaf_fields(type(self)):
            _check_field(f.name, getattr(self, f.name), t, f.metadata)


@dataclass(frozen=True)
class RewardConfig(_Validated):
    """How the trainer turns a batch of episodes into rewards."""

    reward: str = _f(
        "discriminator",
        "Reward: 'discriminator' (adversarial, the paper), 'l2' (negative pixel L2 to the "
        "target) or 'similarity' (blurred change similarity); the last two need a -Cond- env.",
        choices=("discriminator", "l2", "similarity"),
    )
    reward_mode: str = _f(
        "final",
        "'final': the finished canvas's score at the last step (SPIRAL); 'per_step' (alias "
        "'delta'): score differences every step (SPIRAL++).",
        choices=("final", "per_step"),
    )
    reward_scale: float = _f(1.0, "Multiplier of the score rewards.", low=0.0)
    new_stroke_penalty: float = _f(
        0.0, "Penalty per paint step that starts a new disjoint stroke.", low=0.0
    )
    blank_penalty: float = _f(0.0, "Penalty at the last step when the canvas has no ink.", low=0.0)
    place_penalty: float = _f(
        0.0,
        "Penalty per step whose gate is 1 (each paint stroke, each placed object): makes a "
        "placement that changes nothing cost something.",
        low=0.0,
    )
    l2_weight: float = _f(
        0.0,
        "Adds this multiple of the pixel-L2 decrease, per step or final as reward_mode, to a "
        "'similarity' or 'discriminator' reward (needs a -Cond- env).",
        low=0.0,
    )

    def __post_init__(self) -> None:
        mode = REWARD_MODE_ALIASES.get(self.reward_mode, self.reward_mode)
        object.__setattr__(self, "reward_mode", mode)
        super().__post_init__()
        if self.l2_weight and self.reward == "l2":
            raise ValueError(
                f"l2_weight = {self.l2_weight} adds an L2 term to a 'similarity' or "
                "'discriminator' reward; with reward 'l2' set reward_scale instead"
            )


@dataclass(frozen=True)
class LearnerConfig(_Validated):
    """The policy learner: advantage actor-critic (paper values in the help)."""

    lr: float = _f(5e-4, "Policy Adam learning rate (SPIRAL++ range 1e-5..3e-4).", low=0.0)
    lr_final: float = _f(-1.0, "Learning rate at the end (linear decay); -1 keeps it constant.")
    ent_coef: float = _f(0.02, "Entropy bonus at the start (SPIRAL++ range 2e-3..1e-1).", low=0.0)
    ent_coef_final: float = _f(0.002, "Entropy bonus at the end, decayed linearly.", low=0.0)
    vf_coef: float = _f(0.5, "Value loss weight.", low=0.0)
    max_grad_norm: float = _f(1.0, "Global gradient-norm clip for the policy (0 disables).", low=0)
    gamma: float = _f(1.0, "Discount (1 for the short fixed-length episodes).", low=0.0, high=1.0)
    gae_lambda: float = _f(1.0, "GAE lambda (1: Monte-Carlo advantages).", low=0.0, high=1.0)
    normalize_advantage: bool = _f(True, "Normalise advantages per batch.")
    off_policy: str = _f(
        "auto",
        "Stale-policy correction: 'vtrace' (IMPALA), 'none', or 'auto' (vtrace when acting "
        "runs ahead: async_actor or the ray backend).",
        choices=("auto", "none", "vtrace"),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lr_final != -1.0 and self.lr_final < 0:
            raise ValueError(f"lr_final = {self.lr_final}: accepted -1 (constant) or >= 0")


@dataclass(frozen=True)
class NetConfig(_Validated):
    """Policy network sizes (paper: channels 32, res_blocks 8, hidden 256, lstm 256, stem 1).

    ``agents.networks`` documents what each option changes in the architecture.
    """

    channels: int = _f(32, "Conv channels of the policy encoder.", low=1)
    stem_stride: int = _f(
        8,
        "Encoder stem: 1 = the paper's full-resolution 5x5 conv; 2/4/8 = a patchify conv.",
        choices=(1, 2, 4, 8),
    )
    spatial_skip: bool = _f(
        True, "Feed the encoder's feature map to the spatial heads (paper: false)."
    )
    glimpse: bool = _f(
        False, "Let later sub-actions read the encoder's features at the chosen cell."
    )
    target_glimpse: bool = _f(
        False, "Let later sub-actions read the target's colour at the chosen cell (conditional)."
    )
    target_patch: int = _f(
        0,
        "Let later sub-actions read the target's pixels in a window of this many pixels around "
        "the chosen cell through a small CNN (conditional; a multiple of 4; 0: off).",
        low=0,
    )
    spatial_first: bool = _f(
        False,
        "The head samples the spatial sub-actions right after the gate, the others after them "
        "(a scene's cell before its type: with glimpse, the type reads what is at the cell).",
    )
    pen_plane: bool = _f(True, "Add an input plane marking the pen position (paper: false).")
    pointer: bool = _f(
        False,
        "Spatial heads also point at grid cells: a small fully convolutional map of canvas, "
        "target and pen at the grid's resolution, scored against a query from the head.",
    )
    pointer_channels: int = _f(16, "Channels of the pointer map (with pointer).", low=1)
    res_blocks: int = _f(0, "Residual blocks at 8x8 in the encoder (paper 8).", low=0)
    hidden: int = _f(128, "Width of the linear layer before the LSTM (paper 256).", low=1)
    lstm: int = _f(128, "LSTM size, also the head's running vector (paper 256).", low=1)
    embed: int = _f(16, "Embedding size of each sampled sub-action in the head.", low=1)
    noise_dim: int = _f(10, "Per-episode Gaussian noise size for unconditional agents.", low=0)


@dataclass(frozen=True)
class CriticConfig(_Validated):
    """The discriminator learner (paper values in the help)."""

    disc: str = _f(
        "wgan-gp",
        "Discriminator: 'wgan-gp' (SPIRAL) or 'sngan' (SPIRAL++).",
        choices=("wgan-gp", "sngan"),
    )
    disc_complement: bool = _f(
        False, "SPIRAL++ complement critic: (1-m)*target beside m*image, m a half-mask."
    )
    disc_lr: float = _f(1e-4, "Discriminator Adam learning rate (paper 1e-4).", low=0.0)
    disc_beta1: float = _f(0.5, "Discriminator Adam beta1 (paper 0.5).", low=0.0, high=1.0)
    disc_beta2: float = _f(0.999, "Discriminator Adam beta2 (paper 0.999).", low=0.0, high=1.0)
    gp_weight: float = _f(10.0, "WGAN-GP gradient penalty weight (paper 10).", low=0.0)
    disc_channels: int = _f(16, "Conv channels of the critic's first layer.", low=1)
    disc_updates: int = _f(1, "Discriminator updates per policy update.", low=0)
    disc_batch: int = _f(64, "Fake (and real) images per discriminator update.", low=1)
    replay_size: int = _f(4096, "Replay buffer of past final renderings (0 disables).", low=0)
    replay_fraction: float = _f(
        0.5, "Share of each fake batch drawn from the replay buffer.", low=0.0, high=1.0
    )


@dataclass(frozen=True)
class RayConfig(_Validated):
    """The Ray backend (``backend="ray"``): rollout workers as Ray actors."""

    num_actors: int = _f(2, "Rollout workers, each a Ray actor with num_envs envs.", low=1)
    ray_address: str = _f(
        "", "Ray cluster to join ('auto', or host:port of `ray start --head`); '': start one."
    )
    cpus_per_actor: float = _f(1.0, "Logical CPUs Ray reserves per worker (fractions allowed).")
    weights_every: int = _f(1, "Policy updates between weight pushes to the workers.", low=1)
    ray_sync: bool = _f(
        True,
        "Each batch split between the workers, all acting with the learner's current weights "
        "(on-policy: learns as the local backend; they wait for each update; weights_every is "
        "1). False: each worker plays whole batches, up to num_actors - 1 updates stale, "
        "corrected by V-trace (faster, less stable).",
    )
    actor_restarts: int = _f(3, "Times Ray restarts a worker that died.", low=0)
    worker_niceness: int = _f(
        15, "Niceness of the workers of a Ray instance the run starts.", low=0, high=19
    )
    disc_placement: str = _f(
        "driver",
        "Where the discriminator learner runs: 'driver' (beside the policy learner) or 'actor' "
        "(its own Ray actor, fed the final canvases; the driver scores with its latest weights).",
        choices=("driver", "actor"),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cpus_per_actor <= 0:
            raise ValueError(f"cpus_per_actor = {self.cpus_per_actor}: accepted > 0")


@dataclass(frozen=True)
class ProgramConfig(_Validated):
    """Learning from the renderer: the run's stage, where it starts, and the search's sizes.

    ``docs/renderer.md`` explains the stages; ``agents.programs`` and ``agents.imitation`` are
    their pieces.
    """

    stage: str = _f(
        "rl",
        "What the run learns from: 'rl' (A2C on the reward), or maximum likelihood of programs: "
        "'sleep' (random programs of a stroke prior, paired with their renderings), 'wake' (the "
        "policy's own programs for real targets, paired with their renderings), 'search' (the "
        "best of candidate actions tried on the renderer each step).",
        choices=("rl", "sleep", "wake", "search"),
    )
    init_from: str = _f(
        "", "A checkpoint whose policy weights the run starts from (an earlier stage's)."
    )
    init_critic: bool = _f(
        True,
        "With init_from and the discriminator reward: start the critic from init_from's too, "
        "where it has one of the same kind (a search or rl stage's, trained on its canvases).",
    )
    kl_coef: float = _f(
        0.0,
        "Stage 'rl': weight at the start of KL(init_from's policy || policy) on the batch's "
        "steps (kickstarting), decayed linearly to kl_coef_final.",
        low=0.0,
    )
    kl_coef_final: float = _f(0.0, "The KL weight at the end of the run.", low=0.0)
    updates_per_batch: int = _f(
        1,
        "The renderer's stages: gradient steps per new batch; the steps after the first "
        "replay earlier batches (their programs stay exact examples).",
        low=1,
    )
    replay_batches: int = _f(
        16, "The renderer's stages: earlier batches kept for those replayed steps.", low=1
    )
    search_score: str = _f(
        "reward",
        "Stage 'search': what the best candidate is best at: 'reward' (the run's reward as a "
        "canvas score: L2, similarity or the discriminator) or 'target_l2' (L2 to the env's "
        "target, also the hidden one of an unconditional env: programs inferred for real images, "
        "a generative model's training data).",
        choices=("reward", "target_l2"),
    )
    search_policy: int = _f(8, "Stage 'search': samples of the policy tried per step.", low=0)
    search_prior: int = _f(16, "Stage 'search': prior strokes tried per step.", low=0)
    search_moves: int = _f(
        4, "Stage 'search': pen moves tried per step (to cells unlike the target).", low=0
    )
    search_lookahead: int = _f(
        4,
        "Stage 'search': strokes tried after each move, to value it (0: a move is worth 0).",
        low=0,
    )
    search_rollin: float = _f(
        0.0,
        "Stage 'search': the chance that an env plays the policy's own sample at a step "
        "instead of the search's best, which is the label either way: the policy learns "
        "the search's choices on canvases it reaches itself (DAgger).",
        low=0.0,
        high=1.0,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        kl = f"kl_coef = {self.kl_coef}, kl_coef_final = {self.kl_coef_final}"
        if (self.kl_coef or self.kl_coef_final) and not self.init_from:
            raise ValueError(
                f"{kl}: the KL term pulls towards init_from's policy; set init_from to a "
                "checkpoint, or both to 0"
            )
        if (self.kl_coef or self.kl_coef_final) and self.stage != "rl":
            raise ValueError(f"{kl}: the KL pull is a term of stage 'rl' only; set both to 0")
        if self.stage == "search" and not (self.search_policy + self.search_prior):
            raise ValueError(
                "stage 'search' tries no candidates: set search_policy or search_prior"
            )
        if self.search_rollin and not self.search_policy:
            raise ValueError(
                f"search_rollin = {self.search_rollin} plays the policy's samples: set "
                "search_policy to 1 or more, or search_rollin to 0"
            )


#: The parts of a :class:`TrainConfig`, by field name.
_SECTIONS: dict[str, type] = {
    "rewards": RewardConfig,
    "learner": LearnerConfig,
    "net": NetConfig,
    "critic": CriticConfig,
    "ray": RayConfig,
    "programs": ProgramConfig,
}


@dataclass(frozen=True)
class TrainConfig(_Validated):
    """Configuration of the adversarial A2C trainer (``spiral-train``).

    Defaults are sized for a 2-core CPU; ``docs/agents.md`` has the measurements behind them.
    Build one from flat fields with :meth:`from_dict`; read the parts as ``cfg.learner.lr``.
    """

    env_id: str = _f("SpiralPaint-MNIST-Cond-v0", "Gymnasium id of a spiral_envs environment.")
    env_kwargs: dict = _f({}, "Extra keyword arguments for gym.make, as JSON.")
    num_envs: int = _f(32, "Environments acted in one batch (episodes per update).", low=1)
    total_steps: int = _f(0, "Frames to train for; 0: no frame limit (set max_minutes).", low=0)
    max_minutes: float = _f(0.0, "Wall-clock budget in minutes; 0: no time limit.", low=0.0)
    seed: int = _f(0, "Random seed (torch, numpy, environment resets).", low=0)
    out_dir: str = _f("runs/spiral", "Output directory: logs, pictures, checkpoints.")
    device: str = _f("auto", "Torch device: 'cpu', 'cuda[:n]', 'mps' or 'auto'.")
    threads: int = _f(0, "torch.set_num_threads on CPU; 0 keeps torch's default.", low=0)
    precision: str = _f(
        "fp32", "'fp32', or 'bf16' autocast of the convs and matmuls.", choices=("fp32", "bf16")
    )
    backend: str = _f(
        "local", "Where acting runs: 'local' (this process) or 'ray'.", choices=("local", "ray")
    )
    async_actor: bool = _f(False, "Local backend: act in a background thread, one batch ahead.")
    vector_mode: str = _f(
        "sync", "Gymnasium vectorization of the actors' envs.", choices=("sync", "async")
    )
    log_every: int = _f(5, "Iterations between CSV/TensorBoard log rows.", low=1)
    sample_every: int = _f(100, "Iterations between sample grids and GIFs (0: never).", low=0)
    checkpoint_every: int = _f(50, "Iterations between checkpoints (one at the end too).", low=1)
    eval_every: int = _f(0, "Iterations between held-out evaluations (0: never).", low=0)
    eval_episodes: int = _f(64, "Episodes per held-out evaluation.", low=1)
    tensorboard: bool = _f(True, "Write TensorBoard event files under out_dir/tb.")
    progress: bool = _f(True, "Show a tqdm progress bar with frames/s.")
    resume: bool = _f(False, "Continue the run in out_dir from its last checkpoint.")
    rewards: RewardConfig = field(default_factory=RewardConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    net: NetConfig = field(default_factory=NetConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    programs: ProgramConfig = field(default_factory=ProgramConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.env_id:
            raise ValueError("env_id is empty: accepted a registered spiral_envs id")
        dev = self.device
        if dev not in ("auto", "cpu", "mps") and not dev.startswith("cuda"):
            raise ValueError(f"device = {dev!r}: accepted 'auto', 'cpu', 'cuda[:n]', 'mps'")
        if self.ray.disc_placement == "actor" and self.backend != "ray":
            raise ValueError(
                "disc_placement 'actor' runs the discriminator learner as a Ray actor: add "
                "--backend ray, or leave disc_placement 'driver'"
            )
        if self.backend == "ray" and self.ray.ray_sync and self.num_envs < self.ray.num_actors:
            raise ValueError(
                f"ray_sync splits each batch of num_envs {self.num_envs} between num_actors "
                f"{self.ray.num_actors} workers: give each at least one env"
            )
        if self.ray.disc_placement == "actor" and self.rewards.reward != "discriminator":
            raise ValueError(
                f"disc_placement 'actor': reward {self.rewards.reward!r} has no discriminator "
                "learner to place; use it with --reward discriminator"
            )
        if not self.total_steps and not self.max_minutes:
            raise ValueError(
                "no training budget: set total_steps (frames), max_minutes, or both "
                "(training stops at whichever comes first)"
            )

    @property
    def stale_acting(self) -> bool:
        """Acting runs ahead of learning (a thread, or Ray workers not in sync): batches can be
        stale."""
        return self.async_actor or (self.backend == "ray" and not self.ray.ray_sync)

    @property
    def off_policy(self) -> str:
        """The learner's correction, with ``"auto"`` resolved."""
        if self.learner.off_policy != "auto":
            return self.learner.off_policy
        return "vtrace" if self.stale_acting else "none"

    def to_dict(self) -> dict:
        """The flat form (the command line's names), as saved in checkpoints."""
        out = {f.name: getattr(self, f.name) for f, _ in _leaf_fields(TrainConfig)}
        for name in _SECTIONS:
            out.update(dataclasses.asdict(getattr(self, name)))
        out["env_kwargs"] = dict(self.env_kwargs)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Builds a config from flat fields (missing ones take their defaults).

        Raises:
            ValueError: an unknown field, or a value out of its range.
        """
        d = dict(d)
        parts = {}
        for name, part in _SECTIONS.items():
            names = {f.name for f in dataclasses.fields(part)}
            parts[name] = part(**{k: d.pop(k) for k in list(d) if k in names})
        known = {f.name for f, _ in _leaf_fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}: accepted {all_fields()}")
        return cls(**d, **parts)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with flat fields changed."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def all_fields() -> list[str]:
    """Every flat field name, in command-line order."""
    names = [f.name for f, _ in _leaf_fields(TrainConfig)]
    for part in _SECTIONS.values():
        names += [f.name for f in dataclasses.fields(part)]
    return names


def _str2bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{s!r}: accepted true or false")


def _add_fields(group: argparse._ActionsContainer, cls: type) -> None:
    for f, t in _leaf_fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        # argparse %-formats help strings: a literal % must be doubled
        text = f"{f.metadata['help']} (default: {json.dumps(default)})".replace("%", "%%")
        kw: dict[str, Any] = {"default": argparse.SUPPRESS, "help": text}
        if t is bool:
            kw.update(type=_str2bool, nargs="?", const=True, metavar="BOOL")
        elif t is dict:
            kw.update(type=json.loads, metavar="JSON")
        else:
            kw.update(type=t)
        if "choices" in f.metadata:
            choices = list(f.metadata["choices"])
            if f.name == "reward_mode":
                choices += list(REWARD_MODE_ALIASES)
            kw["choices"] = choices
        names = [f"--{f.name}"]
        if "_" in f.name:
            names.append(f"--{f.name.replace('_', '-')}")
        group.add_argument(*names, dest=f.name, **kw)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one ``--field`` option per config field, grouped by part (``--field-name`` works)."""
    _add_fields(parser.add_argument_group("run"), TrainConfig)
    for name, part in _SECTIONS.items():
        _add_fields(parser.add_argument_group(name, part.__doc__.split("\n")[0]), part)


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """Builds a config from parsed arguments, over ``base`` (defaults when ``None``)."""
    given = {k: getattr(args, k) for k in all_fields() if hasattr(args, k)}
    return TrainConfig.from_dict({**(base.to_dict() if base else {}), **given})
