"""The discriminator learner as its own Ray actor (``--disc_placement actor``), as in the paper.

SPIRAL runs three kinds of process: actors, the policy learner and the discriminator learner.
With ``disc_placement="actor"`` the discriminator learner is a Ray actor
(:class:`DiscriminatorWorker`) on the driver's node (and its GPU, when the run has one), and the
driver holds a :class:`RemoteDiscriminator` in its place: the same ``step(rollout)``,
``__call__(canvases, targets)``, ``state_dict`` and ``close`` as
:class:`~agents.discriminator.DiscriminatorLearner`, so the training loop does not change.

Each ``step`` sends the batch's final canvases to the actor and returns at once; the actor trains
while the driver acts and updates the policy. The next ``step`` collects that result: the
critic's new weights, which the driver's copy scores rewards with, and its metrics. Rewards are
therefore scored by a critic one step behind the one in-process training would use. Checkpoints
hold the same ``state_dict`` as the driver placement, so a run can resume under either (not
bit for bit: the actor's torch random state, which draws the gradient penalty's mixing, is not
saved).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from agents.config import TrainConfig
from agents.discriminator import Critic, TorchDiscriminator, final_canvases
from agents.ray_rollouts import _worker_env, import_ray, start_ray

__all__ = ["DiscriminatorWorker", "RemoteDiscriminator"]


class DiscriminatorWorker:
    """The discriminator learner in its own process (a Ray actor's body).

    Args:
        config: The run's flat config (``TrainConfig.to_dict()``).
        device: Torch device of the critic's updates.
    """

    def __init__(self, config: dict, device: str) -> None:
        from agents.build import build_discriminator, probe_env

        # the learner itself, in this process (not another actor)
        cfg = TrainConfig.from_dict({**config, "backend": "local", "disc_placement": "driver"})
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed + 1)
        info = probe_env(cfg.env_id, cfg.env_kwargs)
        self.learner = build_discriminator(cfg, info, torch.device(device))

    def train_on(
        self, fakes: np.ndarray, targets: np.ndarray | None
    ) -> tuple[dict[str, float], dict]:
        """The learner's updates on these final canvases: their metrics, and the critic's new
        weights (on the CPU)."""
        metrics = self.learner.train_on(fakes, targets)
        return metrics, _cpu(self.learner.critic.state_dict())

    def state_dict(self) -> dict:
        return _cpu(self.learner.state_dict())

    def pid(self) -> int:
        return os.getpid()

    def load_state_dict(self, d: dict) -> None:
        self.learner.load_state_dict(d)


class RemoteDiscriminator:
    """Stands in the driver for a :class:`DiscriminatorWorker`: scores with the latest weights
    it returned, and feeds it each batch's final canvases.

    Args:
        cfg: The run's config (the critic's part, ``cfg.ray`` for the cluster).
        info: The env's :class:`~agents.build.EnvInfo` (image shape, conditional).
        device: Where the driver scores rewards; the actor trains on a GPU of its node when this
            is CUDA.
    """

    def __init__(self, cfg: TrainConfig, info, device: torch.device) -> None:
        ray = self.ray = import_ray()
        self.actor, self.started_ray = None, start_ray(cfg.ray)
        try:
            h, w, c = info.image_shape
            cc = cfg.critic
            conditional = info.conditional
            critic = Critic(c * (2 if conditional else 1), h, cc.disc_channels, cc.disc == "sngan")
            self.critic = critic.to(device)
            complement = cc.disc_complement and conditional
            self.scorer = TorchDiscriminator(
                self.critic, conditional, complement, device, precision=cfg.precision
            )
            self.batch = cc.disc_batch
            gpu = device.type == "cuda"
            if gpu:
                _check_gpu(ray)
            self.actor = ray.remote(
                num_cpus=0,  # a learner, as the driver: the workers' CPUs stay theirs
                num_gpus=1 if gpu else 0,
                scheduling_strategy=_this_node(ray),
                runtime_env={"env_vars": _worker_env()},
            )(DiscriminatorWorker).remote(cfg.to_dict(), "cuda" if gpu else "cpu")
            self.pending = None
            self.metrics: dict[str, float] = {}
            self.critic.load_state_dict(ray.get(self.actor.state_dict.remote())["critic"])
        except BaseException:
            self.close()
            raise

    def step(self, rollout) -> dict[str, float]:
        """Sends this batch's final canvases to the actor; returns the metrics of the previous
        batch's updates, whose weights now score the rewards."""
        self._collect()
        fakes, targets = final_canvases(rollout, self.batch)
        self.pending = self.actor.train_on.remote(fakes, targets)
        return self.metrics

    def _collect(self) -> None:
        """Waits for the updates in flight, and loads their weights into the scoring copy."""
        if self.pending is None:
            return
        self.metrics, weights = self.ray.get(self.pending)
        self.pending = None
        self.critic.load_state_dict(weights)

    def __call__(self, canvases: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
        """The ``Discriminator`` protocol, with the latest weights the actor returned."""
        return self.scorer(canvases, targets)

    def state_dict(self) -> dict:
        """The actor's learner state (after the updates in flight): a checkpoint's part."""
        self._collect()
        return self.ray.get(self.actor.state_dict.remote())

    def load_state_dict(self, d: dict) -> None:
        self._collect()
        self.ray.get(self.actor.load_state_dict.remote(_cpu(d)))
        self.critic.load_state_dict(d["critic"])

    def close(self) -> None:
        actor = getattr(self, "actor", None)
        if actor is not None:
            self.ray.kill(actor)
            self.actor = None
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False


def _cpu(d):
    """A state dict's tensors on the CPU (nested dicts and lists too), for the object store."""
    if isinstance(d, torch.Tensor):
        return d.detach().cpu()
    if isinstance(d, dict):
        return {k: _cpu(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_cpu(v) for v in d]
    return d


def _check_gpu(ray) -> None:
    """The driver's node has a GPU for the actor, in Ray's view (else it would wait forever)."""
    here = ray.get_runtime_context().get_node_id()
    node = next((n for n in ray.nodes() if n["NodeID"] == here), {})
    if node.get("Resources", {}).get("GPU", 0) < 1:
        raise ValueError(
            "disc_placement 'actor' with a CUDA device asks Ray for a GPU on the driver's node, "
            "and Ray sees none there: start that node's Ray with --num-gpus, or use "
            "disc_placement 'driver'"
        )


def _this_node(ray):
    """Pins the actor to the driver's node: the learners side by side, as the paper has them."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
