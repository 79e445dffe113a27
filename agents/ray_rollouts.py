"""The Ray backend: rollout workers as Ray actors, behind the same ``RolloutSource`` interface.

Each :class:`RolloutWorker` is a Ray actor that owns ``num_envs`` envs and a CPU copy of the
policy and plays whole batches of episodes; :class:`RayRollouts` hands the learner whichever
batch finishes first (a numpy ``Rollout``, passed through the object store). New weights are put
in the object store once per version and pushed only to the worker that just returned a batch (as
RLlib's IMPALA), which then plays its next one: a worker waits only for the one update its batch
feeds, while the other workers act. Stale batches carry their ``policy_version``; the learner
corrects them with V-trace.

With ``ray_sync`` the workers act together instead: each batch is split between them, every share
is played with the learner's current weights, and the shares are joined (on-policy, as the local
backend learns; the workers wait for each update, and the learner for the slowest share).

Faults: workers are created with ``max_restarts`` and spread over the cluster's nodes; a batch
lost to a dead worker, or to a lost node, is dropped, while the other workers go on. Ray restarts
the worker where a node has room; meanwhile a probe that Ray retries until it is back stands in
its place, and then it plays again. Every ``collect`` names the weights' version and carries a
reference to them, so a worker that Ray restarted, whenever it died, loads the current weights
before it acts. Constructor arguments are the flat config and an index (small, so Ray can always
restart).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from agents.actor import Rollout, cpu_copy, draw_seeds
from agents.config import RayConfig, TrainConfig
from agents.ray_join import check_can_join

__all__ = ["RayRollouts", "RolloutWorker", "import_ray", "start_ray"]


def import_ray():
    """``ray``, or an error naming the extra that installs it."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            'the Ray backend needs ray: pip install "spiral-gym[ray]" (or "spiral-gym[all]")'
        ) from e
    return ray


