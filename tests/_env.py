"""Environments for the kernels, servers and subprocesses the tests start: every per-user directory (home,
IPython, Jupyter, XDG, matplotlib) under a temp root, so nothing of the user's leaks in or is written out,
and no API key, so notebooks take their offline path."""

from __future__ import annotations

import os
from pathlib import Path

API_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
_DIRS = (
    ("HOME", "home"), ("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jc"), ("JUPYTER_DATA_DIR", "jd"),
    ("JUPYTER_RUNTIME_DIR", "jr"), ("XDG_CONFIG_HOME", "xc"), ("XDG_DATA_HOME", "xd"),
    ("XDG_CACHE_HOME", "xcache"), ("MPLCONFIGDIR", "mpl"),
)


def isolated_dirs(root: Path) -> dict[str, str]:
    """The per-user directory variables, each pointing below ``root``."""
    return {name: str(root / sub) for name, sub in _DIRS}


def isolated_env(root: Path, **extra: str) -> dict[str, str]:
    """This process's environment without API keys or PYTEST_ADDOPTS, its per-user directories under
    ``root``, and ``extra`` on top (which may plant keys on purpose)."""
    env = {k: v for k, v in os.environ.items() if k not in (*API_KEYS, "PYTEST_ADDOPTS")}
    return {**env, **isolated_dirs(root), **extra}


def ledger_files(path: Path) -> list[Path]:
    """Every file llmcost_nb keeps for the ledger at ``path``: the database, its -wal and -shm, and the
    journal segments of calls not recorded yet (``<name>-pending/``)."""
    path = Path(path)
    return [p for p in path.parent.glob(f"{path.name}*") if p.is_file()] + sorted(
        path.parent.glob(f"{path.name}-pending/*"))
