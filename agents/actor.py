"""Actors: batched acting over a Gymnasium vector env, whole fixed-length episodes at a time.

An :class:`Actor` plays whole episodes (``collect(seeds) -> Rollout``, numpy); a
:class:`RolloutSource` hosts actors for the trainer (``next()``, ``set_weights``, ``close``): in
the learner's process (:class:`LocalRollouts`) or in a thread one batch ahead
(:class:`ThreadedRollouts`); a pool of processes fits the same three calls.
Each rollout carries the behaviour log-probabilities and the ``policy_version`` that acted, so a
learner can correct for stale policies (V-trace).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from agents.networks import PolicyNet, PolicyOutput, as_tensor, autocast

__all__ = [
    "Actor",
    "LocalRollouts",
    "Rollout",
    "RolloutSource",
    "ThreadedRollouts",
    "cpu_copy",
    "draw_seeds",
]


class Rollout(NamedTuple):
    """A batch of ``B`` whole episodes of ``T`` steps (time-major numpy arrays)."""

    canvases: np.ndarray  # uint8 (T + 1, B, H, W, C): before each step, then the final canvas
    targets: np.ndarray | None  # uint8 (B, H, W, C): conditional envs only
    steps: np.ndarray  # int64 (T, B): the step observation
    actions: np.ndarray  # int64 (T, B, K)
    log_prob: np.ndarray  # float32 (T, B): behaviour log-probability (masked)
    values: np.ndarray  # float32 (T, B)
    noise: np.ndarray | None  # float32 (B, noise_dim): unconditional agents only
    final_l2: np.ndarray | None  # float32 (B,): info["l2"] at the last step, when known
    policy_version: int
    # int64 (T, B, K): what a search would have played where it differs from what was played
    # (DAgger's labels); ``None``: the played actions are the labels
    labels: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.actions.shape[0] * self.actions.shape[1])


class Actor:
    """Acts a batch of envs with a :class:`PolicyNet` until every episode ends.

    Args:
        envs: A Gymnasium ``VectorEnv`` of fixed-length spiral envs.
        policy: The network (shared with the learner in one process; a copy elsewhere).
        device: Where to run the network.
    """

    def __init__(
        self, envs, policy: PolicyNet, device: torch.device | str = "cpu", precision: str = "fp32"
    ) -> None:
        self.envs, self.policy, self.device = envs, policy, torch.device(device)
        self.precision = precision
        self.version = 0

    def set_weights(self, state_dict: dict | None, version: int) -> None:
        """Loads new weights (``None``: the module is shared with the learner, only the version)."""
        if state_dict is not None:
            self.policy.load_state_dict(state_dict)
        self.version = version

    def decide(
        self,
        obs: dict,
        target: torch.Tensor | None,
        step: torch.Tensor,
        prev: torch.Tensor,
        valid: torch.Tensor,
        noise: torch.Tensor | None,
        state: tuple[torch.Tensor, torch.Tensor],
        greedy: bool,
    ) -> tuple[PolicyOutput, tuple[torch.Tensor, torch.Tensor]]:
        """One step's actions for the batch: the policy's (an actor that searches overrides it)."""
        canvas = as_tensor(obs["canvas"], self.device)
        return self.policy.act(canvas, target, step, prev, valid, noise, state, greedy=greedy)

    # inference_mode, not no_grad: no version counters or views tracked (docs/speed.md); what
    # leaves it is numpy, so no inference tensor reaches an autograd graph
    @torch.inference_mode()
    def collect(
        self, seeds: Sequence[int] | None = None, greedy: bool = False, max_steps: int = 10_000
    ) -> Rollout:
        """Resets every env (with ``seeds``) and runs one whole episode in each."""
        dev, pol = self.device, self.policy
        was_training = pol.training
        pol.eval()
        obs, _ = self.envs.reset(seed=None if seeds is None else list(seeds))
        b = len(obs["canvas"])
        k = len(pol.spec)
        noise = None
        if pol.noise_fc is not None:
            noise = torch.randn(b, pol.cfg.noise_dim, device=dev)
        target_np = obs.get("target")
        target = as_tensor(target_np, dev)
        state = pol.initial_state(b, dev)
        prev = torch.zeros(b, k, dtype=torch.long, device=dev)
        valid = torch.zeros(b, device=dev)
        canvases, steps, actions, logps, values = [], [], [], [], []
        final_l2 = None
        for _ in range(max_steps):
            canvases.append(obs["canvas"])
            step_np = np.asarray(obs["step"]).reshape(b).astype(np.int64)
            steps.append(step_np)
            with autocast(dev, self.precision):
                out, state = self.decide(
                    obs, target, as_tensor(step_np, dev), prev, valid, noise, state, greedy
                )
            a = out.actions.cpu().numpy()
            actions.append(a)
            logps.append(out.log_prob.float().cpu().numpy())
            values.append(out.value.float().cpu().numpy())
            obs, _, term, trunc, info = self.envs.step(a)
            prev, valid = out.actions, torch.ones(b, device=dev)
            done = np.logical_or(term, trunc)
            if done.any():
                if not done.all():
                    raise RuntimeError("episodes of one batch must end together (fixed length)")
                if "l2" in info:
                    final_l2 = np.asarray(info["l2"], np.float32)
                break
        else:
            raise RuntimeError(f"episodes did not end within {max_steps} steps")
        canvases.append(obs["canvas"])
        pol.train(was_training)
        return Rollout(
            canvases=np.stack(canvases),
            targets=None if target_np is None else np.array(target_np),
            steps=np.stack(steps),
            actions=np.stack(actions).astype(np.int64),
            log_prob=np.stack(logps).astype(np.float32),
            values=np.stack(values).astype(np.float32),
            noise=None if noise is None else noise.cpu().numpy(),
            final_l2=final_l2,
            policy_version=self.version,
        )


@runtime_checkable
class RolloutSource(Protocol):
    """Where the trainer's episodes come from: an in-process actor, a thread, a Ray actor pool.

    ``next()`` returns the next batch of whole episodes; ``set_weights(state_dict, version)``
    hands the learner's current weights over (a source that keeps them past the call copies
    them: the learner goes on updating its tensors in place); ``close()`` releases the envs and
    any workers.
    """

    def next(self) -> Rollout: ...

    def set_weights(self, state_dict: dict, version: int) -> None: ...

    def close(self) -> None: ...


def cpu_copy(state_dict: dict) -> dict:
    """A CPU copy of weights, for a source that keeps them (the learner updates them in place,
    maybe on a GPU)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in state_dict.items()}