def start_ray(rc: RayConfig) -> bool:
    """Starts a local Ray instance (``rc.ray_address`` empty) or joins a cluster, unless this
    process is connected already; whether it started or joined one (then it shuts it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    local = not rc.ray_address
    if not local:
        check_can_join(rc.ray_address)  # a token it lacks: one line, not 20 s of retries
    ray.init(
        address=rc.ray_address or None,
        include_dashboard=False,
        runtime_env={"env_vars": _worker_env()},
        _system_config={"worker_niceness": rc.worker_niceness} if local else None,
    )
    return True


class RolloutWorker:
    """Plays batches of whole episodes in its own process (a Ray actor's body).

    Args:
        config: The run's flat config (``TrainConfig.to_dict()``).
        index: The worker's number: its reset seeds come from ``(seed, index)``.
    """

    def __init__(self, config: dict, index: int) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported here
        import torch

        from agents.build import build_actor, build_policy, make_envs, probe_env

        cfg = TrainConfig.from_dict(config)
        torch.set_num_threads(max(1, int(cfg.ray.cpus_per_actor)))
        torch.manual_seed(cfg.seed * 1000 + index + 1)
        info = probe_env(cfg.env_id, cfg.env_kwargs)
        policy = build_policy(cfg.net, info, torch.device("cpu"))
        envs = make_envs(cfg.env_id, cfg.num_envs, cfg.env_kwargs)
        # the stage's actor: the policy, the prior's programs, or the search (scored by L2 or
        # similarity; a discriminator's search needs its learner, in the driver)
        self.actor = build_actor(cfg, envs, policy, torch.device("cpu"), stream=index + 1)
        self.rng = np.random.default_rng([cfg.seed, index])
        self.loaded: int | None = None  # the version of the weights in the policy

    def collect(self, version: int, weights: list) -> Rollout:
        """One batch of episodes with weights ``version``. ``weights`` holds their object
        reference in a list, so Ray passes it unfetched: the worker fetches them only when the
        version is new to it (a push, or a fresh start after Ray restarted it)."""
        if version != self.loaded:
            self.actor.set_weights(import_ray().get(weights[0]), version)
            self.loaded = version
        return self.actor.collect(draw_seeds(self.rng, self.actor.envs.num_envs))

    def pid(self) -> int:
        return os.getpid()

    def node_id(self) -> str:
        return import_ray().get_runtime_context().get_node_id()

    def close(self) -> None:
        self.actor.envs.close()


class RayRollouts:
    """A pool of :class:`RolloutWorker` Ray actors as one rollout source.

    Starts a local Ray instance (``ray_address`` empty) or joins a cluster (``"auto"`` or
    ``host:port``); a Ray instance this source started is shut down by :meth:`close`.

    Args:
        cfg: The run's config (``cfg.ray``: workers, CPUs per worker, restarts, push period).
        state_dict, version: The learner's weights, sent to every worker before it acts.

    Raises:
        ValueError: the Ray instance has fewer CPUs than the workers ask for, or the cluster
            cannot be joined (nothing answers, or it requires a token this process lacks).
    """

    def __init__(self, cfg: TrainConfig, state_dict: dict, version: int) -> None:
        ray = self.ray = import_ray()
        rc = cfg.ray
        self.started_ray = start_ray(rc)
        self.workers: list = []
        self.pending: dict = {}
        self.returned: list[int] = []  # workers idle since their last batch
        try:
            self._check_resources(rc.num_actors * rc.cpus_per_actor)
            worker = ray.remote(
                num_cpus=rc.cpus_per_actor,
                max_restarts=rc.actor_restarts,  # after a lost node too: on another node
                max_task_retries=0,  # a lost batch is dropped, not replayed with old weights
                scheduling_strategy="SPREAD",  # over the nodes: a lost node takes few workers
            )(RolloutWorker)
            self.sync = rc.ray_sync
            self.workers = [worker.remote(worker_config(cfg, i), i) for i in range(rc.num_actors)]
            self.weights_every = 1 if self.sync else rc.weights_every
            self.weights, self.version = ray.put(cpu_copy(state_dict)), version
            self.restarts = 0  # batches lost to a worker's failure
            self.down: set[int] = set()  # workers that died and are not back yet
            if not self.sync:  # in sync, each next() launches them all
                for i in range(rc.num_actors):
                    self._launch(i)
        except BaseException:
            self.close()
            raise

    def _check_resources(self, needed: float) -> None:
        have = self.ray.cluster_resources().get("CPU", 0)
        if needed > have:
            raise ValueError(
                f"{needed:g} CPUs asked for the rollout workers (num_actors x cpus_per_actor), "
                f"the Ray instance has {have:g}: lower --num_actors or --cpus_per_actor "
                "(fractions such as 0.5 are allowed), or add machines to the cluster"
            )

    def _launch(self, i: int):
        """Asks worker ``i`` for a batch with the current weights; the request's reference."""
        ref = self.workers[i].collect.remote(self.version, [self.weights])
        self.pending[ref] = i
        return ref

    def next(self) -> Rollout:
        """The first batch any worker finishes. That worker starts its next batch with the
        weights of the learner's next :meth:`set_weights` (the update this batch feeds), so on
        a pool of ``N`` workers batches are ``N - 1`` updates stale, not ``N``. With
        ``ray_sync``: every worker's share of one batch, acted with the current weights."""
        if self.sync:
            return self._next_together()
        ray = self.ray
        self._relaunch()  # workers that returned without a set_weights since
        while True:
            if not self.pending:
                raise RuntimeError("every rollout worker is dead and cannot be restarted")
            (ref,), _ = ray.wait(list(self.pending), num_returns=1)
            i = self.pending.pop(ref)
            try:
                rollout = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                self._worker_died(i, e)
                continue
            if i in self.down:  # its probe answered: the restarted worker is up
                self._worker_back(i)
                continue
            self.returned.append(i)
            return rollout

    def _next_together(self) -> Rollout:
        """``ray_sync``: every acting worker plays its share of the batch with the current
        weights, and the shares are joined. A share lost to a dead worker is left out of this
        batch (the run goes on with the others'); a restarted worker joins the next one."""
        ray = self.ray
        while True:
            asked = {self._launch(i) for i in range(len(self.workers)) if i not in self.down}
            shares: dict[int, Rollout] = {}
            while asked:  # each asked share is in pending until it answers
                (ref,), _ = ray.wait(list(self.pending), num_returns=1)
                i = self.pending.pop(ref)
                if ref not in asked:  # a probe answered: the worker is up, or out of restarts
                    self._probe_answered(ref, i)
                    continue
                asked.discard(ref)
                try:
                    shares[i] = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    self._worker_died(i, e)
            if shares:
                return join_rollouts([shares[i] for i in sorted(shares)])
            if not self.pending:
                raise RuntimeError("every rollout worker is dead and cannot be restarted")
            (ref,), _ = ray.wait(list(self.pending), num_returns=1)  # a probe: wait for it
            self._probe_answered(ref, self.pending.pop(ref))

    def _probe_answered(self, ref, i: int) -> None:
        """``ray_sync``: worker ``i``'s probe returned: it is back (it acts in the next batch),
        or it failed, and the worker is out of restarts and left out."""
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            self._worker_died(i, e)
            return
        self.down.discard(i)
        self._say(f"rollout worker {i} is back")

    def _relaunch(self) -> None:
        for i in self.returned:
            self._launch(i)
        self.returned = []

    def _worker_died(self, i: int, error: Exception) -> None:
        """Ray restarts the worker (up to ``actor_restarts`` times) where a node has room. A
        batch sent to it while it restarts fails too, again and again; a probe that Ray retries
        until the worker is up (or gone for good) waits in its place instead. A worker whose
        probe fails is out of restarts, and left out; the others go on."""
        if i in self.down:
            self._say(f"rollout worker {i} is out of restarts: left out")
            return
        self.restarts += 1
        self.down.add(i)
        self._say(f"rollout worker {i} died; Ray restarts it ({type(error).__name__})")
        self.pending[self.workers[i].pid.options(max_task_retries=-1).remote()] = i

    def _worker_back(self, i: int) -> None:
        """The restarted worker plays again, with the current weights."""
        self.down.discard(i)
        self._say(f"rollout worker {i} is back")
        self._launch(i)

    def _say(self, event: str) -> None:
        n = len(self.workers)
        print(f"{event}; {n - len(self.down)} of {n} workers acting", file=sys.stderr)

    def set_weights(self, state_dict: dict, version: int) -> None:
        """Puts new weights in the object store every ``weights_every`` versions (every version
        with ``ray_sync``) and sends them to the workers that just returned a batch, which then
        act again; the others get them when they next return. With ``ray_sync`` the next
        :meth:`next` sends them to all."""
        if version - self.version >= self.weights_every:
            self.weights, self.version = self.ray.put(cpu_copy(state_dict)), version
        if not self.sync:
            self._relaunch()

    def worker_pids(self) -> list[int]:
        return self.ray.get([w.pid.remote() for w in self.workers])

    def worker_nodes(self) -> list[str]:
        """The id of the Ray node each worker runs on."""
        return self.ray.get([w.node_id.remote() for w in self.workers])

    def close(self) -> None:
        for w in self.workers:
            self.ray.kill(w)
        self.workers, self.pending = [], {}
        if self.started_ray:
            self.ray.shutdown()


def worker_config(cfg: TrainConfig, index: int) -> dict:
    """Worker ``index``'s flat config: with ``ray_sync`` its share of the batch's envs."""
    d = cfg.to_dict()
    if cfg.ray.ray_sync:
        n, k = cfg.num_envs, cfg.ray.num_actors
        d["num_envs"] = n // k + (index < n % k)
        d["ray_sync"] = False  # the worker plays its share; the split is the driver's
    return d


def join_rollouts(parts: list[Rollout]) -> Rollout:
    """One batch of the workers' shares (episodes side by side, acted by the same weights)."""

    def cat(name: str, axis: int):
        arrays = [getattr(p, name) for p in parts]
        return None if arrays[0] is None else np.concatenate(arrays, axis)

    time_major = ("canvases", "steps", "actions", "log_prob", "values", "labels")
    names = [f for f in Rollout._fields if f != "policy_version"]
    fields = {f: cat(f, 1 if f in time_major else 0) for f in names}
    return Rollout(**fields, policy_version=min(p.policy_version for p in parts))


def _worker_env() -> dict[str, str]:
    """Environment of the workers: the GL backend, and this checkout first on the path (so a
    run from a source tree imports the same ``agents`` in the workers)."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": path}
