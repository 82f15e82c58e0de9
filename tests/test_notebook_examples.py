"""Every notebook in notebooks/ runs top to bottom in a fresh kernel under nbval, offline, and the cells
marked ``# NBVAL_CHECK_OUTPUT`` print what is committed. A new notebook is picked up without a new test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _env import isolated_env

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SANITIZE = NOTEBOOKS_DIR / "sanitize.cfg"



def test_every_notebook_is_found():
    assert {p.name for p in NOTEBOOKS} >= {"quickstart.ipynb", "dashboard.ipynb", "ab_comparison.ipynb",
                                           "replay.ipynb"}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline_under_nbval(notebook, tmp_path, tiktoken_cache):
    # no API key reaches a notebook here: each falls back to the built-in fake provider or to its recording
    env = isolated_env(tmp_path, LLMCOST_DB=str(tmp_path / "ledger.db"),
                       TIKTOKEN_CACHE_DIR=str(tiktoken_cache))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
               "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE), str(notebook)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    assert re.search(rf"\b{len(cells)} passed\b", result.stdout), result.stdout[-1000:]  # every cell ran
