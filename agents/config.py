"""The training configuration: one dataclass, every field documented and validated.

The command line (``spiral-train --help``) is generated from the fields of :class:`TrainConfig`,
their types and their ``help`` metadata, so the documentation lives in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "add_config_arguments", "config_from_args"]


def _f(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors argparse
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    """Configuration of the adversarial A2C trainer (``spiral-train``).

    Paper values (SPIRAL, Ganin et al. 2018, and SPIRAL++) are noted in the help strings where
    the defaults differ: the defaults are sized for a 2-core CPU.
    """

    # --- experiment -------------------------------------------------------------------------
    env_id: str = _f("SpiralPaint-MNIST-Cond-v0", "Gymnasium id of a spiral_envs environment.")
    env_kwargs: dict = _f(
        {},
        "Extra keyword arguments for gym.make, as JSON (for example '{\"brush_sizes\": [2, 4]}').",
    )
    reward: str = _f(
        "discriminator",
        "Reward source: 'discriminator' (adversarial, the paper), 'l2' (negative pixel L2 to "
        "the target; the paper's baseline) or 'similarity' (blurred cosine similarity of the "
        "canvas's and the target's changes from the blank canvas: dense where L2 is sparse, as "
        "for the 3D scenes); 'l2' and 'similarity' need a conditional env.",
        choices=("discriminator", "l2", "similarity"),
    )
    reward_mode: str = _f(
        "final",
        "'final': the score of the finished canvas at the last step (SPIRAL); 'delta': per-step "
        "score differences score(c_t+1) - score(c_t) (SPIRAL++ temporal credit assignment).",
        choices=("final", "delta"),
    )
    reward_scale: float = _f(1.0, "Multiplier applied to the (score) rewards.", low=0.0)
    new_stroke_penalty: float = _f(
        0.0,
        "Penalty per paint step that starts a new disjoint stroke (after a move or first).",
        low=0.0,
    )
    blank_penalty: float = _f(
        0.0, "Penalty at the last step when the final canvas has no ink at all.", low=0.0
    )
    num_envs: int = _f(32, "Environments acted in one batch (episodes per update).", low=1)
    total_steps: int = _f(200_000, "Environment steps (frames) to train for.", low=1)
    seed: int = _f(0, "Random seed (torch, numpy, environment resets).", low=0)
    out_dir: str = _f("runs/spiral", "Output directory: logs, pictures, checkpoints.")
    device: str = _f(
        "auto", "Torch device: 'cpu', 'cuda', 'cuda:1', ... or 'auto' (cuda when available)."
    )
    threads: int = _f(0, "torch.set_num_threads on CPU; 0 keeps torch's default.", low=0)
    precision: str = _f(
        "fp32",
        "'fp32', or 'bf16': autocast convs and matmuls of acting, the policy update and the "
        "critic's scoring to bfloat16 (about 2x faster encoder on CPUs with AVX-512 BF16; the "
        "critic's WGAN-GP update and the action and value heads stay float32). On MNIST it ran "
        "22% more frames per minute than fp32, learned slightly worse per frame and ended level "
        "at equal time (docs/agents.md).",
        choices=("fp32", "bf16"),
    )
    async_actor: bool = _f(
        False,
        "Act in a background thread, one batch ahead of the learner (overlaps acting and "
        "learning on 2+ cores; the batch is one update stale: pair with off_policy='vtrace'; "
        "runs are then not bit-reproducible). Each thread runs torch ops with `threads` threads: "
        "on 2 cores threads=1 is fastest (the two threads fill the cores; more oversubscribes).",
    )
    vector_mode: str = _f(
        "sync", "Gymnasium vectorization of the actors' envs.", choices=("sync", "async")
    )
    # --- policy learner ----------------------------------------------------------------------
    lr: float = _f(5e-4, "Policy Adam learning rate (SPIRAL++ range 1e-5..3e-4).", low=0.0)
    lr_final: float = _f(-1.0, "Learning rate at the end (linear decay); -1 keeps it constant.")
    ent_coef: float = _f(0.02, "Entropy bonus at the start (SPIRAL++ range 2e-3..1e-1).", low=0.0)
    ent_coef_final: float = _f(0.002, "Entropy bonus at the end, decayed linearly.", low=0.0)
    vf_coef: float = _f(0.5, "Value loss weight.", low=0.0)
    max_grad_norm: float = _f(1.0, "Global gradient-norm clip for the policy (0 disables).", low=0)
    gamma: float = _f(
        1.0, "Discount (1 for the short fixed-length episodes, as SPIRAL++).", low=0.0, high=1.0
    )
    gae_lambda: float = _f(1.0, "GAE lambda (1: Monte-Carlo advantages).", low=0.0, high=1.0)
    normalize_advantage: bool = _f(True, "Normalise advantages per batch.")
    off_policy: str = _f(
        "none",
        "Stale-policy correction: 'none' (on-policy, single process) or 'vtrace' (IMPALA).",
        choices=("none", "vtrace"),
    )
    # --- policy network (paper: channels 32, res_blocks 8, hidden 256, lstm 256) -------------
    channels: int = _f(32, "Conv channels of the policy encoder.", low=1)
    stem_stride: int = _f(
        8,
        "Encoder stem: 1 = paper (5x5 conv at full resolution, then 3 stride-2 convs); 2/4/8 = "
        "a patchify conv of that stride (then stride-2 convs down to H/8): cheaper on CPU.",
        choices=(1, 2, 4, 8),
    )
    spatial_skip: bool = _f(
        True,
        "Feed the encoder's feature map to the spatial (end/control) heads' deconvolution, a "
        "U-Net-like skip (paper: false, the heads see only the LSTM output).",
    )
    glimpse: bool = _f(
        False,
        "After each spatial sub-action, add the encoder's features at the chosen cell to the "
        "head's running vector, so later sub-actions (colour, size) see what is there (not in "
        "the paper; the 3D scenes need it to copy colours).",
    )
    pen_plane: bool = _f(
        True,
        "Add an input plane marking the pen position (previous end cell) to the encoder "
        "(paper: false, the previous action enters only as an embedding).",
    )
    res_blocks: int = _f(2, "Residual blocks at 8x8 in the encoder (paper 8).", low=0)
    hidden: int = _f(256, "Width of the linear layer before the LSTM (paper 256).", low=1)
    lstm: int = _f(
        128, "LSTM size, also the autoregressive head's running vector (paper 256).", low=1
    )
    embed: int = _f(16, "Embedding size of each sampled sub-action in the head.", low=1)
    noise_dim: int = _f(10, "Per-episode Gaussian noise size for unconditional agents.", low=0)
    # --- discriminator learner ---------------------------------------------------------------
    disc: str = _f(
        "wgan-gp",
        "Discriminator: 'wgan-gp' (SPIRAL) or 'sngan' (SPIRAL++: spectral norm, standard GAN "
        "loss).",
        choices=("wgan-gp", "sngan"),
    )
    disc_complement: bool = _f(
        False,
        "SPIRAL++ complement discriminator: shows (1-m)*target beside m*image, m a half-mask.",
    )
    disc_lr: float = _f(1e-4, "Discriminator Adam learning rate (paper 1e-4).", low=0.0)
    disc_beta1: float = _f(0.5, "Discriminator Adam beta1 (paper 0.5).", low=0.0, high=1.0)
    disc_beta2: float = _f(0.999, "Discriminator Adam beta2 (paper 0.999).", low=0.0, high=1.0)
    gp_weight: float = _f(10.0, "WGAN-GP gradient penalty weight (paper 10).", low=0.0)
    disc_channels: int = _f(
        16, "Conv channels of the discriminator's first layer (doubled per layer, up to 4x).", low=1
    )
    disc_updates: int = _f(1, "Discriminator updates per policy update.", low=0)
    disc_batch: int = _f(64, "Fake (and real) images per discriminator update.", low=1)
    replay_size: int = _f(4096, "Replay buffer of past final renderings (0 disables).", low=0)
    replay_fraction: float = _f(
        0.5, "Share of each fake batch drawn from the replay buffer.", low=0.0, high=1.0
    )
    # --- logging and checkpoints -------------------------------------------------------------
    log_every: int = _f(5, "Iterations between CSV/TensorBoard log rows.", low=1)
    sample_every: int = _f(
        100, "Iterations between sample grids and episode GIFs (0: never).", low=0
    )
    checkpoint_every: int = _f(50, "Iterations between checkpoints (always one at the end).", low=1)
    eval_every: int = _f(
        0, "Iterations between held-out (split='test') evaluations; 0: never.", low=0
    )
    eval_episodes: int = _f(64, "Episodes per held-out evaluation.", low=1)
    tensorboard: bool = _f(True, "Write TensorBoard event files under out_dir/tb.")
    progress: bool = _f(True, "Show a tqdm progress bar with frames/s.")
    resume: bool = _f(False, "Continue the run in out_dir from its last checkpoint.")
    max_minutes: float = _f(
        0.0,
        "Stop (with a checkpoint) after this wall time; 0: no limit. The lr and entropy schedules "
        "then follow whichever of frames and time is further along.",
        low=0.0,
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks every field.

        Raises:
            ValueError: naming the field and its accepted range.
        """
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            t = hints[f.name]
            if t is bool and not isinstance(v, bool):
                raise ValueError(f"{f.name} = {v!r}: accepted true or false")
            if t is int and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"{f.name} = {v!r}: accepted an integer")
            if t is float:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"{f.name} = {v!r}: accepted a number")
                if v != v or v in (float("inf"), float("-inf")):
                    raise ValueError(f"{f.name} = {v!r}: accepted a finite number")
            if t is dict and not isinstance(v, dict):
                raise ValueError(f"{f.name} = {v!r}: accepted a JSON object")
            md = f.metadata
            if "choices" in md and v not in md["choices"]:
                raise ValueError(f"{f.name} = {v!r}: accepted one of {list(md['choices'])}")
            lo, hi = md.get("low"), md.get("high")
            if lo is not None and v < lo:
                rng = f">= {lo}" if hi is None else f"{lo}..{hi}"
                raise ValueError(f"{f.name} = {v!r}: accepted {rng}")
            if hi is not None and v > hi:
                raise ValueError(f"{f.name} = {v!r}: accepted {lo}..{hi}")
        if self.lr_final != -1.0 and self.lr_final < 0:
            raise ValueError(f"lr_final = {self.lr_final}: accepted -1 (constant) or >= 0")
        if not self.env_id:
            raise ValueError("env_id is empty: accepted a registered spiral_envs id")
        if self.device != "auto" and not (
            self.device == "cpu" or self.device.startswith("cuda") or self.device == "mps"
        ):
            raise ValueError(f"device = {self.device!r}: accepted 'auto', 'cpu', 'cuda[:n]', 'mps'")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}: accepted {sorted(names)}")
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _str2bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{s!r}: accepted true or false")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type = TrainConfig) -> None:
    """Adds one ``--field`` option per dataclass field (``--field-name`` spelling also works)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kw: dict[str, Any] = {
            "default": argparse.SUPPRESS,
            "help": f"{f.metadata['help']} (default: {json.dumps(default)})",
        }
        if t is bool:
            kw.update(type=_str2bool, nargs="?", const=True, metavar="BOOL")
        elif t is dict:
            kw.update(type=json.loads, metavar="JSON")
        else:
            kw.update(type=t)
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        names = [f"--{f.name}"]
        if "_" in f.name:
            names.append(f"--{f.name.replace('_', '-')}")
        parser.add_argument(*names, dest=f.name, **kw)


def config_from_args(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """Builds a config from parsed arguments, over ``base`` (defaults when ``None``)."""
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name)
    }
    if base is None:
        return TrainConfig(**given)
    return base.replace(**given)
