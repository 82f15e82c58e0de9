"""``llmcost demo``: run the quickstart notebook shipped inside llmcost_nb, headless, and save it with its
outputs as ``.ipynb`` and as offline HTML.

    llmcost demo [--out DIR]                  # DIR defaults to ./llmcost-demo
    python -m llmcost_nb.demo [--out DIR]     # the same command

Needs nothing but the installed package: the notebook is package data (``_demo/quickstart.ipynb``, in the
repository a link to ``notebooks/quickstart.ipynb``, so there is one copy), and without ``OPENAI_API_KEY`` it
talks to the built-in fake provider (:mod:`llmcost_nb.testing`) on 127.0.0.1. Registered on the ``llmcost``
group by :func:`register` (``llmcost_nb/cli.py``).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from ..errors import DemoFailed

__all__ = ["DEFAULT_OUT", "NOTEBOOK", "DemoFailed", "demo_command", "main", "register", "run_notebook"]

NOTEBOOK = Path(__file__).parents[1] / "_demo" / "quickstart.ipynb"
DEFAULT_OUT = Path("llmcost-demo")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_notebook(path: Path, out_dir: Path, *, timeout: int = 600) -> tuple[Path, Path]:
    """Execute the notebook at ``path`` in a fresh kernel of this interpreter, with ``out_dir`` as its working
    folder, and write ``<name>.ipynb`` (outputs and widget state saved) and an offline ``<name>.html``
    (:func:`llmcost_nb.share`: widgets and charts render with no kernel and no network) into ``out_dir``.

    A cell that raises stops the run: the notebook is written as far as it got (the error in its outputs) and
    :class:`DemoFailed` is raised."""
    import nbformat

    from ..notebook.share import share

    nb = nbformat.read(path, as_version=4)
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb = out_dir / path.name
    try:
        _execute(nb, out_dir, timeout)
    except Exception as exc:
        nbformat.write(nb, ipynb)
        raise DemoFailed(f"{_one_line(exc)}; the run so far is in {ipynb.absolute()}") from exc
    nbformat.write(nb, ipynb)
    html = share(ipynb, out_dir / (path.stem + ".html"), execute=False)
    return ipynb, html.path


def _execute(nb: Any, cwd: Path, timeout: int) -> None:
    """Run ``nb`` in place. The kernel is this interpreter's own ipykernel, not whatever "python3" kernelspec
    the user's Jupyter folders hold (which may belong to another Python, without llmcost_nb)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    NotebookClient(nb, km=km, timeout=timeout, store_widget_state=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()


def _one_line(exc: BaseException) -> str:
    """The error in one line. A cell's error is named by the cell's own exception (nbclient's message is the
    whole coloured traceback)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", "")
    if ename:
        return f"a cell raised {ename}: {_ANSI.sub('', str(evalue)).strip()}"[:300]
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")[:300]


@click.command("demo", short_help="Run the packaged quickstart notebook; save it as .ipynb and offline HTML.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=DEFAULT_OUT,
              show_default=True, metavar="DIR",
              help="Folder to write quickstart.ipynb and quickstart.html into (created if missing; files of "
                   "those names there are replaced). Relative to the current folder.")
def demo_command(out: Path) -> None:
    """Run llmcost_nb's quickstart notebook (shipped in the package) and save the result.

    The notebook runs headless in a fresh Python kernel, with DIR as its working folder. Without
    OPENAI_API_KEY it calls llmcost_nb's built-in fake OpenAI-compatible provider on 127.0.0.1: no API key, no
    network, no cost, the same numbers every time. With OPENAI_API_KEY set it calls the real OpenAI API (a few
    tenths of a cent).

    Writes DIR/quickstart.ipynb (the executed notebook, with its outputs) and DIR/quickstart.html (opens in
    any browser, offline, widgets and charts included). DIR is ./llmcost-demo (in the current folder) unless
    --out is given.
    """
    if not NOTEBOOK.is_file():
        raise click.ClickException(f"the demo notebook is missing from this installation ({NOTEBOOK}): "
                                   "reinstall llmcost_nb")
    if out.exists() and not out.is_dir():
        raise click.ClickException(f"cannot write to {out}: it is a file, not a folder")
    try:  # a folder we cannot write to fails now, not after the run
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out}: {exc.strerror or exc}") from None
    provider = "the OpenAI API" if os.environ.get("OPENAI_API_KEY") else "the built-in fake provider"
    click.echo(f"running {NOTEBOOK.name} on {provider}...", err=True)
    try:
        ipynb, html = run_notebook(NOTEBOOK, out)
    except DemoFailed as exc:
        raise click.ClickException(f"the demo failed: {exc}") from None
    except Exception as exc:  # a kernel that would not start, a page not written: one line, no traceback
        raise click.ClickException(f"the demo failed: {_one_line(exc)}") from None
    click.echo(f"executed {NOTEBOOK.name} on {provider}: wrote {ipynb.absolute()} and {html.absolute()} "
               "(open the .html in any browser; it needs no kernel or network)")


def register(group: click.Group) -> None:
    """Add ``demo`` to the ``llmcost`` command group."""
    group.add_command(demo_command)


def main(argv: list[str] | None = None) -> int:
    """``python -m llmcost_nb.demo [--out DIR]``: the ``llmcost demo`` command; returns the exit status."""
    try:
        demo_command.main(args=argv, prog_name="python -m llmcost_nb.demo", standalone_mode=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
