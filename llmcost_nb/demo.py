"""The demo: run ``notebooks/quickstart.ipynb`` headless and save it, with outputs, as .ipynb and HTML.

    python -m llmcost_nb.demo [NOTEBOOK] [--out DIR]

Without API keys the notebook talks to the built-in fake provider, so the demo runs offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "run_notebook"]


def run_notebook(path: Path, out_dir: Path, *, timeout: int = 600) -> tuple[Path, Path]:
    """Execute ``path`` (widget state saved) and write ``<name>.ipynb`` and ``<name>.html`` into ``out_dir``."""
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout, store_widget_state=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb = out_dir / path.name
    nbformat.write(nb, ipynb)
    html, _ = HTMLExporter().from_notebook_node(nb)
    html_path = out_dir / (path.stem + ".html")
    html_path.write_text(html, encoding="utf-8")
    return ipynb, html_path


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(prog="python -m llmcost_nb.demo", description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=root / "notebooks" / "quickstart.ipynb")
    parser.add_argument("--out", type=Path, default=root / "artifacts" / "demo")
    args = parser.parse_args(argv)
    if not args.notebook.exists():
        parser.error(f"no notebook at {args.notebook}")
    ipynb, html = run_notebook(args.notebook, args.out)
    print(f"executed {args.notebook.name}: {ipynb} and {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
