"""Building the trainer's pieces from a :class:`~agents.config.TrainConfig`, and loading policies.

The training loop (:mod:`agents.train`), ``spiral-eval``, the examples and the benchmarks build
their envs, networks and learners here, each from its own part of the config.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch

from agents.actor import Actor, LocalRollouts, RolloutSource, ThreadedRollouts
from agents.checkpoint import load_agent_checkpoint
from agents.config import NetConfig, TrainConfig
from agents.discriminator import DiscriminatorLearner
from agents.imitation import ImitationLearner, Kickstart
from agents.learner import PolicyLearner
from agents.networks import PolicyNet
from agents.programs import OwnTargets, PriorActor, SearchActor
from spiral_envs.actions import ActionSpec
from spiral_envs.benchmark import best_constant_image
from spiral_envs.protocols import Discriminator, ImageDataset
from spiral_envs.registration import ENV_IDS, takes_split
from spiral_envs.rewards import ChangeSimilarity, L2Discriminator

__all__ = [
    "EnvInfo",
    "LoadedPolicy",
    "build_actor",
    "build_discriminator",
    "build_learner",
    "build_policy",
    "build_rollouts",
    "load_init",
    "load_policy",
    "make_envs",
    "probe_env",
    "resolve_device",
    "split_kwargs",
]


class EnvInfo(NamedTuple):
    """What the agent needs to know about an env."""

    action_spec: ActionSpec
    image_shape: tuple[int, int, int]
    conditional: bool  # the observation carries the target
    max_step: int  # the step observation's largest value
    dataset: ImageDataset | None  # where the env's targets (the real images) come from

    @classmethod
    def of(cls, env: gym.Env) -> EnvInfo:
        """Raises ``ValueError`` for an env that is not a spiral_envs env."""
        u = env.unwrapped
        if not hasattr(u, "action_spec"):
            name = env.spec.id if env.spec else env
            raise ValueError(f"{name}: not a spiral_envs env (no action_spec)")
        space = env.observation_space
        max_step = int(np.asarray(space["step"].high).max()) if "step" in space.spaces else 20
        dataset = getattr(u, "dataset", None)
        return cls(
            u.action_spec,
            tuple(space["canvas"].shape),
            "target" in space.spaces,
            max_step,
            dataset if isinstance(dataset, ImageDataset) else None,
        )


def _register_envs() -> None:
    import spiral_envs  # noqa: F401  (registers the ids)


def probe_env(env_id: str, env_kwargs: dict | None = None) -> EnvInfo:
    """The :class:`EnvInfo` of one instance of ``env_id``."""
    _register_envs()
    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as e:  # an unknown id: Gymnasium's hint, then every spiral-gym id
        raise ValueError(f"env_id {env_id!r}: {e} Accepted: {', '.join(ENV_IDS)}") from e
    except TypeError as e:  # a keyword the env does not take: its own message lists them
        raise ValueError(f"env_kwargs {env_kwargs}: {str(e).split(' was raised from')[0]}") from e
    try:
        return EnvInfo.of(env)
    finally:
        env.close()


def make_envs(
    env_id: str, num_envs: int, env_kwargs: dict | None = None, mode: str = "sync"
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` copies (``mode`` ``"sync"`` or ``"async"``)."""
    _register_envs()
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **(env_kwargs or {}))


def constant_image(env_id: str, env_kwargs: dict | None = None) -> np.ndarray | None:
    """The best constant image of a conditional env's targets, from its training split
    (:func:`spiral_envs.benchmark.best_constant_image`); ``None`` for an unconditional env,
    whose targets the agent never sees."""
    _register_envs()
    kw = {k: v for k, v in (env_kwargs or {}).items() if k != "split"}
    if not {**gym.spec(env_id).kwargs, **kw}.get("conditional"):
        return None
    return best_constant_image(env_id, kw)


def split_kwargs(env_id: str, env_kwargs: dict | None, split: str | None) -> dict:
    """``env_kwargs`` with ``split`` for envs whose targets come from a dataset split; envs
    that generate their targets (scenes) have no split: their held-out episodes are other seeds.
    """
    _register_envs()
    kw = dict(env_kwargs or {})
    if split and takes_split(env_id):
        kw["split"] = split
    return kw


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


