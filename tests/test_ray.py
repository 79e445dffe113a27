"""The Ray backend on a real local Ray instance: 2 rollout workers, a small paint env."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from fakes import interrupt, on_nth_reward_call, small_cfg  # noqa: E402

import agents.train as tr  # noqa: E402
from agents.checkpoint import load_checkpoint  # noqa: E402
from agents.learner import PolicyLearner  # noqa: E402

ENV = "SpiralPaint-MNIST-Cond-v0"  # 20 steps an episode: 40 frames a batch of 2 envs


def ray_cfg(tmp_path, **kw):
    base = dict(
        env_id=ENV,
        backend="ray",
        num_actors=2,
        num_envs=2,
        total_steps=200,
        reward="l2",
        reward_mode="per_step",
        log_every=1,
        sample_every=2,
        cpus_per_actor=0.5,
    )
    return small_cfg(tmp_path, **{**base, **kw})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Spy:
    """Keeps the run's RayRollouts, and the workers' pids, for the test to look at."""

    def __init__(self, monkeypatch):
        self.sources = []
        real = tr.build_rollouts

        def build(*a, **k):
            self.sources.append(real(*a, **k))
            self.pids = self.sources[-1].worker_pids()
            return self.sources[-1]

        monkeypatch.setattr(tr, "build_rollouts", build)


def _assert_no_leaks(pids):
    assert not ray.is_initialized()
    deadline = time.time() + 20
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "Ray worker processes outlived the run"


def test_a_ray_run_completes_writes_its_outputs_and_shuts_ray_down(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    s = tr.train(ray_cfg(tmp_path, reward="discriminator", total_steps=240))
    assert s["frames"] == 240 and np.isfinite(s["losses/total"])
    for f in ("checkpoint.pt", "samples.png", "episode.gif", "progress.csv", "metrics.json"):
        assert (tmp_path / f).is_file(), f
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"charts/policy_lag_min", "charts/policy_lag_mean", "charts/policy_lag_max"} <= set(
        header
    )
    assert len(set(spy.pids)) == 2 and os.getpid() not in spy.pids
    _assert_no_leaks(spy.pids)


def _kill(spy, which: str) -> None:
    """SIGKILLs a worker of the running source: the one playing a batch (``busy``), or the one
    that has just returned its batch and waits for the update it feeds (``idle``)."""
    (source,) = spy.sources
    spy.killed = next(iter(source.pending.values())) if which == "busy" else source.returned[0]
    os.kill(spy.pids[spy.killed], signal.SIGKILL)


def test_a_worker_killed_mid_batch_is_restarted_and_the_run_completes(
    tmp_path, monkeypatch, capsys
):
    spy = Spy(monkeypatch)
    on_nth_reward_call(monkeypatch, 2, lambda: _kill(spy, "busy"))
    s = tr.train(ray_cfg(tmp_path, total_steps=400))
    assert s["frames"] == 400
    (source,) = spy.sources
    # Whether the killed worker's batch is lost depends on timing: on the 2026-12-06 machine the
    # batch had often reached the object store before the kill (the test failed 2 runs in 3 at
    # the commit before the renderer stages too). A lost batch must be counted and said.
    if source.restarts:
        assert f"rollout worker {spy.killed} died; Ray restarts it" in capsys.readouterr().err
    _assert_no_leaks(spy.pids)


def test_a_worker_killed_between_batches_comes_back_with_the_current_weights(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    on_nth_reward_call(monkeypatch, 2, lambda: _kill(spy, "idle"))
    versions = []
    real_update = PolicyLearner.update

    def update(self, rollout, *a, **k):
        versions.append((rollout.policy_version, self.version))
        return real_update(self, rollout, *a, **k)

    monkeypatch.setattr(PolicyLearner, "update", update)
    s = tr.train(ray_cfg(tmp_path, total_steps=400, weights_every=2))
    assert s["frames"] == 400
    # 2 workers and a push every 2 updates: at most 2 updates stale. A restart that acted on the
    # weights it was built with would report version 0 long after the start.
    assert all(learner - 2 <= acted <= learner for acted, learner in versions), versions
    _assert_no_leaks(spy.pids)


def test_a_killed_ray_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    on_nth_reward_call(monkeypatch, 4, interrupt)  # the driver killed in the fourth iteration
    cfg = ray_cfg(tmp_path, checkpoint_every=3)
    with pytest.raises(KeyboardInterrupt):
        tr.train(cfg)
    _assert_no_leaks(spy.pids)  # teardown ran on the error path too
    assert load_checkpoint(tmp_path / "checkpoint.pt")["frames"] == 120
    s = tr.train(cfg.replace(resume=True))
    assert s["frames"] == 200 and s["iterations"] == 5
    rows = (tmp_path / "progress.csv").read_text().splitlines()
    assert len(rows) == 1 + 5  # header + one row per iteration, none duplicated
    assert json.loads((tmp_path / "metrics.json").read_text())["frames"] == 200
    _assert_no_leaks(spy.pids)


def test_too_few_cpus_for_the_workers_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="CPUs asked for the rollout workers"):
        tr.train(ray_cfg(tmp_path, num_actors=2, cpus_per_actor=1000))
    assert not ray.is_initialized()
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize("stage", ["search", "sleep"])
def test_the_renderers_stages_run_on_the_ray_workers(tmp_path, stage):
    kw = {"canvas_size": 16, "grid": 8, "episode_length": 4, "brush_sizes": [1, 2]}
    s = tr.train(
        ray_cfg(
            tmp_path,
            env_kwargs=kw,
            stage=stage,
            total_steps=32,
            pointer=True,
            search_policy=2,
            search_prior=4,
            sample_every=0,
        )
    )
    assert s["frames"] == 32 and np.isfinite(s["losses/nll"])


def test_a_discriminator_search_on_ray_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="backend 'local'"):
        tr.train(ray_cfg(tmp_path, stage="search", reward="discriminator", total_steps=32))
    assert not ray.is_initialized()