def draw_seeds(rng: np.random.Generator, n: int) -> list[int]:
    """Reset seeds of one batch of episodes."""
    return rng.integers(0, 2**31 - 1, size=n).tolist()


class LocalRollouts:
    """Episodes played in the learner's process by an actor that shares the learner's network.

    Args:
        actor: Its policy is the learner's module, so new weights need no copy.
        rng: Draws each batch's reset seeds.
    """

    def __init__(self, actor: Actor, rng: np.random.Generator) -> None:
        self.actor, self.rng = actor, rng

    def next(self) -> Rollout:
        return self.actor.collect(draw_seeds(self.rng, self.actor.envs.num_envs))

    def set_weights(self, state_dict: dict, version: int) -> None:
        self.actor.set_weights(None, version)  # the module is shared: only the version

    def close(self) -> None:
        self.actor.envs.close()


class ThreadedRollouts:
    """An :class:`Actor` in a background thread, one batch of episodes ahead of the learner.

    While the learner updates on batch ``k`` the actor plays batch ``k + 1`` with the weights it
    last received (one update stale: use ``off_policy="vtrace"`` to correct for it). Torch ops
    release the GIL, so on a 2-core machine acting and learning overlap.

    Args:
        actor: The actor to run, with its own copy of the policy.
        rng: Draws each batch's reset seeds (in the caller's thread, so runs stay seeded).
    """

    def __init__(self, actor: Actor, rng: np.random.Generator) -> None:
        self.actor, self.rng = actor, rng
        self._requests: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._pending: tuple[dict, int] | None = None
        self._thread = threading.Thread(target=self._run, name="spiral-actor", daemon=True)
        self._thread.start()
        self._request()  # the batch ahead

    def _run(self) -> None:
        while True:
            seeds = self._requests.get()
            if seeds is None:
                return
            with self._lock:
                pending, self._pending = self._pending, None
            if pending is not None:
                self.actor.set_weights(*pending)
            try:
                self._results.put(self.actor.collect(seeds))
            except BaseException as e:  # hand errors to the learner's thread
                self._results.put(e)

    def _request(self) -> None:
        self._requests.put(draw_seeds(self.rng, self.actor.envs.num_envs))

    def next(self) -> Rollout:
        """The batch asked for one call ago; the next one is asked for now (errors re-raised)."""
        self._request()
        r = self._results.get()
        if isinstance(r, BaseException):
            raise r
        return r

    def set_weights(self, state_dict: dict, version: int) -> None:
        """A copy of the weights, loaded before the actor's next batch."""
        copied = cpu_copy(state_dict)
        with self._lock:
            self._pending = (copied, version)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=60)
        self.actor.envs.close()
