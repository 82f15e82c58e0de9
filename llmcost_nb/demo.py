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
    """Execute ``path`` (widget state saved) and write ``<name>.ipynb`` and an offline ``<name>.html``
    (:func:`llmcost_nb.share`: widgets and charts render with no kernel and no network) into ``out_dir``."""
    from .share import execute, share

    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb = execute(path, out_dir / path.name, timeout=timeout)
    html = share(ipynb, out_dir / (path.stem + ".html"), execute=False)
    return ipynb, html.path


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
