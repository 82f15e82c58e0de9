"""Moved to :mod:`llmcost_nb.testing.demo`; this path keeps working,
`python -m llmcost_nb.demo` too."""

from .testing.demo import DEFAULT_OUT, NOTEBOOK, DemoFailed, demo_command, main, register, run_notebook

__all__ = ["DEFAULT_OUT", "NOTEBOOK", "DemoFailed", "demo_command", "main", "register", "run_notebook"]

if __name__ == "__main__":
    import sys

    from .testing.demo import main

    sys.exit(main())
