"""Showing a chart so that every front end shows something: an SVG (or PNG) rendered by vl-convert, offline,
optionally with the interactive chart on top.

Why: offline, Altair 6's default renderer loads vega from a CDN (an error); JupyterLab 4.6 renders only
Vega-Lite v3–v5 through the mimetype renderer ("<VegaLite 6 object>"); static viewers (GitHub-like) run no JS.
An SVG from vl-convert works everywhere. With ``interactive=True`` the output also carries ``text/html``:
the vega bundle inline (~0.9 MB per chart, no network) and the same SVG inside the chart's div, so a viewer
that strips scripts still shows the picture and a trusted live notebook swaps in the interactive chart.

>>> show(chart)                          # doctest: +SKIP
>>> show(chart, interactive=True)        # doctest: +SKIP
>>> ChartView(chart).png()[:8]           # doctest: +SKIP
b'\\x89PNG\\r\\n\\x1a\\n'
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["ChartView", "chart_png", "chart_svg", "show", "widget_bundle"]


def _spec(chart: Any) -> dict[str, Any]:
    return chart.to_dict() if hasattr(chart, "to_dict") else dict(chart)


def chart_svg(chart: Any) -> str:
    """The chart as SVG text (vl-convert, offline)."""
    import vl_convert as vlc

    return vlc.vegalite_to_svg(_spec(chart))


def chart_png(chart: Any, scale: float = 2) -> bytes:
    """The chart as PNG bytes (vl-convert, offline)."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(_spec(chart), scale=scale)


class ChartView:
    """A chart with a display bundle every front end can show (see the module docstring)."""

    def __init__(self, chart: Any, *, interactive: bool = False, fmt: str = "svg") -> None:
        if fmt not in ("svg", "png"):
            raise ValueError(f"unknown format {fmt!r}, allowed values: svg, png")
        self.chart, self.interactive, self.fmt = chart, interactive, fmt

    def svg(self) -> str:
        return chart_svg(self.chart)

    def png(self, scale: float = 2) -> bytes:
        return chart_png(self.chart, scale)

    def html(self, svg: str | None = None) -> str:
        """Interactive HTML (vega inline, offline) whose div holds the static SVG until vega-embed runs."""
        div = f"llmcost-{uuid.uuid4().hex[:12]}"
        page = self.chart.to_html(inline=True, output_div=div)
        placeholder = f'<div class="vega-visualization" id="{div}"></div>'
        return page.replace(
            placeholder, f'<div class="vega-visualization" id="{div}">{svg or self.svg()}</div>'
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        title = _title(self.chart)
        bundle: dict[str, Any] = {"text/plain": f"<chart: {title}>" if title else "<chart>"}
        if self.fmt == "png":
            import base64

            bundle["image/png"] = base64.b64encode(self.png()).decode("ascii")
        else:
            bundle["image/svg+xml"] = self.svg()
        if self.interactive:
            bundle["text/html"] = self.html(bundle.get("image/svg+xml"))
        return bundle


def _title(chart: Any) -> str | None:
    """A chart's title text: its own, else its first layer's or sub-chart's (layered and concatenated charts
    carry it inside)."""
    title = getattr(chart, "title", None)
    title = getattr(title, "text", title)
    if isinstance(title, str) and title:
        return title
    for part in (*(getattr(chart, "layer", None) or ()), *(getattr(chart, "hconcat", None) or ()),
                 *(getattr(chart, "vconcat", None) or ())):
        if found := _title(part):
            return found
    return None


def show(chart: Any, *, interactive: bool = False, fmt: str = "svg") -> ChartView:
    """Wrap a chart for display: the last expression of a cell, or ``IPython.display.display(show(c))``."""
    return ChartView(chart, interactive=interactive, fmt=fmt)


def widget_bundle(widget: Callable[[], Any] | None, html: str, text: str) -> dict[str, Any]:
    """A display bundle: the live widget ``widget()`` builds (when given, and when ipywidgets and a comm are
    there), plus ``text/html`` and ``text/plain`` fallbacks, which a saved notebook, nbviewer or ``llmcost
    share`` show without a kernel."""
    bundle: dict[str, Any] = {}
    if widget is not None:
        try:
            bundle.update(widget()._repr_mimebundle_() or {})
        except Exception:  # no ipywidgets, or no comm (a plain script): the fallbacks do
            bundle = {}
    bundle["text/html"] = html
    bundle["text/plain"] = text
    return bundle
