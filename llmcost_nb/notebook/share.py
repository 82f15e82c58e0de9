"""Share a notebook as one HTML file (or a folder) that shows every widget and chart with no network at all.

>>> import llmcost_nb
>>> llmcost_nb.share("notebooks/quickstart.ipynb", "quickstart.html")          # doctest: +SKIP
SharedNotebook('quickstart.html': 3 widget views, 2 charts, executed=False, 4.6 MB)

A plain ``jupyter nbconvert --to html`` loads require.js, the widget renderer, MathJax and vega from CDNs:
offline, the page is blank where they should be. Here require.js and the widget renderer come from copies
shipped with llmcost_nb (``_assets/``, see LICENSES.md there), vega from ``vl_convert.javascript_bundle()``
(only when an output needs it; AMD ``define`` shims make Altair's ``require(["vega-embed"])`` resolve
locally), MathJax is left out, and a Vega-Lite output without a picture gets an SVG rendered by vl-convert.
Widgets render from the state saved in the notebook; a notebook not executed yet (or saved without widget
state) is executed first, headless, with ``store_widget_state=True``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SharedNotebook", "execute", "share"]

ASSETS = Path(__file__).parents[1] / "_assets"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_VEGALITE = re.compile(r"^application/vnd\.vegalite\.v\d+\+json$")
_VEGA_FROM_CDN = re.compile(r"cdn\.jsdelivr\.net/npm/vega")
_EXECUTE = ("auto", True, False)
_FONT_FACE = ('<style>@font-face {{font-family: "Font Awesome 5 Free"; font-style: normal; font-weight: 900; '
              'font-display: block; src: url({url}) format("woff2");}}</style>')
_SHIMS = """
define('vega', [], function () { return window.vega; });
define('vega-lite', [], function () { return window.vegaLite; });
define('vega-embed', [], function () { return window.vegaEmbed; });
"""


@dataclass(frozen=True)
class SharedNotebook:
    """What :func:`share` wrote: the page (and, for a folder, its assets) and what it shows."""

    path: Path
    widget_views: int
    charts: int
    executed: bool
    files: list[Path] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    def __repr__(self) -> str:
        return (f"SharedNotebook({str(self.path)!r}: {self.widget_views} widget views, {self.charts} charts, "
                f"executed={self.executed}, {self.size_bytes / 1e6:.1f} MB)")

    def _repr_html_(self) -> str:
        import html

        return (f'<a href="{html.escape(self.path.as_uri())}">{html.escape(self.path.name)}</a>: '
                f"{self.widget_views} widget views, {self.charts} charts, works offline")


def share(notebook: str | os.PathLike[str] | Any, out: str | os.PathLike[str] | None = None, *,
          execute: bool | str = "auto", folder: bool = False, timeout: int = 600,
          kernel_name: str = "python3") -> SharedNotebook:
    """Write ``notebook`` (a path or an nbformat node) as HTML that works offline; returns what was written.

    ``out``: the ``.html`` file (default: beside the notebook, same name), or with ``folder=True`` a folder
    receiving ``<name>.html`` and ``assets/`` (smaller page; keep them together). ``execute``: ``"auto"``
    runs the notebook when a code cell has no output count or widget views lack saved state; ``True``
    always; ``False`` never.

    >>> share("analysis.ipynb", "site/", folder=True)       # doctest: +SKIP
    """
    import nbformat

    if execute not in _EXECUTE:
        raise ValueError(f"execute must be one of 'auto', True, False, got {execute!r}")
    source: Path | None = None
    if isinstance(notebook, str | os.PathLike):
        source = Path(notebook)
        if not source.is_file():
            raise FileNotFoundError(f"no notebook at {source}")
        nb = nbformat.read(source, as_version=4)
    else:
        nb = nbformat.from_dict(json.loads(json.dumps(notebook)))  # a copy: the caller's node stays as it was
    name = source.stem if source is not None else (nb.metadata.get("title") or "notebook")
    run = execute is True or (execute == "auto" and _needs_execution(nb))
    if run:
        nb = _execute(nb, source.parent if source is not None else Path.cwd(), timeout, kernel_name)
    charts = _add_chart_pictures(nb)
    target = Path(out) if out is not None else (source.with_suffix(".html") if source is not None
                                                 else Path(f"{name}.html"))
    if folder:
        target.mkdir(parents=True, exist_ok=True)
        page, assets = target / f"{name}.html", target / "assets"
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        page, assets = target, None
    html, files = _export(nb, assets)
    page.write_text(html, encoding="utf-8")
    views = sum(1 for o in _outputs(nb) if WIDGET_VIEW in o.get("data", {}))
    return SharedNotebook(page, views, charts, run, [page, *files])


def execute(notebook: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
            timeout: int = 600, kernel_name: str = "python3") -> Path:
    """Run ``notebook`` headless (in its folder) and save it with its outputs and widget state, so that
    viewers without a kernel show them; returns the path written (default: in place)."""
    import nbformat

    source = Path(notebook)
    nb = _execute(nbformat.read(source, as_version=4), source.parent, timeout, kernel_name)
    target = Path(out) if out is not None else source
    nbformat.write(nb, target)
    return target


# -- steps ------------------------------------------------------------------------------------------------
def _outputs(nb: Any) -> list[Any]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def _needs_execution(nb: Any) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if any(not c.get("execution_count") for c in code):
        return True
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    views = [o["data"][WIDGET_VIEW].get("model_id") for o in _outputs(nb) if WIDGET_VIEW in o.get("data", {})]
    return any(model_id not in state for model_id in views)


def _execute(nb: Any, cwd: Path, timeout: int, kernel_name: str) -> Any:
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, store_widget_state=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def _add_chart_pictures(nb: Any) -> int:
    """Give each Vega-Lite output without a picture an SVG (vl-convert, offline); returns the charts."""
    charts = 0
    for output in _outputs(nb):
        data = output.get("data", {})
        specs = [k for k in data if _VEGALITE.match(k)]
        if specs and "image/svg+xml" not in data and "image/png" not in data:
            import vl_convert as vlc

            spec = data[specs[0]]
            data["image/svg+xml"] = vlc.vegalite_to_svg(json.loads(spec) if isinstance(spec, str) else spec)
        charts += bool(specs or "image/svg+xml" in data or "image/png" in data
                       or "vega-embed" in str(data.get("text/html", "")))
    return charts


def _needs_vega(nb: Any) -> bool:
    return any(_VEGA_FROM_CDN.search(str(o.get("data", {}).get("text/html", ""))) for o in _outputs(nb))


def _export(nb: Any, assets: Path | None) -> tuple[str, list[Path]]:
    """The page, and the asset files written beside it (folder mode)."""
    from nbconvert import HTMLExporter

    scripts: dict[str, str] = {"require.js": (ASSETS / "require.js").read_text(encoding="utf-8")}
    if "widgets" in nb.metadata:
        scripts["embed-amd.js"] = (ASSETS / "embed-amd.js").read_text(encoding="utf-8")
    if _needs_vega(nb):
        import vl_convert as vlc

        scripts["vega.js"] = "(function () {\n" + vlc.javascript_bundle() + "\n})();\n" + _SHIMS
    files: list[Path] = []
    if assets is not None:
        assets.mkdir(parents=True, exist_ok=True)
        for file_name, text in scripts.items():
            (assets / file_name).write_text(text, encoding="utf-8")
            files.append(assets / file_name)
        (assets / "LICENSES.md").write_text((ASSETS / "LICENSES.md").read_text(encoding="utf-8"))
        files.append(assets / "LICENSES.md")
        tag = {k: f'<script src="assets/{k}"></script>' for k in scripts}
    else:
        tag = {k: f"<script>\n{_inline(v)}\n</script>" for k, v in scripts.items()}
    head = tag["require.js"] + ("\n" + tag["vega.js"] if "vega.js" in tag else "")
    fonts = ""
    if "embed-amd.js" in scripts:  # the widgets' icon font, declared after the renderer's own (so it wins)
        font = ASSETS / "fa-solid-900.woff2"
        if assets is not None:
            shutil.copyfile(font, assets / font.name)
            files.append(assets / font.name)
            url = f"assets/{font.name}"
        else:
            url = "data:font/woff2;base64," + base64.b64encode(font.read_bytes()).decode("ascii")
        fonts = _FONT_FACE.format(url=url)
    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(ASSETS)],
                            template_file="share.html.j2", mathjax_url="")
    resources = {"llmcost_scripts": {"head": head, "widgets": tag.get("embed-amd.js", ""), "fonts": fonts}}
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html, files


def _inline(script: str) -> str:
    """Script text safe inside a <script> element (a literal ``</script`` would end it)."""
    return re.sub(r"</(script)", r"<\\/\1", script, flags=re.IGNORECASE)


share.execute = execute  # llmcost_nb.share.execute(nb)