#: /proc/cpuinfo flags of CPUs that compute bfloat16 natively: x86 AVX-512 BF16 and AMX, Arm BF16
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU computes bfloat16 natively, from ``/proc/cpuinfo`` (or the text given);
    ``None`` where that file does not exist (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & NATIVE_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision``, except ``"bf16"`` on a CPU without native bfloat16, where it is emulated
    and runs several times slower than float32 (``docs/agents.md``): ``"fp32"`` there, said once.
    """
    if precision == "bf16" and device.type == "cpu" and cpu_has_native_bf16() is False:
        print(
            "precision bf16: this CPU has no native bfloat16 (none of "
            f"{', '.join(sorted(NATIVE_BF16_FLAGS))} in /proc/cpuinfo), where bf16 runs several "
            "times slower than fp32; training in fp32"
        )
        return "fp32"
    return precision


def build_policy(net: NetConfig, info: EnvInfo, device: torch.device) -> PolicyNet:
    return PolicyNet(
        info.action_spec, info.image_shape, info.conditional, net, max_step=info.max_step
    ).to(device)


def build_discriminator(
    cfg: TrainConfig, info: EnvInfo, device: torch.device
) -> DiscriminatorLearner | None:
    """The discriminator learner of a ``reward="discriminator"`` run, else ``None``: in this
    process, or a Ray actor behind the same interface (``disc_placement="actor"``).

    Raises:
        ValueError: an ``l2``/``similarity`` reward or an ``l2_weight`` on an env without
            targets, or an unconditional env without a dataset of real images.
    """
    if not info.conditional and cfg.rewards.l2_weight:
        raise ValueError(
            f"l2_weight {cfg.rewards.l2_weight} needs a conditional env; {cfg.env_id} does not "
            "observe its target (use a -Cond- id, or l2_weight 0)"
        )
    if cfg.rewards.reward != "discriminator":
        if not info.conditional:
            raise ValueError(
                f"reward {cfg.rewards.reward!r} needs a conditional env; {cfg.env_id} does not "
                "observe its target (use a -Cond- id, or reward 'discriminator')"
            )
        return None
    if not info.conditional and info.dataset is None:
        raise ValueError(f"{cfg.env_id}: no dataset to draw real images from")
    if cfg.ray.disc_placement == "actor":
        from agents.ray_discriminator import RemoteDiscriminator  # ray is optional

        return RemoteDiscriminator(cfg, info, device)
    return DiscriminatorLearner(
        info.image_shape,
        info.conditional,
        cfg.critic,
        reals=info.dataset,
        device=device,
        seed=cfg.seed + 1,
        precision=cfg.precision,
    )


def build_scorer(
    cfg: TrainConfig, disc: Discriminator | None, image_shape: tuple[int, ...]
) -> Discriminator:
    """What a search keeps the best of (higher is better): ``-L2`` to the target, or the run's
    reward as a canvas score."""
    reward = cfg.rewards.reward
    if reward == "l2" or cfg.programs.search_score == "target_l2":
        return L2Discriminator()
    if reward == "similarity":
        return ChangeSimilarity(np.full(image_shape, 255, np.uint8))
    if disc is None or cfg.async_actor:
        raise ValueError(
            "a search scored by the discriminator needs its learner in the acting thread: "
            "backend 'local' without async_actor, or search_score 'target_l2'"
        )
    return disc


def build_actor(
    cfg: TrainConfig,
    envs,
    policy: PolicyNet,
    device: torch.device,
    disc: Discriminator | None = None,
    stream: int = 0,
):
    """The actor of the run's stage: the policy (``rl``, ``wake``), the prior's programs
    (``sleep``), or the search (``search``); all have ``collect(seeds) -> Rollout``.
    ``stream`` numbers the actor's own prior draws (a Ray worker's index)."""
    pc = cfg.programs
    rng = np.random.default_rng([cfg.seed, 28, stream])  # apart from the reset seeds
    if pc.stage == "sleep":
        return PriorActor(envs, rng)
    if pc.stage == "search":
        return SearchActor(
            envs,
            policy,
            build_scorer(cfg, disc, envs.single_observation_space["canvas"].shape),
            rng,
            device,
            policy_candidates=pc.search_policy,
            prior_candidates=pc.search_prior,
            move_candidates=pc.search_moves,
            lookahead=pc.search_lookahead,
            hidden_targets=pc.search_score == "target_l2",
            rollin=pc.search_rollin,
            precision=cfg.precision,
        )
    return Actor(envs, policy, device, cfg.precision)


def build_rollouts(
    cfg: TrainConfig,
    policy: PolicyNet,
    rng: np.random.Generator,
    device: torch.device,
    version: int = 0,
    disc: Discriminator | None = None,
) -> RolloutSource:
    """The run's rollout source: Ray workers, a thread one batch ahead, or in process; for the
    ``sleep`` and ``wake`` stages, its episodes paired with their own renderings.

    Args:
        policy, version: The learner's network and its update count (workers start from it).
        rng: Draws the reset seeds of local sources (Ray workers seed their own).
        disc: The discriminator, for a search scored by it.
    """
    if cfg.backend == "ray":
        from agents.ray_rollouts import RayRollouts  # ray is an optional dependency

        if cfg.programs.stage == "search":
            build_scorer(cfg, None, ())  # a discriminator's search cannot run on the workers

        source = RayRollouts(cfg, policy.state_dict(), version)
    else:
        envs = make_envs(cfg.env_id, cfg.num_envs, cfg.env_kwargs, cfg.vector_mode)
        # a thread ahead acts on its own copy of the weights; in process, on the learner's module
        acting = copy.deepcopy(policy) if cfg.async_actor else policy
        actor = build_actor(cfg, envs, acting, device, disc)
        actor.set_weights(None, version)
        source = (ThreadedRollouts if cfg.async_actor else LocalRollouts)(actor, rng)
    return OwnTargets(source) if cfg.programs.stage in ("sleep", "wake") else source


def build_learner(cfg: TrainConfig, policy: PolicyNet, device: torch.device):
    """The stage's learner: A2C (``rl``, with the kickstarting teacher when ``kl_coef``) or
    maximum likelihood of programs (the renderer's stages)."""
    pc = cfg.programs
    if pc.stage != "rl":
        return ImitationLearner(
            policy,
            cfg.learner,
            device,
            cfg.precision,
            pc,
            cfg.seed,
        )
    kickstart = None
    if pc.kl_coef or pc.kl_coef_final:
        teacher = load_policy(pc.init_from, device).policy
        kickstart = Kickstart(teacher, pc.kl_coef, pc.kl_coef_final)
    return PolicyLearner(policy, cfg.learner, device, cfg.precision, cfg.off_policy, kickstart)


#: Env kwargs a policy's weights do not depend on: where the targets come from, where the pen
#: rests at the start, how ``render`` draws. A stage may change them from its ``init_from``'s.
FREE_ENV_KWARGS = frozenset({"split", "data_dir", "pen_start", "render_mode", "render_size"})


def _policy_env_kwargs(env_kwargs: dict) -> dict:
    return {k: v for k, v in env_kwargs.items() if k not in FREE_ENV_KWARGS}


def load_init(
    cfg: TrainConfig,
    policy: PolicyNet,
    device: torch.device,
    disc: DiscriminatorLearner | None = None,
) -> str:
    """Loads ``cfg.programs.init_from``'s policy weights into ``policy`` (an earlier stage's),
    and with ``cfg.programs.init_critic`` its critic's weights into ``disc`` where both have a
    critic of the same kind (the optimizer, replay and schedule start afresh).

    Returns:
        What was carried over, one line for the log.

    Raises:
        ValueError: the checkpoint's network or env differs from this run's.
    """
    path = cfg.programs.init_from
    ck = load_agent_checkpoint(Path(path), map_location=device)
    theirs = TrainConfig.from_dict(ck["config"])
    mine = (cfg.env_id, _policy_env_kwargs(cfg.env_kwargs), cfg.net)
    if (theirs.env_id, _policy_env_kwargs(theirs.env_kwargs), theirs.net) != mine:
        raise ValueError(
            f"init_from {path}: trained as {theirs.env_id} {theirs.env_kwargs} with "
            f"{theirs.net}; this run is {cfg.env_id} {cfg.env_kwargs} with {cfg.net}: give "
            "every stage the same env_id, env_kwargs and net options (only "
            f"{', '.join(sorted(FREE_ENV_KWARGS))} may differ)"
        )
    policy.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ck["learner"]["policy"].items()}
    )
    if disc is None or not cfg.programs.init_critic:
        return f"init_from {path}: the policy"
    kind = ("disc", "disc_complement", "disc_channels")
    same = all(getattr(theirs.critic, k) == getattr(cfg.critic, k) for k in kind)
    if theirs.programs.stage in ("sleep", "wake"):  # its real images were its own renderings
        stage = theirs.programs.stage
        return f"init_from {path}: the policy (a {stage} stage's critic is not carried)"
    if not (ck.get("discriminator") and same):
        return f"init_from {path}: the policy (no critic of this kind there: it starts untrained)"
    state = disc.state_dict()
    state["critic"] = ck["discriminator"]["critic"]
    disc.load_state_dict(state)
    return f"init_from {path}: the policy and the critic"


class LoadedPolicy(NamedTuple):
    """A policy loaded from a checkpoint, with what it was trained as."""

    policy: PolicyNet
    config: TrainConfig
    info: EnvInfo
    frames: int  # frames it was trained for


def load_policy(
    checkpoint: str | os.PathLike,
    device: torch.device | str = "cpu",
    env_kwargs: dict | None = None,
) -> LoadedPolicy:
    """Loads the policy of a training checkpoint or a policy export (weights in float32).

    Args:
        checkpoint: A ``checkpoint.pt`` of ``spiral-train``, or a shipped or exported policy.
        device: Where to put the network.
        env_kwargs: Overrides of the env kwargs saved with the policy (for example a split).
    """
    device = torch.device(device)
    ck = load_agent_checkpoint(Path(checkpoint), map_location=device)
    cfg = TrainConfig.from_dict(ck["config"])
    info = probe_env(cfg.env_id, {**cfg.env_kwargs, **(env_kwargs or {})})
    policy = build_policy(cfg.net, info, device)
    policy.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in ck["learner"]["policy"].items()}
    )
    return LoadedPolicy(policy, cfg, info, int(ck["frames"]))
