"""A batched vector env: a few worker processes, each stepping a block of envs into shared memory.

Gymnasium's :class:`~gymnasium.vector.AsyncVectorEnv` runs one process per env and, for image
observations, pays a pipe round trip per env per step; on a machine with few cores it is slower
than stepping every env in one process. :class:`BatchedVectorEnv` follows EnvPool and
sample-factory instead: the envs are split into contiguous blocks, one per core; this process
steps the first block itself and ``num_workers`` worker processes the others, in parallel, each
writing its observations, rewards, terminations and truncations straight into shared memory. One
small message per worker per step carries the block's batched ``info``; the actions travel
through shared memory too.

Every registered spiral-gym id has it as its vector entry point::

    import gymnasium as gym
    import spiral_envs

    envs = gym.make_vec("SpiralPaint-MNIST-Cond-v0", num_envs=16,
                        vectorization_mode="vector_entry_point")  # or num_workers=..., context=...
    obs, infos = envs.reset(seed=0)
    obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
    envs.close()

(``vectorization_mode=None``, make_vec's default, also picks it, as Gymnasium does for any id with
a vector entry point; ``"sync"`` and ``"async"`` give Gymnasium's own vector envs.)

Workers start with ``spawn`` (or ``forkserver``), never ``fork``: a MuJoCo scene makes its OpenGL
context lazily, inside the worker that steps it. As with any spawned process, a script that makes
one must guard its entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from copy import deepcopy
from multiprocessing.connection import wait
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import (
    CloudpickleWrapper,
    batch_space,
    create_shared_memory,
    iterate,
    read_from_shared_memory,
)

__all__ = [
    "BatchedVectorEnv",
    "VectorWorkerError",
    "make_batched",
    "paint_vector_env",
    "scene_vector_env",
]

_ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class VectorWorkerError(RuntimeError):
    """A worker process of a :class:`BatchedVectorEnv` died, or raised an unpicklable exception.

    Attributes:
        env_index: The env it was working on (``None`` when it was between calls).
        worker: The worker's index.
        exitcode: The worker's exit code (negative: killed by that signal), when it died.
    """

    def __init__(
        self,
        message: str,
        env_index: int | None = None,
        worker: int | None = None,
        exitcode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.env_index, self.worker, self.exitcode = env_index, worker, exitcode


class _RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in a worker (as its ``__cause__``)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\n" + self.tb


class BatchedVectorEnv(VectorEnv):
    """Steps ``len(env_fns)`` envs in this process and a few workers, observations in shared
    memory.

    It follows Gymnasium 1.x's :class:`~gymnasium.vector.VectorEnv` contract, and gives the same
    results as :class:`~gymnasium.vector.SyncVectorEnv` for the same seeds and actions (the same
    observations bit for bit, rewards, terminations, truncations and ``info``):

    * **Spaces**: ``single_observation_space`` / ``single_action_space`` of one env,
      ``observation_space`` / ``action_space`` batched with Gymnasium's ``batch_space`` (a
      ``Dict`` of images gives a dict of ``(num_envs, H, W, C)`` arrays).
    * **Autoreset**: ``autoreset_mode`` (``metadata["autoreset_mode"]``), by default
      ``AutoresetMode.NEXT_STEP``, Gymnasium's default: the step after an env's episode ended
      resets that env (its action is ignored) and returns the first observation of the next
      episode with reward 0, ``terminated = truncated = False`` and the reset's ``info``.
      ``SAME_STEP`` (``info["final_obs"]`` / ``info["final_info"]``) and ``DISABLED`` (reset
      ended envs yourself, with ``options={"reset_mask": mask}``) work as in ``SyncVectorEnv``.
    * **Info**: batched like Gymnasium's vector envs, every key ``k`` with a boolean mask ``_k``
      of the envs that reported it.
    * **Seeding**: ``reset(seed=s)`` seeds env ``i`` with ``s + i``; ``reset(seed=[...])`` gives
      each env its own (``None`` for a random one).
    * :meth:`call`, :meth:`get_attr`, :meth:`set_attr` reach every env (results in env order;
      e.g. ``envs.get_attr("program")`` after an episode); :meth:`render` returns a tuple of frames.
    * **Split step**: :meth:`step_async` sends the actions and returns at once; :meth:`step_wait`
      collects the results, so a trainer can run its policy while the workers paint.
    * **Waiting**: where every process has a core of its own, this process polls the workers'
      pipes for up to :data:`SPIN_SECONDS` each time it waits for them before it sleeps on them
      (a wake-up costs 50-200 us on a VM), and a worker polls for its next command while
      commands come back to back.
    * **Faults**: an exception raised by an env comes back as an exception of the same type (else
      :class:`VectorWorkerError`) whose message names the env index and the original exception,
      with the worker's traceback as its ``__cause__``; the workers stay usable. A worker that
      dies (killed, segfault) raises :class:`VectorWorkerError` naming the worker, its envs and the
      env it was stepping, at once (process sentinels are watched, never a hang), and closes the
      vector env. :meth:`close` always reaps the workers (terminating any that do not exit), and a
      worker exits by itself when its parent process dies.

    Args:
        env_fns: Functions that each make one env (pickled with cloudpickle to the workers). One
            extra env is made in this process, once, to read the spaces and metadata, then closed.
        num_workers: Worker processes (default: one per core available to this process, see
            ``os.sched_getaffinity``, less the one this process steps with
            ``step_in_parent``), at most the envs left for them. The envs are split into
            contiguous blocks of near-equal size, one per stepper: with ``step_in_parent`` this
            process steps block 0 and worker process ``w`` block ``w``; without it, block ``w``
            is worker ``w``'s (numbered from 0).
        step_in_parent: Step the first block in this process, in :meth:`step_wait` (default),
            while the workers step theirs: this process would otherwise sit idle waiting for
            them, and its block pays no message or copy. Off, every block is a worker's and
            :meth:`step_async` returns with every env in flight.
        context: ``"spawn"`` (default) or ``"forkserver"``; ``"fork"`` is refused, since a
            forked MuJoCo GL context hangs.
        copy: Return copies of the observations (default). With ``False``, :meth:`reset` and
            :meth:`step` return views of the shared memory, overwritten by the next step.
        autoreset_mode: See above; an :class:`~gymnasium.vector.AutoresetMode` or its value.
        timeout: Seconds to wait for the workers on each call (``None``: no limit; a dead worker
            is still noticed at once). :meth:`step_wait` takes its own.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gym.Env]],
        *,
        num_workers: int | None = None,
        context: str = "spawn",
        copy: bool = True,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        timeout: float | None = None,
        step_in_parent: bool = True,
    ) -> None:
        self._procs: dict[int, Any] = {}
        self._conns: dict[int, Any] = {}
        self._local: _Block | None = None
        self._pending: str | None = None
        self._replies: dict[int, tuple] = {}
        self._payloads: list = []
        env_fns = list(env_fns)
        if not env_fns:
            raise ValueError("env_fns is empty: a BatchedVectorEnv needs at least one env")
        if context == "fork":
            raise ValueError(
                "context='fork' is not accepted: a forked MuJoCo OpenGL context hangs or crashes; "
                "accepted 'spawn' or 'forkserver'"
            )
        if context not in ("spawn", "forkserver"):
            raise ValueError(f"context={context!r}: accepted 'spawn' or 'forkserver'")
        parent = 1 if step_in_parent else 0
        if num_workers is None:
            num_workers = max(_available_cores() - parent, 1 - parent)
        fewest = 1 - parent  # without the parent's block, one worker at least
        if (
            isinstance(num_workers, bool)
            or not isinstance(num_workers, int)
            or num_workers < fewest
        ):
            raise ValueError(
                f"num_workers must be an int >= {fewest} or None "
                f"(step_in_parent={bool(step_in_parent)}), got {num_workers!r}"
            )
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive seconds or None, got {timeout!r}")
        self.env_fns = env_fns
        self.num_envs = n = len(env_fns)
        self.num_workers = min(num_workers, n - parent)
        self.step_in_parent = bool(step_in_parent)
        self.context = context
        self.copy = bool(copy)
        self.timeout = timeout
        self.autoreset_mode = AutoresetMode(autoreset_mode)

        dummy = env_fns[0]()
        try:
            self.metadata = dict(dummy.metadata)
            self.metadata["autoreset_mode"] = self.autoreset_mode
            self.render_mode = dummy.render_mode
            self.single_observation_space = dummy.observation_space
            self.single_action_space = dummy.action_space
        finally:
            dummy.close()
        del dummy
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)

        ctx = mp.get_context(context)
        self._obs_shm = create_shared_memory(self.single_observation_space, n, ctx)
        self._obs = read_from_shared_memory(self.single_observation_space, self._obs_shm, n)
        if isinstance(self.single_action_space, _ARRAY_SPACES):
            self._act_shm = create_shared_memory(self.single_action_space, n, ctx)
            self._act = read_from_shared_memory(self.single_action_space, self._act_shm, n)
        else:  # actions of other spaces travel pickled
            self._act_shm = self._act = None
        self._rew_shm = ctx.RawArray(ctypes.c_double, n)
        self._term_shm = ctx.RawArray(ctypes.c_bool, n)
        self._trunc_shm = ctx.RawArray(ctypes.c_bool, n)
        steppers = self.num_workers + parent
        self._progress_shm = ctx.RawArray(ctypes.c_int64, steppers)
        self._rewards = np.frombuffer(self._rew_shm, np.float64)
        self._terminations = np.frombuffer(self._term_shm, np.bool_)
        self._truncations = np.frombuffer(self._trunc_shm, np.bool_)
        self._progress = np.frombuffer(self._progress_shm, np.int64)
        self._progress[:] = -1

        bounds = np.linspace(0, n, steppers + 1).round().astype(int)
        self._blocks = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self._remote = list(range(parent, steppers))  # the blocks stepped by workers
        # polling only pays when no two of our processes (the workers, this one) share a core
        self._spin_s = SPIN_SECONDS if self.num_workers + 1 <= _available_cores() else 0.0
        shms = (self._obs_shm, self._act_shm, self._rew_shm, self._term_shm, self._trunc_shm)
        self._views = _views(n, (self.single_observation_space, self.single_action_space), *shms)
        try:
            with _main_path_hidden_if_missing():
                self._start_workers(ctx, env_fns, shms)
            made = {}
            if step_in_parent:  # while the workers make theirs
                a, b = self._blocks[0]
                self._local = _Block(0, a, self._views, self._progress, self.autoreset_mode)
                made[0] = self._local.make(env_fns[a:b])
            made.update(self._collect(self._remote, "making the envs"))
            self._check(made)
        except BaseException:
            self.close(terminate=True)
            raise

    def _start_workers(self, ctx: Any, env_fns: list, shms: tuple) -> None:
        spaces_ = (self.single_observation_space, self.single_action_space)
        for w in self._remote:
            a, b = self._blocks[w]
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                name=f"BatchedVectorEnv-worker-{w}",
                args=(
                    w,
                    a,
                    [CloudpickleWrapper(fn) for fn in env_fns[a:b]],
                    child,
                    shms,
                    self._progress_shm,
                    spaces_,
                    self.autoreset_mode,
                    self._spin_s,
                ),
                daemon=True,
            )
            proc.start()
            child.close()
            self._procs[w] = proc
            self._conns[w] = parent

    # -- the VectorEnv API ---------------------------------------------------------------------
    @property
    def worker_pids(self) -> tuple[int, ...]:
        """The worker processes' ids, in block order (this process's own block has none)."""
        return tuple(self._procs[w].pid for w in self._remote)

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        """The envs' ``np_random_seed``."""
        return self.get_attr("np_random_seed")

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:
        """Copies of the envs' random generators (they live in the workers)."""
        return self.get_attr("np_random")

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Resets every env (or those in ``options["reset_mask"]``), like ``SyncVectorEnv``.

        Args:
            seed: ``None`` (random seeds), an int ``s`` (env ``i`` gets ``s + i``) or one seed
                per env.
            options: Passed to every env's ``reset``; a ``"reset_mask"`` entry (bool array of
                shape ``(num_envs,)``) resets only those envs.

        Returns:
            The batched observations and infos.
        """
        self._check_ready("reset")
        n = self.num_envs
        if seed is None:
            seeds: list = [None] * n
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(
                f"If seeds are passed as a list the length must match num_envs={n} but got "
                f"length={len(seeds)}."
            )
        mask = None
        if options is not None and "reset_mask" in options:
            options = dict(options)
            mask = options.pop("reset_mask")
            if not isinstance(mask, np.ndarray):
                raise TypeError(f"`options['reset_mask']` must be a numpy array, got {type(mask)}")
            if mask.shape != (n,):
                raise ValueError(
                    f"`options['reset_mask']` must have shape `({n},)`, got {mask.shape}"
                )
            if mask.dtype != np.bool_:
                raise TypeError(
                    f"`options['reset_mask']` must have `dtype=np.bool_`, got {mask.dtype}"
                )
            if not np.any(mask):
                raise ValueError(
                    "`options['reset_mask']` must contain a boolean array with at least one True "
                    f"value, got reset_mask={mask}"
                )
        calls = {}
        for w, (a, b) in enumerate(self._blocks):
            if mask is None or mask[a:b].any():
                calls[w] = (seeds[a:b], options, None if mask is None else mask[a:b].tolist())
        infos = self._check(self._everyone("reset", calls, "reset"))
        return self._observations(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Steps every env with its action (``step_async`` then ``step_wait``)."""
        self.step_async(actions)
        return self.step_wait(self.timeout)

    def step_async(self, actions: Any) -> None:
        """Hands the actions to the workers and returns at once; :meth:`step_wait` collects.

        With ``copy=False``, the views returned by the previous step are overwritten meanwhile.
        """
        self._check_ready("step_async")
        if self._act is not None:
            actions = np.asarray(actions)
            if actions.shape != self._act.shape:
                raise ValueError(
                    f"actions of shape {actions.shape}: expected {self._act.shape} "
                    f"(num_envs={self.num_envs} actions of {self.single_action_space})"
                )
            if self._act.dtype.kind in "iu" and actions.dtype.kind not in "biu":
                integral = np.isfinite(actions) & (actions == np.round(actions))
                if not integral.all():
                    i = int(np.argwhere(~integral)[0][0])
                    raise ValueError(
                        f"the action of env {i}, {actions[i]!r}, is not an array of integers"
                    )
            np.copyto(self._act, actions, casting="unsafe")
            self._payloads = [None] * len(self._blocks)
        else:
            acts = list(iterate(self.action_space, actions))
            if len(acts) != self.num_envs:
                raise ValueError(f"got {len(acts)} actions: expected num_envs={self.num_envs}")
            self._payloads = [acts[a:b] for a, b in self._blocks]
        self._pending = "step"
        self._replies = {}
        for w in self._remote:
            self._send(w, ("step", self._payloads[w]))

    def step_wait(
        self, timeout: float | None = None
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Waits for the step started by :meth:`step_async` and returns its batched results.

        Args:
            timeout: Seconds to wait (``None``: no limit). On timeout a ``TimeoutError`` is
                raised and the step stays pending: call ``step_wait`` again.
        """
        if self.closed:
            raise RuntimeError("step_wait() on a closed BatchedVectorEnv")
        if self._pending != "step":
            raise RuntimeError("step_wait() called without a pending step_async(actions)")
        if self._local is not None and 0 not in self._replies:  # once, if it times out below
            self._replies[0] = self._local.step(self._payloads[0])
        replies = self._collect(self._remote, "step", timeout, keep=True)
        if self._local is not None:
            replies[0] = self._replies.pop(0)
        self._pending = None
        infos = self._check(replies)
        return (
            self._observations(),
            self._rewards.copy(),
            self._terminations.copy(),
            self._truncations.copy(),
            infos,
        )

    def render(self) -> tuple[Any, ...]:
        """Every env's ``render()``, in env order."""
        return self.call("render")

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Calls the method ``name`` of every env (or reads the attribute, if not callable).

        Arguments and results travel pickled.
        """
        self._check_ready("call")
        calls = dict.fromkeys(range(len(self._blocks)), (name, args, kwargs))
        replies = self._everyone("call", calls, f"call({name!r})")
        self._check(replies, infos=False)
        return tuple(r for w in range(len(self._blocks)) for r in replies[w][1])

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """The attribute ``name`` of every env, in env order."""
        return self.call(name)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Sets the attribute ``name`` of every env: one value for all, or a list of one per env."""
        if not isinstance(values, (list, tuple)):
            values = [values for _ in range(self.num_envs)]
        if len(values) != self.num_envs:
            raise ValueError(
                "Values must be a list or tuple with length equal to the number of environments. "
                f"Got `{len(values)}` values for {self.num_envs} environments."
            )
        self._check_ready("set_attr")
        calls = {w: (name, list(values[a:b])) for w, (a, b) in enumerate(self._blocks)}
        self._check(self._everyone("set_attr", calls, "set_attr"), infos=False)

    def close_extras(self, terminate: bool = False, timeout: float = 10.0, **kwargs: Any) -> None:
        """Stops the workers: asks them to close their envs, then terminates any left."""
        deadline = time.monotonic() + timeout
        if not terminate:
            if self._pending == "step":  # let the pending step finish first
                try:
                    self._collect(self._remote, "step", timeout, keep=True)
                except Exception:
                    terminate = True
            for w, conn in self._conns.items():
                if self._procs[w].is_alive():
                    try:
                        conn.send(("close", None))
                    except (OSError, ValueError):
                        pass
            for conn in self._conns.values():
                try:
                    if conn.poll(max(0.0, deadline - time.monotonic())):
                        conn.recv()
                except (OSError, EOFError, ValueError):
                    pass
        if self._local is not None:
            self._local.close()
        for p in self._procs.values():
            if not terminate:
                p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(2.0)
            if p.is_alive():
                p.kill()
                p.join()
        for conn in self._conns.values():
            conn.close()
        self._pending = None

    def __del__(self) -> None:
        if not getattr(self, "closed", True) and hasattr(self, "_procs"):
            try:
                self.close(terminate=True)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __repr__(self) -> str:
        name = f"{self.spec.id}, " if self.spec is not None else ""
        return (
            f"BatchedVectorEnv({name}num_envs={self.num_envs}, num_workers={self.num_workers}, "
            f"step_in_parent={self.step_in_parent})"
        )

    # -- plumbing ------------------------------------------------------------------------------
    def _observations(self) -> Any:
        return _copy_tree(self._obs) if self.copy else self._obs

    def _check_ready(self, what: str) -> None:
        if self.closed:
            raise RuntimeError(f"{what}() on a closed BatchedVectorEnv")
        if self._pending is not None:
            raise RuntimeError(
                f"{what}() called while a step is pending: call step_wait() after step_async()"
            )

    def _send(self, w: int, message: tuple) -> None:
        try:
            self._conns[w].send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._died(w, message[0])

    def _everyone(self, cmd: str, calls: dict[int, tuple], what: str) -> dict[int, tuple]:
        """Sends ``cmd`` to the workers of ``calls`` (block: arguments), serves this process's
        own block meanwhile, and returns every block's reply."""
        remote = [w for w in self._remote if w in calls]
        for w in remote:
            self._send(w, (cmd, calls[w]))
        replies = {}
        if self._local is not None and 0 in calls:
            replies[0] = self._local.serve(cmd, calls[0])
        replies.update(self._collect(remote, what, self.timeout))
        return replies

    def _collect(
        self, workers: list[int], what: str, timeout: float | None = None, keep: bool = False
    ) -> dict[int, tuple]:
        """Each worker's reply; notices a dead worker at once (its process sentinel).

        ``keep``: on timeout, keep the replies that came, for the next call (``step_wait``); else
        the vector env is closed, as its workers are in an unknown state.
        """
        replies = self._replies if keep else {}
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = [w for w in workers if w not in replies]
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            conns = {self._conns[w]: w for w in pending}
            sentinels = {self._procs[w].sentinel: w for w in pending}
            spin = self._spin_s if left is None else min(self._spin_s, left)
            ready = _spin(list(conns), spin) or wait([*conns, *sentinels], left)
            if not ready:
                envs = ", ".join(self._envs_of(w) for w in pending)
                message = f"{what}: no answer within {timeout} s from the workers of {envs}"
                if not keep:
                    self.close(terminate=True)
                    message += "; the vector env is closed"
                raise TimeoutError(message)
            dead = []
            for r in ready:
                if r in conns:
                    w = conns[r]
                    try:
                        replies[w] = r.recv()
                    except (EOFError, OSError):
                        dead.append(w)
            for r in ready:
                if r in sentinels and sentinels[r] not in replies:
                    w = sentinels[r]
                    try:  # it may have answered just before it exited
                        if self._conns[w].poll(0):
                            replies[w] = self._conns[w].recv()
                            continue
                    except (EOFError, OSError):
                        pass
                    dead.append(w)
            if dead:
                self._died(dead[0], what)
            pending = [w for w in pending if w not in replies]
        out = {w: replies.pop(w) for w in workers}
        return out

    def _envs_of(self, w: int) -> str:
        a, b = self._blocks[w]
        return f"env {a}" if b - a == 1 else f"envs {a}-{b - 1}"

    def _died(self, w: int, what: str) -> None:
        proc = self._procs[w]
        proc.join(1.0)
        code = proc.exitcode
        env = int(self._progress[w])
        how = f"exit code {code}"
        if code is not None and code < 0:
            try:
                how += f" (killed by {signal.Signals(-code).name})"
            except ValueError:
                pass
        doing = f"while stepping env {env}" if env >= 0 else "between calls"
        message = (
            f"BatchedVectorEnv worker {w} (pid {proc.pid}), which runs {self._envs_of(w)}, died "
            f"with {how} {doing}, during {what}; the vector env is now closed"
        )
        if what == "making the envs" and code == 1:
            message += (
                " (its traceback is on stderr above; if it speaks of the 'bootstrapping phase', "
                "the script makes the vector env when it is imported and needs "
                "`if __name__ == '__main__':` around that code, since each spawned worker "
                "imports the script again)"
            )
        self.close(terminate=True)
        raise VectorWorkerError(message, env if env >= 0 else None, w, code)

    def _check(self, replies: dict[int, tuple], infos: bool = True) -> dict[str, Any]:
        """Raises the first error among the replies; else merges the blocks' infos."""
        for w in sorted(replies):
            status, data = replies[w]
            if status == "error":
                self._raise_remote(w, data)
        merged: dict[str, Any] = {}
        if infos:
            for w in sorted(replies):
                if replies[w][1]:
                    _merge_infos(merged, replies[w][1], self._blocks[w][0], self.num_envs)
        return merged

    def _raise_remote(self, w: int, data: tuple) -> None:
        env, exc, type_name, text, tb = data
        where = f"env {env}" if env is not None else f"worker {w} ({self._envs_of(w)})"
        message = f"{where} raised {type_name}: {text}"
        error: BaseException | None = None
        if isinstance(exc, BaseException):
            try:
                error = type(exc)(message)
            except Exception:
                error = None
        if error is None:
            error = VectorWorkerError(message, env, w)
        error.env_index = env  # type: ignore[attr-defined]
        raise error from _RemoteTraceback(tb)


@contextlib.contextmanager
def _main_path_hidden_if_missing():
    """Python's spawn re-runs the main script in each worker from its path. A script read from
    stdin (``python - <<EOF``) has the path ``<stdin>``, which is no file, and every worker died
    with ``FileNotFoundError``. While the workers start, such a path is hidden, as in an
    interactive session: the workers need only this module's functions and the env makers,
    which travel by value (cloudpickle)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None or os.path.exists(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _BlockInfos(VectorEnv):
    """Gymnasium's own ``_add_info``, over one worker's block of envs."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs


def _merge_infos(total: dict, block: dict, start: int, n: int) -> dict:
    """Adds a block's batched infos (as ``VectorEnv._add_info`` made them) at ``start``.

    The result equals what ``_add_info`` over every env in order gives: the same keys in the same
    order, arrays typed by the first env that reported the key, ``_key`` masks.
    """
    for key, value in block.items():
        mask = block.get(f"_{key}")
        if key.startswith("_") and key[1:] in block:
            continue  # a mask, merged with its key
        if isinstance(value, dict):
            array: Any = _merge_infos(total.get(key, {}), value, start, n)
        else:
            array = total.get(key)
            if array is None:
                if value.dtype == object:
                    array = np.full(n, None, dtype=object)
                else:
                    array = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
            stop = start + len(mask)
            array[start:stop][mask] = value[mask]
        total_mask = total.get(f"_{key}", np.zeros(n, dtype=np.bool_))
        total_mask[start : start + len(mask)] |= mask
        total[key], total[f"_{key}"] = array, total_mask
    return total


def _error(env: int | None, e: BaseException) -> tuple:
    try:
        pickle.loads(pickle.dumps(e))
        exc: BaseException | None = e
    except Exception:
        exc = None
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return env, exc, type(e).__qualname__, str(e), tb


#: How long a side that waits for a message polls its pipes before it sleeps on them (seconds),
#: when every process has a core of its own. A process asleep on a pipe wakes 50-200 us after the
#: message lands on a VM; a poll sees it at once. The parent polls each time it waits for its
#: workers; a worker only while its commands come within this time of each other (0.5 ms covers
#: the parent's turn-around between two steps, not a trainer's policy between them).
SPIN_SECONDS = 0.0005


def _spin(conns: list, seconds: float) -> list:
    """Polls ``conns`` for up to ``seconds``: those with a message (or closed), or ``[]``."""
    if seconds <= 0:
        return []
    deadline = time.perf_counter() + seconds
    while True:
        ready = [c for c in conns if _has_message(c)]
        if ready or time.perf_counter() > deadline:
            return ready


def _has_message(conn: Any) -> bool:
    """``conn.poll(0)``, with a broken pipe (a dead worker) as ready: its ``recv`` then says so."""
    try:
        return conn.poll(0)
    except OSError:
        return True


def _watch_parent() -> None:
    """Exits this worker when its parent dies (it is then re-parented)."""
    ppid = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _copy_tree(views: Any) -> Any:
    """Fresh arrays for a (nested) dict / tuple of arrays."""
    if isinstance(views, dict):
        return {k: _copy_tree(v) for k, v in views.items()}
    if isinstance(views, tuple):
        return tuple(_copy_tree(v) for v in views)
    if isinstance(views, np.ndarray):
        return views.copy()
    return deepcopy(views)


def _write(views: Any, i: int, value: Any) -> None:
    if isinstance(views, dict):
        for k, v in views.items():
            _write(v, i, value[k])
    elif isinstance(views, tuple):
        for v, x in zip(views, value, strict=True):
            _write(v, i, x)
    else:
        views[i] = value


class _Block:
    """A contiguous block of envs ``start..stop-1`` and the commands a worker serves for it,
    writing into the shared arrays; the parent steps its own block with the same code.

    Every command returns ``("ok", data)`` or ``("error", _error(...))``, the worker's replies.
    """

    def __init__(
        self, w: int, start: int, views: tuple, progress: np.ndarray, autoreset_mode: AutoresetMode
    ) -> None:
        self.w, self.start = w, start
        self.obs, self.acts, self.rewards, self.terms, self.truncs = views
        self.progress, self.autoreset_mode = progress, autoreset_mode
        self.envs: list[gym.Env] = []
        self.autoreset: list[bool] = []

    def make(self, env_fns: list) -> tuple:
        """Makes the envs, one by one (the progress slot names the one being made)."""
        try:
            for j, fn in enumerate(env_fns):
                self.progress[self.w] = self.start + j
                self.envs.append(fn())
        except BaseException as e:
            return "error", _error(self.start + len(self.envs), e)
        self.progress[self.w] = -1
        self.autoreset = [False] * len(self.envs)
        self.batcher = _BlockInfos(len(self.envs))
        return "ok", None

    def step(self, actions: list | None) -> tuple:
        """Steps every env; ``actions`` is ``None`` when they are in the shared array."""
        infos: dict = {}
        mode = self.autoreset_mode
        for j, env in enumerate(self.envs):
            i = self.start + j
            self.progress[self.w] = i
            try:
                if self.autoreset[j] and mode == AutoresetMode.NEXT_STEP:
                    o, info = env.reset()
                    r, te, tr = 0.0, False, False
                else:
                    if self.autoreset[j] and mode == AutoresetMode.DISABLED:
                        raise RuntimeError(
                            f"env {i}'s episode has ended and autoreset_mode is DISABLED: reset it "
                            "with reset(options={'reset_mask': mask}) before stepping it"
                        )
                    a = self.acts[i].copy() if actions is None else actions[j]
                    o, r, te, tr, info = env.step(a)
                    if mode == AutoresetMode.SAME_STEP and (te or tr):
                        final = {"final_obs": o, "final_info": info}
                        infos = self.batcher._add_info(infos, final, j)
                        o, info = env.reset()
            except Exception as e:
                return "error", _error(i, e)
            _write(self.obs, i, o)
            self.rewards[i], self.terms[i], self.truncs[i] = r, te, tr
            self.autoreset[j] = bool(te or tr)
            infos = self.batcher._add_info(infos, info, j)
        self.progress[self.w] = -1
        return "ok", infos

    def reset(self, seeds: list, options: dict | None, mask: list | None) -> tuple:
        infos: dict = {}
        for j, env in enumerate(self.envs):
            if mask is not None and not mask[j]:
                continue
            i = self.start + j
            self.progress[self.w] = i
            try:
                o, info = env.reset(seed=seeds[j], options=options)
            except Exception as e:
                return "error", _error(i, e)
            _write(self.obs, i, o)
            self.rewards[i], self.terms[i], self.truncs[i] = 0.0, False, False
            self.autoreset[j] = False
            infos = self.batcher._add_info(infos, info, j)
        self.progress[self.w] = -1
        return "ok", infos

    def call(self, name: str, args: tuple, kwargs: dict) -> tuple:
        out = []
        for j, env in enumerate(self.envs):
            self.progress[self.w] = self.start + j
            try:
                f = env.get_wrapper_attr(name)
                out.append(f(*args, **kwargs) if callable(f) else f)
            except Exception as e:
                return "error", _error(self.start + j, e)
        self.progress[self.w] = -1
        return "ok", out

    def set_attr(self, name: str, values: list) -> tuple:
        for j, (env, value) in enumerate(zip(self.envs, values, strict=True)):
            try:
                env.set_wrapper_attr(name, value)
            except Exception as e:
                return "error", _error(self.start + j, e)
        return "ok", None

    def close(self) -> None:
        for env in self.envs:
            try:
                env.close()
            except Exception:
                pass
        self.envs = []

    def serve(self, cmd: str, data: Any) -> tuple:
        """The reply to one of the parent's commands."""
        if cmd == "step":
            return self.step(data)
        if cmd in ("reset", "call", "set_attr"):
            return getattr(self, cmd)(*data)
        return "error", _error(None, ValueError(f"unknown command {cmd!r}"))


def _views(
    n: int, spaces_: tuple, obs_shm: Any, act_shm: Any, rew_shm: Any, term_shm: Any, trunc_shm: Any
) -> tuple:
    """Numpy views of the shared arrays: observations, actions (or ``None``), rewards,
    terminations, truncations."""
    obs_space, act_space = spaces_
    return (
        read_from_shared_memory(obs_space, obs_shm, n),
        None if act_shm is None else read_from_shared_memory(act_space, act_shm, n),
        np.frombuffer(rew_shm, np.float64),
        np.frombuffer(term_shm, np.bool_),
        np.frombuffer(trunc_shm, np.bool_),
    )


def _worker(
    w: int,
    start: int,
    env_fns: list,
    conn: Any,
    shms: tuple,
    progress_shm: Any,
    spaces_: tuple,
    autoreset_mode: AutoresetMode,
    spin: float = 0.0,
) -> None:
    """One worker process: makes its block's envs, then serves the parent's commands (polling
    for the next one for up to ``spin`` seconds while they come back to back)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _watch_parent()
    n = len(shms[2])
    block = _Block(
        w, start, _views(n, spaces_, *shms), np.frombuffer(progress_shm, np.int64), autoreset_mode
    )
    made = block.make(env_fns)
    conn.send(made)
    if made[0] == "error":
        conn.close()
        return
    try:
        idle = 0.0  # how long the last command took to come
        while True:
            t = time.perf_counter()
            if idle < spin:  # commands come back to back: poll rather than sleep
                _spin([conn], spin)
            try:
                cmd, data = conn.recv()
                idle = time.perf_counter() - t
            except (EOFError, OSError):
                break  # the parent is gone
            if cmd == "close":
                block.close()
                conn.send(("ok", None))
                break
            try:
                reply = block.serve(cmd, data)
                block.progress[w] = -1
                try:
                    conn.send(reply)
                except (pickle.PicklingError, TypeError, AttributeError) as e:
                    conn.send(
                        ("error", _error(None, TypeError(f"{cmd} result not picklable: {e}")))
                    )
            except (BrokenPipeError, ConnectionResetError):
                break
            except Exception as e:
                block.progress[w] = -1
                conn.send(("error", _error(None, e)))
    finally:
        block.close()
        conn.close()


def _make_env(entry_point: str, kwargs: dict, max_episode_steps: int | None) -> gym.Env:
    """Makes one env from an entry point string (what a worker calls)."""
    env = gym.envs.registration.load_env_creator(entry_point)(**kwargs)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps)
    return env


class _EnvFn:
    """A picklable ``() -> env`` for an entry point and kwargs."""

    def __init__(self, entry_point: str, kwargs: dict, max_episode_steps: int | None) -> None:
        self.entry_point, self.kwargs, self.max_episode_steps = (
            entry_point,
            kwargs,
            max_episode_steps,
        )

    def __call__(self) -> gym.Env:
        return _make_env(self.entry_point, dict(self.kwargs), self.max_episode_steps)


def make_batched(
    entry_point: str,
    num_envs: int = 1,
    *,
    num_workers: int | None = None,
    context: str = "spawn",
    copy: bool = True,
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    timeout: float | None = None,
    step_in_parent: bool = True,
    max_episode_steps: int | None = None,
    **env_kwargs: Any,
) -> BatchedVectorEnv:
    """A :class:`BatchedVectorEnv` of ``num_envs`` envs ``entry_point(**env_kwargs)``.

    ``num_workers``, ``context``, ``copy``, ``autoreset_mode``, ``timeout`` and
    ``step_in_parent`` configure the vector env (see :class:`BatchedVectorEnv`); every other
    keyword goes to each env.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    fn = _EnvFn(entry_point, env_kwargs, max_episode_steps)
    return BatchedVectorEnv(
        [fn] * num_envs,
        num_workers=num_workers,
        context=context,
        copy=copy,
        autoreset_mode=autoreset_mode,
        timeout=timeout,
        step_in_parent=step_in_parent,
    )


def paint_vector_env(num_envs: int = 1, **kwargs: Any) -> BatchedVectorEnv:
    """The vector entry point of the ``SpiralPaint-*`` ids (see :func:`make_batched`)."""
    return make_batched("spiral_envs.paint.env:PaintEnv", num_envs, **kwargs)


def scene_vector_env(num_envs: int = 1, **kwargs: Any) -> BatchedVectorEnv:
    """The vector entry point of the ``SpiralMuJoCo-*`` ids (see :func:`make_batched`)."""
    return make_batched("spiral_envs.scene.env:SceneEnv", num_envs, **kwargs)
