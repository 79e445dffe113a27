"""Every Python block of the README and the docs runs as written, so none can rot.

The blocks of one file run in order in one namespace, as a reader pastes them one after another,
in a fresh interpreter with the working directory in a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WITH_BLOCKS = [p for p in DOCS if BLOCK.search(p.read_text())]


def python_blocks(text: str) -> list[str]:
    return [m.group(1) for m in BLOCK.finditer(text)]


def test_the_block_finder_finds_blocks_and_only_python_ones():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]
    assert [p.name for p in WITH_BLOCKS][:1] == ["README.md"]


@pytest.mark.parametrize("doc", WITH_BLOCKS, ids=lambda p: p.name)
def test_every_python_block_runs(doc, tmp_path):
    pytest.importorskip("stable_baselines3")  # the README's recipe trains SB3 models
    code = "\n\n".join(
        f"# --- {doc.name}, block {i}\n{block}"
        for i, block in enumerate(python_blocks(doc.read_text()))
    )
    (tmp_path / "blocks.py").write_text(code)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "blocks.py"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, f"{doc.name}: {run.stderr[-3000:]}"
