"""genai-prices, imported once under a lock (see :func:`import_genai_prices`)."""

from __future__ import annotations

import threading

__all__ = ["import_genai_prices"]

_imported = False
_import_lock = threading.Lock()


def import_genai_prices() -> None:
    """Import genai-prices (and the modules of it we use) once, under a lock. Its modules import each
    other, so two threads importing it at the same moment (the warm-up thread and a first call) can get a
    partially initialised module; afterwards every ``from genai_prices... import`` is a dict lookup."""
    global _imported
    if _imported:
        return
    with _import_lock:
        if not _imported:
            import genai_prices
            import genai_prices.decompose
            import genai_prices.validation  # noqa: F401

            _imported = True
