"""Install as a package (issue 31 §5): ``python -m build`` gives an sdist and a wheel with no
setuptools deprecation warning that ``twine check`` passes; the wheel, installed on its own and
imported from outside the checkout, has every env, the shipped data and the pretrained agents.

Offline: the build uses this environment's setuptools (``--no-isolation``), and the wheel is
installed with ``pip --no-deps --no-index --target`` and run on this environment's dependencies.
``build``, ``setuptools>=77`` and ``twine`` are in the ``dev`` extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("build")
pytest.importorskip("setuptools", minversion="77")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spiral_envs", "agents")
# What the wheel is built from; everything else in the checkout (tests, docs, runs, venvs) is not
# needed and is not copied.
BUILD_INPUTS = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "setup.py",
    "setup.cfg",
    "MANIFEST.in",
    *PACKAGES,
)
SCRIPTS = ("spiral-download", "spiral-train", "spiral-eval", "spiral-bench", "spiral-recipe")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out[-4000:]}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """``python -m build`` of a copy of the checkout (the build writes ``build/`` and
    ``*.egg-info`` into its source folder): the dist folder and the build's output."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        elif path.is_file():
            shutil.copy2(path, src / name)
    dist = tmp / "dist"
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check"]
    result = _run([*cmd, "--outdir", str(dist), str(src)], cwd=tmp)
    return dist, result.stdout + result.stderr


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("spiral_gym-*-py3-none-any.whl")
    return wheel


def test_build_has_no_deprecation_warning(built):
    dist, log = built
    assert len(list(dist.glob("spiral_gym-*.tar.gz"))) == 1
    _wheel(dist)
    warned = [line for line in log.splitlines() if "deprecat" in line.lower()]
    assert not warned, "\n".join(warned)


def test_wheel_holds_the_code_the_data_and_the_agents(built):
    with zipfile.ZipFile(_wheel(built[0])) as zf:
        names = set(zf.namelist())
        (meta,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta).decode()
        (eps,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = zf.read(eps).decode()
    # every file of the packages in the checkout, code and data alike
    expected = {
        p.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for p in (ROOT / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert expected - names == set()
    for must in (
        "spiral_envs/data/mnist.npz",
        "spiral_envs/data/omniglot.npz",
        "spiral_envs/data/faces.npz",
        "spiral_envs/data/MNIST-LICENSE.md",
        "spiral_envs/scene/scene.xml",
        "agents/pretrained/mnist_cond_l2.pt",
        "agents/pretrained/mnist_cond_wgan.pt",
        "agents/pretrained/mnist_classifier.pt",
        "agents/pretrained/README.md",
        "agents/recipes/mnist.json",
    ):
        assert must in names, must
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/", "examples/")) for n in names)
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)  # the licence's text
    assert "\nLicense: " not in metadata  # the deprecated TOML-table form
    for script in SCRIPTS:
        assert f"{script} = " in entry_points, script


def test_twine_check_passes(built):
    pytest.importorskip("twine")
    dist = built[0]
    _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir()))])


# Run by the installed wheel's own interpreter view: argv = site, celeba folder, eval out folder.
USER_SCRIPT = r"""
import json, sys
from importlib import metadata
from pathlib import Path

site, celeba, out = (Path(a).resolve() for a in sys.argv[1:4])

import gymnasium as gym

import agents
import spiral_envs
from spiral_envs.datasets import load_dataset

made = []
for env_id in spiral_envs.ENV_IDS:
    env = gym.make(env_id, **({"data_dir": str(celeba)} if "CelebA" in env_id else {}))
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
    made.append(env_id)
sources = {n: load_dataset(n).source for n in ("mnist", "omniglot", "faces")}

dist = metadata.distribution("spiral-gym")
console = {ep.name: ep for ep in dist.entry_points if ep.group == "console_scripts"}
loaded = sorted(name for name, ep in console.items() if callable(ep.load()))
checkpoint = site / "agents" / "pretrained" / "mnist_cond_l2.pt"
rc = console["spiral-eval"].load()([str(checkpoint), "--episodes", "2", "--out", str(out)])

files = {
    name: str(Path(m.__file__).resolve())
    for name, m in sys.modules.items()
    if name.split(".")[0] in ("spiral_envs", "agents") and getattr(m, "__file__", None)
}
print(json.dumps({
    "made": made, "sources": sources, "dist": str(Path(dist.locate_file("")).resolve()),
    "scripts": loaded, "rc": rc, "files": files, "pretrained": str(agents.PRETRAINED),
}))
"""


def test_installed_wheel_works_outside_the_checkout(built, tmp_path, celeba_dir):
    pytest.importorskip("torch")
    site = tmp_path / "site"
    _run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile"]
        + ["--disable-pip-version-check", "--target", str(site), str(_wheel(built[0]))]
    )
    for script in SCRIPTS:  # pip writes the console scripts beside the packages
        assert (site / "bin" / script).is_file(), script
    user = tmp_path / "user"  # cwd: nothing importable there
    user.mkdir()
    (user / "check.py").write_text(USER_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SPIRAL_"))}
    env.update(
        PYTHONPATH=str(site),  # before site-packages, so before an editable install's entries
        PYTHONNOUSERSITE="1",
        PYTHONSAFEPATH="1",
        SPIRAL_CACHE_DIR=str(tmp_path / "cache"),  # no downloaded data: the shipped subsets
        MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"),
    )
    out = tmp_path / "ev"
    result = _run(
        [sys.executable, str(user / "check.py"), str(site), str(celeba_dir), str(out)],
        cwd=user,
        env=env,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    site = site.resolve()
    # nothing came from the checkout or from an editable install of it
    outside = {n: f for n, f in report["files"].items() if not Path(f).is_relative_to(site)}
    assert report["files"] and not outside, outside
    assert Path(report["dist"]) == site
    assert Path(report["pretrained"]).resolve() == site / "agents" / "pretrained"

    import spiral_envs

    assert report["made"] == list(spiral_envs.ENV_IDS)
    assert report["sources"] == {n: f"embedded:{n}.npz" for n in ("mnist", "omniglot", "faces")}
    assert report["scripts"] == sorted(SCRIPTS)
    assert report["rc"] == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert Path(metrics["checkpoint"]).resolve().is_relative_to(site)
    assert metrics["episodes"] == 2 and metrics["l2"] < metrics["blank_l2"]
