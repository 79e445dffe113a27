"""The batched vector env (spiral_envs.vector): equal to SyncVectorEnv for every id; its faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest
from conftest import ALL_IDS, ROOT, env_kwargs
from gymnasium.vector import AutoresetMode

from spiral_envs.vector import BatchedVectorEnv, VectorWorkerError

N = 3  # envs: this process and one worker, blocks of 2 and 1


def make_pair(env_id: str, celeba_dir, num_envs: int = N, **kwargs):
    kw = {**env_kwargs(env_id, celeba_dir), **kwargs}
    sync = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **kw)
    batched = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", num_workers=1, **kw
    )
    return sync, batched


def assert_same_infos(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        if isinstance(a[k], dict):
            assert_same_infos(a[k], b[k])
            continue
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        if a[k].dtype == object:
            assert repr(a[k].tolist()) == repr(b[k].tolist()), k
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_same_obs(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_same_step(s, b) -> None:
    assert_same_obs(s[0], b[0])
    for x, y in zip(s[1:4], b[1:4], strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert_same_infos(s[4], b[4])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_batched_equals_sync_over_an_episode_boundary(env_id, celeba_dir):
    sync, batched = make_pair(env_id, celeba_dir)
    try:
        assert isinstance(batched, BatchedVectorEnv) and batched.num_workers == 1
        assert batched.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert batched.single_observation_space == sync.single_observation_space
        assert batched.observation_space == sync.observation_space
        assert batched.action_space == sync.action_space
        assert batched.render_mode == sync.render_mode
        assert batched.spec.id == env_id
        (o1, i1), (o2, i2) = sync.reset(seed=[4, 9, 2]), batched.reset(seed=[4, 9, 2])
        assert_same_obs(o1, o2)
        assert_same_infos(i1, i2)
        sync.action_space.seed(1)
        length = sync.get_attr("episode_length")[0]
        ended = False
        for t in range(length + 2):
            a = sync.action_space.sample()
            s, b = sync.step(a), batched.step(a)
            assert_same_step(s, b)
            if t == length - 1:
                assert b[2].all()  # every episode ends together here ...
                ended = True
            if t == length:  # ... and the next step resets them (NEXT_STEP autoreset)
                assert ended and not b[2].any() and (b[1] == 0).all()
                assert (b[0]["step"] == 0).all()
        assert batched.get_attr("program") == sync.get_attr("program")
        # Fresh arrays each step, never views of the shared memory.
        o3, *_ = batched.step(sync.action_space.sample())
        o4, *_ = batched.step(sync.action_space.sample())
        assert not np.shares_memory(o3["canvas"], o4["canvas"])
    finally:
        sync.close(), batched.close()


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_other_autoreset_modes_equal_sync(mode, celeba_dir):
    env_id = "SpiralPaint-MNIST-Cond-v0"
    kw = {"episode_length": 3}
    sync = gym.make_vec(
        env_id, num_envs=N, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kw
    )
    batched = gym.make_vec(
        env_id, N, vectorization_mode="vector_entry_point", num_workers=1, autoreset_mode=mode, **kw
    )
    try:
        assert batched.metadata["autoreset_mode"] == mode
        assert_same_obs(sync.reset(seed=0)[0], batched.reset(seed=0)[0])
        sync.action_space.seed(0)
        for _ in range(7):
            a = sync.action_space.sample()
            s, b = sync.step(a), batched.step(a)
            if mode == AutoresetMode.SAME_STEP and "final_obs" in s[4]:
                fs, fb = s[4].pop("final_obs"), b[4].pop("final_obs")
                for x, y in zip(fs, fb, strict=True):
                    assert_same_obs(x, y)
            assert_same_step(s, b)
            if mode == AutoresetMode.DISABLED and s[2].any():
                mask = s[2] | s[3]
                r1 = sync.reset(options={"reset_mask": mask.copy()})
                r2 = batched.reset(options={"reset_mask": mask.copy()})
                assert_same_obs(r1[0], r2[0])
                assert_same_infos(r1[1], r2[1])
    finally:
        sync.close(), batched.close()


def test_seeding_reset_mask_render_and_attrs(celeba_dir):
    env_id = "SpiralPaint-Faces-Cond-v0"
    sync, batched = make_pair(env_id, celeba_dir, render_mode="rgb_array", render_size=32)
    try:
        o_int, _ = batched.reset(seed=10)
        o_list, _ = batched.reset(seed=[10, 11, 12])
        assert_same_obs(o_int, o_list)
        assert batched.np_random_seed == (10, 11, 12)
        o_other, _ = batched.reset(seed=[10, 11, 99])
        assert np.array_equal(o_other["target"][:2], o_list["target"][:2])
        assert not np.array_equal(o_other["target"][2], o_list["target"][2])
        batched.reset(seed=None)
        with pytest.raises(ValueError, match="num_envs=3"):
            batched.reset(seed=[1, 2])
        # reset_mask: only those envs, as in SyncVectorEnv.
        sync.reset(seed=5), batched.reset(seed=5)
        sync.action_space.seed(5)
        a = sync.action_space.sample()
        sync.step(a), batched.step(a)
        mask = np.array([False, True, False])
        r1 = sync.reset(seed=[None, 42, None], options={"reset_mask": mask.copy()})
        r2 = batched.reset(seed=[None, 42, None], options={"reset_mask": mask.copy()})
        assert_same_obs(r1[0], r2[0])
        assert_same_infos(r1[1], r2[1])
        frames_s, frames_b = sync.render(), batched.render()
        assert isinstance(frames_b, tuple) and len(frames_b) == N
        for x, y in zip(frames_s, frames_b, strict=True):
            np.testing.assert_array_equal(x, y)
        batched.set_attr("render_size", [16, 24, 32])
        assert batched.get_attr("render_size") == (16, 24, 32)
        batched.set_attr("render_size", 20)
        assert batched.get_attr("render_size") == (20, 20, 20)
        assert batched.call("action_spec")[0].names == sync.call("action_spec")[0].names
    finally:
        sync.close(), batched.close()


@pytest.mark.parametrize("cores", [1, 2, 8])
def test_polls_for_replies_only_when_every_process_has_a_core(monkeypatch, cores):
    import spiral_envs.vector as vector

    monkeypatch.setattr(vector, "_available_cores", lambda: cores)
    env_id = "SpiralPaint-MNIST-v0"
    sync = gym.make_vec(env_id, num_envs=4, vectorization_mode="sync")
    batched = gym.make_vec(env_id, 4, vectorization_mode="vector_entry_point", num_workers=1)
    try:
        assert batched._spin_s == (vector.SPIN_SECONDS if cores >= 2 else 0.0)
        sync.reset(seed=2), batched.reset(seed=2)
        sync.action_space.seed(2)
        for _ in range(25):  # back to back and over an episode's end: the polling path
            a = sync.action_space.sample()
            assert_same_step(sync.step(a), batched.step(a))
    finally:
        sync.close(), batched.close()


@pytest.mark.parametrize("step_in_parent", [True, False])
def test_step_async_and_step_wait(step_in_parent):
    env_id = "SpiralPaint-MNIST-v0"
    sync = gym.make_vec(env_id, num_envs=4, vectorization_mode="sync")
    batched = gym.make_vec(
        env_id,
        4,
        vectorization_mode="vector_entry_point",
        num_workers=2,
        step_in_parent=step_in_parent,
    )
    try:
        sync.reset(seed=1), batched.reset(seed=1)
        sync.action_space.seed(1)
        with pytest.raises(RuntimeError, match="without a pending step_async"):
            batched.step_wait()
        for _ in range(3):
            a = sync.action_space.sample()
            batched.step_async(a)
            with pytest.raises(RuntimeError, match="pending"):
                batched.step(a)
            assert_same_step(sync.step(a), batched.step_wait(timeout=60))
        with pytest.raises(ValueError, match="expected \\(4, 5\\)"):
            batched.step(np.zeros((3, 5), np.int64))
        with pytest.raises(ValueError, match="not an array of integers"):
            batched.step(np.full((4, 5), 0.5))
    finally:
        sync.close(), batched.close()


@pytest.mark.parametrize("bad", [0, 2])  # this process's block, a worker's
def test_an_env_that_raises_names_the_env_and_the_exception(bad):
    envs = gym.make_vec(
        "SpiralPaint-MNIST-v0", 3, vectorization_mode="vector_entry_point", num_workers=1
    )
    try:
        envs.reset(seed=0)
        a = np.zeros(envs.action_space.shape, np.int64)
        a[bad, 3] = 99  # size index out of range
        with pytest.raises(ValueError, match=rf"env {bad} raised ValueError: .*'size' = 99") as e:
            envs.step(a)
        assert e.value.env_index == bad
        assert "Traceback" in str(e.value.__cause__)
        envs.reset(seed=0)  # the workers are still usable
        envs.step(np.zeros(envs.action_space.shape, np.int64))
    finally:
        envs.close()


@pytest.mark.parametrize("bad", [1, 2])  # in this process's block (0-1), the worker's (2)
def test_an_env_that_fails_to_build(bad):
    fns = [lambda: gym.make("SpiralPaint-MNIST-v0")] * 3
    fns[bad] = lambda: gym.make("SpiralPaint-MNIST-v0", grid=0)
    with pytest.raises(ValueError, match=f"env {bad} raised ValueError: .*grid"):
        BatchedVectorEnv(fns, num_workers=1)


def test_a_killed_worker_gives_a_clear_error_quickly_and_close_reaps():
    envs = gym.make_vec(
        "SpiralPaint-MNIST-v0", 4, vectorization_mode="vector_entry_point", num_workers=1
    )
    envs.reset(seed=0)
    pids = envs.worker_pids  # this process steps envs 0-1, worker 1 envs 2-3
    assert len(pids) == 1 and all(alive(p) for p in pids)
    os.kill(pids[0], signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(VectorWorkerError, match=r"worker 1 .*envs 2-3.*SIGKILL") as info:
        envs.step(np.zeros(envs.action_space.shape, np.int64))
    assert time.monotonic() - start < 10
    assert info.value.worker == 1 and info.value.exitcode == -signal.SIGKILL
    assert envs.closed and not any(alive(p) for p in pids)
    with pytest.raises(RuntimeError, match="closed"):
        envs.reset()
    envs.close()  # closing again is fine


def test_close_reaps_workers_and_refuses_fork():
    envs = gym.make_vec("SpiralMuJoCo-Scene-v0", 2, vectorization_mode="vector_entry_point")
    envs.reset(seed=0)
    envs.step(envs.action_space.sample())
    pids = envs.worker_pids
    envs.close()
    assert envs.closed and not any(alive(p) for p in pids)
    with pytest.raises(ValueError, match="fork"):
        gym.make_vec(
            "SpiralPaint-MNIST-v0", 2, vectorization_mode="vector_entry_point", context="fork"
        )


def test_make_vec_defaults_to_it_and_sync_async_remain():
    envs = gym.make_vec("SpiralPaint-MNIST-v0", 2)
    try:
        assert isinstance(envs, BatchedVectorEnv)
        # one block in this process, one worker per other core, no block left empty
        assert envs.step_in_parent and envs.num_workers == min(len(os.sched_getaffinity(0)) - 1, 1)
    finally:
        envs.close()
    sync = gym.make_vec("SpiralPaint-MNIST-v0", 2, vectorization_mode="sync")
    assert isinstance(sync, gym.vector.SyncVectorEnv)
    sync.close()


def test_a_killed_parent_leaves_no_orphans():
    code = textwrap.dedent(
        """
        import os, gymnasium as gym, spiral_envs
        if __name__ == "__main__":
            envs = gym.make_vec("SpiralPaint-MNIST-v0", 2, vectorization_mode="vector_entry_point",
                                num_workers=2)
            envs.reset(seed=0)
            print(*envs.worker_pids, flush=True)
            os.kill(os.getpid(), 9)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 1  # 2 envs: one in the parent, one in a worker
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)


def test_a_script_read_from_stdin_starts_its_workers():
    # spawn re-runs the main script by its path; '<stdin>' is none, and every worker died
    script = (
        "from spiral_envs.vector import BatchedVectorEnv\n"
        "from spiral_envs.paint import PaintEnv\n"
        "envs = BatchedVectorEnv([lambda: PaintEnv() for _ in range(2)], num_workers=2)\n"
        "print('canvas', envs.reset(seed=0)[0]['canvas'].shape)\n"
        "envs.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "canvas (2, 64, 64, 1)" in out.stdout


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path):
    # spawn imports the main script again in each worker, which makes the vector env again
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from spiral_envs.vector import BatchedVectorEnv\n"
        "from spiral_envs.paint import PaintEnv\n"
        "envs = BatchedVectorEnv([PaintEnv for _ in range(2)], num_workers=1)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode != 0
    assert "needs `if __name__ == '__main__':`" in out.stderr.splitlines()[-1]
    guarded = script.read_text().replace("envs =", "if __name__ == '__main__':\n    envs =")
    script.write_text(guarded + "    envs.close()\n")
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
