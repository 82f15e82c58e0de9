"""The wheel stands alone: built from this checkout, installed into a fresh venv (its dependencies pinned to
the versions of the venv running the tests), and `llmcost demo` run from an empty folder outside the
checkout, with no path back to it, writes the executed quickstart notebook and its offline HTML. A file the
package forgot to ship (the notebook, a vendored script, the page template) makes this fail.

Also here: `llmcost demo`'s errors, one line each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest
from _env import isolated_env
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
ASSETS = ROOT / "llmcost_nb" / "_assets"
BIN = "Scripts" if os.name == "nt" else "bin"
# What setuptools reads to build the wheel (README.md is the long description).
BUILD_INPUTS = ("pyproject.toml", "README.md", "setup.py", "setup.cfg", "MANIFEST.in")
# the data files outside the package: the server extension's config (the built labextension is in llmcost_nb/)
DATA_INPUTS = ("jupyter-config",)
LABEXTENSION = ROOT / "llmcost_nb" / "labextension"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    # the timeout only stops a hung step from hanging the suite; it is no performance limit
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, **kwargs)


def outside_checkout_env(root: Path) -> dict[str, str]:
    """Per-user folders under ``root``, no API key, and nothing that leads back to the checkout or its venv:
    no PYTHONPATH, no VIRTUAL_ENV, no PATH entry inside the checkout. TIKTOKEN_CACHE_DIR is kept."""
    env = isolated_env(root)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "LLMCOST_DB", "JUPYTER_PATH"):
        env.pop(name, None)
    path = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in path if p and not Path(p).resolve().is_relative_to(ROOT))
    return env


def plain(text: str) -> str:
    """Terminal text without its colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the build inputs (so the build writes nothing into the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        if (ROOT / name).exists():
            shutil.copyfile(ROOT / name, src / name)
    # the notebook in the package is a link to notebooks/quickstart.ipynb: copied as the file it points to
    shutil.copytree(ROOT / "llmcost_nb", src / "llmcost_nb",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in DATA_INPUTS:
        shutil.copytree(ROOT / name, src / name)
    dist = tmp_path_factory.mktemp("dist")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                 "-w", str(dist), str(src)])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (path,) = dist.glob("llmcost_nb-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed by its own pip, every dependency at the version this venv has."""
    root = tmp_path_factory.mktemp("venv")
    frozen = run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"])
    assert frozen.returncode == 0, frozen.stderr
    pins = [line for line in frozen.stdout.splitlines()
            if line.strip() and not re.match(r"(?i)llmcost[-_.]nb\b", line)]
    constraints = root / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    target = root / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # --no-compile: no .pyc written ahead (a third of the install's time); the demo compiles what it imports
    pip = [str(target / BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-compile"]
    done = run([*pip, str(wheel), "-c", str(constraints)], env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return target


@pytest.fixture(scope="module")
def demo_run(installed, tmp_path_factory):
    """`llmcost demo` from an empty folder outside the checkout, with the default --out."""
    root = tmp_path_factory.mktemp("user")
    work = root / "work"
    work.mkdir()
    env = outside_checkout_env(root)
    result = run([str(installed / BIN / "llmcost"), "demo"], cwd=work, env=env)
    return work, root, env, result


@pytest.mark.slow
def test_the_wheel_ships_the_notebook_and_every_asset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = sorted(p.name for p in ASSETS.iterdir() if p.is_file())
    assert assets  # the listing is not vacuous
    assert {f"llmcost_nb/_assets/{name}" for name in assets} <= names
    assert "llmcost_nb/_demo/quickstart.ipynb" in names
    # the shipped notebook is the committed one, byte for byte (the package holds a link to it, not a copy)
    assert zipfile.ZipFile(wheel).read("llmcost_nb/_demo/quickstart.ipynb") == QUICKSTART.read_bytes()


@pytest.mark.slow
def test_the_wheel_ships_the_built_labextension_and_the_server_config_once(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "llmcost_nb-0.1.0.data/data/"
    built = sorted(p.relative_to(LABEXTENSION).as_posix() for p in LABEXTENSION.rglob("*") if p.is_file())
    assert "package.json" in built and any(b.startswith("static/remoteEntry.") for b in built)
    shipped = sorted(n[len(data + "share/jupyter/labextensions/llmcost-nb/"):] for n in names
                     if n.startswith(data + "share/jupyter/labextensions/llmcost-nb/"))
    assert shipped == built
    for name in built:  # byte for byte the committed bundle
        wheel_name = f"{data}share/jupyter/labextensions/llmcost-nb/{name}"
        assert zipfile.ZipFile(wheel).read(wheel_name) == (LABEXTENSION / name).read_bytes()
    config = json.loads(zipfile.ZipFile(wheel).read(
        f"{data}etc/jupyter/jupyter_server_config.d/llmcost_nb.json"))
    assert config == {"ServerApp": {"jpserver_extensions": {"llmcost_nb.notebook.server": True}}}
    assert not [n for n in names if n.startswith("llmcost_nb/labextension")]  # not twice


@pytest.mark.slow
def test_the_installed_wheel_enables_the_jupyterlab_meter(installed, tmp_path):
    """`pip install` alone: JupyterLab lists the labextension enabled and the server its extension."""
    env = outside_checkout_env(tmp_path)
    jupyter = str(installed / BIN / "jupyter")
    labext = run([jupyter, "labextension", "list"], cwd=tmp_path, env=env)
    assert labext.returncode == 0, labext.stderr
    listed = plain(labext.stdout + labext.stderr)  # (Lab writes its list to stderr)
    lines = [line.split() for line in listed.splitlines() if "llmcost-nb" in line]
    assert [words[:3] for words in lines] == [["llmcost-nb", "v0.1.0", "enabled"]], listed
    server = run([jupyter, "server", "extension", "list"], cwd=tmp_path, env=env)
    assert server.returncode == 0, server.stderr
    ours = [line.split() for line in plain(server.stdout + server.stderr).splitlines()
            if "llmcost_nb.notebook.server" in line]
    assert ["llmcost_nb.notebook.server", "enabled"] in [words[:2] for words in ours], server.stderr
    assert any("OK" in words for words in ours), server.stderr  # it imports and validates


@pytest.mark.slow
def test_the_installed_package_is_not_the_checkout(installed, tmp_path):
    probe = run([str(installed / BIN / "python"), "-c", "import llmcost_nb; print(llmcost_nb.__file__)"],
                cwd=tmp_path, env=outside_checkout_env(tmp_path))
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).resolve().is_relative_to(installed.resolve())


@pytest.mark.slow
def test_llmcost_demo_from_an_empty_folder_writes_the_notebook_and_its_page(demo_run):
    work, _, _, result = demo_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = work / "llmcost-demo"
    assert sorted(p.name for p in work.iterdir()) == ["llmcost-demo"]
    assert sorted(p.name for p in out.iterdir()) == ["quickstart.html", "quickstart.ipynb"]
    assert result.stdout == (
        f"executed quickstart.ipynb on the built-in fake provider: wrote {out / 'quickstart.ipynb'} and "
        f"{out / 'quickstart.html'} (open the .html in any browser; it needs no kernel or network)\n")
    assert "Traceback" not in result.stderr

    nb = nbformat.read(out / "quickstart.ipynb", as_version=4)
    committed = nbformat.read(QUICKSTART, as_version=4)
    code = code_cells(nb)
    assert len(code) == len(code_cells(committed)) and all(c.execution_count for c in code)
    outputs = [o for c in code for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    # the key totals, exactly as committed (the fake provider's numbers are the same every run)
    (checked,) = [i for i, c in enumerate(code_cells(committed))
                  if c.source.startswith("# NBVAL_CHECK_OUTPUT")]
    totals = code_cells(committed)[checked].outputs[0].text
    assert totals.startswith("calls this session: ") and code[checked].outputs[0].text == totals

    html = (out / "quickstart.html").read_text(encoding="utf-8")
    assert all(line in html for line in totals.splitlines())
    # the vendored scripts and font reached the page from the installed package's _assets
    assert "@license RequireJS" in html and 'define("@jupyter-widgets/base"' in html
    assert "data:font/woff2;base64," in html
    views = [o.data[WIDGET_VIEW]["model_id"] for o in outputs if WIDGET_VIEW in o.get("data", {})]
    assert views and html.count('<script type="application/vnd.jupyter.widget-view+json">') == len(views)
    assert all(json.dumps(v) in html for v in views)


@pytest.mark.slow
def test_the_demo_leaves_the_default_ledger_alone(demo_run):
    """The notebook records into a ledger of its own in a temp folder, not the user's default one."""
    _, root, env, result = demo_run
    assert result.returncode == 0
    default = Path(env["XDG_DATA_HOME"]) / "llmcost_nb"
    assert not default.exists()
    assert not (root / "home" / ".local" / "share" / "llmcost_nb").exists()


@pytest.mark.slow
def test_demo_help_says_what_it_does_and_where_it_writes(installed, tmp_path):
    result = run([str(installed / BIN / "llmcost"), "demo", "--help"], cwd=tmp_path,
                 env=outside_checkout_env(tmp_path))
    assert result.returncode == 0, result.stderr
    text = re.sub(r"(\w)- (\w)", r"\1-\2", " ".join(result.stdout.split()))  # as if unwrapped
    assert text.startswith("Usage: llmcost demo [OPTIONS] ")
    assert "Run llmcost_nb's quickstart notebook (shipped in the package)" in text
    assert "built-in fake OpenAI-compatible provider" in text
    assert ("Writes DIR/quickstart.ipynb (the executed notebook, with its outputs) and DIR/quickstart.html"
            in text)
    assert "DIR is ./llmcost-demo (in the current folder) unless --out is given." in text
    assert "-o, --out DIR" in text and "[default: llmcost-demo]" in text


@pytest.mark.slow
def test_an_unwritable_out_is_one_line(installed, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = outside_checkout_env(tmp_path)
    result = run([str(installed / BIN / "llmcost"), "demo", "--out", str(blocker)], cwd=tmp_path, env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: cannot write to {blocker}: it is a file, not a folder\n"
    inside = blocker / "sub"  # the operating system's reason, in one line
    result = run([str(installed / BIN / "llmcost"), "demo", "--out", str(inside)], cwd=tmp_path, env=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"Error: cannot write to {inside}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert blocker.read_text() == "not a folder"


def test_a_cell_that_raises_is_one_line_and_the_run_so_far_is_saved(kernel_env, monkeypatch):
    from llmcost_nb.testing import demo

    broken = kernel_env / "broken" / "quickstart.ipynb"
    broken.parent.mkdir()
    cells = [nbformat.v4.new_code_cell("print('first cell ran')"),
             nbformat.v4.new_code_cell("raise ValueError('the second cell fails')"),
             nbformat.v4.new_code_cell("print('never reached')")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), broken)
    monkeypatch.setattr(demo, "NOTEBOOK", broken)
    out = kernel_env / "out"
    result = CliRunner().invoke(demo.demo_command, ["--out", str(out)])
    saved = out / "quickstart.ipynb"
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: the demo failed: a cell raised ValueError: the second cell fails; the run so far is in "
        f"{saved}")
    nb = nbformat.read(saved, as_version=4)
    assert nb.cells[0].outputs[0].text == "first cell ran\n"
    assert [o.output_type for o in nb.cells[1].outputs] == ["error"]
    assert nb.cells[2].outputs == [] and not (out / "quickstart.html").exists()


def test_a_missing_notebook_is_one_line(monkeypatch, tmp_path):
    from llmcost_nb.testing import demo

    missing = tmp_path / "gone" / "quickstart.ipynb"
    monkeypatch.setattr(demo, "NOTEBOOK", missing)
    result = CliRunner().invoke(demo.demo_command, ["--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output == (f"Error: the demo notebook is missing from this installation ({missing}): "
                             "reinstall llmcost_nb\n")
