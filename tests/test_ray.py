"""The Ray backend on a real local Ray instance: 2 rollout workers, a small paint env."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from conftest import ROOT  # noqa: E402
from fakes import interrupt, on_nth_reward_call, random_rollout, small_cfg  # noqa: E402

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
        ray_sync=False,  # the workers' own batches, stale: what most tests here exercise
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


def _record_versions(monkeypatch) -> list:
    """(version that acted, learner's version, episodes) of every batch the learner takes."""
    versions = []
    real_update = PolicyLearner.update

    def update(self, rollout, *a, **k):
        versions.append((rollout.policy_version, self.version, rollout.actions.shape[1]))
        return real_update(self, rollout, *a, **k)

    monkeypatch.setattr(PolicyLearner, "update", update)
    return versions


def test_a_sync_ray_run_acts_every_batch_with_the_learners_current_weights(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    versions = _record_versions(monkeypatch)
    s = tr.train(ray_cfg(tmp_path, ray_sync=True, num_envs=3, total_steps=180))
    assert s["frames"] == 180 and s["iterations"] == 3
    # 3 envs split 2 + 1 between the workers, joined into one batch, acted on-policy
    assert versions == [(0, 0, 3), (1, 1, 3), (2, 2, 3)]
    assert abs(s["losses/importance_ratio"] - 1) < 1e-3
    assert len(set(spy.pids)) == 2
    _assert_no_leaks(spy.pids)


def test_a_sync_ray_run_goes_on_through_a_killed_worker_still_on_policy(
    tmp_path, monkeypatch, capsys
):
    spy = Spy(monkeypatch)
    on_nth_reward_call(monkeypatch, 2, lambda: os.kill(spy.pids[0], signal.SIGKILL))
    versions = _record_versions(monkeypatch)
    s = tr.train(ray_cfg(tmp_path, ray_sync=True, total_steps=400))
    assert 400 <= s["frames"] < 400 + 40  # short batches: the last may end past the budget
    assert all(acted == learner for acted, learner, _ in versions), versions
    (source,) = spy.sources
    lost = [b for *_, b in versions if b < 2]
    # the kill lands while the workers wait for the update; whether Ray has restarted the worker
    # before the next batch asks it depends on timing. A lost share is counted and said, and the
    # batches are short (the other worker's share) until the worker is back
    assert source.restarts <= 1 and bool(lost) == bool(source.restarts)
    assert all(b == 1 for b in lost)
    if source.restarts:
        assert "rollout worker 0 died; Ray restarts it" in capsys.readouterr().err
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


def test_the_discriminator_learner_runs_as_its_own_ray_actor(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    discs = []
    real = tr.build_discriminator

    def build(*a, **k):
        discs.append(real(*a, **k))
        if hasattr(discs[-1], "actor"):
            discs[-1].pid = ray.get(discs[-1].actor.pid.remote())
        return discs[-1]

    monkeypatch.setattr(tr, "build_discriminator", build)
    cfg = ray_cfg(tmp_path, reward="discriminator", disc_placement="actor", checkpoint_every=3)
    s = tr.train(cfg)
    assert s["frames"] == 200 and np.isfinite(s["disc/loss"]) and np.isfinite(s["losses/total"])
    disc = discs[0]
    assert disc.pid not in (os.getpid(), *spy.pids)  # a process of its own
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["discriminator"]
    assert saved["version"] == 5 * cfg.critic.disc_updates  # every batch's updates, none lost
    _assert_no_leaks([*spy.pids, disc.pid])
    # the same checkpoint resumes with the learner in the driver
    more = tr.train(cfg.replace(resume=True, total_steps=280, disc_placement="driver"))
    assert more["frames"] == 280
    again = load_checkpoint(tmp_path / "checkpoint.pt")["discriminator"]
    assert again["version"] == 7 * cfg.critic.disc_updates


def test_the_driver_scores_with_the_weights_the_actor_returned(tmp_path):
    from agents.build import probe_env
    from agents.ray_discriminator import RemoteDiscriminator

    cfg = ray_cfg(tmp_path, reward="discriminator", disc_placement="actor", disc_updates=2)
    info = probe_env(cfg.env_id, cfg.env_kwargs)
    remote = RemoteDiscriminator(cfg, info, torch.device("cpu"))
    try:
        rollout = random_rollout(info.image_shape, batch=8)
        canv, tgt = rollout.canvases[-1], rollout.targets
        before = remote(canv, tgt)
        assert remote.step(rollout) == {}  # nothing trained yet: no metrics
        assert np.array_equal(remote(canv, tgt), before)  # the update is in flight
        m = remote.step(rollout)  # collects the first batch's updates
        assert np.isfinite(m["disc/loss"])
        after = remote(canv, tgt)
        assert not np.allclose(after, before)
        state = remote.state_dict()  # waits for the second batch's updates too
        assert state["version"] == 4
        ours = remote.critic.state_dict()
        assert all(torch.equal(ours[k], v) for k, v in state["critic"].items())
    finally:
        remote.close()
    assert not ray.is_initialized()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def token_head():
    """A head started as the docs say (``ray start --head``, token mode), with a token of its own:
    ``(address, token)``. Stopped by ending the processes it started, never ``ray stop`` (which
    would stop every Ray instance on the machine)."""
    port, token = _free_port(), secrets.token_hex(32)
    temp = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: Ray's socket paths have a limit
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts"]
    args = ["start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    args += ["--disable-usage-stats", f"--temp-dir={temp}", "--block"]  # --block: ours to end
    log = Path(temp) / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            ray_cli + args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.time() + 120  # a loaded machine is slow to start Ray
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", token
    finally:
        head.terminate()  # `ray start --block` stops its node's processes on SIGTERM
        try:
            head.wait(30)
        finally:
            try:
                os.killpg(head.pid, signal.SIGKILL)  # anything of its group left behind
            except ProcessLookupError:
                pass
            shutil.rmtree(temp, ignore_errors=True)


def _spiral_train(address: str, home: Path, **auth: str) -> subprocess.CompletedProcess:
    """``spiral-train`` as a user runs it on a machine whose home is ``home``, with only the
    ``RAY_AUTH_*`` variables given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH_", "RAY_ADDRESS"))}
    env.update(auth, HOME=str(home), PYTHONPATH=str(ROOT))
    args = ["--backend", "ray", "--ray_address", address, "--env_id", ENV, "--num_actors", "2"]
    args += ["--num_envs", "2", "--cpus_per_actor", "0.5", "--total_steps", "80", "--reward", "l2"]
    args += ["--channels", "8", "--res_blocks", "1", "--hidden", "32", "--lstm", "32"]
    args += ["--progress", "false", "--tensorboard", "false", "--sample_every", "0"]
    args += ["--eval_every", "0", "--threads", "1", "--out_dir", str(home / "run")]
    cmd = [sys.executable, "-m", "agents.train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "auth, said",
    [
        ({}, "no token was found here"),
        ({"RAY_AUTH_TOKEN": "not-the-heads"}, "it refused the token from RAY_AUTH_TOKEN"),
    ],
    ids=["no-token", "wrong-token"],
)
def test_joining_a_token_cluster_without_its_token_stops_at_once_with_what_to_set(
    token_head, tmp_path, auth, said
):
    address, _ = token_head
    t0 = time.time()
    run = _spiral_train(address, tmp_path, **auth)
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.splitlines() == [
        f"spiral-train: error: the Ray cluster at {address} requires a token, and {said}: set "
        "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the head's token> (`ray get-auth-token` on the "
        "head machine prints it)"
    ]
    assert time.time() - t0 < 15  # not Ray's 20 s of retries


def test_the_advice_works_a_run_with_the_heads_token_joins_and_completes(token_head, tmp_path):
    address, token = token_head
    run = _spiral_train(address, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "final metrics: frames=80," in run.stdout


def test_a_node_lost_mid_run_its_worker_restarts_on_the_other_and_nothing_is_lost(
    tmp_path, monkeypatch, capsys
):
    """A machine that goes away, on Ray's multi-node test cluster: a head and a worker node of
    1 CPU each, one rollout worker on each (SPREAD). The worker node is killed, processes and
    all, in the second iteration; the other worker goes on alone while Ray restarts the lost one
    on the head, which then plays again."""
    from ray.cluster_utils import Cluster

    from agents.discriminator import DiscriminatorLearner
    from agents.ray_rollouts import RayRollouts

    # Ray declares a node dead after missed health checks: 0.5 s x 3 here, not 30 s
    fast = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}
    head = {"num_cpus": 1, "include_dashboard": False, "_system_config": fast}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        node = cluster.add_node(num_cpus=1)
        spy = Spy(monkeypatch)
        updates = {PolicyLearner: 0, DiscriminatorLearner: 0}
        for cls in updates:
            monkeypatch.setattr(cls, "update", _counted(cls.update, updates, cls))
        back = RayRollouts._worker_back

        def worker_back(self, i):
            spy.back_on = ray.get(self.workers[i].node_id.remote())
            back(self, i)

        monkeypatch.setattr(RayRollouts, "_worker_back", worker_back)

        def lose_the_node():
            spy.nodes = spy.sources[0].worker_nodes()
            cluster.remove_node(node, allow_graceful=False)

        def until_it_is_restarted():  # a loaded machine may take 30 s to restart a worker
            lost = spy.sources[0].workers[spy.nodes.index(node.node_id)]
            ray.get(lost.pid.options(max_task_retries=-1).remote(), timeout=120)

        on_nth_reward_call(monkeypatch, 2, lose_the_node)
        on_nth_reward_call(monkeypatch, 4, until_it_is_restarted)
        cfg = ray_cfg(
            tmp_path, reward="discriminator", total_steps=360, ray_address=cluster.address
        )
        s = tr.train(cfg)

        head_id = cluster.head_node.node_id
        assert sorted(spy.nodes) == sorted([head_id, node.node_id])  # one worker on each
        lost = spy.nodes.index(node.node_id)
        err = capsys.readouterr().err
        assert f"rollout worker {lost} died; Ray restarts it" in err, err
        assert f"rollout worker {lost} is back; 2 of 2 workers acting" in err, err
        assert spy.back_on == head_id
        assert s["frames"] == 360 and s["iterations"] == 9  # every frame asked for
        ckpt = load_checkpoint(tmp_path / "checkpoint.pt")  # and every update, in both learners
        assert ckpt["learner"]["version"] == updates[PolicyLearner] == 9
        assert ckpt["discriminator"]["version"] == updates[DiscriminatorLearner] > 0
        _assert_no_leaks(spy.pids)
    finally:
        cluster.shutdown()


def _counted(update, counts: dict, key):
    def counted(self, *a, **k):
        counts[key] += 1
        return update(self, *a, **k)

    return counted
