"""The documentation site builds with ``mkdocs build --strict``, and the README links to its pages.

A strict build fails on a broken link or anchor between pages, a page missing from the nav, and
a docstring that mkdocstrings cannot parse. Nothing is fetched: the build needs no network.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT


def test_the_site_builds_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module)  # the docs extra
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "PaintEnv" in (site / "api_envs" / "index.html").read_text()


def test_the_readme_links_to_files_that_exist():
    links = re.findall(r"\]\((docs/[^)#]*)", (ROOT / "README.md").read_text())
    assert "docs/results.md" in links
    assert [link for link in links if not (ROOT / link).exists()] == []
