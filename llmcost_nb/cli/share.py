"""``llmcost share`` (a notebook as offline HTML) and ``llmcost replay`` (the recorded responses).

Registered on the main group by :func:`register` (``llmcost_nb/cli.py``); thin shells over
:mod:`llmcost_nb.share` and :mod:`llmcost_nb.replay`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["register", "replay_group", "share_command"]


@click.command("share")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="The .html file (default: beside the notebook), or the folder with --folder.")
@click.option("--folder", is_flag=True, help="Write NAME.html and assets/ into a folder instead of one file.")
@click.option("--execute/--no-execute", "execute", default=None,
              help="Run the notebook first (default: only when it has cells not run or no widget state).")
@click.option("--timeout", type=int, default=600, show_default=True, help="Seconds allowed per cell.")
def share_command(notebook: Path, out: Path | None, folder: bool, execute: bool | None, timeout: int) -> None:
    """Write NOTEBOOK as HTML that shows every widget and chart with no network.

    Example: llmcost share notebooks/quickstart.ipynb -o quickstart.html
    """
    from ..notebook.share import share

    try:
        result = share(notebook, out, execute="auto" if execute is None else execute, folder=folder,
                       timeout=timeout)
    except Exception as exc:  # a cell that raised, a kernel that would not start: one line, no traceback
        last = (str(exc).strip().splitlines() or [""])[-1][:300]
        raise click.ClickException(f"{type(exc).__name__}: {last}") from None
    views, charts = result.widget_views, result.charts
    what = f"{views} widget view{'s' * (views != 1)}, {charts} chart{'s' * (charts != 1)}"
    click.echo(f"wrote {result.path}: {what}{', executed' if result.executed else ''} "
               f"({result.size_bytes / 1e6:.1f} MB)")


_PATH_HELP = "The recordings file (default: LEDGER.replay.jsonl beside the default ledger)."


def _store(path: Path | None) -> Any:
    from ..recording.replay import default_path
    from ..recording.store import ReplayStore
    from ..tracking.scope import Session

    return ReplayStore(path if path is not None else default_path(Session()))


@click.group("replay")
def replay_group() -> None:
    """The responses recorded by llmcost_nb.replay (%llmcost replay record)."""


@replay_group.command("list")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_PATH_HELP)
def replay_list(path: Path | None) -> None:
    """One line per recorded request: when, status, method, path and model.

    Example: llmcost replay list --path sample_data/replay/quickstart.jsonl
    """
    store = _store(path)
    try:
        recordings = store.recordings()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for rec in recordings:
        click.echo(f"{rec.recorded}  {rec.status}  {rec.request['method']} {rec.request['path']}  "
                   f"{rec.request['model']}  {len(rec.content):,} bytes")
    click.echo(f"{len(recordings)} recording{'s' if len(recordings) != 1 else ''} in {store.path}")


@replay_group.command("clear")
@click.option("--path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=_PATH_HELP)
def replay_clear(path: Path | None) -> None:
    """Delete every recording.

    Example: llmcost replay clear
    """
    store = _store(path)
    click.echo(f"deleted {store.clear()} recordings from {store.path}")


def register(group: click.Group) -> None:
    """Add ``share`` and ``replay`` to the ``llmcost`` command group."""
    group.add_command(share_command)
    group.add_command(replay_group)
