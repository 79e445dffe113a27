"""Actors: batched acting over a Gymnasium vector env, whole fixed-length episodes at a time.

The interface is narrow so a Ray backend can host actors in other processes: ``collect(seeds)``
returns a numpy :class:`Rollout`; ``set_weights(state_dict, version)`` refreshes the policy.
Each rollout carries the behaviour log-probabilities and the ``policy_version`` that acted, so a
learner can correct for stale policies (V-trace).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from agents.networks import PolicyNet, autocast

__all__ = ["Actor", "AsyncActor", "Rollout"]


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

    @torch.no_grad()
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
        target = None if target_np is None else torch.from_numpy(target_np).to(dev)
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
                out, state = pol.act(
                    torch.from_numpy(obs["canvas"]).to(dev),
                    target,
                    torch.from_numpy(step_np).to(dev),
                    prev,
                    valid,
                    noise,
                    state,
                    greedy=greedy,
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


class AsyncActor:
    """An :class:`Actor` in a background thread, one batch of episodes ahead of the learner.

    While the learner updates on batch ``k`` the actor plays batch ``k + 1`` with the weights it
    last received (one update stale: use ``off_policy="vtrace"`` to correct for it). Torch ops
    release the GIL, so on a 2-core machine acting and learning overlap. The same two calls as
    a separate process would offer: ``request(seeds)`` / ``get()``, and ``set_weights``.

    Args:
        actor: The actor to run; give it its own copy of the policy.
    """

    def __init__(self, actor: Actor) -> None:
        import queue
        import threading

        self.actor = actor
        self._requests: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._pending: tuple[dict, int] | None = None
        self._thread = threading.Thread(target=self._run, name="spiral-actor", daemon=True)
        self._thread.start()

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

    def request(self, seeds: Sequence[int]) -> None:
        """Queues the collection of one batch of episodes reset with ``seeds``."""
        self._requests.put(list(seeds))

    def get(self) -> Rollout:
        """The next rollout, in request order (re-raises the actor thread's errors)."""
        r = self._results.get()
        if isinstance(r, BaseException):
            raise r
        return r

    def set_weights(self, state_dict: dict, version: int) -> None:
        """New weights, loaded before the actor's next batch."""
        with self._lock:
            self._pending = (state_dict, version)

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=60)
