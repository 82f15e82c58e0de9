"""The JupyterLab extension shipped in the wheel is what its sources build: rebuilding labextension/ (npm ci
from the committed package-lock.json, tsc, `jupyter labextension build` against this venv's JupyterLab) in a
copy of the checkout gives the committed llmcost_nb/labextension/ byte for byte (webpack names each file by
its content hash, and the build is deterministic: measured identical across rebuilds and folders).

Needs Node.js and npm (.ci/install-node.sh, which scripts/test.sh runs); users never do: the wheel ships the
built files. Also checked: the settings schema and the plugin's version are the sources' ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "labextension"
BUILT = ROOT / "llmcost_nb" / "labextension"

pytestmark = pytest.mark.slow


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> Path:
    assert shutil.which("npm") and shutil.which("node"), "no Node.js/npm: run .ci/install-node.sh"
    work = tmp_path_factory.mktemp("checkout")
    shutil.copytree(SOURCES, work / "labextension",
                    ignore=shutil.ignore_patterns("node_modules", "lib", "tsconfig.tsbuildinfo"))
    (work / "llmcost_nb").mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "LABEXTENSION_SRC": str(work / "labextension")}
    # the timeout only stops a hung install from hanging the suite; it is no performance limit
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build_labextension.sh")], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work / "llmcost_nb" / "labextension"


def test_rebuilding_from_source_reproduces_the_committed_bundle(rebuilt):
    committed, fresh = files(BUILT), files(rebuilt)
    assert any(name.startswith("static/remoteEntry.") for name in committed)
    assert sorted(fresh) == sorted(committed)
    changed = [name for name in committed if fresh[name] != committed[name]]
    assert changed == [], f"rebuild differs in {changed}: run scripts/build_labextension.sh and commit"


def test_the_bundle_carries_the_sources_schema_and_version(rebuilt):
    schema = json.loads((SOURCES / "schema" / "plugin.json").read_text())
    assert json.loads((BUILT / "schemas" / "llmcost-nb" / "plugin.json").read_text()) == schema
    assert set(schema["properties"]) == {"refreshInterval", "figures", "currencyFormat"}
    source, built = (json.loads((d / "package.json").read_text()) for d in (SOURCES, BUILT))
    assert (built["name"], built["version"]) == (source["name"], source["version"]) == ("llmcost-nb", "0.1.0")
    assert (BUILT / built["jupyterlab"]["_build"]["load"]).is_file()
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert source["version"] == project["version"]  # one version for the package and its labextension
